import { describe, expect, it } from 'vitest';
import type { Market } from '../types';
import { estimateHold, TIF_BY_TYPE, validateTicket, type TicketInput } from './ticket';

const market = {
  symbol: 'AAPL',
  tick: '0.01',
  lot: '10',
  min_qty: '20',
  band_low: '206.89',
  band_high: '252.85',
} as Market;
const base: TicketInput = { side: 'buy', type: 'limit', tif: 'day', qty: '20', limitPrice: '229.87', stopPrice: '', expire: '' };

describe('order ticket validation', () => {
  it('accepts a valid limit order', () => {
    expect(validateTicket(base, market)).toEqual({});
  });

  it('checks lot, minimum quantity and tick', () => {
    expect(validateTicket({ ...base, qty: '25' }, market).qty).toMatch(/lot/);
    expect(validateTicket({ ...base, qty: '10' }, market).qty).toMatch(/Minimum/);
    expect(validateTicket({ ...base, qty: '' }, market).qty).toBeTruthy();
    expect(validateTicket({ ...base, qty: '-10' }, market).qty).toBeTruthy();
    expect(validateTicket({ ...base, limitPrice: '229.875' }, market).limitPrice).toMatch(/tick/);
    expect(validateTicket({ ...base, limitPrice: '0' }, market).limitPrice).toBeTruthy();
  });

  it('asks for the prices each type needs', () => {
    expect(validateTicket({ ...base, type: 'market', limitPrice: '' }, market)).toEqual({});
    expect(validateTicket({ ...base, type: 'stop', limitPrice: '' }, market).stopPrice).toBeTruthy();
    const sl = validateTicket({ ...base, type: 'stop_limit', stopPrice: '230.001' }, market);
    expect(sl.stopPrice).toMatch(/tick/);
    expect(sl.limitPrice).toBeUndefined();
  });

  it('needs a future expiry for GTD', () => {
    const now = Date.parse('2026-01-01T10:00:00Z');
    expect(validateTicket({ ...base, tif: 'gtd' }, market, now).expire).toBeTruthy();
    expect(validateTicket({ ...base, tif: 'gtd', expire: '2025-12-31T10:00' }, market, now).expire).toMatch(/future/);
    expect(validateTicket({ ...base, tif: 'gtd', expire: '2026-02-01T10:00' }, market, now).expire).toBeUndefined();
  });

  it('limits time in force by order type', () => {
    expect(TIF_BY_TYPE.market).toEqual(['ioc', 'fok']);
    expect(TIF_BY_TYPE.stop).not.toContain('ioc');
  });
});

describe('hold estimate', () => {
  it('is qty × limit price for a limit buy', () => {
    expect(estimateHold(base, market)).toMatchObject({ kind: 'cash', amount: '4597.40' });
  });
  it('is qty × band high for a market buy', () => {
    expect(estimateHold({ ...base, type: 'market' }, market)).toMatchObject({ kind: 'cash', amount: '5057.00' });
  });
  it('is the shares for a sell', () => {
    expect(estimateHold({ ...base, side: 'sell' }, market)).toMatchObject({ kind: 'shares', amount: '20' });
  });
});
