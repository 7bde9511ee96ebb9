// A task's run timeline for the drawer: each attempt as a horizontal bar
// on one time axis (first start to last end, or now while one runs),
// coloured by outcome, with the details in its title (tooltip).
import { h, fmtDuration, fmtTime } from './util.js';

/** Narrowest bar, % of the axis, so an instant attempt stays visible. */
const MIN_BAR_PERCENT = 0.8;

/** What a run's bar shows: its outcome, else `running` while open. */
export function runOutcome(r) {
  return r.outcome || (r.ended_at ? r.status : 'running');
}

function axisLabel(t, span) {
  const d = new Date(t * 1000);
  return span >= 86400 ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
    : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: span < 600 ? '2-digit' : undefined });
}

/** The timeline of `runs` (oldest first) at server time `now`. */
export function runTimeline(runs, now) {
  const end = (r) => r.ended_at ?? Math.max(now, r.started_at);
  const t0 = Math.min(...runs.map((r) => r.started_at));
  const t1 = Math.max(...runs.map(end));
  const span = Math.max(1, t1 - t0);
  const pct = (t) => ((t - t0) / span) * 100;
  const outcomes = new Set();
  const lanes = runs.map((r) => {
    const outcome = runOutcome(r);
    outcomes.add(outcome);
    const left = pct(r.started_at);
    const width = Math.max(MIN_BAR_PERCENT, pct(end(r)) - left);
    const bar = h('div', {
      class: `run-bar rb-${outcome}`, dataset: { run: r.id, outcome },
      title: `#${r.id} · ${r.profile || 'no profile'} · ${outcome}\n${fmtTime(r.started_at)} → `
        + `${r.ended_at ? fmtTime(r.ended_at) : 'now'} (${fmtDuration(end(r) - r.started_at)})`
        + (r.error || r.summary ? `\n${String(r.error || r.summary).slice(0, 200)}` : ''),
    });
    // CSSOM, not a style attribute: nothing here is parsed as markup.
    bar.style.left = `${Math.min(left, 100 - MIN_BAR_PERCENT)}%`;
    bar.style.width = `${width}%`;
    return h('div', { class: 'run-lane' }, h('span', { class: 'run-lane-label' }, `#${r.id}`), h('div', { class: 'run-track' }, bar));
  });
  return h('div', { class: 'run-timeline', role: 'img', 'aria-label': `${runs.length} attempt(s) over ${fmtDuration(span)}` },
    lanes,
    h('div', { class: 'run-axis' }, h('span', {}, axisLabel(t0, span)), h('span', {}, fmtDuration(span)), h('span', {}, runs.some((r) => !r.ended_at) ? 'now' : axisLabel(t1, span))),
    h('div', { class: 'run-legend' }, [...outcomes].map((o) => h('span', { class: 'run-key' }, h('span', { class: `run-swatch rb-${o}` }), o))));
}
