// The trade tape for the selected symbol: GET trades, then live `trade` events.
import { api, errorMessage } from '../api';
import { bus } from '../bus';
import { decimalsOf } from '../decimal';
import { clear, h } from '../dom';
import { price, qty, time } from '../format';
import { selectedMarket, state, watch } from '../state';
import type { Trade } from '../types';

const MAX = 80;

export function tape(): HTMLElement {
  const body = h('tbody');
  const root = h(
    'section',
    { class: 'panel tape-panel' },
    h('header', { class: 'panel-head' }, h('h2', null, 'Trades')),
    h(
      'div',
      { class: 'scroll' },
      h('table', { class: 'grid tape', testid: 'tape' }, h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', { class: 'r' }, 'Price'), h('th', { class: 'r' }, 'Qty'))), body),
    ),
  );
  let trades: Trade[] = [];
  let loading = false;
  let error = '';
  let generation = 0;
  const fresh = new Set<number>();

  function row(t: Trade, dec: number): HTMLTableRowElement {
    const side = t.aggressor === 'sell' ? 'down' : 'up';
    const tr = h(
      'tr',
      { class: `tape-row ${fresh.has(t.id) ? 'fresh' : ''}`, testid: 'tape-row', 'data-trade-id': t.id },
      h('td', { class: 'muted num' }, time(t.executed_at)),
      h('td', { class: `r num ${side}` }, price(t.price, dec)),
      h('td', { class: 'r num' }, qty(t.qty)),
    );
    return tr;
  }

  function render() {
    if (loading && trades.length === 0) {
      clear(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 3 }, h('span', { class: 'spinner' }), 'Loading trades…')));
      return;
    }
    if (error && trades.length === 0) {
      clear(body, h('tr', { class: 'empty-row error' }, h('td', { colspan: 3 }, `Trades unavailable: ${error}`)));
      return;
    }
    if (trades.length === 0) {
      clear(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 3 }, 'No trades yet')));
      return;
    }
    const dec = decimalsOf(selectedMarket()?.tick);
    clear(body, trades.map((t) => row(t, dec)));
    fresh.clear();
  }

  async function load(symbol: string) {
    const gen = ++generation;
    trades = [];
    loading = true;
    error = '';
    render();
    try {
      const res = await api.get<{ trades: Trade[] }>(`/markets/${encodeURIComponent(symbol)}/trades`, {
        auth: false,
        query: { limit: 50 },
      });
      if (gen !== generation) return;
      const known = new Set(trades.map((t) => t.id));
      trades = [...trades, ...res.trades.filter((t) => !known.has(t.id))].sort((a, b) => b.id - a.id).slice(0, MAX);
    } catch (err) {
      if (gen === generation) error = errorMessage(err);
    } finally {
      if (gen === generation) {
        loading = false;
        render();
      }
    }
  }

  bus.on('trade', (t) => {
    if (t.symbol && t.symbol !== state.selected) return;
    if (trades.some((x) => x.id === t.id)) return;
    trades.unshift(t);
    trades.sort((a, b) => b.id - a.id);
    if (trades.length > MAX) trades.length = MAX;
    fresh.add(t.id);
    render();
  });
  watch('selected', () => void load(state.selected));
  if (state.selected) void load(state.selected);
  else render();
  return root;
}
