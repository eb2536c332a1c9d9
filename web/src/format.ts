// Number formatting: money with Intl.NumberFormat, prices at the tick's precision.

const moneyFmt = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const signedMoneyFmt = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  signDisplay: 'exceptZero',
});
const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const priceFmts = new Map<number, Intl.NumberFormat>();
const qtyFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 8 });
const pctFmt = new Intl.NumberFormat('en-US', {
  style: 'percent',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: 'exceptZero',
});

export function num(x: string | number | null | undefined): number | null {
  if (x == null || x === '') return null;
  const n = typeof x === 'number' ? x : Number(x);
  return Number.isFinite(n) ? n : null;
}

export const DASH = '—';

export function money(x: string | number | null | undefined): string {
  const n = num(x);
  return n == null ? DASH : moneyFmt.format(n);
}

export function signedMoney(x: string | number | null | undefined): string {
  const n = num(x);
  return n == null ? DASH : signedMoneyFmt.format(n);
}

export function price(x: string | number | null | undefined, decimals = 2): string {
  const n = num(x);
  if (n == null) return DASH;
  let f = priceFmts.get(decimals);
  if (!f) {
    f = new Intl.NumberFormat('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    priceFmts.set(decimals, f);
  }
  return f.format(n);
}

export function qty(x: string | number | null | undefined): string {
  const n = num(x);
  return n == null ? DASH : qtyFmt.format(n);
}

export function compact(x: string | number | null | undefined): string {
  const n = num(x);
  return n == null ? DASH : compactFmt.format(n);
}

/** A percentage given in percent units ("1.25" meaning 1.25 %). */
export function pctPoints(x: string | number | null | undefined): string {
  const n = num(x);
  return n == null ? DASH : pctFmt.format(n / 100);
}

/** A ratio given as a fraction (0.0125 meaning 1.25 %). */
export function pctRatio(x: string | number | null | undefined): string {
  const n = num(x);
  return n == null ? DASH : pctFmt.format(n);
}

export function signClass(x: string | number | null | undefined): string {
  const n = num(x);
  if (n == null || n === 0) return 'flat';
  return n > 0 ? 'up' : 'down';
}

export function time(iso: string | null | undefined): string {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  return d.toLocaleTimeString('en-GB', { hour12: false });
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  return d.toLocaleString('en-GB', { hour12: false, month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  return `${m}m ${String(sec).padStart(2, '0')}s`;
}
