// Symbol list with live tickers: last, change %, coloured.
import { clear, h } from '../dom';
import { decimalsOf } from '../decimal';
import { pctPoints, price, signClass } from '../format';
import { loadMarkets, selectSymbol } from '../markets';
import { state, watch } from '../state';
import type { Market } from '../types';

export function symbolList(): HTMLElement {
  const list = h('ul', { class: 'symbol-list', testid: 'symbol-list', role: 'listbox', 'aria-label': 'Symbols' });
  const root = h('section', { class: 'panel symbols-panel' }, h('header', { class: 'panel-head' }, h('h2', null, 'Markets')), list);
  const rows = new Map<string, { li: HTMLLIElement; last: HTMLElement; chg: HTMLElement; lastPrice: string | null }>();

  function row(m: Market) {
    const last = h('span', { class: 'sym-last num' });
    const chg = h('span', { class: 'sym-chg num' });
    const li = h(
      'li',
      {
        class: 'symbol-row',
        testid: `symbol-${m.symbol}`,
        'data-symbol': m.symbol,
        role: 'option',
        tabindex: 0,
        onclick: () => selectSymbol(m.symbol),
        onkeydown: (e: KeyboardEvent) => {
          if (e.key === 'Enter' || e.key === ' ') selectSymbol(m.symbol);
        },
      },
      h('span', { class: 'sym-name' }, h('strong', null, m.symbol), h('small', null, m.name ?? '')),
      last,
      chg,
    );
    const r = { li, last, chg, lastPrice: null as string | null };
    rows.set(m.symbol, r);
    return r;
  }

  function render() {
    if (state.marketsLoad === 'loading' && state.markets.size === 0) {
      clear(list, h('li', { class: 'state-msg' }, h('span', { class: 'spinner' }), 'Loading markets…'));
      rows.clear();
      return;
    }
    if (state.marketsLoad === 'error' && state.markets.size === 0) {
      clear(
        list,
        h('li', { class: 'state-msg error' }, `Markets unavailable: ${state.marketsError}`, h('button', { class: 'link', onclick: () => void loadMarkets() }, 'Retry')),
      );
      rows.clear();
      return;
    }
    if (state.markets.size === 0) {
      clear(list, h('li', { class: 'state-msg' }, 'No instruments listed yet.'));
      rows.clear();
      return;
    }
    if (rows.size !== state.markets.size || [...state.markets.keys()].some((s) => !rows.has(s))) {
      rows.clear();
      list.replaceChildren(...[...state.markets.values()].map((m) => row(m).li));
    }
    for (const m of state.markets.values()) {
      const r = rows.get(m.symbol)!;
      const dec = decimalsOf(m.tick);
      r.li.classList.toggle('selected', m.symbol === state.selected);
      r.li.setAttribute('aria-selected', String(m.symbol === state.selected));
      if (r.lastPrice != null && m.last != null && r.lastPrice !== m.last) {
        const cls = Number(m.last) > Number(r.lastPrice) ? 'flash-up' : 'flash-down';
        r.last.classList.remove('flash-up', 'flash-down');
        void r.last.offsetWidth;
        r.last.classList.add(cls);
      }
      r.lastPrice = m.last;
      r.last.textContent = price(m.last, dec);
      r.chg.textContent = pctPoints(m.change_pct);
      r.chg.className = `sym-chg num ${signClass(m.change_pct ?? m.change)}`;
    }
  }

  watch('markets', render);
  watch('selected', render);
  render();
  return root;
}
