// The instrument list: GET /markets, live `ticker` events, and the selected symbol.
import { api, errorMessage } from './api';
import { bus } from './bus';
import { notify, state } from './state';
import { subscribe } from './socket';
import type { Market } from './types';

const SELECTED = 'bourse.symbol';
/** Tickers travel in each market's room; join at most this many to keep the list live. */
const MAX_LIVE = 40;

export async function loadMarkets(): Promise<void> {
  if (state.marketsLoad !== 'ready') {
    state.marketsLoad = 'loading';
    notify('markets');
  }
  try {
    const list = await api.get<Market[] | { markets: Market[] }>('/markets', { auth: false });
    const arr = Array.isArray(list) ? list : list.markets;
    state.markets.clear();
    for (const m of arr) state.markets.set(m.symbol, m);
    state.marketsLoad = 'ready';
    state.marketsError = '';
    arr.slice(0, MAX_LIVE).forEach((m) => subscribe(m.symbol));
    if (!state.selected || !state.markets.has(state.selected)) {
      const saved = localStorage.getItem(SELECTED);
      const first = saved && state.markets.has(saved) ? saved : arr[0]?.symbol;
      if (first) selectSymbol(first);
    }
    bus.emit('markets', arr);
  } catch (err) {
    if (state.marketsLoad !== 'ready') {
      state.marketsLoad = 'error';
      state.marketsError = errorMessage(err);
    }
  }
  notify('markets');
}

export function selectSymbol(symbol: string): void {
  if (state.selected === symbol) return;
  state.selected = symbol;
  localStorage.setItem(SELECTED, symbol);
  subscribe(symbol);
  notify('selected');
  bus.emit('symbolSelected', { symbol });
}

export function initMarkets(): void {
  bus.on('ticker', (m) => {
    const prev = state.markets.get(m.symbol);
    state.markets.set(m.symbol, { ...(prev ?? ({} as Market)), ...m });
    notify('markets');
  });
  // Keep `last` current from trades too, in case tickers are throttled.
  bus.on('trade', (t) => {
    if (!t.symbol) return;
    const m = state.markets.get(t.symbol);
    if (m && m.last !== t.price) {
      state.markets.set(t.symbol, { ...m, last: t.price });
      notify('markets');
    }
  });
  void loadMarkets();
  // A slow safety net: tickers of markets we do not watch, and recovery after an outage.
  setInterval(() => void loadMarkets(), 30_000);
}
