// The page's first step, loaded `async` ahead of app.js: it takes a token
// passed in the address and asks the gateway for the board list and the
// first pages of the board most likely shown, while the other modules are
// still loading. api.js hands those answers to the first matching GETs.
// No imports: anything imported would delay it to the whole graph's load.

const TOKEN_KEY = 'kanban.token';
/** localStorage key of the board last shown. */
export const BOARD_KEY = 'kanban.board';
/** Cards per column and page (GET /board?limit=…); `?page_size=N` in the page's address overrides it. */
export const PAGE_SIZE = 50;
export const pageSize = Number(new URLSearchParams(location.search).get('page_size')) || PAGE_SIZE;

/** A token passed as #token=… or ?token=… is kept for this tab and removed from the address bar. */
function initToken() {
  const url = new URL(location.href);
  const hash = new URLSearchParams(url.hash.slice(1));
  const t = url.searchParams.get('token') || hash.get('token');
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search);
  }
}
initToken();

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
}

/** Headers of every API request. */
export function apiHeaders(hasBody) {
  const headers = { Accept: 'application/json' };
  if (hasBody) headers['Content-Type'] = 'application/json';
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  return headers;
}

/** Responses asked for ahead, by exact URL; each is handed out once. */
const early = new Map();

function askEarly(path, params) {
  const u = new URL(`/api/v1${path}`, location.origin);
  for (const [k, v] of params) u.searchParams.set(k, v);
  const res = fetch(u, { headers: apiHeaders(false), credentials: 'same-origin' });
  res.catch(() => {}); // the app asks again
  early.set(u.toString(), res);
}

/** The early answer to `GET url`, if one was asked for (see api.js). */
export function takeEarly(url) {
  const res = early.get(url);
  early.delete(url);
  return res;
}

// The same URLs app.js builds first: the board list, and the first pages of
// the kept board (else of the gateway's current one) with no filter.
askEarly('/boards', []);
const kept = localStorage.getItem(BOARD_KEY);
askEarly('/board', [...(kept ? [['board', kept]] : []), ['limit', String(pageSize)]]);
