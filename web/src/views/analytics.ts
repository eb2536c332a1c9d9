// Portfolio analytics (issue 4): equity curve from /account/portfolio/history and the /account/stats panel.
import { AreaSeries, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import { ApiError, api, errorMessage } from '../api';
import { liveEquity } from '../account-data';
import { clear, h } from '../dom';
import { money, num, pctRatio, signClass, signedMoney } from '../format';
import { session } from '../session';
import { state, watch } from '../state';
import type { PortfolioHistory } from '../types';
import { chartTheme } from './chart';

const PERIODS = ['1D', '1W', '1M', 'all'] as const;
const moneyAxis = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
type Period = (typeof PERIODS)[number];

export function equityChart(): HTMLElement & { load: () => Promise<void> } {
  let period: Period = '1M';
  const host = h('div', { class: 'chart-host' });
  const overlay = h('div', { class: 'chart-overlay' });
  const summary = h('span', { class: 'num small', testid: 'equity-change' });
  const buttons = PERIODS.map((p) =>
    h('button', { type: 'button', class: 'seg', testid: `equity-period-${p}`, 'data-period': p, onclick: () => ((period = p), void load()) }, p),
  );
  const root = h(
    'section',
    { class: 'panel sub-panel equity-panel', testid: 'equity-chart' },
    h('header', { class: 'panel-head' }, h('h3', null, 'Equity curve'), summary, h('div', { class: 'segmented' }, buttons)),
    h('div', { class: 'chart-wrap small-chart' }, host, overlay),
  );
  let chart: IChartApi | null = null;
  let series: ISeriesApi<'Area'> | null = null;
  let lastTime = 0;
  let base: number | null = null;
  let loaded = false;
  let generation = 0;

  function setOverlay(text: string, spinner = false) {
    overlay.replaceChildren(...(text ? [spinner ? h('span', { class: 'spinner' }) : '', text] : []));
    overlay.hidden = !text;
    root.dataset.state = text ? (spinner ? 'loading' : 'empty') : 'ready';
    // No axes without data: an empty state is just the message.
    host.style.visibility = text && !spinner ? 'hidden' : '';
  }

  function ensure() {
    if (chart) return;
    chart = createChart(host, { ...chartTheme, autoSize: true, timeScale: { ...chartTheme.timeScale, timeVisible: true } });
    series = chart.addSeries(AreaSeries, {
      lineColor: '#f0b90b',
      topColor: 'rgba(240,185,11,0.28)',
      bottomColor: 'rgba(240,185,11,0.02)',
      lineWidth: 2,
      priceFormat: { type: 'custom', minMove: 0.01, formatter: (v: number) => moneyAxis.format(v) },
    });
  }

  async function load() {
    if (!session.loggedIn) return;
    const gen = ++generation;
    for (const b of buttons) b.classList.toggle('active', b.dataset.period === period);
    ensure();
    loaded = false;
    setOverlay('Loading equity history…', true);
    try {
      const res = await api.get<PortfolioHistory>('/account/portfolio/history', { query: { period } });
      if (gen !== generation) return;
      const points: { time: UTCTimestamp; value: number }[] = [];
      res.timestamp.forEach((t, i) => {
        const v = num(res.equity[i]);
        if (v != null && (!points.length || t > points[points.length - 1].time)) points.push({ time: t as UTCTimestamp, value: v });
      });
      series!.setData(points);
      lastTime = points.length ? points[points.length - 1].time : 0;
      base = num(res.base_value) ?? points[0]?.value ?? null;
      loaded = true;
      if (!points.length) setOverlay('No equity history yet: it builds up as the account trades and days close');
      else setOverlay('');
      addLivePoint();
      chart!.timeScale().fitContent();
    } catch (err) {
      if (gen !== generation) return;
      series!.setData([]);
      setOverlay(err instanceof ApiError && err.notFound ? 'Portfolio history is not available on this server yet' : `Equity history unavailable: ${errorMessage(err)}`);
    }
  }

  /** Extend the curve with the live equity so it moves with fills and tickers. */
  function addLivePoint() {
    if (!loaded || !series) return;
    const eq = liveEquity();
    if (eq == null) return;
    const now = Math.floor(Date.now() / 1000);
    if (lastTime && now > lastTime) {
      series.update({ time: now as UTCTimestamp, value: eq });
      lastTime = now - 1; // later live points may replace this one, never go before it
    }
    if (!lastTime) {
      series.setData([{ time: now as UTCTimestamp, value: eq }]);
      lastTime = now - 1;
      setOverlay('');
    }
    if (base) {
      const d = eq - base;
      summary.textContent = `${signedMoney(d)} (${pctRatio(d / base)})`;
      summary.className = `num small ${signClass(d)}`;
    }
  }

  watch('account', addLivePoint);
  watch('positions', addLivePoint);
  return Object.assign(root, { load });
}

// Units as in schema/analytics.py: money in decimal strings, ratios as fractions (0.0123 = 1.23 %).
const pctPlain = new Intl.NumberFormat('en-US', { style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const pctAbs = (n: number) => pctPlain.format(Math.abs(n));
const SIGNED_MONEY = new Set(['realized_pl', 'unrealized_pl', 'day_change', 'avg_win', 'avg_loss']);
const MONEY = new Set(['max_drawdown_amount', 'traded_notional', 'equity', 'cash', 'starting_cash']);
const PERCENT = new Set(['win_rate', 'max_drawdown', 'day_change_pct', 'return_pct']);
const COUNTS = new Set(['round_trips', 'wins', 'losses']);

const LABELS: Record<string, string> = {
  realized_pl: 'Realized P&L',
  unrealized_pl: 'Unrealized P&L',
  day_change: "Day's change",
  day_change_pct: "Day's change %",
  win_rate: 'Win rate',
  avg_win: 'Average win',
  avg_loss: 'Average loss',
  max_drawdown: 'Max drawdown',
  max_drawdown_amount: 'Max drawdown $',
  sharpe: 'Sharpe ratio',
  turnover: 'Turnover',
  traded_notional: 'Traded notional',
  round_trips: 'Round trips',
};

function label(key: string): string {
  return LABELS[key] ?? key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** Format one stat by its name; unknown keys are guessed from their suffix. */
export function formatStat(key: string, value: unknown): { text: string; cls: string } {
  if (value == null) return { text: '—', cls: '' };
  if (typeof value === 'boolean') return { text: value ? 'yes' : 'no', cls: '' };
  if (typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>).map(([k, v]) => formatStat(k, v).text);
    return { text: parts.join(' · '), cls: '' };
  }
  const n = num(value as string);
  if (n == null) return { text: String(value), cls: '' };
  if (SIGNED_MONEY.has(key) || (!MONEY.has(key) && /(_pl|_pnl)$/.test(key))) return { text: signedMoney(n), cls: signClass(n) };
  if (MONEY.has(key) || /(_amount|_value|_notional|_cash)$/.test(key)) return { text: money(key.includes('drawdown') ? Math.abs(n) : n), cls: key.includes('drawdown') && n ? 'down' : '' };
  if (PERCENT.has(key) || /(_pct|_rate|_plpc)$/.test(key)) {
    if (key.includes('drawdown')) return { text: pctAbs(n), cls: n ? 'down' : '' };
    if (key === 'win_rate') return { text: pctAbs(n), cls: '' };
    return { text: pctRatio(n), cls: signClass(n) };
  }
  if (COUNTS.has(key)) return { text: String(Math.round(n)), cls: '' };
  if (key === 'turnover') return { text: `${n.toFixed(2)}×`, cls: '' };
  if (key === 'sharpe') return { text: n.toFixed(2), cls: signClass(n) };
  return { text: new Intl.NumberFormat('en-US', { maximumFractionDigits: 4 }).format(n), cls: '' };
}

export function statsPanel(): HTMLElement & { load: () => Promise<void> } {
  const grid = h('dl', { class: 'stats-grid' });
  const root = h('section', { class: 'panel sub-panel', testid: 'stats-panel' }, h('header', { class: 'panel-head' }, h('h3', null, 'Performance')), grid);

  async function load() {
    if (!session.loggedIn) return;
    if (!grid.children.length) clear(grid, h('div', { class: 'state-msg' }, h('span', { class: 'spinner' }), 'Loading stats…'));
    try {
      const stats = await api.get<Record<string, unknown>>('/account/stats');
      const entries = Object.entries(stats ?? {}).filter(([k]) => !['account_id', 'as_of', 'period'].includes(k));
      root.dataset.state = entries.length ? 'ready' : 'empty';
      if (!entries.length) return clear(grid, h('div', { class: 'state-msg' }, 'No statistics yet'));
      clear(
        grid,
        entries.map(([k, v]) => {
          const f = formatStat(k, v);
          return h('div', { class: 'stat', testid: `stat-${k}` }, h('dt', null, label(k)), h('dd', { class: `num ${f.cls}` }, f.text));
        }),
      );
    } catch (err) {
      root.dataset.state = 'empty';
      clear(
        grid,
        h('div', { class: 'state-msg' }, err instanceof ApiError && err.notFound ? 'Statistics are not available on this server yet' : `Statistics unavailable: ${errorMessage(err)}`),
      );
    }
  }

  return Object.assign(root, { load });
}

export function portfolioStatsRefresh(load: () => void): void {
  // Stats move with fills; refresh at most every few seconds while visible.
  let t: ReturnType<typeof setTimeout> | undefined;
  watch('fills', () => {
    if (t) return;
    t = setTimeout(() => {
      t = undefined;
      if (state.account) load();
    }, 2000);
  });
}
