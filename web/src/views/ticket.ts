// Order ticket: buy/sell, the four order types, time in force, tick/lot validation and the hold estimate.
import { api, errorMessage } from '../api';
import { applyOrder, loadAccount } from '../account-data';
import { bus } from '../bus';
import { cmp, decimalsOf, isMultiple, isPositive, mul, parseDec } from '../decimal';
import { h } from '../dom';
import { money, price, qty as fmtQty } from '../format';
import { selectedMarket, state, watch } from '../state';
import type { Market, Order, OrderType, Side, TimeInForce } from '../types';

const TYPES: [OrderType, string][] = [
  ['limit', 'Limit'],
  ['market', 'Market'],
  ['stop', 'Stop'],
  ['stop_limit', 'Stop limit'],
];
const TIFS: [TimeInForce, string, string][] = [
  ['day', 'Day', 'Expires at the close'],
  ['gtc', 'GTC', 'Good till canceled'],
  ['gtd', 'GTD', 'Good till a date and time'],
  ['ioc', 'IOC', 'Immediate or cancel: fill what you can now, cancel the rest'],
  ['fok', 'FOK', 'Fill or kill: fill all now or nothing'],
];

export interface TicketInput {
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  qty: string;
  limitPrice: string;
  stopPrice: string;
  expire: string; // datetime-local value
}

export interface TicketErrors {
  qty?: string;
  limitPrice?: string;
  stopPrice?: string;
  expire?: string;
}

/** Time in force by order type (docs/api.md): limit any; market ioc|fok; stop and stop_limit day|gtc|gtd. */
export const TIF_BY_TYPE: Record<OrderType, TimeInForce[]> = {
  limit: ['day', 'gtc', 'gtd', 'ioc', 'fok'],
  market: ['ioc', 'fok'],
  stop: ['day', 'gtc', 'gtd'],
  stop_limit: ['day', 'gtc', 'gtd'],
};

const needsLimit = (t: OrderType) => t === 'limit' || t === 'stop_limit';
const needsStop = (t: OrderType) => t === 'stop' || t === 'stop_limit';

/** Client-side checks against the market's tick, lot and min_qty (all decimal strings). */
export function validateTicket(input: TicketInput, m: Market | undefined, now = Date.now()): TicketErrors {
  const errors: TicketErrors = {};
  const q = input.qty.trim();
  if (!q) errors.qty = 'Enter a quantity';
  else if (!parseDec(q) || !isPositive(q)) errors.qty = 'Quantity must be a positive number';
  else if (m) {
    if (m.lot && !isMultiple(q, m.lot)) errors.qty = `Quantity must be a multiple of the lot (${m.lot})`;
    else if (m.min_qty && cmp(q, m.min_qty) < 0) errors.qty = `Minimum quantity is ${m.min_qty}`;
  }
  const checkPrice = (value: string, what: string): string | undefined => {
    const v = value.trim();
    if (!v) return `Enter a ${what}`;
    if (!parseDec(v) || !isPositive(v)) return `The ${what} must be a positive number`;
    if (m?.tick && !isMultiple(v, m.tick)) return `The ${what} must be a multiple of the tick (${m.tick})`;
    return undefined;
  };
  if (needsLimit(input.type)) errors.limitPrice = checkPrice(input.limitPrice, 'limit price');
  if (needsStop(input.type)) errors.stopPrice = checkPrice(input.stopPrice, 'stop price');
  if (input.tif === 'gtd') {
    const t = Date.parse(input.expire);
    if (!input.expire) errors.expire = 'Pick an expiry date and time';
    else if (!Number.isFinite(t) || t <= now) errors.expire = 'The expiry must be in the future';
  }
  for (const k of Object.keys(errors) as (keyof TicketErrors)[]) if (!errors[k]) delete errors[k];
  return errors;
}

/** What the order will reserve: cash for a buy, shares for a sell. */
export function estimateHold(input: TicketInput, m: Market | undefined): { kind: 'cash' | 'shares'; amount: string | null; basis: string } {
  const q = input.qty.trim();
  if (input.side === 'sell') return { kind: 'shares', amount: parseDec(q) ? q : null, basis: 'shares reserved until filled or canceled' };
  if (!parseDec(q)) return { kind: 'cash', amount: null, basis: '' };
  if (needsLimit(input.type)) {
    const p = input.limitPrice.trim();
    return { kind: 'cash', amount: parseDec(p) ? mul(q, p) : null, basis: 'qty × limit price' };
  }
  const high = m?.band_high;
  return { kind: 'cash', amount: high ? mul(q, high) : null, basis: high ? `qty × band high (${high})` : 'band high unknown' };
}

function clientOrderId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  c.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function orderTicket(): HTMLElement {
  const input: TicketInput = { side: 'buy', type: 'limit', tif: 'day', qty: '', limitPrice: '', stopPrice: '', expire: '' };
  const touched = new Set<keyof TicketErrors>();
  let submitting = false;
  let tried = false;

  const buyBtn = h('button', { type: 'button', class: 'side-btn buy', testid: 'ticket-side-buy', onclick: () => setSide('buy') }, 'Buy');
  const sellBtn = h('button', { type: 'button', class: 'side-btn sell', testid: 'ticket-side-sell', onclick: () => setSide('sell') }, 'Sell');
  const typeSel = h('select', { testid: 'ticket-type', id: 'ticket-type' }, TYPES.map(([v, l]) => h('option', { value: v }, l)));
  const tifSel = h('select', { testid: 'ticket-tif', id: 'ticket-tif' }, TIFS.map(([v, l, title]) => h('option', { value: v, title }, `${l}`)));
  const qtyIn = h('input', { testid: 'ticket-qty', id: 'ticket-qty', inputmode: 'decimal', autocomplete: 'off', placeholder: '0' });
  const priceIn = h('input', { testid: 'ticket-price', id: 'ticket-price', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00' });
  const stopIn = h('input', { testid: 'ticket-stop', id: 'ticket-stop', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00' });
  const expireIn = h('input', { testid: 'ticket-expire', id: 'ticket-expire', type: 'datetime-local' });
  const errQty = h('div', { class: 'field-error', testid: 'ticket-qty-error' });
  const errPrice = h('div', { class: 'field-error', testid: 'ticket-price-error' });
  const errStop = h('div', { class: 'field-error', testid: 'ticket-stop-error' });
  const errExpire = h('div', { class: 'field-error', testid: 'ticket-expire-error' });
  const qtyHint = h('small', { class: 'hint' });
  const priceHint = h('small', { class: 'hint' });
  const priceField = h('label', { class: 'field', for: 'ticket-price' }, h('span', null, 'Limit price ', priceHint), priceIn, errPrice);
  const stopField = h('label', { class: 'field', for: 'ticket-stop' }, h('span', null, 'Stop price'), stopIn, errStop);
  const expireField = h('label', { class: 'field', for: 'ticket-expire' }, h('span', null, 'Expires at (local time)'), expireIn, errExpire);
  const estimate = h('div', { class: 'estimate', testid: 'ticket-estimate' });
  const available = h('div', { class: 'available muted small', testid: 'ticket-available' });
  const submit = h('button', { type: 'submit', class: 'submit buy', testid: 'ticket-submit' }, 'Buy');
  const error = h('div', { class: 'ticket-error', testid: 'ticket-error', role: 'alert', hidden: true });
  const result = h('div', { class: 'ticket-result', testid: 'ticket-result', role: 'status', hidden: true });
  const symbolLabel = h('span', { class: 'ticket-symbol', testid: 'ticket-symbol' });

  const form = h(
    'form',
    { class: 'ticket', novalidate: true, testid: 'order-ticket', onsubmit: (e: Event) => (e.preventDefault(), void send()) },
    h('div', { class: 'side-toggle' }, buyBtn, sellBtn),
    h('div', { class: 'row2' }, h('label', { class: 'field', for: 'ticket-type' }, h('span', null, 'Type'), typeSel), h('label', { class: 'field', for: 'ticket-tif' }, h('span', null, 'Time in force'), tifSel)),
    h('label', { class: 'field', for: 'ticket-qty' }, h('span', null, 'Quantity ', qtyHint), qtyIn, errQty),
    priceField,
    stopField,
    expireField,
    estimate,
    available,
    submit,
    error,
    result,
  );
  const root = h('section', { class: 'panel ticket-panel' }, h('header', { class: 'panel-head' }, h('h2', null, 'Order ticket'), symbolLabel), form);

  let lastOrder: Order | null = null;

  /** The last order sent, kept current by its order events (new → filled, canceled, …). */
  function showResult(order: Order) {
    const dec = decimalsOf(state.markets.get(order.symbol)?.tick);
    const at = order.limit_price ? ` @ ${price(order.limit_price, dec)}` : '';
    const filled = Number(order.filled_qty) > 0 && order.filled_avg_price ? `, ${fmtQty(order.filled_qty)} filled at ${price(order.filled_avg_price, dec)}` : '';
    result.textContent = `Order #${order.id} ${order.side} ${fmtQty(order.qty)} ${order.symbol}${at}: ${order.status.replace('_', ' ')}${filled}`;
    result.classList.toggle('warn', ['canceled', 'expired', 'rejected'].includes(order.status));
    result.hidden = false;
  }

  // Events can beat the POST response: remember the latest state of recent orders.
  const recent = new Map<number, Order>();
  const newest = (a: Order, b: Order | undefined): Order => {
    if (!b) return a;
    const ta = Date.parse(a.updated_at);
    const tb = Date.parse(b.updated_at);
    if (tb !== ta) return tb > ta ? b : a;
    return Number(b.filled_qty) > Number(a.filled_qty) || (b.status !== 'new' && a.status === 'new') ? b : a;
  };

  bus.on('order', ({ order }) => {
    if (order) {
      recent.set(order.id, order);
      if (recent.size > 50) recent.delete(recent.keys().next().value!);
    }
    if (!lastOrder || !order || order.id !== lastOrder.id || result.hidden) return;
    if (Date.parse(order.updated_at) < Date.parse(lastOrder.updated_at)) return;
    lastOrder = order;
    showResult(order);
  });

  function setSide(s: Side) {
    input.side = s;
    render();
  }

  function hideMessages() {
    error.hidden = true;
    result.hidden = true;
  }

  typeSel.addEventListener('change', () => {
    input.type = typeSel.value as OrderType;
    if (!TIF_BY_TYPE[input.type].includes(input.tif)) input.tif = TIF_BY_TYPE[input.type][0];
    render();
  });
  tifSel.addEventListener('change', () => {
    input.tif = tifSel.value as TimeInForce;
    render();
  });
  const bind = (el: HTMLInputElement, key: 'qty' | 'limitPrice' | 'stopPrice' | 'expire') => {
    el.addEventListener('input', () => {
      input[key] = el.value;
      hideMessages();
      render();
    });
    el.addEventListener('blur', () => {
      touched.add(key);
      render();
    });
  };
  bind(qtyIn, 'qty');
  bind(priceIn, 'limitPrice');
  bind(stopIn, 'stopPrice');
  bind(expireIn, 'expire');

  function render() {
    const m = selectedMarket();
    symbolLabel.textContent = m ? m.symbol : '';
    buyBtn.classList.toggle('active', input.side === 'buy');
    sellBtn.classList.toggle('active', input.side === 'sell');
    buyBtn.setAttribute('aria-pressed', String(input.side === 'buy'));
    sellBtn.setAttribute('aria-pressed', String(input.side === 'sell'));
    typeSel.value = input.type;
    for (const opt of tifSel.options) opt.disabled = !TIF_BY_TYPE[input.type].includes(opt.value as TimeInForce);
    tifSel.value = input.tif;
    priceField.hidden = !needsLimit(input.type);
    stopField.hidden = !needsStop(input.type);
    expireField.hidden = input.tif !== 'gtd';
    qtyHint.textContent = m ? `lot ${m.lot}${m.min_qty && m.min_qty !== m.lot ? `, min ${m.min_qty}` : ''}` : '';
    priceHint.textContent = m ? `tick ${m.tick}` : '';
    if (m?.band_low && m?.band_high) {
      const dec = decimalsOf(m.tick);
      priceHint.textContent += ` · band ${price(m.band_low, dec)}–${price(m.band_high, dec)}`;
    }
    tifSel.title = TIFS.find(([v]) => v === input.tif)?.[2] ?? '';

    const errors = validateTicket(input, m);
    const show = (k: keyof TicketErrors, el: HTMLElement) => {
      const msg = (tried || touched.has(k)) && errors[k] ? errors[k]! : '';
      el.textContent = msg;
      el.hidden = !msg;
    };
    show('qty', errQty);
    show('limitPrice', errPrice);
    show('stopPrice', errStop);
    show('expire', errExpire);
    qtyIn.classList.toggle('invalid', !!errQty.textContent);
    priceIn.classList.toggle('invalid', !!errPrice.textContent);
    stopIn.classList.toggle('invalid', !!errStop.textContent);

    const est = estimateHold(input, m);
    if (errors.qty || (est.kind === 'cash' && needsLimit(input.type) && errors.limitPrice)) est.amount = null;
    if (est.kind === 'shares') {
      estimate.replaceChildren(h('span', null, 'Shares held'), h('b', { class: 'num' }, est.amount ? fmtQty(est.amount) : '—'));
    } else {
      estimate.replaceChildren(h('span', null, 'Cash held ', est.basis ? h('small', { class: 'muted' }, `(${est.basis})`) : ''), h('b', { class: 'num' }, est.amount ? money(est.amount) : '—'));
    }
    const pos = m ? state.positions.get(m.symbol) : undefined;
    available.textContent =
      input.side === 'buy'
        ? `Cash available ${money(state.account?.cash_available)}`
        : `${m?.symbol ?? ''} available ${fmtQty(pos?.qty_available ?? '0')} shares`;

    const verb = input.side === 'buy' ? 'Buy' : 'Sell';
    submit.textContent = submitting ? 'Sending…' : `${verb}${m ? ` ${m.symbol}` : ''}`;
    submit.className = `submit ${input.side}`;
    submit.disabled = submitting || !m;
  }

  async function send() {
    tried = true;
    hideMessages();
    const m = selectedMarket();
    const errors = validateTicket(input, m);
    render();
    if (!m || Object.keys(errors).length) return;
    const body: Record<string, unknown> = {
      symbol: m.symbol,
      side: input.side,
      type: input.type,
      time_in_force: input.tif,
      qty: input.qty.trim(),
      client_order_id: clientOrderId(),
    };
    if (needsLimit(input.type)) body.limit_price = input.limitPrice.trim();
    if (needsStop(input.type)) body.stop_price = input.stopPrice.trim();
    if (input.tif === 'gtd') body.expire_at = new Date(input.expire).toISOString();
    submitting = true;
    render();
    try {
      const order = await api.post<Order>('/orders', body);
      applyOrder(order);
      lastOrder = newest(order, recent.get(order.id));
      showResult(lastOrder);
      tried = false;
      touched.clear();
      void loadAccount();
    } catch (err) {
      error.textContent = errorMessage(err);
      error.hidden = false;
    } finally {
      submitting = false;
      render();
    }
  }

  bus.on('pickPrice', ({ price: p }) => {
    if (input.type === 'market') input.type = 'limit';
    if (!TIF_BY_TYPE[input.type].includes(input.tif)) input.tif = TIF_BY_TYPE[input.type][0];
    if (input.type === 'stop') {
      input.stopPrice = p;
      stopIn.value = p;
    } else {
      input.limitPrice = p;
      priceIn.value = p;
    }
    hideMessages();
    render();
    qtyIn.focus();
  });
  watch('selected', () => {
    // Prices of one symbol make no sense for another.
    input.limitPrice = priceIn.value = '';
    input.stopPrice = stopIn.value = '';
    touched.clear();
    tried = false;
    hideMessages();
    render();
  });
  watch('markets', render);
  watch('account', render);
  watch('positions', render);
  render();
  return root;
}
