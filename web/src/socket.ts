// Socket.IO push: WebSocket transport only, `auth: {token}`; market rooms are re-joined on every connect.
import { io, type Socket } from 'socket.io-client';
import { onTokensRefreshed, refreshTokens } from './api';
import { bus } from './bus';
import { session } from './session';
import type { Account, DepthDelta, DepthSnapshot, Fill, Market, OrderEvent, Position, Trade } from './types';

const subscribed = new Set<string>();
let socket: Socket | null = null;
let authFailures = 0;

function authPayload(): Record<string, string> {
  const token = session.access;
  return token ? { token } : {};
}

export function startSocket(): void {
  if (socket) return;
  const s = io({
    path: '/socket.io',
    transports: ['websocket'],
    // A function, so every (re)connect sends the current access token.
    auth: (cb) => cb(authPayload()),
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  socket = s;

  s.on('connect', () => {
    authFailures = 0;
    for (const symbol of subscribed) s.emit('subscribe', { symbol });
    bus.emit('socketStatus', { connected: true, authenticated: session.loggedIn });
  });
  s.on('disconnect', () => bus.emit('socketStatus', { connected: false, authenticated: false }));
  s.on('connect_error', async () => {
    bus.emit('socketStatus', { connected: false, authenticated: false });
    if (s.active) return; // a transport problem: the client retries by itself
    // Refused by the server: most likely an expired token. Refresh once, else go anonymous.
    authFailures += 1;
    if (session.loggedIn && authFailures <= 2 && (await refreshTokens())) {
      s.connect();
      return;
    }
    if (session.loggedIn && authFailures > 2) session.clear();
    setTimeout(() => s.connect(), 1000);
  });

  s.on('ticker', (m: Market) => bus.emit('ticker', m));
  s.on('trade', (t: Trade) => bus.emit('trade', t));
  s.on('depth', (d: DepthDelta) => bus.emit('depth', d));
  s.on('depth_snapshot', (d: DepthSnapshot) => bus.emit('depthSnapshot', d));
  s.on('order', (e: OrderEvent) => bus.emit('order', e));
  s.on('fill', (f: Fill) => bus.emit('fill', f));
  s.on('account', (a: Partial<Account>) => bus.emit('account', a));
  s.on('position', (p: Position) => bus.emit('position', p));

  // A new token (refresh, login, logout) needs a new handshake: the user room is joined at connect.
  const reconnect = () => {
    s.disconnect();
    s.connect();
  };
  onTokensRefreshed(reconnect);
  bus.on('session', reconnect);
}

export function subscribe(symbol: string): void {
  if (subscribed.has(symbol)) return;
  subscribed.add(symbol);
  if (socket?.connected) socket.emit('subscribe', { symbol });
}

/** Ask again for a snapshot of one symbol (the server answers a subscribe with `depth_snapshot`). */
export function resubscribe(symbol: string): void {
  subscribed.add(symbol);
  if (socket?.connected) socket.emit('subscribe', { symbol });
}

export function unsubscribe(symbol: string): void {
  if (!subscribed.delete(symbol)) return;
  if (socket?.connected) socket.emit('unsubscribe', { symbol });
}

export function socketConnected(): boolean {
  return !!socket?.connected;
}
