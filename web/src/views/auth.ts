// Register / log in. Tokens go to localStorage (session.ts); refresh happens in api.ts.
import { api, errorMessage } from '../api';
import { bus } from '../bus';
import { h } from '../dom';
import { session } from '../session';
import type { AuthTokens } from '../types';

export function authPanel(): HTMLElement {
  let mode: 'login' | 'register' = 'login';
  let busy = false;
  const email = h('input', { type: 'email', testid: 'login-email', id: 'auth-email', autocomplete: 'username', required: true, placeholder: 'you@example.com' });
  const password = h('input', { type: 'password', testid: 'login-password', id: 'auth-password', autocomplete: 'current-password', required: true, placeholder: '••••••••' });
  const displayName = h('input', { type: 'text', testid: 'register-display-name', id: 'auth-name', autocomplete: 'nickname', placeholder: 'Shown on the leaderboard' });
  const nameField = h('label', { class: 'field', for: 'auth-name' }, h('span', null, 'Display name ', h('small', { class: 'hint' }, 'optional')), displayName);
  const error = h('div', { class: 'ticket-error', testid: 'auth-error', role: 'alert', hidden: true });
  const loginBtn = h('button', { type: 'submit', class: 'submit primary', testid: 'login-submit' }, 'Log in');
  const registerBtn = h('button', { type: 'submit', class: 'submit primary', testid: 'register-submit' }, 'Create account');
  const tabLogin = h('button', { type: 'button', class: 'tab', testid: 'auth-tab-login', onclick: () => setMode('login') }, 'Log in');
  const tabRegister = h('button', { type: 'button', class: 'tab', testid: 'auth-tab-register', onclick: () => setMode('register') }, 'Register');

  const form = h(
    'form',
    { class: 'auth-form', testid: 'auth-form', onsubmit: (e: Event) => (e.preventDefault(), void submit()) },
    h('label', { class: 'field', for: 'auth-email' }, h('span', null, 'Email'), email),
    h('label', { class: 'field', for: 'auth-password' }, h('span', null, 'Password'), password),
    nameField,
    loginBtn,
    registerBtn,
    error,
  );
  const root = h(
    'section',
    { class: 'panel auth-panel', testid: 'auth-panel' },
    h('header', { class: 'panel-head' }, h('h2', null, 'Trade on Bourse'), h('div', { class: 'tabs small-tabs' }, tabLogin, tabRegister)),
    h('p', { class: 'muted small auth-blurb' }, 'Practice with play money against other traders and market makers. Market data is public; log in to trade.'),
    form,
  );

  function setMode(m: typeof mode) {
    mode = m;
    error.hidden = true;
    render();
  }

  function render() {
    tabLogin.classList.toggle('active', mode === 'login');
    tabRegister.classList.toggle('active', mode === 'register');
    nameField.hidden = mode !== 'register';
    loginBtn.hidden = mode !== 'login';
    registerBtn.hidden = mode !== 'register';
    password.autocomplete = mode === 'login' ? 'current-password' : 'new-password';
    loginBtn.disabled = registerBtn.disabled = busy;
    loginBtn.textContent = busy && mode === 'login' ? 'Logging in…' : 'Log in';
    registerBtn.textContent = busy && mode === 'register' ? 'Creating…' : 'Create account';
  }

  async function submit() {
    error.hidden = true;
    if (!email.value.trim() || !password.value) {
      error.textContent = 'Enter your email and password.';
      error.hidden = false;
      return;
    }
    busy = true;
    render();
    try {
      const body: Record<string, string> = { email: email.value.trim(), password: password.value };
      if (mode === 'register' && displayName.value.trim()) body.display_name = displayName.value.trim();
      const tokens = await api.post<AuthTokens>(mode === 'login' ? '/auth/login' : '/auth/register', body, { auth: false });
      password.value = '';
      session.set(tokens);
    } catch (err) {
      error.textContent = errorMessage(err);
      error.hidden = false;
    } finally {
      busy = false;
      render();
    }
  }

  // After a logout the panel offers a log-in again.
  bus.on('session', ({ loggedIn }) => !loggedIn && setMode('login'));
  render();
  return root;
}

export async function logout(): Promise<void> {
  const refresh = session.refresh;
  session.clear();
  if (refresh) {
    try {
      await api.post('/auth/logout', { refresh_token: refresh }, { auth: false });
    } catch {
      /* the local session is gone either way */
    }
  }
}
