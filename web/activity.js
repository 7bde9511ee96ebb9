// The Activity view: the board's history as charts (GET /activity, one
// server-side aggregation per chart, cached there), drawn with uPlot on
// canvas. Live events mark it stale; it re-reads at most once per
// REFRESH_MIN_MS while shown, and once when the current bucket ends (the
// window moves on), never on a polling loop.
// uPlot (145 kB) is loaded with the view's first data, not with the board.
let uPlot = null;
const loadUPlot = () => import('./vendor/uPlot.esm.js').then((m) => { uPlot = m.default; });
import { api } from './api.js';
import { h, fmtDuration } from './util.js';
import { nowServer } from './store.js';

const RANGES = [['1h', '1 h'], ['24h', '24 h'], ['7d', '7 d']];
const RANGE_KEY = 'kanban.activityRange';
/** At most one refresh per this many ms, however many events arrive. */
export const REFRESH_MIN_MS = 2000;
/** Margin after a bucket's end before re-reading (clock skew, rounding). */
const BUCKET_END_SLACK_MS = 1500;
/** Soonest re-read for a bucket end, so a skewed clock cannot make it a loop. */
const BUCKET_END_MIN_WAIT_MS = 5000;
const CHART_HEIGHT = 180;
/** Queue-depth series hidden until their legend entry is clicked (they dwarf the queue). */
const HIDDEN_STATUSES = new Set(['done', 'archived']);
/** Colours of profiles and failure kinds, in order; statuses use their column colour. */
const PALETTE = ['#579dff', '#f5a623', '#22a06b', '#c25fd6', '#e5484d', '#12a5a5', '#8f7ee7', '#946f00'];
const FAILURE_COLORS = {
  crashed: '--danger', timed_out: '#d97008', blocked: '--st-blocked', gave_up: '--st-archived',
  reclaimed: '--st-todo', rate_limited: '--st-review', spawn_failed: '--st-triage',
};
const CHARTS = [
  ['finished', 'Tasks finished'],
  ['queue', 'Queue depth by status'],
  ['workers', 'Running workers by profile'],
  ['latency', 'Pick-up latency'],
  ['failures', 'Failures and crashes by kind'],
];

const UPLOT_CSS = 'vendor/uPlot.min.css';

/**
 * uPlot's stylesheet, linked when the view is first built rather than by
 * index.html: the board never needs it (and its legend rule is the only
 * CSS generated content the dashboard would carry).
 */
function loadStyles() {
  const existing = document.querySelector(`link[href="${UPLOT_CSS}"]`);
  if (existing) return Promise.resolve();
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = UPLOT_CSS;
  const loaded = new Promise((resolve) => { link.onload = resolve; link.onerror = resolve; });
  // Before style.css, whose rules refine uPlot's.
  document.head.insertBefore(link, document.querySelector('link[rel=stylesheet]'));
  return loaded;
}

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const color = (v) => (v.startsWith('--') ? css(v) : v);
/** `#rrggbb` with opacity `a`, as canvas fill styles take it. */
function alpha(c, a) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  return m ? `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})` : c;
}

function per(bucketSeconds) {
  return bucketSeconds === 60 ? 'per minute' : bucketSeconds === 3600 ? 'per hour' : `per ${bucketSeconds / 60} minutes`;
}

export class ActivityView {
  constructor(el) {
    this.el = el;
    this.range = RANGES.some(([r]) => r === localStorage.getItem(RANGE_KEY)) ? localStorage.getItem(RANGE_KEY) : '1h';
    this.data = null;
    this.visible = false;
    this.stale = true;
    this.lastLoad = 0;
    this.timer = null;
    this.bucketTimer = null;
    this.loading = null;
    this.again = false;
    this.seq = 0;
    /** uPlot instances by chart key, and legend choices that survive redraws. */
    this.plots = new Map();
    this.hidden = new Map();
    this.styles = null;
    this.build();
    new ResizeObserver(() => this.resize()).observe(this.grid);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.draw());
  }

  build() {
    this.picker = h('div', { class: 'range-picker', role: 'radiogroup', 'aria-label': 'Time range' },
      RANGES.map(([value, label]) => h('button', { type: 'button', role: 'radio', dataset: { range: value },
        onclick: () => this.setRange(value) }, label)));
    this.summary = h('span', { class: 'activity-summary muted', 'aria-live': 'polite' });
    this.cards = new Map(CHARTS.map(([key, title]) => {
      const sub = h('span', { class: 'chart-sub muted' });
      const body = h('div', { class: 'chart-body' });
      const card = h('section', { class: 'chart-card', dataset: { chart: key, points: '0' }, 'aria-label': title },
        h('h2', {}, title, ' ', sub), body);
      return [key, { card, sub, body }];
    }));
    this.grid = h('div', { class: 'chart-grid' }, [...this.cards.values()].map((c) => c.card));
    this.el.replaceChildren(h('div', { class: 'activity-head' }, h('h1', {}, 'Activity'), this.picker, this.summary), this.grid);
    this.markRange();
  }

  markRange() {
    for (const b of this.picker.children) b.setAttribute('aria-checked', String(b.dataset.range === this.range));
    this.el.dataset.range = this.range;
  }

  setRange(range) {
    if (range === this.range) return;
    this.range = range;
    localStorage.setItem(RANGE_KEY, range);
    this.markRange();
    this.refresh({ force: true });
  }

  show() {
    this.visible = true;
    this.el.hidden = false;
    if (this.stale || !this.data) this.refresh(); else this.resize();
  }

  hide() {
    this.visible = false;
    this.el.hidden = true;
    clearTimeout(this.timer);
    clearTimeout(this.bucketTimer);
    this.timer = null;
  }

  /** Another board: forget the old one's charts. */
  reset() {
    this.data = null;
    // Drop an answer on its way for the old board.
    this.seq++;
    this.loading = null;
    delete this.el.dataset.loading;
    for (const p of this.plots.values()) p.destroy();
    this.plots.clear();
    this.stale = true;
    if (this.visible) this.refresh({ force: true });
  }

  /** Live events arrived: refresh soon, at most once per REFRESH_MIN_MS. */
  onEvents() {
    this.stale = true;
    if (this.visible) this.schedule();
  }

  schedule() {
    if (this.timer) return;
    const wait = Math.max(0, this.lastLoad + REFRESH_MIN_MS - Date.now());
    this.timer = setTimeout(() => { this.timer = null; this.refresh(); }, wait);
  }

  /** Read the charts; `force` drops an answer still on its way (another range or board). */
  refresh({ force = false } = {}) {
    if (this.loading && !force) { this.again = true; return this.loading; }
    const seq = ++this.seq;
    this.lastLoad = Date.now();
    this.stale = false;
    this.el.dataset.loading = '1';
    // A failed load is tried again by the next refresh.
    this.styles ??= Promise.all([loadStyles(), loadUPlot()]).catch((e) => { this.styles = null; throw e; });
    this.loading = Promise.all([api.activity(this.range), this.styles]).then(([data]) => {
      if (seq !== this.seq) return;
      this.data = data;
      this.draw();
      this.el.dataset.loaded = String(Number(this.el.dataset.loaded || 0) + 1);
      this.watchBucket(data);
    }).catch((e) => {
      if (seq === this.seq) this.summary.textContent = `Cannot load the activity: ${e.message}`;
    }).finally(() => {
      if (seq !== this.seq) return;
      delete this.el.dataset.loading;
      this.loading = null;
      if (this.again && this.visible) { this.again = false; this.schedule(); }
    });
    return this.loading;
  }

  /** Re-read when the current bucket ends: the window moves on. */
  watchBucket(data) {
    clearTimeout(this.bucketTimer);
    if (!this.visible) return;
    const ms = Math.min(Math.max(BUCKET_END_MIN_WAIT_MS, (data.end - nowServer()) * 1000 + BUCKET_END_SLACK_MS),
      data.bucket_seconds * 1000 + BUCKET_END_SLACK_MS);
    this.bucketTimer = setTimeout(() => { if (this.visible) this.schedule(); }, ms);
  }

  width() {
    const body = this.cards.get('finished').body;
    return Math.max(240, Math.floor(body.clientWidth));
  }

  resize() {
    if (!this.visible || !this.data) return;
    const width = this.width();
    for (const p of this.plots.values()) if (p.width !== width) p.setSize({ width, height: CHART_HEIGHT });
  }

  draw() {
    const d = this.data;
    if (!d || !this.visible) return;
    const p50 = d.pickup_latency.p50_seconds, p90 = d.pickup_latency.p90_seconds;
    const failures = d.failures.reduce((n, s) => n + s.total, 0);
    this.summary.textContent = `${d.finished.total} finished · ${d.pickup_latency.claims} picked up`
      + (p50 === null ? '' : ` (median ${fmtDuration(p50)}, p90 ${fmtDuration(p90)})`)
      + ` · ${failures} failures · updated ${new Date(d.generated_at * 1000).toLocaleTimeString()}`;
    const step = per(d.bucket_seconds);
    this.plot('finished', `completed ${step}`, [{ name: 'completed', values: d.finished.values, color: css('--st-done') }], { bars: true });
    this.plot('queue', 'at the end of each bucket', d.queue_depth.map((s) => ({
      name: s.name, values: s.values, color: css(`--st-${s.name}`), hidden: HIDDEN_STATUSES.has(s.name) })));
    this.plot('workers', `average running, ${step}`, d.running_workers.map((s, i) => ({
      name: s.profile, values: s.values, color: PALETTE[i % PALETTE.length] })), { stepped: true });
    this.latency(d.pickup_latency);
    this.stacked('failures', `events ${step}`, d.failures.map((s, i) => ({
      name: s.name, values: s.values, color: color(FAILURE_COLORS[s.name] || PALETTE[(i + 3) % PALETTE.length]) })));
  }

  /** The theme's axis options (canvas needs resolved colours). */
  axes(xOpts = {}) {
    const stroke = css('--muted'), grid = { stroke: alpha(css('--border'), 0.7), width: 1 };
    const font = '11px system-ui, sans-serif';
    return [{ stroke, grid, ticks: grid, font, ...xOpts }, { stroke, grid, ticks: grid, font, size: 40 }];
  }

  /** Replace chart `key` with a new uPlot (series may differ from the last draw). */
  mount(key, sub, opts, data, values) {
    const { card, sub: subEl, body } = this.cards.get(key);
    subEl.textContent = sub ? `(${sub})` : '';
    this.plots.get(key)?.destroy();
    const hidden = this.hidden.get(key) || new Map();
    this.hidden.set(key, hidden);
    opts.series.forEach((s, i) => { if (i && hidden.has(s.label)) s.show = !hidden.get(s.label); });
    const plot = new uPlot({
      width: this.width(), height: CHART_HEIGHT, legend: { live: true },
      hooks: { setSeries: [(u, i) => { if (i !== null) hidden.set(u.series[i].label, !u.series[i].show); }] },
      ...opts,
    }, data, body);
    this.plots.set(key, plot);
    card.dataset.series = String(opts.series.length - 1);
    // For tests and scripts: how much the chart shows.
    card.dataset.points = String(values.reduce((n, vs) => n + vs.filter((v) => v > 0).length, 0));
    card.dataset.total = String(values.reduce((n, vs) => n + vs.reduce((a, v) => a + v, 0), 0));
  }

  /** A time chart of one line (or bar) per series. */
  plot(key, sub, series, { bars = false, stepped = false } = {}) {
    const d = this.data;
    const paths = bars ? uPlot.paths.bars({ size: [0.8, 40] }) : stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
    const opts = {
      cursor: { sync: { key: 'activity' } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: this.axes(),
      series: [{}, ...series.map((s) => ({
        label: s.name, stroke: s.color, width: bars ? 0 : 2, fill: bars ? s.color : alpha(s.color, 0.08),
        paths, points: { show: false }, show: !s.hidden,
        value: (u, v) => (v === null || v === undefined ? '–' : String(Math.round(v * 100) / 100)),
      }))],
    };
    this.mount(key, sub, opts, [d.times, ...series.map((s) => s.values)], series.map((s) => s.values));
  }

  /** Failures per bucket, stacked: each series is drawn as the sum of itself and those after it. */
  stacked(key, sub, series) {
    const d = this.data;
    const sums = series.map((_, i) => d.times.map((__, j) => series.slice(i).reduce((n, s) => n + s.values[j], 0)));
    const opts = {
      cursor: { sync: { key: 'activity' } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: this.axes(),
      series: [{}, ...series.map((s, i) => ({
        label: s.name, stroke: s.color, fill: s.color, width: 0, points: { show: false },
        paths: uPlot.paths.bars({ size: [0.8, 40] }),
        value: (u, v, si, idx) => (idx === null ? '–' : String(series[i].values[idx])),
      }))],
    };
    this.mount(key, series.length ? sub : 'none in this range', opts, [d.times, ...sums], series.map((s) => s.values));
  }

  /** The latency histogram: one bar per bin, labelled on the x axis. */
  latency(l) {
    const labels = l.bins.map((b) => b.label);
    const xs = labels.map((_, i) => i);
    const opts = {
      scales: { x: { time: false, range: [-0.6, labels.length - 0.4] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: this.axes({ splits: () => xs, values: (u, splits) => splits.map((i) => labels[i] ?? ''), font: '10px system-ui, sans-serif' }),
      series: [{ label: 'wait', value: (u, v) => (v === null ? '–' : labels[v] ?? '') }, {
        label: 'claims', stroke: css('--st-running'), fill: css('--st-running'), width: 0,
        paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false },
      }],
    };
    this.mount('latency', 'time from ready to claimed', opts, [xs, l.bins.map((b) => b.count)], [l.bins.map((b) => b.count)]);
  }
}
