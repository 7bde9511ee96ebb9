// Entry point: loads the board, wires the toolbar, bulk bar, board
// switcher, drawer and live feed. Live events are turned into per-task
// refreshes (GET /tasks/{id}) so only what changed is redrawn; a burst
// touching many tasks falls back to one full reload.
import { api, setBoard, board, setUnauthorizedHandler, setToken } from './api.js';
import { BOARD_KEY, pageSize } from './boot.js';
import { h, toast, banner, debounce } from './util.js';
import { boardIcon, hydrateIcons } from './icons.js';
import { state, loadBoard, addPage, setTotals, put, remove, cardFromDetail, touchAll, subscribe, CONFIRM_MOVES, STATUSES, ARCHIVED } from './store.js';
import { Board } from './board.js';
import { Drawer } from './drawer.js';
import { LiveFeed } from './live.js';
import { ActivityView } from './activity.js';
import { formDialog, confirmMove } from './dialogs.js';
import { installOrchestration } from './orchestration.js';
import { loadMarkdown } from './markdown.js';

const LANES_KEY = 'kanban.lanes';
/** Above this many distinct tasks in one burst of events, reload the whole board. */
const FULL_RELOAD_THRESHOLD = 60;
/** Coalescing window for live events. */
const LIVE_DEBOUNCE_MS = 60;
/** Parallel GET /tasks/{id} while applying live events. */
const REFRESH_CONCURRENCY = 6;
/** After live changes, re-read the column totals at most this often. */
const TOTALS_DEBOUNCE_MS = 250;
/** A filter change reloads the first pages from the server after this pause. */
const FILTER_RELOAD_MS = 150;

const $ = (id) => document.getElementById(id);
let live = null;
let boardView;
let drawer;
let activityView;
/** The Activity view is shown at #activity (so it survives reloads and can be linked). */
const ACTIVITY_HASH = '#activity';
/** Tasks whose move is in flight: live refreshes must not undo the optimistic move. */
const inFlight = new Set();

// ---- loading ----------------------------------------------------------------

async function loadBoards() {
  const res = await api.boards();
  const sel = $('board-select');
  const stored = localStorage.getItem(BOARD_KEY);
  const slugs = res.boards.map((b) => b.slug);
  const chosen = stored && slugs.includes(stored) ? stored : res.current || 'default';
  // Board icons are drawn as SVG next to the switcher: an <option> can only
  // hold text, and an emoji there is a box on machines without an emoji font.
  boards = new Map(res.boards.map((b) => [b.slug, b]));
  sel.replaceChildren(...res.boards.map((b) =>
    h('option', { value: b.slug }, `${b.name || b.slug} (${b.total ?? 0})`)));
  sel.value = chosen;
  showBoardIcon(chosen);
  return chosen;
}

/** Known boards by slug (GET /boards). */
let boards = new Map();

function showBoardIcon(slug) {
  const b = boards.get(slug);
  $('board-icon').replaceChildren(boardIcon(b?.icon, b?.name || slug));
}

/** The filters of the paged board view, as query parameters (the server filters too). */
function serverFilters() {
  const f = state.filters;
  return { q: f.search, tenant: f.tenant, assignee: f.assignee };
}

/** First pages of the board chosen by api.setBoard() (the current board when none). */
function fetchBoard() {
  return api.boardView(state.includeArchived, { limit: pageSize, ...serverFilters() });
}

/** Load the first pages, or take an answer already asked for (`prefetched`). */
async function reloadBoard(prefetched) {
  const view = await (prefetched || fetchBoard());
  loadBoard(view);
  fillFilters();
  return view;
}
const reloadSoon = debounce(() => reloadBoard().catch((e) => toast(`Reload failed: ${e.message}`, 'error')), FILTER_RELOAD_MS);

/** Columns whose next page is being fetched. */
const loadingPages = new Set();
/** Fetch the next page of column `status` (its sentinel came into view). */
async function loadMore(status) {
  const cursor = state.pages.get(status)?.next;
  if (!cursor || loadingPages.has(status)) return;
  loadingPages.add(status);
  const generation = state.generation;
  try {
    const view = await api.boardView(state.includeArchived, { limit: pageSize, column: status, cursor, ...serverFilters() });
    if (generation === state.generation) addPage(view);
  } catch (e) {
    toast(`Cannot load more ${status} cards: ${e.message}`, 'error');
    return;
  } finally {
    loadingPages.delete(status);
  }
  // Still in view after this page (a tall column): ask again.
  requestAnimationFrame(() => boardView.recheckMore(status));
}

/** Re-read the column totals (paged board only). */
const refreshTotals = debounce(async () => {
  if (!state.pages.size) return;
  const generation = state.generation;
  try {
    const view = await api.boardView(state.includeArchived, { limit: 0, ...serverFilters() });
    if (generation === state.generation) setTotals(view);
  } catch { /* the next change retries */ }
}, TOTALS_DEBOUNCE_MS);

async function switchBoard(slug, prefetched) {
  localStorage.setItem(BOARD_KEY, slug);
  setBoard(slug);
  $('board-select').value = slug;
  showBoardIcon(slug);
  if (drawer.isOpen()) drawer.close();
  state.selected.clear();
  updateBulkBar();
  document.body.dataset.board = slug;
  activityView.reset();
  await reloadBoard(prefetched);
  if (live) live.stop();
  live = new LiveFeed({ cursor: state.cursor, onBatch: applyEvents, onState: showLiveState });
  document.body.dataset.ready = '1';
  // The board is drawn and answers input (read by e2e/bench/board_5k.mjs).
  if (!performance.getEntriesByName('kanban:board-ready').length) performance.mark('kanban:board-ready');
  // The drawer's markdown renderer, loaded while the user looks at the board.
  (window.requestIdleCallback || setTimeout)(() => loadMarkdown().catch(() => {}));
}

function fillFilters() {
  const fill = (sel, values, allLabel, extra = []) => {
    const current = sel.value;
    sel.replaceChildren(h('option', { value: '' }, allLabel), ...extra, ...values.map((v) => h('option', { value: v }, v)));
    sel.value = values.includes(current) || extra.some((o) => o.value === current) ? current : '';
    if (sel.value !== current) state.filters[sel.dataset.filter] = sel.value;
  };
  fill($('filter-tenant'), state.tenants, 'All tenants');
  fill($('filter-assignee'), state.assignees, 'All assignees', [h('option', { value: '(unassigned)' }, '(unassigned)')]);
  $('assignee-list').replaceChildren(...state.assignees.map((a) => h('option', { value: a })));
}
const fillFiltersSoon = debounce(fillFilters, 300);

// ---- live -------------------------------------------------------------------

function showLiveState(s) {
  const el = $('live-status');
  el.dataset.state = s;
  el.textContent = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'reconnecting…';
}

let pendingIds = new Set();
const flushEvents = debounce(() => {
  const ids = pendingIds;
  pendingIds = new Set();
  if (ids.size > FULL_RELOAD_THRESHOLD) {
    reloadBoard().catch((e) => toast(`Reload failed: ${e.message}`, 'error'));
    if (drawer.isOpen()) drawer.refresh();
    return;
  }
  refreshTasks([...ids]);
}, LIVE_DEBOUNCE_MS);

function applyEvents(events, cursor) {
  state.cursor = cursor;
  activityView.onEvents();
  for (const e of events) {
    if (e.task_id) pendingIds.add(e.task_id);
    const p = e.payload || {};
    // A link change alters both ends' counts; a child's completion, its parents' progress.
    for (const k of ['parent', 'child']) if (typeof p[k] === 'string') pendingIds.add(p[k]);
  }
  flushEvents();
}

/** Re-read these tasks and patch the board with them (404: gone). */
async function refreshTasks(ids, follow = true) {
  const queue = [...new Set(ids)];
  const parentsToo = new Set();
  const worker = async () => {
    while (queue.length) {
      const id = queue.shift();
      if (inFlight.has(id)) continue;
      try {
        const detail = await api.task(id);
        const before = state.tasks.get(id);
        const card = cardFromDetail(detail);
        if (!state.includeArchived && card.status === ARCHIVED) remove(id); else put(card);
        if (follow && before?.status !== card.status) for (const p of detail.links.parents) parentsToo.add(p);
      } catch (e) {
        if (e.status === 404) remove(id);
      }
      if (drawer.isOpen(id)) drawer.refresh();
    }
  };
  await Promise.all(Array.from({ length: REFRESH_CONCURRENCY }, worker));
  for (const id of ids) parentsToo.delete(id);
  const known = [...parentsToo].filter((p) => state.tasks.has(p));
  if (known.length) await refreshTasks(known, false);
  fillFiltersSoon();
  refreshTotals();
}

// ---- moves ------------------------------------------------------------------

async function moveTask(id, to) {
  const task = state.tasks.get(id);
  if (!task || task.status === to) return;
  let extra = {};
  if (CONFIRM_MOVES.has(to)) {
    const answer = await confirmMove(task, to);
    if (!answer) return;
    if (to === 'blocked' && answer.reason?.trim()) extra = { block_reason: answer.reason.trim() };
    if (to === 'done' && answer.summary?.trim()) extra = { summary: answer.summary.trim() };
  }
  const before = state.tasks.get(id);
  inFlight.add(id);
  put({ ...before, status: to, _pending: true });
  try {
    const res = await api.updateTask(id, { status: to, ...extra });
    inFlight.delete(id);
    const merged = { ...before, ...res.task };
    delete merged._pending;
    if (merged.status === ARCHIVED && !state.includeArchived) remove(id); else put(merged);
    boardView.focusCard(merged.status, id);
    refreshTasks([id]);
  } catch (e) {
    inFlight.delete(id);
    // Snap back, and say why the API refused.
    put({ ...before });
    const el = boardView.cardElement(id);
    el?.classList.add('snapback');
    toast(`Cannot move ${id} to ${to}: ${e.message}`, 'error', 9000);
  }
  if (drawer.isOpen(id)) drawer.refresh();
}

async function moveMenu(id) {
  const t = state.tasks.get(id);
  if (!t) return;
  const targets = [...STATUSES, ARCHIVED].filter((s) => s !== t.status);
  const r = await formDialog({ title: 'Move task', message: `Move ${id} “${t.title}” to:`,
    fields: [{ name: 'to', label: 'Column', type: 'select', options: targets }], submitLabel: 'Move' });
  if (r) await moveTask(id, r.to);
}

async function createTask(status, values) {
  try {
    const res = await api.createTask(values);
    put({ ...res.task, link_counts: { parents: values.parents.length, children: 0 }, comment_count: 0, progress: null });
    if (res.warning) banner(res.warning, 'warn');
    if (!values.triage && res.task.status !== status) toast(`${res.task.id} created in ${res.task.status}`);
    refreshTasks([res.task.id]);
    return true;
  } catch (e) {
    toast(`Create failed: ${e.message}`, 'error');
    return false;
  }
}

// ---- bulk -------------------------------------------------------------------

function updateBulkBar() {
  const n = state.selected.size;
  $('bulk-bar').hidden = n === 0;
  $('bulk-count').textContent = `${n} selected`;
}

async function runBulk(body) {
  const ids = [...state.selected];
  if (!ids.length) return;
  try {
    const res = await api.bulk({ ids, ...body });
    const failed = res.results.filter((r) => !r.ok);
    if (failed.length) toast(`${failed.length} of ${ids.length} failed: ${failed.map((f) => `${f.id}: ${f.error}`).join('; ')}`, 'error', 12000);
    else toast(`Updated ${ids.length} task(s)`);
    state.selected.clear();
    updateBulkBar();
    await refreshTasks(ids);
    touchAll();
  } catch (e) { toast(`Bulk update failed: ${e.message}`, 'error'); }
}

function installBulkBar() {
  $('bulk-apply').addEventListener('click', async () => {
    const body = {};
    const st = $('bulk-status').value;
    const as = $('bulk-assignee').value;
    const pr = $('bulk-priority').value;
    if (st) body.status = st;
    if (as.trim()) body.assignee = as.trim();
    if (pr !== '') body.priority = Number(pr);
    if (!Object.keys(body).length) return toast('Choose a status, assignee or priority first', 'warn');
    if (st && CONFIRM_MOVES.has(st)) {
      const ok = await formDialog({ title: `Move ${state.selected.size} task(s) to ${st}?`, submitLabel: 'Apply', danger: true });
      if (!ok) return;
    }
    await runBulk(body);
  });
  $('bulk-archive').addEventListener('click', async () => {
    const ok = await formDialog({ title: `Archive ${state.selected.size} task(s)?`, submitLabel: 'Archive', danger: true });
    if (ok) await runBulk({ archive: true });
  });
  $('bulk-clear').addEventListener('click', () => { state.selected.clear(); updateBulkBar(); touchAll(); });
}

// ---- views ------------------------------------------------------------------

/** Show the board or the Activity view (the filters and bulk bar belong to the board). */
function setView(view) {
  const activity = view === 'activity';
  document.body.dataset.view = activity ? 'activity' : 'board';
  $('board').hidden = activity;
  for (const tab of document.querySelectorAll('.view-tabs [role=tab]')) {
    tab.setAttribute('aria-selected', String(tab.dataset.view === document.body.dataset.view));
  }
  if ((location.hash === ACTIVITY_HASH) !== activity) {
    history.replaceState(null, '', location.pathname + location.search + (activity ? ACTIVITY_HASH : ''));
  }
  if (activity) activityView.show(); else activityView.hide();
}

// ---- toolbar ----------------------------------------------------------------

function installToolbar() {
  // Loaded cards filter at once; the server then sends the first matching pages.
  const search = debounce(() => { state.filters.search = $('filter-search').value.trim(); touchAll(); reloadSoon(); }, 120);
  $('filter-search').addEventListener('input', search);
  $('filter-tenant').dataset.filter = 'tenant';
  $('filter-assignee').dataset.filter = 'assignee';
  for (const id of ['filter-tenant', 'filter-assignee']) {
    $(id).addEventListener('change', (e) => { state.filters[e.target.dataset.filter] = e.target.value; touchAll(); reloadSoon(); });
  }
  $('toggle-archived').addEventListener('change', async (e) => {
    state.includeArchived = e.target.checked;
    await reloadBoard();
  });
  $('toggle-lanes').checked = localStorage.getItem(LANES_KEY) !== '0';
  state.lanes = $('toggle-lanes').checked;
  $('toggle-lanes').addEventListener('change', (e) => {
    state.lanes = e.target.checked;
    localStorage.setItem(LANES_KEY, state.lanes ? '1' : '0');
    touchAll();
  });
  $('board-select').addEventListener('change', (e) => switchBoard(e.target.value).catch((err) => toast(err.message, 'error')));
  $('new-board').addEventListener('click', newBoardDialog);
  for (const tab of document.querySelectorAll('.view-tabs [role=tab]')) tab.addEventListener('click', () => setView(tab.dataset.view));
  window.addEventListener('hashchange', () => setView(location.hash === ACTIVITY_HASH ? 'activity' : 'board'));
  $('dispatch-now').addEventListener('click', async () => {
    try {
      const r = await api.dispatch();
      const spawned = Array.isArray(r?.spawned) ? r.spawned.length : r?.spawned;
      toast(spawned !== undefined ? `Dispatcher pass done: ${spawned} spawned` : 'Dispatcher pass done');
    } catch (e) { toast(`Dispatch failed: ${e.message}`, 'error'); }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && !e.target.closest('input,textarea,select')) { e.preventDefault(); $('filter-search').focus(); }
  });
}

async function newBoardDialog() {
  const r = await formDialog({ title: 'New board', fields: [
    { name: 'slug', label: 'Slug (a-z, 0-9, - _)', required: true, placeholder: 'my-project' },
    { name: 'name', label: 'Name' },
    { name: 'icon', label: 'Icon (emoji or icon name, optional)', placeholder: 'e.g. rocket' },
    { name: 'description', label: 'Description', type: 'textarea' },
    { name: 'default_workdir', label: 'Project directory (absolute, optional)', placeholder: '/path/to/repo' },
  ], submitLabel: 'Create board' });
  if (!r) return;
  try {
    const body = { slug: r.slug.trim() };
    for (const k of ['name', 'icon', 'description', 'default_workdir']) if (r[k].trim()) body[k] = r[k].trim();
    const res = await api.createBoard(body);
    await loadBoards();
    await switchBoard(res.board.slug);
    toast(`Board ${res.board.slug} ${res.created ? 'created' : 'already existed'}`);
  } catch (e) { toast(`Cannot create board: ${e.message}`, 'error'); }
}

async function askToken() {
  const r = await formDialog({ title: 'Gateway token', message: 'This gateway needs its API token.',
    fields: [{ name: 'token', label: 'Token', type: 'password', required: true }], submitLabel: 'Use token' });
  if (r) { setToken(r.token.trim()); location.reload(); }
}

// ---- start ------------------------------------------------------------------

async function start() {
  hydrateIcons();
  let asking = false;
  setUnauthorizedHandler(() => { if (!asking) { asking = true; askToken(); } });
  boardView = new Board($('board'), {
    open: (id) => drawer.open(id),
    move: moveTask,
    create: createTask,
    moveMenu,
    selectionChanged: updateBulkBar,
    loadMore,
  });
  drawer = new Drawer($('drawer'), { move: moveTask, open: (id) => drawer.open(id), touch: (id) => refreshTasks([id]) });
  activityView = new ActivityView($('activity'));
  subscribe(() => updateBulkBar());
  installToolbar();
  installOrchestration($('orchestration-slot'));
  installBulkBar();
  try {
    // The board the page will most likely show is asked for beside the
    // board list: the kept choice, else the gateway's current board.
    const guess = localStorage.getItem(BOARD_KEY);
    setBoard(guess);
    const early = fetchBoard();
    early.catch(() => {}); // a wrong guess: asked again below
    const slug = await loadBoards();
    await switchBoard(slug, !guess || slug === guess ? early : null);
    setView(location.hash === ACTIVITY_HASH ? 'activity' : 'board');
  } catch (e) {
    toast(`Cannot load the board: ${e.message}`, 'error', 30000);
  }
}

// Test and benchmark hooks (read-only views of the state).
window.kanban = {
  state, board: () => board(), reload: reloadBoard, reveal: (id) => !!boardView.reveal(id),
  /** Ids of the cards a column lists, in order (rendered or not: columns are virtual). */
  columnIds: (status) => boardView.columnIds(status),
};

start();
