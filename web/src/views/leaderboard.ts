// Leaderboard (GET /leaderboard) and the opt-in form (PATCH /account/profile).
import { ApiError, api, errorMessage } from '../api';
import { loadAccount } from '../account-data';
import { clear, h } from '../dom';
import { money, num, pctRatio, signClass } from '../format';
import { session } from '../session';
import { state, watch } from '../state';
import type { Leaderboard } from '../types';

const PERIODS = ['1D', '1W', '1M', 'all'] as const;

/** return_pct: a fraction (0.05 = 5 %) like Alpaca's profit_loss_pct. */
export function formatReturn(v: unknown): string {
  const n = num(v as string);
  return n == null ? '—' : pctRatio(n);
}

export function leaderboardView(): HTMLElement & { load: () => Promise<void> } {
  let period: (typeof PERIODS)[number] = '1M';
  const body = h('tbody');
  const buttons = PERIODS.map((p) => h('button', { type: 'button', class: 'seg', testid: `leaderboard-period-${p}`, 'data-period': p, onclick: () => ((period = p), void load()) }, p));
  const nameIn = h('input', { type: 'text', testid: 'profile-display-name', id: 'profile-name', maxlength: 40, placeholder: 'Display name' });
  const optIn = h('input', { type: 'checkbox', testid: 'leaderboard-opt-in', id: 'profile-optin' });
  const save = h('button', { type: 'submit', class: 'btn small primary', testid: 'profile-save' }, 'Save');
  const msg = h('span', { class: 'inline-msg', testid: 'profile-message', hidden: true });
  const form = h(
    'form',
    { class: 'optin-form', testid: 'leaderboard-optin-form', onsubmit: (e: Event) => (e.preventDefault(), void saveProfile()) },
    h('label', { class: 'field inline', for: 'profile-name' }, h('span', null, 'Display name'), nameIn),
    h('label', { class: 'check', for: 'profile-optin' }, optIn, h('span', null, 'Show me on the leaderboard')),
    save,
    msg,
  );
  const root = h(
    'section',
    { class: 'panel sub-panel', testid: 'leaderboard' },
    h('header', { class: 'panel-head' }, h('h3', null, 'Leaderboard'), h('div', { class: 'segmented' }, buttons)),
    h(
      'div',
      { class: 'scroll-x' },
      h('table', { class: 'grid' }, h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Trader'), h('th', { class: 'r' }, 'Return'), h('th', { class: 'r' }, 'Equity'))), body),
    ),
    form,
  );

  // Set once the user ticks or unticks the box, until it is saved: an account refresh (a fill, a push)
  // must not undo an edit the user has not saved yet.
  let optInTouched = false;

  function fillProfile() {
    const a = state.account as (typeof state.account & { leaderboard_opt_in?: boolean }) | null;
    if (a && document.activeElement !== nameIn && !nameIn.value) nameIn.value = a.display_name ?? '';
    if (a && typeof a.leaderboard_opt_in === 'boolean' && !optInTouched) optIn.checked = a.leaderboard_opt_in;
    form.hidden = !session.loggedIn;
  }

  async function load() {
    for (const b of buttons) b.classList.toggle('active', b.dataset.period === period);
    fillProfile();
    if (!body.children.length) {
      clear(body, h('tr', { class: 'empty-row' }, h('td', { colspan: 4 }, h('span', { class: 'spinner' }), 'Loading leaderboard…')));
    }
    try {
      const res = await api.get<Leaderboard>('/leaderboard', { query: { period } });
      const entries = res?.entries ?? [];
      root.dataset.state = entries.length ? 'ready' : 'empty';
      if (!entries.length) {
        return clear(body, h('tr', { class: 'empty-row', testid: 'leaderboard-empty' }, h('td', { colspan: 4 }, 'Nobody has opted in yet: be the first')));
      }
      const me = state.account?.display_name;
      // Before the account has loaded, being on the board says we opted in.
      if (me && !optInTouched && entries.some((e) => e.display_name === me)) optIn.checked = true;
      clear(
        body,
        entries.map((e) =>
          h(
            'tr',
            { class: `leaderboard-row ${me && e.display_name === me ? 'me' : ''}`, testid: 'leaderboard-row' },
            h('td', { class: 'num rank' }, String(e.rank)),
            h('td', null, e.display_name),
            h('td', { class: `r num ${signClass(e.return_pct)}` }, formatReturn(e.return_pct)),
            h('td', { class: 'r num' }, money(e.equity)),
          ),
        ),
      );
    } catch (err) {
      root.dataset.state = 'empty';
      clear(
        body,
        h(
          'tr',
          { class: 'empty-row', testid: 'leaderboard-empty' },
          h('td', { colspan: 4 }, err instanceof ApiError && err.notFound ? 'The leaderboard is not available on this server yet' : `Leaderboard unavailable: ${errorMessage(err)}`),
        ),
      );
    }
  }

  optIn.addEventListener('change', () => (optInTouched = true));

  async function saveProfile() {
    msg.hidden = true;
    try {
      const profile = await api.patch<{ display_name?: string | null; leaderboard_opt_in?: boolean }>('/account/profile', {
        display_name: nameIn.value.trim() || null,
        leaderboard_opt_in: optIn.checked,
      });
      if (profile && typeof profile.leaderboard_opt_in === 'boolean') optIn.checked = profile.leaderboard_opt_in;
      optInTouched = false; // saved: the server's value is the user's again
      msg.textContent = optIn.checked ? 'Saved: you are on the leaderboard' : 'Saved';
      msg.className = 'inline-msg ok';
      void loadAccount();
      void load();
      // The board is served from a short server-side cache: look again once it has turned over.
      setTimeout(() => void load(), 3000);
    } catch (err) {
      msg.textContent = err instanceof ApiError && err.notFound ? 'Profiles are not available on this server yet' : errorMessage(err);
      msg.className = 'inline-msg error';
    }
    msg.hidden = false;
  }

  watch('account', fillProfile);
  // Keep the board fresh while it is on screen.
  setInterval(() => {
    if (root.offsetParent !== null && !document.hidden) void load();
  }, 10_000);
  return Object.assign(root, { load });
}
