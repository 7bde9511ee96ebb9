// Diagnostics in the dashboard: the card badge (severity colour, count,
// tooltip) and the drawer's Diagnostics panel, whose actions are buttons:
// reclaim / reassign / unblock call the REST routes, cli_hint shows a
// copyable command, comment focuses the comment box, open_docs links out.
import { api } from './api.js';
import { h, toast } from './util.js';

const SEVERITY_RANK = { warning: 0, error: 1, critical: 2 };

/** The card badge from the board's `warnings` summary, or null. */
export function diagnosticBadge(t) {
  const w = t.warnings;
  if (!w || !w.count) return null;
  const kinds = Object.entries(w.kinds || {}).map(([k, n]) => `${k} ×${n}`).join(', ');
  const severity = w.highest_severity in SEVERITY_RANK ? w.highest_severity : 'warning';
  const titles = (t.diagnostics || []).map((d) => `[${d.severity}] ${d.title}`);
  return {
    severity,
    count: w.count,
    text: [`${(t.diagnostics || []).length || w.count} diagnostic(s): ${kinds}`, ...titles].join('\n'),
  };
}

/** The drawer panel, or null when the task has no diagnostics.
 *  `ctx`: {task, refresh(), reassign(), focusComment()}. */
export function diagnosticsSection(ctx) {
  const list = ctx.task.diagnostics || [];
  if (!list.length) return null;
  return h('section', { class: 'drawer-section diagnostics', 'aria-label': 'Diagnostics' },
    h('h3', {}, `Diagnostics (${list.length})`),
    list.map((d) => h('div', { class: `diagnostic diag-${d.severity}`, dataset: { kind: d.kind } },
      h('div', { class: 'diagnostic-head' },
        h('span', { class: `diag-sev diag-sev-${d.severity}` }, d.severity),
        h('strong', {}, d.title)),
      h('p', { class: 'diagnostic-detail' }, d.detail),
      h('div', { class: 'diagnostic-actions' }, (d.actions || []).flatMap((a) => actionEl(a, ctx))))));
}

function actionEl(a, ctx) {
  const cls = `diag-action${a.suggested ? ' suggested' : ''}`;
  const id = ctx.task.id;
  const run = (fn, done) => async () => {
    try { await fn(); toast(done); await ctx.refresh(); } catch (e) { toast(`${a.label}: ${e.message}`, 'error'); }
  };
  switch (a.kind) {
    case 'reclaim':
      return h('button', { type: 'button', class: cls, dataset: { action: 'reclaim' }, onclick: run(() => api.reclaim(id, 'diagnostics'), `${id} reclaimed`) }, a.label);
    case 'unblock':
      return h('button', { type: 'button', class: cls, dataset: { action: 'unblock' }, onclick: run(() => api.updateTask(id, { status: 'ready' }), `${id} unblocked`) }, a.label);
    case 'reassign':
      return h('button', { type: 'button', class: cls, dataset: { action: 'reassign' }, onclick: () => ctx.reassign() }, a.label);
    case 'comment': {
      // A blocked task's answer can also be an unblock: offer both.
      const buttons = [h('button', { type: 'button', class: cls, dataset: { action: 'comment' }, onclick: () => ctx.focusComment() }, a.label)];
      if (ctx.task.status === 'blocked') {
        buttons.push(h('button', { type: 'button', class: 'diag-action', dataset: { action: 'unblock' }, onclick: run(() => api.updateTask(id, { status: 'ready' }), `${id} unblocked`) }, 'Unblock'));
      }
      return buttons;
    }
    case 'open_docs':
      return h('a', { class: cls, href: a.payload?.url || '#', target: '_blank', rel: 'noopener' }, a.label);
    case 'cli_hint': {
      const command = a.payload?.command || '';
      const copy = async () => {
        try { await navigator.clipboard.writeText(command); toast('Command copied'); } catch { toast(command); }
      };
      return h('div', { class: `diag-hint${a.suggested ? ' suggested' : ''}`, dataset: { action: 'cli_hint' } },
        h('span', { class: 'muted' }, a.label),
        h('code', { class: 'diag-command', tabindex: '0', title: 'Click to copy', onclick: copy }, command),
        h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Copy ${command}`, onclick: copy }, 'Copy'));
    }
    default:
      return h('span', { class: 'muted' }, a.label);
  }
}
