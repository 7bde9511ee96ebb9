// REST client for the gateway's /api/v1. Every call carries the selected
// board and, when the gateway has one, the bearer token.

import { token, setToken, apiHeaders, takeEarly } from './boot.js';

export const API = '/api/v1';
export { token, setToken };

export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

let currentBoard = null;
export function setBoard(slug) { currentBoard = slug; }
export function board() { return currentBoard; }

/** Build a URL under /api/v1 with the board and extra query parameters. */
export function apiUrl(path, params = {}, withBoard = true) {
  const u = new URL(API + path, location.origin);
  if (withBoard && currentBoard) u.searchParams.set('board', currentBoard);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  return u;
}

export let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export async function request(method, path, { body, params, withBoard = true } = {}) {
  const url = apiUrl(path, params, withBoard);
  const asked = method === 'GET' ? takeEarly(url.toString()) : undefined;
  const res = await (asked || fetch(url, {
    method,
    headers: apiHeaders(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  }));
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, data?.detail || data?.error || res.statusText, data?.error);
  }
  return data;
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, body, params) => request('POST', path, { body: body ?? {}, params });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path, params) => request('DELETE', path, { params });

// Typed helpers (paths and shapes: crates/kanban-server/src/routes/).
export const api = {
  /** params: {limit, column, cursor, q, assignee, tenant} of the paged view (none: the whole board). */
  boardView: (includeArchived, params = {}) => get('/board', { include_archived: includeArchived ? 'true' : '', ...params }),
  task: (id) => get(`/tasks/${encodeURIComponent(id)}`),
  createTask: (body) => post('/tasks', body),
  updateTask: (id, body) => patch(`/tasks/${encodeURIComponent(id)}`, body),
  deleteTask: (id) => del(`/tasks/${encodeURIComponent(id)}`),
  bulk: (body) => post('/tasks/bulk', body),
  comment: (id, body) => post(`/tasks/${encodeURIComponent(id)}/comments`, { body }),
  link: (parent_id, child_id) => post('/links', { parent_id, child_id }),
  unlink: (parent_id, child_id) => del('/links', { parent_id, child_id }),
  log: (id, tail) => get(`/tasks/${encodeURIComponent(id)}/log`, { tail }),
  reclaim: (id, reason) => post(`/tasks/${encodeURIComponent(id)}/reclaim`, { reason }),
  reassign: (id, profile, reclaimFirst, reason) =>
    post(`/tasks/${encodeURIComponent(id)}/reassign`, { profile, reclaim_first: reclaimFirst, reason }),
  assignees: () => get('/assignees'),
  activity: (range) => get('/activity', { range }),
  dispatch: () => post('/dispatch', undefined, {}),
  boards: () => request('GET', '/boards', { withBoard: false }),
  createBoard: (body) => request('POST', '/boards', { body, withBoard: false }),
};

/** The WebSocket URL of the live event feed from `since`. */
export function eventsUrl(since) {
  const u = apiUrl('/events', { since });
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const t = token();
  if (t) u.searchParams.set('token', t);
  return u.toString();
}
