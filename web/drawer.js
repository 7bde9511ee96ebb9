// The task drawer: editable title/assignee/priority/body, rendered
// markdown, dependency chips, status actions, comments, events, run
// history, worker log tail, reclaim and reassign.
import { api } from './api.js';
import { h, fmtTime, fmtDuration, fmtAge, splitList, toast } from './util.js';
import { icon } from './icons.js';
import { setMarkdown, loadMarkdown } from './markdown.js';
import { formDialog } from './dialogs.js';
import { runTimeline, runOutcome } from './timeline.js';
import { state, put, remove, cardFromDetail, nowServer } from './store.js';
import { attachmentsSection, installDropUpload } from './attachments.js';
import { reviewActions } from './review.js';
import { triageActions } from './triage.js';
import { diagnosticsSection } from './diagnostics.js';

/** Events shown in the drawer, newest first. */
const DRAWER_EVENTS = 20;
/** Worker log tail fetched by the drawer, bytes. */
const LOG_TAIL_BYTES = 16_000;
/** Status buttons offered in the drawer (running is the dispatcher's). */
const ACTION_STATUSES = ['ready', 'blocked', 'scheduled', 'done', 'archived'];

export class Drawer {
  /** handlers: {move(id, status) → Promise, open(id)} */
  constructor(el, handlers) {
    this.el = el;
    this.handlers = handlers;
    this.id = null;
    this.detail = null;
    this.editingBody = false;
    this.seq = 0;
    installDropUpload(el, { taskId: () => this.id, onChanged: () => this.refresh() });
    // Esc closes the drawer from anywhere, unless a modal dialog or a field has it.
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.id || document.querySelector('dialog[open]')) return;
      if (e.target.closest?.('textarea,input,select,.create-form')) return;
      this.close();
    });
  }

  isOpen(id) { return this.id !== null && (id === undefined || this.id === id); }

  async open(id) {
    if (this.id !== id) this.editingBody = false;
    this.id = id;
    this.el.hidden = false;
    document.body.classList.add('drawer-open');
    await this.refresh();
    this.el.querySelector('.drawer-close')?.focus({ preventScroll: true });
  }

  close() {
    const id = this.id;
    this.id = null;
    this.detail = null;
    this.editingBody = false;
    this.el.hidden = true;
    this.el.replaceChildren();
    document.body.classList.remove('drawer-open');
    const card = document.querySelector(`.card[data-id="${CSS.escape(id || '')}"]`);
    card?.focus({ preventScroll: true });
  }

  /** Re-read the task (live updates call this) without losing drafts. */
  async refresh() {
    const id = this.id;
    if (!id) return;
    const seq = ++this.seq;
    let detail;
    try {
      // Markdown is drawn in one go, not as plain text first (plain text
      // stays if its libraries cannot be loaded).
      [detail] = await Promise.all([api.task(id), loadMarkdown().catch(() => {})]);
    } catch (e) {
      if (seq !== this.seq || this.id !== id) return;
      if (e.status === 404) {
        toast(`Task ${id} no longer exists`, 'warn');
        remove(id);
        this.close();
      } else toast(`Cannot load ${id}: ${e.message}`, 'error');
      return;
    }
    if (seq !== this.seq || this.id !== id) return;
    this.detail = detail;
    put(cardFromDetail(detail));
    this.render();
  }

  render() {
    const d = this.detail;
    const t = d.task;
    // Drafts survive a live re-render.
    const keep = {
      comment: this.el.querySelector('textarea[name=comment]')?.value || '',
      body: this.el.querySelector('textarea[name=body]')?.value,
      focus: document.activeElement && this.el.contains(document.activeElement) ? document.activeElement.name : null,
      scroll: this.el.scrollTop,
      log: this.el.querySelector('.log-tail')?.textContent,
      // Fields the user has typed in but not yet saved.
      dirty: [...this.el.querySelectorAll('[data-dirty]')].map((i) => [i.name, i.value]),
      // Ids typed into the add-dependency fields, not yet submitted.
      deps: [...this.el.querySelectorAll('input[name^="add-"]')].map((i) => [i.name, i.value]),
    };

    const title = h('input', { name: 'title', class: 'drawer-title', value: t.title, 'aria-label': 'Title' });
    title.addEventListener('change', () => this.save({ title: title.value }));
    title.addEventListener('keydown', (e) => { if (e.key === 'Enter') title.blur(); });

    const assignee = h('input', { name: 'assignee', list: 'assignee-list', value: t.assignee || '', placeholder: 'unassigned', 'aria-label': 'Assignee' });
    assignee.addEventListener('change', () => this.save({ assignee: assignee.value.trim() }));
    const priority = h('input', { name: 'priority', type: 'number', step: '1', value: String(t.priority), 'aria-label': 'Priority' });
    priority.addEventListener('change', () => this.save({ priority: Number(priority.value) || 0 }));

    const now = nowServer();
    const facts = h('dl', { class: 'facts' },
      fact('Status', h('span', { class: `status-pill st-${t.status}` }, t.status)),
      fact('Assignee', assignee),
      fact('Priority', priority),
      t.tenant ? fact('Tenant', t.tenant) : null,
      fact('Workspace', `${t.workspace_kind}${t.workspace_path ? `: ${t.workspace_path}` : ''}`),
      t.skills?.length ? fact('Skills', t.skills.join(', ')) : null,
      fact('Created', `${fmtAge(now - t.created_at)} ago by ${t.created_by || '?'}`),
      t.started_at ? fact('Started', `${fmtAge(now - t.started_at)} ago`) : null,
      t.completed_at ? fact('Completed', `${fmtAge(now - t.completed_at)} ago`) : null,
      t.last_failure_error ? fact('Last failure', h('span', { class: 'error-text' }, t.last_failure_error)) : null);

    const actions = h('div', { class: 'status-actions', role: 'group', 'aria-label': 'Move to' },
      ACTION_STATUSES.filter((s) => s !== t.status).map((s) =>
        h('button', { type: 'button', class: `st-btn st-${s}`, dataset: { to: s }, onclick: () => this.handlers.move(t.id, s) }, icon('arrow-right'), s)),
      t.status === 'running' || t.claim_lock
        ? h('button', { type: 'button', class: 'danger', onclick: () => this.reclaim() }, 'Reclaim') : null,
      reviewActions(d, { complete: (id, summary) => api.updateTask(id, { status: 'done', summary }), refresh: () => this.refresh() }),
      triageActions(t, { refresh: () => this.refresh() }),
      h('button', { type: 'button', onclick: () => this.reassign() }, 'Reassign…'),
      h('button', { type: 'button', class: 'danger', onclick: () => this.deleteTask() }, 'Delete'));

    const bodySection = this.bodySection(t, keep);

    const comments = h('section', { class: 'drawer-section comments' },
      h('h3', {}, `Comments (${d.comments.length})`),
      d.comments.map((c) => {
        const bodyEl = h('div', { class: 'md comment-body' });
        setMarkdown(bodyEl, c.body);
        return h('div', { class: 'comment', dataset: { id: c.id } },
          h('div', { class: 'comment-head' }, h('strong', {}, c.author), ' · ', h('time', { title: fmtTime(c.created_at) }, `${fmtAge(now - c.created_at)} ago`)),
          bodyEl);
      }),
      this.commentForm(keep.comment));

    const result = t.result || t.latest_summary
      ? h('section', { class: 'drawer-section' }, h('h3', {}, 'Result'), mdBlock(t.result || t.latest_summary)) : null;

    const el = this.el;
    el.replaceChildren(...[
      h('div', { class: 'drawer-head' },
        h('span', { class: 'card-id' }, t.id),
        h('button', { type: 'button', class: 'drawer-close icon-btn', 'aria-label': 'Close', onclick: () => this.close() }, icon('x'))),
      title, facts, actions,
      diagnosticsSection({ task: t, refresh: () => this.refresh(), reassign: () => this.reassign(),
        focusComment: () => this.el.querySelector('textarea[name=comment]')?.focus() }),
      bodySection, result,
      this.depsSection(d),
      comments,
      attachmentsSection(d.attachments || [], { taskId: t.id, now, onChanged: () => this.refresh() }),
      this.runsSection(d.runs, now),
      this.logSection(keep.log),
      this.eventsSection(d.events, now)].filter(Boolean));
    el.querySelectorAll('.drawer-title, .facts input').forEach((i) => {
      i.addEventListener('input', () => { i.dataset.dirty = '1'; });
      i.addEventListener('change', () => { delete i.dataset.dirty; });
      // A draft restored by a live re-render is not a user edit to the
      // browser, so leaving the field fires no change: save it on blur.
      i.addEventListener('blur', () => { if (i.dataset.dirty) i.dispatchEvent(new Event('change')); });
    });
    el.scrollTop = keep.scroll;
    if (keep.focus) el.querySelector(`[name="${keep.focus}"]`)?.focus({ preventScroll: true });
    // After focusing, so leaving the field still fires its change (save).
    for (const [name, value] of keep.deps) {
      const input = el.querySelector(`input[name="${name}"]`);
      if (input) input.value = value;
    }
    for (const [name, value] of keep.dirty) {
      const input = el.querySelector(`[name="${name}"]`);
      if (input) { input.value = value; input.dataset.dirty = '1'; }
    }
  }

  bodySection(t, keep) {
    const section = h('section', { class: 'drawer-section body-section' });
    const head = h('h3', {}, 'Description ');
    if (this.editingBody) {
      const ta = h('textarea', { name: 'body', rows: '10', 'aria-label': 'Body (markdown)' });
      ta.value = keep.body ?? t.body ?? '';
      const saveBtn = h('button', { type: 'button', class: 'primary', onclick: async () => {
        if (await this.save({ body: ta.value })) { this.editingBody = false; this.render(); }
      } }, 'Save');
      const cancel = h('button', { type: 'button', onclick: () => { this.editingBody = false; this.render(); } }, 'Cancel');
      section.append(head, ta, h('div', { class: 'row' }, saveBtn, cancel));
    } else {
      head.append(h('button', { type: 'button', class: 'link-btn', onclick: () => { this.editingBody = true; this.render(); this.el.querySelector('textarea[name=body]')?.focus(); } }, 'Edit'));
      section.append(head, t.body ? mdBlock(t.body) : h('p', { class: 'muted' }, 'No description.'));
    }
    return section;
  }

  commentForm(draft) {
    const ta = h('textarea', { name: 'comment', rows: '3', placeholder: 'Add a comment (markdown)', 'aria-label': 'New comment' });
    ta.value = draft;
    const form = h('form', { class: 'comment-form' }, ta, h('button', { type: 'submit', class: 'primary' }, 'Comment'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = ta.value.trim();
      if (!body) return;
      try {
        await api.comment(this.id, body);
        ta.value = '';
        await this.refresh();
      } catch (err) { toast(`Comment failed: ${err.message}`, 'error'); }
    });
    ta.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
    return form;
  }

  depsSection(d) {
    const id = this.id;
    const chip = (other, role) => {
      const known = state.tasks.get(other);
      const parent = role === 'parent' ? other : id;
      const child = role === 'parent' ? id : other;
      return h('span', { class: `dep-chip st-${known?.status || 'unknown'}`, dataset: { id: other, role } },
        h('button', { type: 'button', class: 'link-btn', title: known?.title || other, onclick: () => this.handlers.open(other) },
          `${other}${known ? ` · ${known.title.slice(0, 30)}` : ''}`),
        h('button', { type: 'button', class: 'chip-x icon-btn', 'aria-label': `Remove ${role} ${other}`, onclick: () => this.unlink(parent, child) }, icon('x')));
    };
    const adder = (role) => {
      const input = h('input', { name: `add-${role}`, placeholder: 't_… id', size: '12', 'aria-label': `Add ${role} id` });
      const form = h('form', { class: 'dep-add' }, input, h('button', { type: 'submit' }, `Add ${role}`));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const ids = splitList(input.value);
        if (!ids.length) return;
        for (const other of ids) {
          try {
            if (role === 'parent') await api.link(other, id); else await api.link(id, other);
          } catch (err) { toast(`Cannot link ${other}: ${err.message}`, 'error'); return; }
        }
        input.value = '';
        await this.refresh();
        for (const other of ids) this.handlers.touch(other);
      });
      return form;
    };
    return h('section', { class: 'drawer-section deps' },
      h('h3', {}, 'Dependencies'),
      h('div', { class: 'dep-row' }, h('span', { class: 'dep-label' }, 'Parents'), d.links.parents.map((p) => chip(p, 'parent')), adder('parent')),
      h('div', { class: 'dep-row' }, h('span', { class: 'dep-label' }, 'Children'), d.links.children.map((c) => chip(c, 'child')), adder('child')));
  }

  runsSection(runs, now) {
    if (!runs.length) return h('section', { class: 'drawer-section' }, h('h3', {}, 'Runs'), h('p', { class: 'muted' }, 'Never ran.'));
    const rows = [...runs].reverse().map((r) => h('tr', { class: `run run-${runOutcome(r)}` },
      h('td', {}, `#${r.id}`),
      h('td', {}, r.profile || ''),
      h('td', {}, runOutcome(r)),
      h('td', { title: fmtTime(r.started_at) }, `${fmtAge(now - r.started_at)} ago`),
      h('td', {}, fmtDuration((r.ended_at || now) - r.started_at) + (r.ended_at ? '' : ' …')),
      h('td', { class: 'error-text' }, r.error || r.summary || '')));
    return h('section', { class: 'drawer-section' }, h('h3', {}, `Runs (${runs.length})`),
      runTimeline(runs, now),
      h('div', { class: 'table-wrap' }, h('table', { class: 'runs' },
        h('thead', {}, h('tr', {}, ['Run', 'Profile', 'Outcome', 'Started', 'Elapsed', 'Error / summary'].map((x) => h('th', {}, x)))),
        h('tbody', {}, rows))));
  }

  logSection(previous) {
    const pre = h('pre', { class: 'log-tail', tabindex: '0', 'aria-label': 'Worker log tail' });
    pre.textContent = previous ?? '';
    const load = async () => {
      try {
        const log = await api.log(this.id, LOG_TAIL_BYTES);
        pre.textContent = log.exists ? (log.truncated ? '…\n' : '') + log.content : '(no worker log yet)';
        pre.scrollTop = pre.scrollHeight;
      } catch (e) { pre.textContent = `(cannot read log: ${e.message})`; }
    };
    if (previous === undefined) load();
    return h('section', { class: 'drawer-section' },
      h('h3', {}, 'Worker log ', h('button', { type: 'button', class: 'link-btn', onclick: load }, 'Refresh')), pre);
  }

  eventsSection(events, now) {
    const last = events.slice(-DRAWER_EVENTS).reverse();
    return h('section', { class: 'drawer-section' }, h('h3', {}, `Events (last ${last.length} of ${events.length})`),
      h('ol', { class: 'events' }, last.map((e) => h('li', {},
        h('span', { class: 'ev-kind' }, e.kind), ' ',
        h('span', { class: 'muted', title: fmtTime(e.created_at) }, `${fmtAge(now - e.created_at)} ago`), ' ',
        e.payload && Object.keys(e.payload).length ? h('code', { class: 'ev-payload' }, JSON.stringify(e.payload).slice(0, 200)) : null))));
  }

  // ---- actions -------------------------------------------------------------

  async save(patch) {
    try {
      const res = await api.updateTask(this.id, patch);
      const old = state.tasks.get(this.id) || {};
      put({ ...old, ...res.task });
      await this.refresh();
      return true;
    } catch (e) {
      toast(`Update failed: ${e.message}`, 'error');
      await this.refresh();
      return false;
    }
  }

  async unlink(parent, child) {
    try {
      await api.unlink(parent, child);
      await this.refresh();
      this.handlers.touch(parent === this.id ? child : parent);
    } catch (e) { toast(`Cannot remove dependency: ${e.message}`, 'error'); }
  }

  async reclaim() {
    const r = await formDialog({ title: 'Reclaim task?', message: `Release ${this.id}'s claim and end its worker; the task goes back to ready.`,
      fields: [{ name: 'reason', label: 'Reason (optional)' }], submitLabel: 'Reclaim', danger: true });
    if (!r) return;
    try { await api.reclaim(this.id, r.reason || undefined); toast(`${this.id} reclaimed`); await this.refresh(); } catch (e) { toast(`Reclaim refused: ${e.message}`, 'error'); }
  }

  async reassign() {
    const t = this.detail.task;
    const r = await formDialog({ title: 'Reassign task', message: `Give ${t.id} to another profile.`,
      fields: [{ name: 'profile', label: 'Profile (empty = unassign)', value: t.assignee || '', list: 'assignee-list' },
        { name: 'reclaim_first', label: 'Reclaim first if running', type: 'checkbox', value: t.status === 'running' },
        { name: 'reason', label: 'Reason (optional)' }], submitLabel: 'Reassign' });
    if (!r) return;
    try { await api.reassign(t.id, r.profile.trim(), r.reclaim_first, r.reason || undefined); await this.refresh(); } catch (e) { toast(`Reassign refused: ${e.message}`, 'error'); }
  }

  async deleteTask() {
    const id = this.id;
    const r = await formDialog({ title: 'Delete task?', message: `Delete ${id} with its comments, events and runs? This cannot be undone.`, submitLabel: 'Delete', danger: true });
    if (!r) return;
    try { await api.deleteTask(id); remove(id); this.close(); } catch (e) { toast(`Delete failed: ${e.message}`, 'error'); }
  }
}

function fact(label, value) {
  return h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value));
}

function mdBlock(text) {
  const el = h('div', { class: 'md' });
  setMarkdown(el, text);
  return el;
}
