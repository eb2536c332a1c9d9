// The order-book ladder for the selected symbol, live from depth_snapshot + depth deltas.
import { api } from '../api';
import { OrderBook } from '../book';
import { bus } from '../bus';
import { decimalsOf } from '../decimal';
import { clear, h } from '../dom';
import { price, qty } from '../format';
import { resubscribe } from '../socket';
import { selectedMarket, state, watch } from '../state';
import type { DepthSnapshot, Level } from '../types';

const LEVELS_SHOWN = 12;
const books = new Map<string, OrderBook>();
const resyncing = new Set<string>();

function bookFor(symbol: string): OrderBook {
  let b = books.get(symbol);
  if (!b) books.set(symbol, (b = new OrderBook(symbol)));
  return b;
}

/** Take a fresh snapshot over REST (deltas are buffered meanwhile); fall back to re-subscribing. */
async function resync(symbol: string, onDone: () => void): Promise<void> {
  if (resyncing.has(symbol)) return;
  resyncing.add(symbol);
  const book = bookFor(symbol);
  book.desync();
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const snap = await api.get<DepthSnapshot>(`/markets/${encodeURIComponent(symbol)}/depth`, {
        auth: false,
        query: { levels: 100 },
      });
      if (book.applySnapshot(snap) !== 'gap') break;
    }
  } catch {
    resubscribe(symbol);
  } finally {
    resyncing.delete(symbol);
    onDone();
  }
}

export function ladder(): HTMLElement {
  const asksBody = h('div', { class: 'ladder-side asks', testid: 'book-asks' });
  const bidsBody = h('div', { class: 'ladder-side bids', testid: 'book-bids' });
  const spread = h('div', { class: 'ladder-spread', testid: 'book-spread' });
  const status = h('span', { class: 'muted small' });
  const root = h(
    'section',
    { class: 'panel book-panel', testid: 'order-book' },
    h('header', { class: 'panel-head' }, h('h2', null, 'Order book'), status),
    h('div', { class: 'ladder-head' }, h('span', null, 'Price'), h('span', null, 'Qty'), h('span', null, 'Orders')),
    h('div', { class: 'ladder' }, asksBody, spread, bidsBody),
  );

  let frame = 0;
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(() => ((frame = 0), render()));
  };

  function levelRow(l: Level, side: 'bid' | 'ask', maxCum: number, cum: number, dec: number): HTMLElement {
    const width = maxCum > 0 ? Math.max(2, (cum / maxCum) * 100) : 0;
    return h(
      'button',
      {
        class: `level ${side}`,
        type: 'button',
        testid: `${side}-level`,
        'data-price': l.price,
        'data-qty': l.qty,
        'data-orders': l.orders,
        title: `Use ${l.price} as the ticket price`,
        onclick: () => bus.emit('pickPrice', { price: l.price, side: side === 'ask' ? 'buy' : 'sell' }),
      },
      h('span', { class: 'depth-bar', style: `width:${width.toFixed(1)}%` }),
      h('span', { class: 'lvl-price num' }, price(l.price, dec)),
      h('span', { class: 'lvl-qty num' }, qty(l.qty)),
      h('span', { class: 'lvl-orders num' }, String(l.orders ?? '')),
    );
  }

  function render() {
    const symbol = state.selected;
    if (!symbol) {
      clear(asksBody);
      clear(bidsBody);
      clear(spread, h('span', { class: 'muted' }, 'Pick a symbol'));
      return;
    }
    const book = bookFor(symbol);
    if (!book.synced && book.seq < 0) {
      clear(asksBody);
      clear(bidsBody);
      clear(spread, h('span', { class: 'state-msg' }, h('span', { class: 'spinner' }), 'Loading book…'));
      status.textContent = '';
      return;
    }
    const dec = decimalsOf(selectedMarket()?.tick);
    const asks = book.sortedAsks(LEVELS_SHOWN);
    const bids = book.sortedBids(LEVELS_SHOWN);
    const cumA: number[] = [];
    const cumB: number[] = [];
    asks.reduce((s, l, i) => (cumA[i] = s + Number(l.qty)), 0);
    bids.reduce((s, l, i) => (cumB[i] = s + Number(l.qty)), 0);
    const maxCum = Math.max(cumA[cumA.length - 1] ?? 0, cumB[cumB.length - 1] ?? 0);
    // Asks are drawn best-last so the best ask sits on the spread line.
    clear(
      asksBody,
      asks.length
        ? asks.map((l, i) => levelRow(l, 'ask', maxCum, cumA[i], dec)).reverse()
        : h('div', { class: 'empty-side' }, 'No asks'),
    );
    clear(
      bidsBody,
      bids.length ? bids.map((l, i) => levelRow(l, 'bid', maxCum, cumB[i], dec)) : h('div', { class: 'empty-side' }, 'No bids'),
    );
    if (asks.length && bids.length) {
      const s = Number(asks[0].price) - Number(bids[0].price);
      const mid = (Number(asks[0].price) + Number(bids[0].price)) / 2;
      clear(
        spread,
        h('span', null, 'Spread ', h('b', { class: 'num' }, price(s, dec))),
        h('span', null, 'Mid ', h('b', { class: 'num' }, price(mid, dec + 1))),
      );
    } else {
      clear(spread, h('span', { class: 'muted' }, asks.length || bids.length ? 'One-sided book' : 'The book is empty'));
    }
    status.textContent = book.synced ? `seq ${book.seq}` : 'resyncing…';
    root.dataset.seq = book.synced ? String(book.seq) : '';
    status.title = book.synced ? 'Engine sequence of the book shown' : '';
  }

  bus.on('depthSnapshot', (snap) => {
    const book = bookFor(snap.symbol);
    // Books of other symbols are kept too (instant switching) but only the shown one is re-fetched.
    if (book.applySnapshot(snap) === 'gap' && snap.symbol === state.selected) void resync(snap.symbol, schedule);
    if (snap.symbol === state.selected) schedule();
  });
  bus.on('depth', (d) => {
    const book = bookFor(d.symbol);
    const r = book.applyDelta(d);
    if (d.symbol !== state.selected) return;
    if (r === 'gap' || (r === 'buffered' && book.seq < 0)) void resync(d.symbol, schedule);
    schedule();
  });
  watch('selected', () => {
    const book = bookFor(state.selected);
    if (!book.synced) void resync(state.selected, schedule);
    render();
  });
  watch('markets', schedule);
  // A reconnect may have lost deltas: re-take the selected book.
  bus.on('socketStatus', ({ connected }) => {
    if (connected && state.selected) void resync(state.selected, schedule);
  });
  render();
  return root;
}

export function bestPrices(symbol: string): { bid: string | null; ask: string | null } {
  const b = books.get(symbol);
  if (!b || !b.synced) return { bid: null, ask: null };
  return { bid: b.sortedBids(1)[0]?.price ?? null, ask: b.sortedAsks(1)[0]?.price ?? null };
}
