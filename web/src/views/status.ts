// Market status badge: open/closed and the time to the next open or close.
import { api } from '../api';
import { h } from '../dom';
import { duration } from '../format';
import type { MarketStatus } from '../types';

export function statusBadge(): HTMLElement {
  const label = h('span', { class: 'status-label' }, 'Market');
  const countdown = h('span', { class: 'status-countdown num' });
  const root = h('div', { class: 'status-badge loading', testid: 'market-status', title: 'Market status' }, h('span', { class: 'dot' }), label, countdown);
  let status: MarketStatus | null = null;
  let skew = 0; // server now - local now
  let failures = 0;

  let lastLoad = 0;

  async function load() {
    lastLoad = Date.now();
    try {
      status = await api.get<MarketStatus>('/market/status', { auth: false });
      const serverNow = Date.parse(status.now);
      skew = Number.isFinite(serverNow) ? serverNow - Date.now() : 0;
      failures = 0;
    } catch {
      failures += 1;
      if (failures > 1) status = null;
    }
    tick();
  }

  function tick() {
    if (!status) {
      root.className = 'status-badge unknown';
      root.dataset.open = '';
      label.textContent = 'Status unavailable';
      countdown.textContent = '';
      return;
    }
    const now = Date.now() + skew;
    const nextIso = status.open ? status.next_close : status.next_open;
    const next = nextIso ? Date.parse(nextIso) : NaN;
    root.className = `status-badge ${status.open ? 'open' : 'closed'}`;
    root.dataset.open = String(status.open);
    label.textContent = status.open ? 'Open' : 'Closed';
    if (Number.isFinite(next)) {
      const left = next - now;
      countdown.textContent = `${status.open ? 'closes in' : 'opens in'} ${duration(left)}`;
      root.title = `${status.open ? 'Closes' : 'Opens'} ${new Date(next).toLocaleString()} (${status.timezone})`;
      if (left <= 0 && Date.now() - lastLoad > 5000) void load(); // the session just opened or closed
    } else {
      countdown.textContent = status.open ? '24/7' : '';
      root.title = status.timezone ? `Timezone ${status.timezone}` : '';
    }
  }

  void load();
  setInterval(tick, 1000);
  setInterval(() => void load(), 60_000);
  return root;
}
