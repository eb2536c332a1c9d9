// The account area: tabs for portfolio (positions, equity curve, stats), open orders, fills and the leaderboard.
import { bus } from '../bus';
import { h } from '../dom';
import { session } from '../session';
import { state, watch } from '../state';
import { equityChart, portfolioStatsRefresh, statsPanel } from './analytics';
import { fillsTable } from './fills';
import { leaderboardView } from './leaderboard';
import { openOrders } from './orders';
import { positionsTable } from './portfolio';

type Tab = 'orders' | 'portfolio' | 'fills' | 'leaderboard';

export function accountTabs(): HTMLElement {
  let current: Tab = (localStorage.getItem('bourse.tab') as Tab) || 'orders';
  const equity = equityChart();
  const stats = statsPanel();
  const leaderboard = leaderboardView();
  const panes: Record<Tab, HTMLElement> = {
    orders: openOrders(),
    portfolio: h(
      'div',
      { class: 'tab-body portfolio-body' },
      h('div', { class: 'sub-panel positions-panel' }, h('header', { class: 'panel-head' }, h('h3', null, 'Positions')), positionsTable()),
      h('div', { class: 'analytics-row' }, equity, stats),
    ),
    fills: fillsTable(),
    leaderboard: h('div', { class: 'tab-body' }, leaderboard),
  };
  const counts = { orders: h('span', { class: 'count' }), fills: h('span', { class: 'count' }) };
  const labels: Record<Tab, (string | HTMLElement)[]> = {
    orders: ['Open orders', counts.orders],
    portfolio: ['Portfolio'],
    fills: ['Fills', counts.fills],
    leaderboard: ['Leaderboard'],
  };
  const tabs = (Object.keys(panes) as Tab[]).map((t) =>
    h('button', { type: 'button', class: 'tab', role: 'tab', testid: `tab-${t}`, 'data-tab': t, onclick: () => show(t) }, ...labels[t]),
  );
  const signedOut = h('div', { class: 'state-msg signed-out', testid: 'account-signed-out' }, 'Log in to see your orders, fills and portfolio.');
  const root = h(
    'section',
    { class: 'panel account-panel', testid: 'account-tabs' },
    h('header', { class: 'panel-head tabs-head' }, h('div', { class: 'tabs', role: 'tablist' }, tabs)),
    signedOut,
    ...Object.values(panes),
  );

  function show(t: Tab) {
    current = t;
    localStorage.setItem('bourse.tab', t);
    render();
    if (t === 'portfolio') {
      void equity.load();
      void stats.load();
    }
    if (t === 'leaderboard') void leaderboard.load();
  }

  function render() {
    const loggedIn = session.loggedIn;
    signedOut.hidden = loggedIn || current === 'leaderboard';
    for (const t of Object.keys(panes) as Tab[]) {
      panes[t].hidden = t !== current || (!loggedIn && t !== 'leaderboard');
      const tab = tabs.find((b) => b.dataset.tab === t)!;
      tab.classList.toggle('active', t === current);
      tab.setAttribute('aria-selected', String(t === current));
    }
    counts.orders.textContent = state.openOrders.size ? String(state.openOrders.size) : '';
    counts.fills.textContent = state.fills.length ? String(state.fills.length >= 100 ? '100+' : state.fills.length) : '';
  }

  portfolioStatsRefresh(() => {
    if (current === 'portfolio') void stats.load();
  });
  watch('orders', render);
  watch('fills', render);
  bus.on('session', ({ loggedIn }) => {
    render();
    if (loggedIn) queueMicrotask(() => show(current));
  });
  render();
  queueMicrotask(() => show(current));
  return root;
}
