// Loads the signed-in account (cash, positions, open orders, fills) and keeps it live from push events.
import { api } from './api';
import { bus } from './bus';
import { debounce } from './dom';
import { num } from './format';
import { session } from './session';
import { notify, state } from './state';
import type { Account, Fill, Order, Position } from './types';

const OPEN = new Set(['new', 'partially_filled', 'accepted', 'pending_new', 'held']);

export function isOpen(o: Order): boolean {
  return OPEN.has(o.status);
}

/** Orders seen in a final state: a late copy (e.g. the POST response after the fill event) cannot revive them. */
const finalIds = new Set<number>();

/** Merge one order (from an event or a response) into the open-orders list, newest state winning. */
export function applyOrder(order: Order): void {
  if (!isOpen(order)) {
    finalIds.add(order.id);
    if (state.openOrders.delete(order.id)) notify('orders');
    return;
  }
  if (finalIds.has(order.id)) return;
  const prev = state.openOrders.get(order.id);
  if (prev && Date.parse(prev.updated_at) > Date.parse(order.updated_at)) return;
  if (prev && Number(prev.filled_qty) > Number(order.filled_qty)) return;
  state.openOrders.set(order.id, order);
  notify('orders');
}

function resetAccount(): void {
  state.account = null;
  state.accountLoad = 'idle';
  state.positions.clear();
  state.positionsLoad = 'idle';
  state.openOrders.clear();
  state.ordersLoad = 'idle';
  state.fills = [];
  state.fillsLoad = 'idle';
  for (const k of ['account', 'positions', 'orders', 'fills'] as const) notify(k);
}

export async function loadAccount(): Promise<void> {
  if (!session.loggedIn) return;
  if (!state.account) state.accountLoad = 'loading';
  notify('account');
  try {
    state.account = await api.get<Account>('/account');
    state.accountLoad = 'ready';
  } catch {
    if (!state.account) state.accountLoad = 'error';
  }
  notify('account');
}

export async function loadPositions(): Promise<void> {
  if (!session.loggedIn) return;
  if (state.positionsLoad !== 'ready') state.positionsLoad = 'loading';
  notify('positions');
  try {
    const list = await api.get<Position[] | { positions: Position[] }>('/positions');
    const arr = Array.isArray(list) ? list : list.positions;
    state.positions.clear();
    for (const p of arr) state.positions.set(p.symbol, withLivePrice(p));
    state.positionsLoad = 'ready';
  } catch {
    if (state.positionsLoad !== 'ready') state.positionsLoad = 'error';
  }
  notify('positions');
  notify('account');
}

export async function loadOpenOrders(): Promise<void> {
  if (!session.loggedIn) return;
  if (state.ordersLoad !== 'ready') state.ordersLoad = 'loading';
  notify('orders');
  try {
    const all: Order[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: { orders: Order[]; next_cursor: string | null } = await api.get('/orders', {
        query: { status: 'open', limit: 100, cursor },
      });
      all.push(...res.orders);
      cursor = res.next_cursor;
      if (!cursor) break;
    }
    state.openOrders.clear();
    for (const o of all) if (!finalIds.has(o.id)) state.openOrders.set(o.id, o);
    state.ordersLoad = 'ready';
  } catch {
    if (state.ordersLoad !== 'ready') state.ordersLoad = 'error';
  }
  notify('orders');
}

export async function loadFills(): Promise<void> {
  if (!session.loggedIn) return;
  if (state.fillsLoad !== 'ready') state.fillsLoad = 'loading';
  notify('fills');
  try {
    const res = await api.get<{ fills: Fill[] }>('/account/fills', { query: { limit: 100 } });
    const seen = new Set(res.fills.map(fillKey));
    // Keep live fills that arrived while the request was in flight.
    state.fills = [...state.fills.filter((f) => !seen.has(fillKey(f))), ...res.fills];
    sortFills();
    state.fillsLoad = 'ready';
  } catch {
    if (state.fillsLoad !== 'ready') state.fillsLoad = 'error';
  }
  notify('fills');
}

function fillKey(f: Fill): string {
  return `${f.trade_id}:${f.order_id}`;
}

function sortFills(): void {
  state.fills.sort((a, b) => Date.parse(b.executed_at) - Date.parse(a.executed_at) || b.trade_id - a.trade_id);
  if (state.fills.length > 500) state.fills.length = 500;
}

export function loadAll(): void {
  void loadAccount();
  void loadPositions();
  void loadOpenOrders();
  void loadFills();
}

/** Settled numbers come from the server; a short debounce folds a burst of events into one fetch. */
const refreshMoney = debounce(() => {
  void loadAccount();
  void loadPositions();
}, 300);

/** Mark a position to the latest ticker price so market value and P&L move with the market. */
function withLivePrice(p: Position): Position {
  const m = state.markets.get(p.symbol);
  const last = num(m?.last);
  const q = num(p.qty);
  if (last == null || q == null) return p;
  const mv = q * last;
  const cost = num(p.cost_basis);
  const out: Position = { ...p, current_price: String(last), market_value: mv.toFixed(2) };
  if (cost != null) {
    const upl = mv - cost;
    out.unrealized_pl = upl.toFixed(2);
    out.unrealized_plpc = cost !== 0 ? String(upl / Math.abs(cost)) : null;
  }
  return out;
}

/** Equity marked to live prices: cash plus the positions' market value. */
export function liveEquity(): number | null {
  const a = state.account;
  if (!a) return null;
  const cash = (num(a.cash_available) ?? 0) + (num(a.cash_held) ?? 0);
  if (state.positionsLoad !== 'ready') return num(a.equity);
  let value = 0;
  for (const p of state.positions.values()) value += num(p.market_value) ?? num(p.cost_basis) ?? 0;
  return cash + value;
}

export function unrealizedTotal(): number | null {
  if (state.positionsLoad !== 'ready') return num(state.account?.unrealized_pl);
  let total = 0;
  for (const p of state.positions.values()) total += num(p.unrealized_pl) ?? 0;
  return total;
}

export function initAccountData(): void {
  bus.on('session', ({ loggedIn }) => {
    resetAccount();
    if (loggedIn) loadAll();
  });

  bus.on('order', ({ order }) => {
    if (!order) return;
    applyOrder(order);
    refreshMoney();
  });

  bus.on('fill', (f) => {
    if (!state.fills.some((x) => fillKey(x) === fillKey(f))) {
      state.fills.unshift(f);
      sortFills();
      notify('fills');
    }
    refreshMoney();
  });

  bus.on('account', (a) => {
    if (state.account) {
      state.account = { ...state.account, ...definedOnly(a) } as Account;
      notify('account');
    }
    refreshMoney();
  });

  bus.on('position', (p) => {
    const prev = state.positions.get(p.symbol);
    const merged: Position = { ...(prev ?? ({} as Position)), ...definedOnly(p) } as Position;
    state.positions.set(p.symbol, withLivePrice(merged));
    notify('positions');
    notify('account');
    refreshMoney();
  });

  bus.on('ticker', (m) => {
    const p = state.positions.get(m.symbol);
    if (p && m.last != null) {
      state.positions.set(m.symbol, withLivePrice(p));
      notify('positions');
      notify('account');
    }
  });

  // A socket that reconnects may have missed events: reload the settled state.
  let wasConnected = false;
  bus.on('socketStatus', ({ connected }) => {
    if (connected && !wasConnected && session.loggedIn && state.accountLoad === 'ready') loadAll();
    wasConnected = connected;
  });

  if (session.loggedIn) loadAll();
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
