// Fills history: GET /account/fills, then live `fill` events.
import { loadFills } from '../account-data';
import { decimalsOf } from '../decimal';
import { clear, h } from '../dom';
import { dateTime, money, price, qty } from '../format';
import { state, watch } from '../state';
import { loadingRow } from './orders';

export function fillsTable(): HTMLElement {
  const body = h('tbody');
  const root = h(
    'div',
    { class: 'tab-body' },
    h(
      'div',
      { class: 'scroll-x' },
      h(
        'table',
        { class: 'grid', testid: 'fills' },
        h('thead', null, h('tr', null, ...['Time', 'Symbol', 'Side', 'Qty', 'Price', 'Value', 'Liquidity', 'Order'].map((c, i) => h('th', { class: i >= 3 && i <= 5 ? 'r' : '' }, c)))),
        body,
      ),
    ),
  );

  function render() {
    if (state.fillsLoad === 'loading' && !state.fills.length) return clear(body, loadingRow(8, 'Loading fills…'));
    if (state.fillsLoad === 'error' && !state.fills.length)
      return clear(body, h('tr', { class: 'empty-row error' }, h('td', { colspan: 8 }, 'Could not load fills. ', h('button', { class: 'link', onclick: () => void loadFills() }, 'Retry'))));
    if (!state.fills.length) return clear(body, h('tr', { class: 'empty-row', testid: 'fills-empty' }, h('td', { colspan: 8 }, 'No fills yet')));
    clear(
      body,
      state.fills.map((f) => {
        const dec = decimalsOf(state.markets.get(f.symbol)?.tick);
        return h(
          'tr',
          { class: 'fill-row', testid: 'fill-row', 'data-trade-id': f.trade_id },
          h('td', { class: 'muted num' }, dateTime(f.executed_at)),
          h('td', null, h('strong', null, f.symbol)),
          h('td', { class: f.side === 'buy' ? 'up' : 'down' }, f.side.toUpperCase()),
          h('td', { class: 'r num' }, qty(f.qty)),
          h('td', { class: 'r num' }, price(f.price, dec)),
          h('td', { class: 'r num' }, money(Number(f.price) * Number(f.qty))),
          h('td', null, h('span', { class: `chip ${f.liquidity}` }, f.liquidity)),
          h('td', { class: 'muted num' }, `#${f.order_id}`),
        );
      }),
    );
  }

  watch('fills', render);
  render();
  return root;
}
