// Client-side board state: one card dict per task (the shape of GET
// /board's task entries), filters, selection, and the derived column lists.
// Everything that renders reads from here; everything that changes a task
// goes through put()/remove() so the board knows what to redraw.

export const STATUSES = ['triage', 'todo', 'scheduled', 'ready', 'running', 'blocked', 'review', 'done'];
export const ARCHIVED = 'archived';
/** Moves that need a confirmation (and, for blocked, a reason). */
export const CONFIRM_MOVES = new Set(['done', 'archived', 'blocked']);
/** Columns with an inline create form; the triage one creates triage tasks. */
export const CREATE_COLUMNS = new Set(['triage', 'todo', 'ready']);
/** Latest summary preview length on cards (as GET /board). */
export const SUMMARY_PREVIEW_CHARS = 200;

let version = 0;
const listeners = new Set();

export const state = {
  tasks: new Map(),
  /** Server clock minus local clock, seconds (ages are computed against the server). */
  skew: 0,
  filters: { search: '', tenant: '', assignee: '' },
  includeArchived: false,
  lanes: true,
  selected: new Set(),
  tenants: [],
  assignees: [],
  /** Last event id applied (the WebSocket resumes from here). */
  cursor: 0,
  /**
   * Paged board (GET /board?limit=…): status -> {total, next, loadedAtSync, filters}.
   * `total` counts the column's cards on the server (filters applied),
   * `next` is the cursor of its next page (null: all loaded), `loadedAtSync`
   * how many of its cards were loaded when `total` arrived, under `filters`.
   * Empty: the whole board is loaded.
   */
  pages: new Map(),
  /** Bumped by every full load: a page fetched for an older load is dropped. */
  generation: 0,
  /** Tenants of the whole board (GET /board), loaded or not. */
  boardTenants: [],
};

/** Subscribe to changes: fn(changedIds:Set|null) — null means everything. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
let pending = new Set();
let all = false;
let scheduled = false;
/** Coalesce changes made in one turn into one listener call. */
function notify(ids) {
  if (ids === null) all = true;
  else for (const id of ids) pending.add(id);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    const changed = all ? null : pending;
    pending = new Set();
    all = false;
    scheduled = false;
    columnsCache = null;
    for (const fn of listeners) fn(changed);
  });
}

/** What a card shows: a refresh that changes none of it keeps the card's element. */
function signature(t) {
  return JSON.stringify([t.title, t.status, t.assignee, t.priority, t.tenant, t.comment_count, t.link_counts,
    t.progress, t.warnings, t.consecutive_failures, t.last_failure_error, t.created_at, t.started_at,
    t.completed_at, !!t._pending]);
}

function stamp(task) {
  task._v = ++version;
  task._sig = signature(task);
  task._search = `${task.id} ${task.title || ''} ${task.assignee || ''} ${task.tenant || ''} ${task.body || ''}`.toLowerCase();
  return task;
}

/** Replace the whole board (GET /board response). */
export function loadBoard(view) {
  state.tasks = new Map();
  state.generation++;
  for (const col of view.columns) for (const t of col.tasks) state.tasks.set(t.id, stamp(t));
  state.skew = (view.now || Date.now() / 1000) - Date.now() / 1000;
  state.cursor = view.latest_event_id || 0;
  state.assignees = view.assignees || [];
  state.boardTenants = view.tenants || [];
  state.pages = new Map();
  if (view.limit !== undefined) {
    columnsCache = null;
    const loaded = columns();
    for (const col of view.columns) {
      state.pages.set(col.name, { total: col.total, next: col.next_cursor, loadedAtSync: (loaded.get(col.name) || []).length, filters: filterKey() });
    }
  }
  for (const id of [...state.selected]) if (!state.tasks.has(id)) state.selected.delete(id);
  refreshFacets();
  notify(null);
}

/** Add the next page of one column (GET /board?column=…&cursor=…). */
export function addPage(view) {
  const col = view.columns[0];
  if (!col) return;
  for (const t of col.tasks) if (!state.tasks.has(t.id)) state.tasks.set(t.id, stamp(t));
  columnsCache = null;
  const loaded = (columns().get(col.name) || []).length;
  state.pages.set(col.name, { total: col.total, next: col.next_cursor, loadedAtSync: loaded, filters: filterKey() });
  refreshFacets();
  notify(null);
}

/** Fresh column totals (GET /board?limit=0); cursors are kept. */
export function setTotals(view) {
  if (!state.pages.size) return;
  columnsCache = null;
  const loaded = columns();
  for (const col of view.columns) {
    const p = state.pages.get(col.name);
    if (p) Object.assign(p, { total: col.total, loadedAtSync: (loaded.get(col.name) || []).length, filters: filterKey() });
  }
  notify(null);
}

/** Cards of column `status` on the server: its total, moved by what changed locally since. */
export function columnTotal(status, loadedNow) {
  const p = state.pages.get(status);
  // Filters changed since: the loaded cards that match, until the server's answer.
  if (!p || !p.next || p.filters !== filterKey()) return loadedNow;
  return Math.max(loadedNow, p.total + loadedNow - p.loadedAtSync);
}

function filterKey() {
  const f = state.filters;
  return `${f.search}\n${f.tenant}\n${f.assignee}`;
}

/** The cursor of a column's next page, or null when all of it is loaded. */
export function nextCursor(status) {
  return state.pages.get(status)?.next || null;
}

/** Insert or replace one task's card dict. */
export function put(task) {
  state.tasks.set(task.id, stamp(task));
  refreshFacets();
  notify([task.id]);
}

export function remove(id) {
  if (!state.tasks.delete(id)) return;
  state.selected.delete(id);
  refreshFacets();
  notify([id]);
}

export function touch(ids) { notify(ids); }
export function touchAll() { notify(null); }

/** Card dict from a GET /tasks/{id} detail (the board view's extra fields recomputed). */
export function cardFromDetail(detail) {
  const t = { ...detail.task };
  if (typeof t.latest_summary === 'string') t.latest_summary = t.latest_summary.slice(0, SUMMARY_PREVIEW_CHARS);
  t.link_counts = { parents: detail.links.parents.length, children: detail.links.children.length };
  t.comment_count = detail.comments.length;
  const kids = detail.child_results || [];
  t.progress = kids.length ? { done: kids.filter((c) => c.status === 'done').length, total: kids.length } : null;
  return t;
}

function refreshFacets() {
  const tenants = new Set(state.boardTenants);
  const assignees = new Set(state.assignees);
  for (const t of state.tasks.values()) {
    if (t.tenant) tenants.add(t.tenant);
    if (t.assignee) assignees.add(t.assignee);
  }
  state.tenants = [...tenants].sort();
  state.assignees = [...assignees].sort();
}

export function nowServer() {
  return Date.now() / 1000 + state.skew;
}

export function matches(t) {
  const f = state.filters;
  if (f.tenant && t.tenant !== f.tenant) return false;
  if (f.assignee && (f.assignee === '(unassigned)' ? t.assignee : t.assignee !== f.assignee)) return false;
  if (f.search) {
    for (const word of f.search.toLowerCase().split(/\s+/)) if (word && !t._search.includes(word)) return false;
  }
  return true;
}

function byPriority(a, b) {
  return (b.priority - a.priority) || (a.created_at - b.created_at) || (a.id < b.id ? -1 : 1);
}
function byCompletion(a, b) {
  return ((b.completed_at || b.created_at) - (a.completed_at || a.created_at)) || (a.id < b.id ? -1 : 1);
}

let columnsCache = null;
/** Map status -> sorted visible tasks (filters applied). */
export function columns() {
  if (columnsCache) return columnsCache;
  const out = new Map();
  for (const s of visibleStatuses()) out.set(s, []);
  for (const t of state.tasks.values()) {
    if (!matches(t)) continue;
    const list = out.get(t.status) || (t.status === ARCHIVED ? null : out.get('todo'));
    if (list) list.push(t);
  }
  for (const [s, list] of out) list.sort(s === 'done' || s === ARCHIVED ? byCompletion : byPriority);
  columnsCache = out;
  return out;
}

export function visibleStatuses() {
  return state.includeArchived ? [...STATUSES, ARCHIVED] : STATUSES;
}

export function visibleCount() {
  let n = 0;
  for (const list of columns().values()) n += list.length;
  return n;
}
