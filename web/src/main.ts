// Bourse trading page: wires the views to the REST client, the socket and the shared state.
import './styles.css';
import { initAccountData } from './account-data';
import { bus } from './bus';
import { h } from './dom';
import { initMarkets } from './markets';
import { session } from './session';
import { startSocket } from './socket';
import { accountTabs } from './views/account';
import { authPanel, logout } from './views/auth';
import { candleChart } from './views/chart';
import { ladder } from './views/ladder';
import { accountSummary } from './views/portfolio';
import { quoteHeader } from './views/quote';
import { statusBadge } from './views/status';
import { symbolList } from './views/symbols';
import { tape } from './views/tape';
import { orderTicket } from './views/ticket';
import { state, watch } from './state';

function topBar(): HTMLElement {
  const live = h('span', { class: 'live-dot', testid: 'socket-status', title: 'Live feed disconnected' });
  const user = h('span', { class: 'user-name', testid: 'user-name' });
  const logoutBtn = h('button', { type: 'button', class: 'btn ghost small', testid: 'logout', onclick: () => void logout() }, 'Log out');
  const bar = h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), h('span', null, 'BOURSE'), h('small', null, 'practice exchange')),
    statusBadge(),
    h('div', { class: 'topbar-right' }, live, user, logoutBtn),
  );
  const render = () => {
    logoutBtn.hidden = !session.loggedIn;
    user.textContent = session.loggedIn ? state.account?.display_name || state.account?.email || '' : '';
  };
  bus.on('socketStatus', ({ connected }) => {
    live.classList.toggle('on', connected);
    live.title = connected ? 'Live feed connected' : 'Live feed disconnected';
    live.dataset.connected = String(connected);
  });
  bus.on('session', render);
  watch('account', render);
  render();
  return bar;
}

function mount(): void {
  const app = document.getElementById('app')!;
  const ticket = orderTicket();
  const auth = authPanel();
  const summary = accountSummary();
  const showSession = () => {
    ticket.hidden = !session.loggedIn;
    summary.hidden = !session.loggedIn;
    auth.hidden = session.loggedIn;
  };
  bus.on('session', showSession);
  showSession();

  const layout = h(
    'div',
    { class: 'layout' },
    h('div', { class: 'area-sym' }, symbolList()),
    h('div', { class: 'area-quote' }, quoteHeader()),
    h('div', { class: 'area-chart' }, candleChart()),
    h('div', { class: 'area-book' }, ladder()),
    h('div', { class: 'area-tape' }, tape()),
    h('div', { class: 'area-ticket' }, auth, ticket, summary),
    h('div', { class: 'area-account' }, accountTabs()),
  );
  app.replaceChildren(topBar(), layout);

  initAccountData();
  initMarkets();
  startSocket();
}

mount();
