// Header of the market view: the selected symbol's quote.
import { decimalsOf } from '../decimal';
import { clear, h } from '../dom';
import { compact, pctPoints, price, signClass, signedMoney } from '../format';
import { selectedMarket, state, watch } from '../state';

export function quoteHeader(): HTMLElement {
  const root = h('section', { class: 'quote-bar', testid: 'quote' });

  function stat(label: string, value: string, cls = '', testid?: string) {
    return h('div', { class: 'quote-stat' }, h('small', null, label), h('span', { class: `num ${cls}`, testid }, value));
  }

  function render() {
    const m = selectedMarket();
    if (!m) {
      clear(root, h('div', { class: 'quote-main' }, h('span', { class: 'muted' }, state.marketsLoad === 'loading' ? 'Loading…' : 'Select a symbol')));
      return;
    }
    const dec = decimalsOf(m.tick);
    const cls = signClass(m.change_pct ?? m.change);
    clear(
      root,
      h(
        'div',
        { class: 'quote-main' },
        h('div', { class: 'quote-sym' }, h('strong', { testid: 'quote-symbol' }, m.symbol), h('small', null, m.name ?? '')),
        h('span', { class: `quote-last num ${cls}`, testid: 'quote-last' }, price(m.last, dec)),
        m.last == null && m.prev_close != null ? h('span', { class: 'muted small' }, `prev close ${price(m.prev_close, dec)}`) : null,
        h('span', { class: `quote-chg num ${cls}` }, m.change != null ? signedMoney(m.change).replace('$', '') : '', ' ', m.change_pct != null ? `(${pctPoints(m.change_pct)})` : ''),
        m.status && m.status !== 'open' && m.status !== 'active' ? h('span', { class: 'badge warn' }, m.status) : null,
      ),
      h(
        'div',
        { class: 'quote-stats' },
        stat('Bid', price(m.bid, dec), 'up'),
        stat('Ask', price(m.ask, dec), 'down'),
        stat('High', price(m.high, dec)),
        stat('Low', price(m.low, dec)),
        stat('Volume', compact(m.volume)),
        stat('Band', m.band_low != null && m.band_high != null ? `${price(m.band_low, dec)}–${price(m.band_high, dec)}` : '—'),
        stat('Tick / lot', `${price(m.tick, dec)} / ${m.lot}`),
      ),
    );
  }

  watch('markets', render);
  watch('selected', render);
  render();
  return root;
}
