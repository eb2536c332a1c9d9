// Portfolio: the cash/equity summary card and the positions table, live from account events and tickers.
import { api, errorMessage } from '../api';
import { liveEquity, loadAll, loadPositions, unrealizedTotal } from '../account-data';
import { isPositive, parseDec } from '../decimal';
import type { Account } from '../types';
import { selectSymbol } from '../markets';
import { decimalsOf } from '../decimal';
import { clear, h } from '../dom';
import { money, num, pctRatio, price, qty, signClass, signedMoney } from '../format';
import { notify, state, watch } from '../state';
import { loadingRow } from './orders';

export function accountSummary(): HTMLElement {
  const cells = {
    equity: h('b', { class: 'num big', testid: 'equity' }),
    ret: h('span', { class: 'num small', testid: 'equity-return' }),
    available: h('b', { class: 'num', testid: 'cash-available' }),
    held: h('b', { class: 'num', testid: 'cash-held' }),
    positions: h('b', { class: 'num', testid: 'positions-value' }),
    unrealized: h('b', { class: 'num', testid: 'unrealized-pl' }),
    realized: h('b', { class: 'num', testid: 'realized-pl' }),
  };
  const name = h('span', { class: 'muted small summary-name' });
  const resetCash = h('input', { testid: 'reset-cash', inputmode: 'decimal', 'aria-label': 'Starting cash' });
  const resetMsg = h('div', { class: 'inline-msg', testid: 'reset-message', hidden: true });
  const resetConfirm = h('button', { type: 'submit', class: 'btn small danger', testid: 'reset-confirm' }, 'Reset account');
  const resetForm = h(
    'form',
    { class: 'reset-form', hidden: true, onsubmit: (e: Event) => (e.preventDefault(), void doReset()) },
    h('p', { class: 'muted small' }, 'Cancels your open orders, closes every position and starts again with this cash:'),
    h('div', { class: 'reset-row' }, resetCash, resetConfirm, h('button', { type: 'button', class: 'btn small ghost', onclick: () => (resetForm.hidden = true) }, 'Keep')),
    resetMsg,
  );
  const resetBtn = h(
    'button',
    {
      type: 'button',
      class: 'btn small ghost',
      testid: 'account-reset',
      title: 'Start again with fresh cash',
      onclick: () => {
        resetForm.hidden = !resetForm.hidden;
        resetMsg.hidden = true;
        resetCash.value = num(state.account?.starting_cash)?.toFixed(2) ?? '100000.00';
      },
    },
    'Reset',
  );

  async function doReset() {
    const v = resetCash.value.trim().replace(/[$,\s]/g, '');
    if (!parseDec(v) || !isPositive(v)) {
      resetMsg.textContent = 'Enter a positive amount';
      resetMsg.className = 'inline-msg error';
      resetMsg.hidden = false;
      return;
    }
    resetConfirm.disabled = true;
    resetConfirm.textContent = 'Resetting…';
    try {
      state.account = await api.post<Account>('/account/reset', { starting_cash: v });
      notify('account');
      resetForm.hidden = true;
      loadAll();
    } catch (err) {
      resetMsg.textContent = errorMessage(err);
      resetMsg.className = 'inline-msg error';
      resetMsg.hidden = false;
    } finally {
      resetConfirm.disabled = false;
      resetConfirm.textContent = 'Reset account';
    }
  }

  const root = h(
    'section',
    { class: 'panel summary-panel', testid: 'account-summary' },
    h('header', { class: 'panel-head' }, h('h2', null, 'Account'), h('div', { class: 'head-right' }, name, resetBtn)),
    resetForm,
    h('div', { class: 'summary-equity' }, h('small', null, 'Equity'), cells.equity, cells.ret),
    h(
      'dl',
      { class: 'summary-grid' },
      h('div', null, h('dt', null, 'Cash available'), h('dd', null, cells.available)),
      h('div', null, h('dt', null, 'Cash held'), h('dd', null, cells.held)),
      h('div', null, h('dt', null, 'Positions'), h('dd', null, cells.positions)),
      h('div', null, h('dt', null, 'Unrealized P&L'), h('dd', null, cells.unrealized)),
      h('div', null, h('dt', null, 'Realized P&L'), h('dd', null, cells.realized)),
    ),
  );

  function render() {
    const a = state.account;
    root.classList.toggle('loading', state.accountLoad === 'loading' && !a);
    if (!a) {
      for (const c of Object.values(cells)) c.textContent = state.accountLoad === 'loading' ? '…' : '—';
      name.textContent = '';
      return;
    }
    name.textContent = a.display_name || a.email || '';
    const eq = liveEquity();
    cells.equity.textContent = money(eq);
    const start = num(a.starting_cash);
    if (eq != null && start) {
      const r = eq / start - 1;
      cells.ret.textContent = `${signedMoney(eq - start)} (${pctRatio(r)}) since start`;
      cells.ret.className = `num small ${signClass(r)}`;
    } else cells.ret.textContent = '';
    cells.available.textContent = money(a.cash_available);
    cells.held.textContent = money(a.cash_held);
    const cash = (num(a.cash_available) ?? 0) + (num(a.cash_held) ?? 0);
    cells.positions.textContent = money(eq != null ? eq - cash : a.positions_value);
    const u = unrealizedTotal();
    cells.unrealized.textContent = signedMoney(u);
    cells.unrealized.className = `num ${signClass(u)}`;
    cells.realized.textContent = signedMoney(a.realized_pl);
    cells.realized.className = `num ${signClass(a.realized_pl)}`;
  }

  watch('account', render);
  watch('positions', render);
  render();
  return root;
}

export function positionsTable(): HTMLElement {
  const body = h('tbody');
  const root = h(
    'div',
    { class: 'scroll-x' },
    h(
      'table',
      { class: 'grid', testid: 'positions' },
      h(
        'thead',
        null,
        h('tr', null, ...['Symbol', 'Qty', 'Held', 'Avg cost', 'Last', 'Market value', 'Unrealized P&L', 'Realized P&L'].map((c, i) => h('th', { class: i ? 'r' : '' }, c))),
      ),
      body,
    ),
  );

  function render() {
    if (state.positionsLoad === 'loading' && !state.positions.size) return clear(body, loadingRow(8, 'Loading positions…'));
    if (state.positionsLoad === 'error' && !state.positions.size)
      return clear(body, h('tr', { class: 'empty-row error' }, h('td', { colspan: 8 }, 'Could not load positions. ', h('button', { class: 'link', onclick: () => void loadPositions() }, 'Retry'))));
    const list = [...state.positions.values()].sort((a, b) => Number(b.qty) - Number(a.qty) || a.symbol.localeCompare(b.symbol));
    if (!list.length) return clear(body, h('tr', { class: 'empty-row', testid: 'positions-empty' }, h('td', { colspan: 8 }, 'No positions yet: your holdings appear here after a fill')));
    clear(
      body,
      list.map((p) => {
        const dec = decimalsOf(state.markets.get(p.symbol)?.tick);
        const flat = Number(p.qty) === 0;
        return h(
          'tr',
          { class: `position-row ${flat ? 'flat-pos' : ''}`, testid: 'position-row', 'data-symbol': p.symbol, onclick: () => selectSymbol(p.symbol) },
          h('td', null, h('strong', null, p.symbol)),
          h('td', { class: 'r num', testid: 'position-qty' }, qty(p.qty)),
          h('td', { class: 'r num muted' }, Number(p.held_qty) ? qty(p.held_qty) : '—'),
          h('td', { class: 'r num' }, price(p.avg_entry_price, dec)),
          h('td', { class: 'r num' }, price(p.current_price, dec)),
          h('td', { class: 'r num', testid: 'position-value' }, money(p.market_value)),
          h(
            'td',
            { class: `r num ${signClass(p.unrealized_pl)}` },
            signedMoney(p.unrealized_pl),
            p.unrealized_plpc != null ? h('small', null, ` ${pctRatio(p.unrealized_plpc)}`) : '',
          ),
          h('td', { class: `r num ${signClass(p.realized_pl)}` }, signedMoney(p.realized_pl)),
        );
      }),
    );
  }

  watch('positions', render);
  watch('markets', render);
  render();
  return root;
}
