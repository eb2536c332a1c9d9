// REST client for /api/v1: bearer auth, one refresh-and-retry on 401, the standard error body.
import { session } from './session';
import type { AuthTokens } from './types';

export const API_BASE = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  get notFound(): boolean {
    return this.status === 404;
  }
}

interface RequestOptions {
  /** Send the bearer token (default: when logged in). */
  auth?: boolean;
  query?: Record<string, string | number | undefined | null>;
  signal?: AbortSignal;
}

let refreshing: Promise<boolean> | null = null;
const refreshListeners = new Set<() => void>();

/** Called after every successful token refresh (the socket reconnects with the new token). */
export function onTokensRefreshed(fn: () => void): void {
  refreshListeners.add(fn);
}

/** Rotate the token pair; single flight. Resolves false (and logs out) when the refresh token is refused. */
export function refreshTokens(): Promise<boolean> {
  if (refreshing) return refreshing;
  const token = session.refresh;
  if (!token) return Promise.resolve(false);
  refreshing = (async () => {
    try {
      const res = await fetch(`${API_BASE}/auth/refresh`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: token }),
      });
      if (!res.ok) {
        if (res.status === 401 || res.status === 403 || res.status === 422) session.clear();
        return false;
      }
      const pair = (await res.json()) as AuthTokens;
      session.set(pair, false);
      for (const fn of refreshListeners) fn();
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function buildUrl(path: string, query?: RequestOptions['query']): string {
  let url = API_BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') params.set(k, String(v));
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  return url;
}

async function toError(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `Request failed (${res.status})`;
  try {
    const body = (await res.json()) as { code?: string; message?: string; detail?: unknown };
    if (body && typeof body === 'object') {
      if (body.code) code = body.code;
      if (body.message) message = body.message;
      else if (typeof body.detail === 'string') message = body.detail;
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, message);
}

export async function request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const useAuth = opts.auth ?? session.loggedIn;
  const url = buildUrl(path, opts.query);
  const send = (): Promise<Response> => {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const token = session.access;
    if (useAuth && token) headers.Authorization = `Bearer ${token}`;
    return fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  };
  let res: Response;
  try {
    res = await send();
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK_ERROR', 'Cannot reach the server.');
  }
  if (res.status === 401 && useAuth && session.refresh) {
    if (await refreshTokens()) res = await send();
  }
  if (!res.ok) throw await toError(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, undefined, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body ?? {}, opts),
  patch: <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PATCH', path, body, opts),
  del: <T>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, undefined, opts),
};

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message || err.code;
  if (err instanceof Error) return err.message;
  return String(err);
}
