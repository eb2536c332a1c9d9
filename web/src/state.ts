// Shared client state with per-key change notification.
import type { Account, Fill, Market, Order, Position } from './types';

export type LoadState = 'idle' | 'loading' | 'ready' | 'error';

export const state = {
  markets: new Map<string, Market>(),
  marketsLoad: 'idle' as LoadState,
  marketsError: '',
  selected: '',

  account: null as Account | null,
  accountLoad: 'idle' as LoadState,
  positions: new Map<string, Position>(),
  positionsLoad: 'idle' as LoadState,
  openOrders: new Map<number, Order>(),
  ordersLoad: 'idle' as LoadState,
  fills: [] as Fill[],
  fillsLoad: 'idle' as LoadState,
};

export type StateKey = 'markets' | 'selected' | 'account' | 'positions' | 'orders' | 'fills';

const watchers = new Map<StateKey, Set<() => void>>();
const scheduled = new Set<StateKey>();

export function watch(key: StateKey, fn: () => void): void {
  let set = watchers.get(key);
  if (!set) watchers.set(key, (set = new Set()));
  set.add(fn);
}

/** Notify watchers of `key` once per animation frame, however many changes arrive. */
export function notify(key: StateKey): void {
  if (scheduled.has(key)) return;
  scheduled.add(key);
  requestAnimationFrame(() => {
    scheduled.delete(key);
    for (const fn of watchers.get(key) ?? []) {
      try {
        fn();
      } catch (err) {
        console.error(`render for ${key} failed`, err);
      }
    }
  });
}

export function selectedMarket(): Market | undefined {
  return state.markets.get(state.selected);
}
