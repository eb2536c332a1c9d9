// Client-side L2 book: a snapshot plus contiguous deltas, with the sequence rule of docs/api.md.
import type { DepthDelta, DepthSnapshot, Level } from './types';

export type DeltaResult = 'applied' | 'dropped' | 'buffered' | 'gap';

const MAX_PENDING = 2000;

export class OrderBook {
  readonly bids = new Map<string, Level>();
  readonly asks = new Map<string, Level>();
  /** Last engine sequence applied; -1 before the first snapshot. */
  seq = -1;
  synced = false;
  private afterSnapshot = false;
  private pending: DepthDelta[] = [];

  constructor(readonly symbol: string) {}

  /** Forget sync (a gap was seen): deltas are buffered until the next snapshot. */
  desync(): void {
    this.synced = false;
    this.pending = [];
  }

  /**
   * Take a full snapshot. A snapshot older than what is already applied is ignored while in sync.
   * Returns 'gap' when buffered deltas cannot be joined onto it (ask for another), else 'applied'.
   */
  applySnapshot(snap: DepthSnapshot): DeltaResult {
    if (this.synced && snap.seq < this.seq) return 'dropped';
    this.bids.clear();
    this.asks.clear();
    for (const l of snap.bids) if (Number(l.qty) > 0) this.bids.set(key(l.price), l);
    for (const l of snap.asks) if (Number(l.qty) > 0) this.asks.set(key(l.price), l);
    this.seq = snap.seq;
    this.synced = true;
    this.afterSnapshot = true;
    const pending = this.pending;
    this.pending = [];
    for (const d of pending) {
      if (this.applyDelta(d) === 'gap') return 'gap';
    }
    return 'applied';
  }

  applyDelta(d: DepthDelta): DeltaResult {
    if (!this.synced) {
      this.pending.push(d);
      if (this.pending.length > MAX_PENDING) this.pending.shift();
      return 'buffered';
    }
    if (d.last_seq <= this.seq) return 'dropped';
    const contiguous = this.afterSnapshot
      ? d.first_seq <= this.seq + 1 && this.seq + 1 <= d.last_seq + 1
      : d.first_seq === this.seq + 1;
    if (!contiguous) {
      this.desync();
      this.pending.push(d);
      return 'gap';
    }
    for (const l of d.bids) set(this.bids, l);
    for (const l of d.asks) set(this.asks, l);
    this.seq = d.last_seq;
    this.afterSnapshot = false;
    return 'applied';
  }

  /** Best first: bids high to low, asks low to high. */
  sortedBids(limit = Infinity): Level[] {
    return [...this.bids.values()].sort((a, b) => Number(b.price) - Number(a.price)).slice(0, limit);
  }

  sortedAsks(limit = Infinity): Level[] {
    return [...this.asks.values()].sort((a, b) => Number(a.price) - Number(b.price)).slice(0, limit);
  }
}

/** Normalise "101.50" and "101.5" to one key. */
function key(price: string): string {
  const n = Number(price);
  return Number.isFinite(n) ? String(n) : price;
}

function set(side: Map<string, Level>, l: Level): void {
  if (Number(l.qty) > 0) side.set(key(l.price), l);
  else side.delete(key(l.price));
}
