// Open orders with Cancel and inline Amend (PATCH /orders/{id}); kept live by `order` events.
import { api, errorMessage } from '../api';
import { applyOrder, loadOpenOrders } from '../account-data';
import { decimalsOf, isMultiple, isPositive, parseDec } from '../decimal';
import { clear, h } from '../dom';
import { dateTime, price, qty } from '../format';
import { state, watch } from '../state';
import type { Order } from '../types';

export function openOrders(): HTMLElement {
  const body = h('tbody');
  const message = h('div', { class: 'inline-msg', testid: 'orders-message', hidden: true });
  const cancelAll = h('button', { type: 'button', class: 'btn ghost small', testid: 'cancel-all', onclick: () => void cancelAllOrders() }, 'Cancel all');
  const root = h(
    'div',
    { class: 'tab-body' },
    h('div', { class: 'tab-tools' }, message, cancelAll),
    h(
      'div',
      { class: 'scroll-x' },
      h(
        'table',
        { class: 'grid', testid: 'open-orders' },
        h(
          'thead',
          null,
          h('tr', null, ...['Time', 'Symbol', 'Side', 'Type', 'Qty', 'Filled', 'Limit', 'Stop', 'TIF', 'Status', ''].map((c, i) => h('th', { class: i >= 4 && i <= 7 ? 'r' : '' }, c))),
        ),
        body,
      ),
    ),
  );
  let editing: number | null = null;
  const busy = new Set<number>();

  function flash(text: string, isError = false) {
    message.textContent = text;
    message.className = `inline-msg ${isError ? 'error' : ''}`;
    message.hidden = !text;
  }

  async function cancel(o: Order) {
    busy.add(o.id);
    render();
    try {
      const updated = await api.del<Order>(`/orders/${o.id}`);
      if (updated && updated.status) applyOrder(updated);
      flash(`Cancel requested for order #${o.id}`);
    } catch (err) {
      flash(errorMessage(err), true);
      if ((err as { status?: number }).status === 404 || (err as { status?: number }).status === 409) void loadOpenOrders();
    } finally {
      busy.delete(o.id);
      render();
    }
  }

  async function cancelAllOrders() {
    if (!state.openOrders.size) return;
    try {
      const res = await api.del<{ canceled: number[] }>('/orders');
      flash(`Cancel requested for ${res?.canceled?.length ?? 0} orders`);
    } catch (err) {
      flash(errorMessage(err), true);
    }
  }

  async function amend(o: Order, qtyIn: HTMLInputElement, priceIn: HTMLInputElement | null, stopIn: HTMLInputElement | null) {
    const m = state.markets.get(o.symbol);
    const patch: Record<string, string> = {};
    const q = qtyIn.value.trim();
    if (q !== o.qty) {
      if (!parseDec(q) || !isPositive(q)) return flash('Quantity must be a positive number', true);
      if (m?.lot && !isMultiple(q, m.lot)) return flash(`Quantity must be a multiple of the lot (${m.lot})`, true);
      patch.qty = q;
    }
    for (const [el, key] of [
      [priceIn, 'limit_price'],
      [stopIn, 'stop_price'],
    ] as const) {
      if (!el) continue;
      const v = el.value.trim();
      if (v === (o[key] ?? '')) continue;
      if (!parseDec(v) || !isPositive(v)) return flash('Prices must be positive numbers', true);
      if (m?.tick && !isMultiple(v, m.tick)) return flash(`Prices must be multiples of the tick (${m.tick})`, true);
      patch[key] = v;
    }
    if (!Object.keys(patch).length) {
      editing = null;
      return render();
    }
    busy.add(o.id);
    render();
    try {
      await api.patch<Order>(`/orders/${o.id}`, patch);
      editing = null;
      flash(`Amend sent for order #${o.id}`);
    } catch (err) {
      flash(errorMessage(err), true);
    } finally {
      busy.delete(o.id);
      render();
    }
  }

  function row(o: Order): HTMLTableRowElement {
    const dec = decimalsOf(state.markets.get(o.symbol)?.tick);
    const isBusy = busy.has(o.id);
    if (editing === o.id) {
      const qtyIn = h('input', { class: 'cell-input', testid: 'amend-qty', inputmode: 'decimal', value: o.qty });
      const priceIn = o.limit_price != null ? h('input', { class: 'cell-input', testid: 'amend-price', inputmode: 'decimal', value: o.limit_price }) : null;
      const stopIn = o.stop_price != null ? h('input', { class: 'cell-input', testid: 'amend-stop', inputmode: 'decimal', value: o.stop_price }) : null;
      const submit = () => void amend(o, qtyIn, priceIn, stopIn);
      for (const el of [qtyIn, priceIn, stopIn]) el?.addEventListener('keydown', (e) => e.key === 'Enter' && submit());
      queueMicrotask(() => qtyIn.focus());
      return h(
        'tr',
        { class: 'open-order-row editing', testid: 'open-order-row', 'data-order-id': o.id },
        h('td', { class: 'muted num' }, dateTime(o.created_at)),
        h('td', null, h('strong', null, o.symbol)),
        h('td', { class: o.side === 'buy' ? 'up' : 'down' }, o.side.toUpperCase()),
        h('td', null, o.type.replace('_', ' ')),
        h('td', { class: 'r' }, qtyIn),
        h('td', { class: 'r num' }, qty(o.filled_qty)),
        h('td', { class: 'r' }, priceIn ?? '—'),
        h('td', { class: 'r' }, stopIn ?? '—'),
        h('td', null, o.time_in_force.toUpperCase()),
        h('td', null, statusChip(o.status)),
        h(
          'td',
          { class: 'actions' },
          h('button', { type: 'button', class: 'btn small primary', testid: 'amend-save', disabled: isBusy, onclick: submit }, 'Save'),
          h('button', { type: 'button', class: 'btn small ghost', testid: 'amend-cancel', onclick: () => ((editing = null), render()) }, 'Back'),
        ),
      );
    }
    return h(
      'tr',
      { class: 'open-order-row', testid: 'open-order-row', 'data-order-id': o.id, 'data-symbol': o.symbol, 'data-side': o.side },
      h('td', { class: 'muted num' }, dateTime(o.created_at)),
      h('td', null, h('strong', null, o.symbol)),
      h('td', { class: o.side === 'buy' ? 'up' : 'down' }, o.side.toUpperCase()),
      h('td', null, o.type.replace('_', ' ')),
      h('td', { class: 'r num' }, qty(o.qty)),
      h('td', { class: 'r num' }, qty(o.filled_qty)),
      h('td', { class: 'r num' }, price(o.limit_price, dec)),
      h('td', { class: 'r num' }, price(o.stop_price, dec)),
      h('td', { title: o.expire_at ? `Expires ${dateTime(o.expire_at)}` : '' }, o.time_in_force.toUpperCase()),
      h('td', null, statusChip(o.status)),
      h(
        'td',
        { class: 'actions' },
        h('button', { type: 'button', class: 'btn small ghost', testid: 'amend-order', disabled: isBusy || o.type === 'market', onclick: () => ((editing = o.id), render()) }, 'Amend'),
        h('button', { type: 'button', class: 'btn small danger', testid: 'cancel-order', disabled: isBusy, onclick: () => void cancel(o) }, isBusy ? '…' : 'Cancel'),
      ),
    );
  }

  function render() {
    cancelAll.hidden = state.openOrders.size < 2;
    if (state.ordersLoad === 'loading' && !state.openOrders.size) return clear(body, loadingRow(11, 'Loading orders…'));
    if (state.ordersLoad === 'error' && !state.openOrders.size) return clear(body, h('tr', { class: 'empty-row error' }, h('td', { colspan: 11 }, 'Could not load orders. ', h('button', { class: 'link', onclick: () => void loadOpenOrders() }, 'Retry'))));
    const orders = [...state.openOrders.values()].sort((a, b) => b.id - a.id);
    if (!orders.length) return clear(body, h('tr', { class: 'empty-row', testid: 'open-orders-empty' }, h('td', { colspan: 11 }, 'No open orders')));
    if (editing != null && !state.openOrders.has(editing)) editing = null;
    // Keep an inline edit's inputs intact while other rows update.
    if (editing != null) {
      const existing = body.querySelector<HTMLTableRowElement>(`tr.editing[data-order-id="${editing}"]`);
      if (existing && !busy.has(editing)) {
        const rows = orders.map((o) => (o.id === editing ? existing : row(o)));
        return clear(body, rows);
      }
    }
    clear(body, orders.map(row));
  }

  watch('orders', render);
  watch('markets', () => editing == null && render());
  render();
  return root;
}

export function statusChip(status: string): HTMLElement {
  return h('span', { class: `chip status-${status}` }, status.replace('_', ' '));
}

export function loadingRow(cols: number, text: string): HTMLTableRowElement {
  return h('tr', { class: 'empty-row' }, h('td', { colspan: cols }, h('span', { class: 'spinner' }), text));
}
