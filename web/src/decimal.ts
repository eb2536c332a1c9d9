// Exact decimal arithmetic on the API's decimal strings (tick/lot checks must not use floats).

export interface Scaled {
  value: bigint; // the number times 10^scale
  scale: number;
}

const DEC_RE = /^([+-])?(\d+)(?:\.(\d*))?$|^([+-])?\.(\d+)$/;

/** Parse a decimal string ("101.25", "10", ".5"); null when it is not a plain decimal. */
export function parseDec(input: string | null | undefined): Scaled | null {
  if (input == null) return null;
  const s = String(input).trim();
  const m = DEC_RE.exec(s);
  if (!m) return null;
  const sign = m[1] ?? m[4] ?? '';
  const intPart = m[2] ?? '0';
  const frac = m[3] ?? m[5] ?? '';
  const value = BigInt(intPart + frac) * (sign === '-' ? -1n : 1n);
  return { value, scale: frac.length };
}

function rescale(a: Scaled, scale: number): bigint {
  return a.value * 10n ** BigInt(scale - a.scale);
}

/** True when `x` is an exact multiple of `step` (step > 0). */
export function isMultiple(x: string, step: string): boolean {
  const a = parseDec(x);
  const b = parseDec(step);
  if (!a || !b || b.value === 0n) return false;
  const scale = Math.max(a.scale, b.scale);
  return rescale(a, scale) % rescale(b, scale) === 0n;
}

/** -1, 0, 1 like a <=> b; NaN-safe: unparsable input compares as null -> 0. */
export function cmp(x: string, y: string): number {
  const a = parseDec(x);
  const b = parseDec(y);
  if (!a || !b) return 0;
  const scale = Math.max(a.scale, b.scale);
  const d = rescale(a, scale) - rescale(b, scale);
  return d === 0n ? 0 : d > 0n ? 1 : -1;
}

export function isPositive(x: string): boolean {
  const a = parseDec(x);
  return !!a && a.value > 0n;
}

function toString(v: bigint, scale: number): string {
  const neg = v < 0n;
  let digits = (neg ? -v : v).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (neg ? '-' : '') + digits;
}

/** Exact product of two decimal strings, as a decimal string. */
export function mul(x: string, y: string): string | null {
  const a = parseDec(x);
  const b = parseDec(y);
  if (!a || !b) return null;
  return toString(a.value * b.value, a.scale + b.scale);
}

/** Number of decimals in a step such as a tick ("0.01" -> 2). */
export function decimalsOf(step: string | null | undefined): number {
  const a = parseDec(step ?? '');
  if (!a) return 2;
  // "1.00" has 2 written decimals but a whole step; keep what is written, trimmed of trailing zeros.
  const s = toString(a.value, a.scale);
  const frac = s.split('.')[1] ?? '';
  return frac.replace(/0+$/, '').length;
}
