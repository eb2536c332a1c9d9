// Tokens live in localStorage so a reload keeps the session.
import { bus } from './bus';
import type { AuthTokens } from './types';

const ACCESS = 'bourse.access_token';
const REFRESH = 'bourse.refresh_token';

export const session = {
  get access(): string | null {
    return localStorage.getItem(ACCESS);
  },
  get refresh(): string | null {
    return localStorage.getItem(REFRESH);
  },
  get loggedIn(): boolean {
    return !!localStorage.getItem(ACCESS);
  },
  /** Store a fresh pair (login, register or refresh). */
  set(tokens: AuthTokens, announce = true): void {
    const was = this.loggedIn;
    localStorage.setItem(ACCESS, tokens.access_token);
    localStorage.setItem(REFRESH, tokens.refresh_token);
    if (announce || !was) bus.emit('session', { loggedIn: true });
  },
  clear(): void {
    const was = this.loggedIn || !!this.refresh;
    localStorage.removeItem(ACCESS);
    localStorage.removeItem(REFRESH);
    if (was) bus.emit('session', { loggedIn: false });
  },
};
