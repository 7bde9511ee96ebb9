// The board: one column per status, virtualized card lists, Running split
// into lanes by profile, inline create forms, pointer drag and drop (mouse
// and touch) and keyboard navigation/moves.
//
// The whole flow fits a 1366 px screen: columns share the width (style.css),
// an empty column collapses to a slim labelled strip (still a drop target;
// its chevron expands it), and Done shows its newest cards with the older
// ones folded behind an "N more" button at the column's foot.
//
// A big board arrives one page per column (GET /board?limit=…): a column
// with more on the server ends in a sentinel row, and when that row comes
// near the column's viewport (IntersectionObserver) the next page is
// fetched (handlers.loadMore). Counts are the server's totals.
import { h, fmtAge, splitList } from './util.js';
import { icon } from './icons.js';
import { state, columns, visibleStatuses, nowServer, CREATE_COLUMNS, subscribe, ARCHIVED, columnTotal, nextCursor } from './store.js';
import { VirtualList } from './vlist.js';
import { diagnosticBadge } from './diagnostics.js';

/** Row heights in px (cards are fixed-size so the list can be virtualized). */
export const CARD_HEIGHT = 104;
export const LANE_HEIGHT = 30;
/** The sentinel row at the end of a column with more cards on the server. */
export const MORE_HEIGHT = 40;
/** Fetch the next page while the sentinel is this close to the column's viewport. */
const MORE_MARGIN_PX = 600;
/** Done shows this many of its newest cards; the older ones are folded. */
export const DONE_SHOWN = 8;
/** Pointer travel before a press becomes a drag. */
const DRAG_THRESHOLD_PX = 6;
/** Touch: hold this long before dragging, so a swipe still scrolls. */
const TOUCH_HOLD_MS = 300;
/** While dragging near the board's side edges, scroll it this much per move. */
const EDGE_SCROLL_ZONE_PX = 60;
const EDGE_SCROLL_STEP_PX = 24;

const LABELS = {
  triage: 'Triage', todo: 'Todo', scheduled: 'Scheduled', ready: 'Ready', running: 'Running',
  blocked: 'Blocked', review: 'Review', done: 'Done', archived: 'Archived',
};

export class Board {
  /** handlers: {open(id), move(id, status), create(status, values), moveMenu(id), selectionChanged(), loadMore(status)} */
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.cols = new Map();
    this.shownStatuses = '';
    /** Empty columns the user expanded (empty ones are strips otherwise). */
    this.expanded = new Set();
    /** Whether Done shows its older cards too. */
    this.doneUnfolded = false;
    subscribe(() => this.update());
    this.installPointer();
    this.installKeyboard();
    // Ages on cards tick once a minute without touching the data.
    setInterval(() => this.refreshAges(), 30_000);
    // Column heights change with the window: redraw what is now in view.
    new ResizeObserver(() => { for (const col of this.cols.values()) col.list.schedule(); }).observe(root);
  }

  /** (Re)build the columns when the set of statuses changes, then fill them. */
  update() {
    const statuses = visibleStatuses();
    if (statuses.join() !== this.shownStatuses) this.build(statuses);
    const cols = columns();
    let all = 0;
    for (const [status, col] of this.cols) {
      const tasks = cols.get(status) || [];
      const total = columnTotal(status, tasks.length);
      all += total;
      col.count.textContent = String(total);
      col.section.classList.toggle('empty', total === 0);
      // Before filling the list, so it measures the column as shown.
      this.setCollapsed(col, total === 0 && !this.expanded.has(status) && !col.createSlot.firstChild);
      col.list.setItems(this.rows(status, tasks));
      if (col.fold) this.updateFold(col, total);
    }
    document.getElementById('board-count').textContent = `${state.pages.size ? all : state.tasks.size} tasks`;
  }

  build(statuses) {
    this.shownStatuses = statuses.join();
    this.root.replaceChildren();
    this.cols.clear();
    for (const status of statuses) {
      const label = LABELS[status] || status;
      const count = h('span', { class: 'col-count' }, '0');
      const addBtn = CREATE_COLUMNS.has(status)
        ? h('button', { type: 'button', class: 'col-add icon-btn', title: `New task in ${label}`,
          'aria-label': `New task in ${label}`, onclick: () => this.toggleCreate(status) }, icon('plus'))
        : null;
      // Shown on empty columns only: expands the strip, or folds the column back into one.
      const toggle = h('button', { type: 'button', class: 'col-toggle icon-btn', 'aria-expanded': 'true',
        onclick: (e) => { e.stopPropagation(); this.toggleColumn(status); } });
      const head = h('header', { class: 'col-head' },
        toggle, h('h2', { id: `col-${status}-title` }, label), count, addBtn);
      const createSlot = h('div', { class: 'create-slot' });
      const scroller = h('div', { class: 'col-scroll', tabindex: '-1' });
      // Done's foot: always in view, whatever the column's scroll.
      const fold = status === 'done'
        ? h('button', { type: 'button', class: 'fold-toggle', hidden: true,
          onclick: () => { this.doneUnfolded = !this.doneUnfolded; this.update(); } })
        : null;
      const section = h('section', { class: `column col-${status}`, dataset: { status },
        'aria-labelledby': `col-${status}-title` }, head, createSlot, scroller, fold);
      // A click anywhere on a strip expands it (a drop on it is swallowed before this).
      section.addEventListener('click', (e) => {
        if (section.classList.contains('collapsed') && !e.target.closest('button')) this.toggleColumn(status);
      });
      this.root.append(section);
      const list = new VirtualList(scroller, (item) => this.rowEl(item));
      // The sentinel row asks for the next page as it nears the viewport.
      const more = new IntersectionObserver((entries) => {
        for (const e of entries) if (!e.target.isConnected) more.unobserve(e.target);
        if (entries.some((e) => e.isIntersecting && e.target.isConnected)) this.handlers.loadMore?.(status);
      }, { root: scroller, rootMargin: `${MORE_MARGIN_PX}px 0px` });
      this.cols.set(status, { section, count, list, createSlot, status, toggle, label, fold, collapsed: null, more });
    }
  }

  /** Show column `col` as a slim strip (collapsed) or at full width. */
  setCollapsed(col, collapsed) {
    if (col.collapsed === collapsed) return;
    col.collapsed = collapsed;
    col.section.classList.toggle('collapsed', collapsed);
    col.toggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
    const what = `${col.label} (empty)`;
    col.toggle.setAttribute('aria-label', collapsed ? `Expand ${what}` : `Collapse ${what}`);
    col.toggle.title = collapsed ? `Expand ${col.label}` : `Collapse ${col.label}`;
    col.toggle.replaceChildren(icon(collapsed ? 'chevron-right' : 'chevron-left'));
  }

  /** Expand an empty column's strip, or fold an expanded empty column back. */
  toggleColumn(status) {
    const col = this.cols.get(status);
    if (col.collapsed) this.expanded.add(status);
    else {
      this.expanded.delete(status);
      col.createSlot.replaceChildren();
    }
    this.update();
    if (!col.collapsed) col.toggle.focus({ preventScroll: true });
  }

  rowEl(item) {
    if (item.kind === 'more') return this.moreEl(item);
    return item.kind === 'lane' ? this.laneEl(item) : this.cardEl(item.task);
  }

  /** The sentinel at the end of a column that has more cards on the server. */
  moreEl(item) {
    const el = h('div', { class: 'col-more', role: 'listitem', dataset: { status: item.status } }, 'Loading more…');
    this.cols.get(item.status)?.more.observe(el);
    return el;
  }

  /** A page arrived or was refused: observe the sentinel again if it is still there. */
  recheckMore(status) {
    const col = this.cols.get(status);
    const el = col?.list.els.get(`more:${status}`);
    if (el) { col.more.unobserve(el); col.more.observe(el); }
  }

  /** Done's "N more" / "Show fewer" button, for a column of `total` cards. */
  updateFold(col, total) {
    const hidden = this.doneUnfolded ? 0 : Math.max(0, total - DONE_SHOWN);
    const text = hidden ? `${hidden} more` : 'Show fewer';
    col.fold.hidden = total <= DONE_SHOWN;
    if (col.fold.dataset.text === text) return;
    col.fold.dataset.text = text;
    col.fold.setAttribute('aria-expanded', hidden ? 'false' : 'true');
    col.fold.title = hidden ? `Show the ${hidden} older done tasks` : `Show only the newest ${DONE_SHOWN}`;
    col.fold.replaceChildren(icon(hidden ? 'chevron-down' : 'chevron-up'), text);
  }

  /** Rows of one column: cards, with lane headers in Running when lanes are on. */
  rows(status, tasks) {
    const card = (t) => ({ key: t.id, v: `${t._sig}:${state.selected.has(t.id) ? 1 : 0}`, height: CARD_HEIGHT, kind: 'card', task: t });
    if (status === 'done' && !this.doneUnfolded) return tasks.slice(0, DONE_SHOWN).map(card);
    const out = this.cardRows(status, tasks, card);
    // A stable version: the same element stays while pages arrive.
    if (nextCursor(status)) out.push({ key: `more:${status}`, v: 'more', height: MORE_HEIGHT, kind: 'more', status });
    return out;
  }

  cardRows(status, tasks, card) {
    if (status !== 'running' || !state.lanes) return tasks.map(card);
    const lanes = new Map();
    for (const t of tasks) {
      const k = t.assignee || '(unassigned)';
      if (!lanes.has(k)) lanes.set(k, []);
      lanes.get(k).push(t);
    }
    const out = [];
    for (const name of [...lanes.keys()].sort()) {
      const list = lanes.get(name);
      out.push({ key: `lane:${name}`, v: `${name}:${list.length}`, height: LANE_HEIGHT, kind: 'lane', name, count: list.length });
      for (const t of list) out.push(card(t));
    }
    return out;
  }

  laneEl(item) {
    return h('div', { class: 'lane-head', role: 'listitem' }, h('span', {}, item.name), h('span', { class: 'col-count' }, String(item.count)));
  }

  cardEl(t) {
    const selected = state.selected.has(t.id);
    const warn = warningOf(t);
    const age = cardAge(t);
    const meta = [];
    if (t.assignee) meta.push(h('span', { class: 'chip assignee', title: 'Assignee' }, `@${t.assignee}`));
    if (t.tenant) meta.push(h('span', { class: 'chip tenant', title: 'Tenant' }, `#${t.tenant}`));
    if (t.comment_count) meta.push(h('span', { class: 'chip', title: `${t.comment_count} comments` }, icon('message-square'), String(t.comment_count)));
    const lc = t.link_counts || {};
    if (lc.parents || lc.children) {
      meta.push(h('span', { class: 'chip links', title: `${lc.parents || 0} parents, ${lc.children || 0} children` },
        icon('arrow-up'), String(lc.parents || 0), icon('arrow-down'), String(lc.children || 0)));
    }
    if (t.progress) {
      meta.push(h('span', { class: 'chip progress', title: 'Children done' }, icon('list-checks'), `${t.progress.done}/${t.progress.total}`));
    }
    return h('article', {
      class: `card${selected ? ' selected' : ''}${t._pending ? ' pending' : ''}`,
      tabindex: '0', role: 'listitem', dataset: { id: t.id, status: t.status },
      'aria-label': `${t.title} (${t.id}, ${t.status})`, 'aria-selected': selected ? 'true' : 'false',
    },
    h('div', { class: 'card-top' },
      h('input', { type: 'checkbox', class: 'card-select', checked: selected, 'aria-label': `Select ${t.id}`, tabindex: '-1' }),
      h('span', { class: 'card-id' }, t.id),
      t.priority ? h('span', { class: `prio ${t.priority > 0 ? 'prio-hi' : 'prio-lo'}`, title: 'Priority' }, `P${t.priority}`) : null,
      warn ? h('span', { class: `warn warn-${warn.severity}${warn.count ? ' diag-badge' : ''}`, title: warn.text, 'aria-label': warn.text }, icon('triangle-alert'), warn.count ? String(warn.count) : null) : null,
      h('span', { class: 'age', title: age.title, dataset: { age: age.base ?? '' } }, age.text)),
    h('div', { class: 'card-title' }, t.title),
    h('div', { class: 'card-meta' }, meta));
  }

  refreshAges() {
    for (const el of this.root.querySelectorAll('.card')) {
      const t = state.tasks.get(el.dataset.id);
      const span = el.querySelector('.age');
      if (t && span) span.textContent = cardAge(t).text;
    }
  }

  // ---- inline create ------------------------------------------------------

  toggleCreate(status) {
    const col = this.cols.get(status);
    if (col.createSlot.firstChild) {
      col.createSlot.replaceChildren();
      this.update();
      return;
    }
    const title = h('input', { name: 'title', placeholder: status === 'triage' ? 'Rough idea…' : 'Task title', required: true, 'aria-label': 'Title' });
    const assignee = h('input', { name: 'assignee', list: 'assignee-list', placeholder: 'assignee', 'aria-label': 'Assignee' });
    const priority = h('input', { name: 'priority', type: 'number', step: '1', value: '0', 'aria-label': 'Priority' });
    const parents = h('input', { name: 'parents', placeholder: 'parent ids (t_…, comma separated)', 'aria-label': 'Parents' });
    const skills = h('input', { name: 'skills', placeholder: 'skills (comma separated)', 'aria-label': 'Skills' });
    const wsKind = h('select', { name: 'workspace_kind', 'aria-label': 'Workspace kind' },
      h('option', { value: '' }, 'workspace: board default'), h('option', { value: 'scratch' }, 'scratch'),
      h('option', { value: 'dir' }, 'dir:'), h('option', { value: 'worktree' }, 'worktree'));
    const wsPath = h('input', { name: 'workspace_path', placeholder: '/absolute/path (dir/worktree)', 'aria-label': 'Workspace path' });
    const body = h('textarea', { name: 'body', rows: '2', placeholder: 'Description (markdown)', 'aria-label': 'Body' });
    const more = h('details', { class: 'create-more' }, h('summary', {}, 'More'), body, parents, skills, wsKind, wsPath);
    const cancel = h('button', { type: 'button', onclick: () => { col.createSlot.replaceChildren(); this.update(); } }, 'Cancel');
    const form = h('form', { class: 'create-form', 'aria-label': `Create task in ${LABELS[status]}` },
      title, h('div', { class: 'row' }, assignee, priority), more,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Create'), cancel));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!title.value.trim()) return title.focus();
      const values = {
        title: title.value.trim(),
        body: body.value || undefined,
        assignee: assignee.value.trim() || undefined,
        priority: Number(priority.value) || 0,
        parents: splitList(parents.value),
        skills: splitList(skills.value),
        workspace_kind: wsKind.value || undefined,
        workspace_path: wsPath.value.trim() || undefined,
        triage: status === 'triage',
      };
      if (!values.skills.length) delete values.skills;
      const ok = await this.handlers.create(status, values);
      if (ok) {
        title.value = '';
        body.value = '';
        title.focus();
      }
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { col.createSlot.replaceChildren(); this.update(); }
    });
    col.createSlot.append(form);
    this.update(); // a strip opens for its form
    title.focus();
  }

  // ---- selection ----------------------------------------------------------

  toggleSelect(id, on = !state.selected.has(id)) {
    if (on) state.selected.add(id); else state.selected.delete(id);
    this.update();
    this.handlers.selectionChanged();
  }

  // ---- pointer drag and drop ---------------------------------------------

  installPointer() {
    let press = null;
    const columnAt = (x, y) => document.elementFromPoint(x, y)?.closest?.('.column');
    const clearTargets = () => this.root.querySelectorAll('.drop-target').forEach((c) => c.classList.remove('drop-target'));
    const end = () => {
      if (press?.timer) clearTimeout(press.timer);
      if (press?.ghost) press.ghost.remove();
      if (press?.card) press.card.classList.remove('dragging');
      document.body.classList.remove('is-dragging');
      clearTargets();
      press = null;
    };
    this.root.addEventListener('pointerdown', (e) => {
      const card = e.target.closest('.card');
      if (!card || e.button !== 0 || e.target.closest('input,button,a,select,textarea')) return;
      press = { id: card.dataset.id, card, x: e.clientX, y: e.clientY, pointerId: e.pointerId, dragging: false, armed: e.pointerType !== 'touch' };
      if (!press.armed) press.timer = setTimeout(() => { if (press) { press.armed = true; card.classList.add('armed'); } }, TOUCH_HOLD_MS);
    });
    window.addEventListener('pointermove', (e) => {
      if (!press || e.pointerId !== press.pointerId) return;
      const dx = e.clientX - press.x, dy = e.clientY - press.y;
      if (!press.dragging) {
        if (Math.hypot(dx, dy) < DRAG_THRESHOLD_PX) return;
        if (!press.armed) { end(); return; } // a touch swipe: let it scroll
        press.dragging = true;
        const r = press.card.getBoundingClientRect();
        press.ghost = press.card.cloneNode(true);
        press.ghost.classList.add('drag-ghost');
        press.ghost.style.width = `${r.width}px`;
        press.offX = press.x - r.left;
        press.offY = press.y - r.top;
        document.body.append(press.ghost);
        press.card.classList.add('dragging');
        document.body.classList.add('is-dragging');
      }
      e.preventDefault();
      press.ghost.style.left = `${e.clientX - press.offX}px`;
      press.ghost.style.top = `${e.clientY - press.offY}px`;
      clearTargets();
      const col = columnAt(e.clientX, e.clientY);
      if (col) col.classList.add('drop-target');
      // Near the board's left/right edge, scroll it so far columns can be reached.
      const r = this.root.getBoundingClientRect();
      const edge = Math.min(EDGE_SCROLL_ZONE_PX, r.width / 6);
      if (e.clientX < r.left + edge) this.root.scrollLeft -= EDGE_SCROLL_STEP_PX;
      else if (e.clientX > r.right - edge) this.root.scrollLeft += EDGE_SCROLL_STEP_PX;
    }, { passive: false });
    window.addEventListener('pointerup', (e) => {
      if (!press || e.pointerId !== press.pointerId) return;
      const { id, dragging, card } = press;
      const col = dragging ? columnAt(e.clientX, e.clientY) : null;
      end();
      if (dragging) {
        // Swallow the click that follows a drag.
        const stop = (ev) => { ev.stopPropagation(); ev.preventDefault(); };
        window.addEventListener('click', stop, { capture: true, once: true });
        setTimeout(() => window.removeEventListener('click', stop, { capture: true }), 0);
        if (col && col.dataset.status !== card.dataset.status) this.handlers.move(id, col.dataset.status);
      }
    });
    window.addEventListener('pointercancel', end);
    this.root.addEventListener('click', (e) => {
      const card = e.target.closest('.card');
      if (!card) return;
      const id = card.dataset.id;
      if (e.target.closest('.card-select') || e.ctrlKey || e.metaKey || e.shiftKey) {
        if (!e.target.closest('.card-select')) e.preventDefault();
        this.toggleSelect(id);
        return;
      }
      this.handlers.open(id);
    });
    // The drag-ghost must not trigger the browser's own touch scrolling/selection.
    this.root.addEventListener('dragstart', (e) => e.preventDefault());
  }

  // ---- keyboard -----------------------------------------------------------

  installKeyboard() {
    this.root.addEventListener('keydown', (e) => {
      const card = e.target.closest?.('.card');
      if (!card || e.target !== card) return;
      const id = card.dataset.id;
      const status = card.closest('.column').dataset.status;
      const order = [...this.cols.keys()];
      const ci = order.indexOf(status);
      if (e.key === 'Enter') { e.preventDefault(); this.handlers.open(id); }
      else if (e.key === ' ' || e.key === 'x') { e.preventDefault(); this.toggleSelect(id); this.focusCard(status, id); }
      else if (e.key === 'm' || e.key === 'ContextMenu' || (e.shiftKey && e.key === 'F10')) { e.preventDefault(); this.handlers.moveMenu(id); }
      else if (e.altKey && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
        e.preventDefault();
        const to = order[ci + (e.key === 'ArrowRight' ? 1 : -1)];
        if (to) this.handlers.move(id, to);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const list = this.cols.get(status).list;
        let i = list.indexOfKey(id);
        const step = e.key === 'ArrowDown' ? 1 : -1;
        do i += step; while (list.items[i] && list.items[i].kind !== 'card');
        list.reveal(i)?.focus();
      } else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        e.preventDefault();
        const step = e.key === 'ArrowRight' ? 1 : -1;
        for (let j = ci + step; j >= 0 && j < order.length; j += step) {
          const list = this.cols.get(order[j]).list;
          const i = list.items.findIndex((it) => it.kind === 'card');
          if (i >= 0) {
            this.cols.get(order[j]).section.scrollIntoView({ inline: 'nearest', block: 'nearest' });
            list.reveal(i)?.focus();
            break;
          }
        }
      }
    });
  }

  /** Focus the card of task `id` (after a move, for keyboard users). */
  focusCard(status, id) {
    const col = this.cols.get(status);
    if (!col) return;
    const i = col.list.indexOfKey(id);
    if (i >= 0) col.list.reveal(i)?.focus();
  }

  /** Scroll the card of task `id` into view (wherever it is); its element or null. */
  reveal(id) {
    // A card folded away in Done: unfold first.
    if (!this.doneUnfolded && state.tasks.get(id)?.status === 'done' && this.cols.get('done')?.list.indexOfKey(id) < 0) {
      this.doneUnfolded = true;
      this.update();
    }
    for (const col of this.cols.values()) {
      const i = col.list.indexOfKey(id);
      if (i >= 0) {
        col.section.scrollIntoView({ inline: 'nearest', block: 'nearest' });
        return col.list.reveal(i);
      }
    }
    return null;
  }

  columnIds(status) {
    return (this.cols.get(status)?.list.items || []).filter((it) => it.kind === 'card').map((it) => it.key);
  }

  cardElement(id) {
    for (const col of this.cols.values()) {
      const el = col.list.els.get(id);
      if (el) return el;
    }
    return null;
  }
}

/** The card's age: running since start, done by time to complete, else since creation. */
function cardAge(t) {
  const now = nowServer();
  if (t.status === 'running' && t.started_at) return { text: fmtAge(now - t.started_at), title: 'Running for', base: t.started_at };
  if ((t.status === 'done' || t.status === ARCHIVED) && t.completed_at) {
    return { text: fmtAge(now - t.completed_at), title: 'Completed ago', base: t.completed_at };
  }
  return { text: fmtAge(now - t.created_at), title: 'Created ago', base: t.created_at };
}

/** Warning badge: the API's `warnings` when present, else what the task row itself tells. */
export function warningOf(t) {
  const diag = diagnosticBadge(t);
  if (diag) return diag;
  if (t.last_failure_error) return { severity: 'error', text: `Last failure: ${t.last_failure_error}` };
  if (t.consecutive_failures > 0) return { severity: 'warning', text: `${t.consecutive_failures} consecutive failure(s)` };
  if (t.status === 'ready' && !t.assignee) return { severity: 'info', text: 'Ready but unassigned: no worker will pick it up' };
  return null;
}
