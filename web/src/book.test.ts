import { describe, expect, it } from 'vitest';
import { OrderBook } from './book';
import type { DepthDelta, DepthSnapshot } from './types';

const snap = (seq: number, bids: [string, string][] = [], asks: [string, string][] = []): DepthSnapshot => ({
  symbol: 'X',
  seq,
  bids: bids.map(([price, qty]) => ({ price, qty, orders: 1 })),
  asks: asks.map(([price, qty]) => ({ price, qty, orders: 1 })),
});
const delta = (first: number, last: number, bids: [string, string][] = [], asks: [string, string][] = []): DepthDelta => ({
  symbol: 'X',
  first_seq: first,
  last_seq: last,
  bids: bids.map(([price, qty]) => ({ price, qty, orders: 1 })),
  asks: asks.map(([price, qty]) => ({ price, qty, orders: 1 })),
});
const side = (b: OrderBook) => ({
  bids: b.sortedBids().map((l) => [l.price, l.qty]),
  asks: b.sortedAsks().map((l) => [l.price, l.qty]),
});

describe('OrderBook sequence rule', () => {
  it('applies contiguous deltas with absolute sizes; qty 0 removes a level', () => {
    const b = new OrderBook('X');
    expect(b.applySnapshot(snap(10, [['100.00', '5']], [['101.00', '3']]))).toBe('applied');
    expect(b.applyDelta(delta(11, 12, [['100.50', '2']]))).toBe('applied');
    expect(b.applyDelta(delta(13, 13, [['100.00', '0']], [['101.00', '7']]))).toBe('applied');
    expect(side(b)).toEqual({ bids: [['100.50', '2']], asks: [['101.00', '7']] });
    expect(b.seq).toBe(13);
  });

  it('after a snapshot accepts a delta that straddles it and drops older ones', () => {
    const b = new OrderBook('X');
    b.applySnapshot(snap(10, [['100.00', '5']]));
    expect(b.applyDelta(delta(8, 10, [['99.00', '1']]))).toBe('dropped');
    expect(b.applyDelta(delta(9, 12, [['100.00', '6']]))).toBe('applied');
    expect(b.seq).toBe(12);
    // After that, only first_seq == last_seq + 1 is contiguous.
    expect(b.applyDelta(delta(12, 14))).toBe('gap');
    expect(b.synced).toBe(false);
  });

  it('reports a gap, buffers, and resumes from the next snapshot plus buffered deltas', () => {
    const b = new OrderBook('X');
    b.applySnapshot(snap(10, [['100.00', '5']]));
    expect(b.applyDelta(delta(13, 13, [['100.00', '1']]))).toBe('gap');
    expect(b.applyDelta(delta(14, 15, [['99.00', '4']]))).toBe('buffered');
    expect(b.applySnapshot(snap(13, [['100.00', '1'], ['98.00', '2']]))).toBe('applied');
    expect(side(b).bids).toEqual([['100.00', '1'], ['99.00', '4'], ['98.00', '2']]);
    expect(b.seq).toBe(15);
  });

  it('buffers deltas that arrive before the first snapshot', () => {
    const b = new OrderBook('X');
    expect(b.applyDelta(delta(5, 6, [], [['101.00', '1']]))).toBe('buffered');
    expect(b.applyDelta(delta(7, 7, [], [['102.00', '1']]))).toBe('buffered');
    b.applySnapshot(snap(6, [], [['101.00', '1']]));
    expect(side(b).asks).toEqual([['101.00', '1'], ['102.00', '1']]);
    expect(b.seq).toBe(7);
  });

  it('ignores a stale snapshot while in sync and takes a newer one', () => {
    const b = new OrderBook('X');
    b.applySnapshot(snap(10, [['100.00', '5']]));
    b.applyDelta(delta(11, 11, [['100.00', '4']]));
    expect(b.applySnapshot(snap(9, [['100.00', '9']]))).toBe('dropped');
    expect(side(b).bids).toEqual([['100.00', '4']]);
    expect(b.applySnapshot(snap(20, [['101.00', '1']]))).toBe('applied');
    expect(side(b).bids).toEqual([['101.00', '1']]);
  });

  it('treats "100.5" and "100.50" as one level', () => {
    const b = new OrderBook('X');
    b.applySnapshot(snap(1, [['100.50', '5']]));
    b.applyDelta(delta(2, 2, [['100.5', '0']]));
    expect(side(b).bids).toEqual([]);
  });
});
