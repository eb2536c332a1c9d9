import { describe, expect, it } from 'vitest';
import { cmp, decimalsOf, isMultiple, isPositive, mul, parseDec } from './decimal';

describe('decimal strings', () => {
  it('parses plain decimals only', () => {
    expect(parseDec('101.25')).toEqual({ value: 10125n, scale: 2 });
    expect(parseDec('.5')).toEqual({ value: 5n, scale: 1 });
    expect(parseDec('-3')).toEqual({ value: -3n, scale: 0 });
    for (const bad of ['', 'abc', '1e3', '1.2.3', '0x10', ' ']) expect(parseDec(bad)).toBeNull();
  });

  it('checks tick and lot multiples exactly', () => {
    expect(isMultiple('101.25', '0.01')).toBe(true);
    expect(isMultiple('101.255', '0.01')).toBe(false);
    expect(isMultiple('0.3', '0.1')).toBe(true); // 0.3 % 0.1 in floats is not 0
    expect(isMultiple('101.25', '0.05')).toBe(true);
    expect(isMultiple('101.27', '0.05')).toBe(false);
    expect(isMultiple('150', '100')).toBe(false);
    expect(isMultiple('200', '100')).toBe(true);
    expect(isMultiple('1', '0')).toBe(false);
  });

  it('multiplies and compares', () => {
    expect(mul('3', '229.87')).toBe('689.61');
    expect(mul('0.1', '0.2')).toBe('0.02');
    expect(mul('-2', '1.5')).toBe('-3.0');
    expect(cmp('1.50', '1.5')).toBe(0);
    expect(cmp('2', '10')).toBe(-1);
    expect(isPositive('0.00')).toBe(false);
    expect(isPositive('0.01')).toBe(true);
    expect(decimalsOf('0.01')).toBe(2);
    expect(decimalsOf('1.00')).toBe(0);
    expect(decimalsOf('0.005')).toBe(3);
  });
});
