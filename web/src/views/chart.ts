// Candlestick chart with volume for the selected symbol; live trades roll into the current bar.
import {
  CandlestickSeries,
  ColorType,
  createChart,
  HistogramSeries,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from 'lightweight-charts';
import { api, errorMessage } from '../api';
import { bus } from '../bus';
import { decimalsOf } from '../decimal';
import { h } from '../dom';
import { selectedMarket, state, watch } from '../state';
import type { Candle } from '../types';

export const INTERVALS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '1d': 86400 } as const;
export type Interval = keyof typeof INTERVALS;
const BARS = 300;
const UP = '#26a69a';
const DOWN = '#ef5350';

export const chartTheme = {
  layout: {
    background: { type: ColorType.Solid, color: 'transparent' },
    textColor: '#8a99a8',
    fontFamily: "'JetBrains Mono', 'SFMono-Regular', Menlo, Consolas, monospace",
    fontSize: 11,
    attributionLogo: false,
  },
  grid: { vertLines: { color: 'rgba(42, 56, 70, 0.5)' }, horzLines: { color: 'rgba(42, 56, 70, 0.5)' } },
  rightPriceScale: { borderColor: '#1f2b37' },
  timeScale: { borderColor: '#1f2b37', timeVisible: true, secondsVisible: false },
  crosshair: { mode: 0 },
};

interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export function candleChart(): HTMLElement {
  let interval: Interval = (localStorage.getItem('bourse.interval') as Interval) || '1m';
  if (!(interval in INTERVALS)) interval = '1m';
  const buttons = (Object.keys(INTERVALS) as Interval[]).map((iv) =>
    h('button', { type: 'button', class: 'seg', testid: `interval-${iv}`, 'data-interval': iv, onclick: () => setInterval_(iv) }, iv),
  );
  const host = h('div', { class: 'chart-host', testid: 'candle-chart' });
  const overlay = h('div', { class: 'chart-overlay' });
  const root = h(
    'section',
    { class: 'panel chart-panel' },
    h('header', { class: 'panel-head' }, h('h2', null, 'Chart'), h('div', { class: 'segmented', testid: 'interval-selector' }, buttons)),
    h('div', { class: 'chart-wrap' }, host, overlay),
  );

  let chart: IChartApi | null = null;
  let candles: ISeriesApi<'Candlestick'> | null = null;
  let volume: ISeriesApi<'Histogram'> | null = null;
  let last: Bar | null = null;
  let generation = 0;
  let loaded = false;

  function ensureChart() {
    if (chart) return;
    chart = createChart(host, { ...chartTheme, autoSize: true });
    candles = chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderUpColor: UP,
      borderDownColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    volume = chart.addSeries(HistogramSeries, { priceScaleId: 'vol', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false });
    chart.priceScale('vol').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
  }

  function setOverlay(text: string, spinner = false) {
    overlay.replaceChildren(...(text ? [spinner ? h('span', { class: 'spinner' }) : '', text] : []));
    overlay.hidden = !text;
    // An empty chart is just the message, without bare axes.
    host.style.visibility = text && !spinner ? 'hidden' : '';
  }

  function applyPrecision() {
    const dec = decimalsOf(selectedMarket()?.tick);
    candles?.applyOptions({ priceFormat: { type: 'price', precision: dec, minMove: 1 / 10 ** dec } });
  }

  const candleData = (b: Bar): CandlestickData => ({ time: b.time as UTCTimestamp, open: b.open, high: b.high, low: b.low, close: b.close });
  const volumeData = (b: Bar): HistogramData => ({
    time: b.time as UTCTimestamp,
    value: b.volume,
    color: b.close >= b.open ? 'rgba(38,166,154,0.45)' : 'rgba(239,83,80,0.45)',
  });

  async function load() {
    const symbol = state.selected;
    if (!symbol) return;
    const gen = ++generation;
    ensureChart();
    applyPrecision();
    loaded = false;
    last = null;
    candles!.setData([]);
    volume!.setData([]);
    setOverlay('Loading candles…', true);
    for (const b of buttons) b.classList.toggle('active', b.dataset.interval === interval);
    const step = INTERVALS[interval];
    const to = Math.floor(Date.now() / 1000);
    try {
      const res = await api.get<{ candles: Candle[] }>(`/markets/${encodeURIComponent(symbol)}/candles`, {
        auth: false,
        query: { interval, from: to - step * BARS, to: to + step },
      });
      if (gen !== generation) return;
      const bars: Bar[] = res.candles
        .map((c) => ({ time: c.time, open: +c.open, high: +c.high, low: +c.low, close: +c.close, volume: +c.volume }))
        .sort((a, b) => a.time - b.time)
        .filter((b, i, arr) => i === 0 || b.time !== arr[i - 1].time);
      candles!.setData(bars.map(candleData));
      volume!.setData(bars.map(volumeData));
      last = bars[bars.length - 1] ?? null;
      loaded = true;
      setOverlay(bars.length ? '' : 'No trades yet: the chart starts with the first trade');
      // Show the latest ~120 bars; a young market keeps normal bar widths with its bars on the right.
      const shown = 120;
      chart!.timeScale().setVisibleLogicalRange({ from: bars.length - shown, to: bars.length + 3 });
    } catch (err) {
      if (gen === generation) setOverlay(`Candles unavailable: ${errorMessage(err)}`);
    }
  }

  function setInterval_(iv: Interval) {
    interval = iv;
    localStorage.setItem('bourse.interval', iv);
    void load();
  }

  bus.on('trade', (t) => {
    if (!loaded || !candles || !volume) return;
    if (t.symbol && t.symbol !== state.selected) return;
    const ts = Math.floor(Date.parse(t.executed_at) / 1000);
    const p = Number(t.price);
    const q = Number(t.qty);
    if (!Number.isFinite(ts) || !Number.isFinite(p)) return;
    const step = INTERVALS[interval];
    if (last && ts < last.time) return; // older than the bar on screen
    if (last && ts < last.time + step) {
      last = { ...last, high: Math.max(last.high, p), low: Math.min(last.low, p), close: p, volume: last.volume + q };
    } else {
      last = { time: ts - (ts % step), open: p, high: p, low: p, close: p, volume: q };
    }
    candles.update(candleData(last));
    volume.update(volumeData(last));
    setOverlay('');
  });
  watch('selected', () => void load());
  // Precision depends on the market's tick, known once /markets has loaded.
  watch('markets', applyPrecision);
  queueMicrotask(() => void load());
  return root;
}
