// Small DOM and formatting helpers shared by every module.
import { icon } from './icons.js';

/** Create an element: h('div', {class: 'x', onclick: fn}, child, 'text'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** "42s", "5m", "3h", "2d" — compact age for cards. */
export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** "1h 02m 03s" style duration for run history. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  if (hh) return `${hh}h ${String(mm).padStart(2, '0')}m`;
  if (mm) return `${mm}m ${String(ss).padStart(2, '0')}s`;
  return `${ss}s`;
}

/** Local date and time, `YYYY-MM-DD HH:MM:SS`: built by hand, because the
 * first locale-aware format of a page loads ICU data (≈10 ms, on the drawer's first open). */
export function fmtTime(unix) {
  if (!unix) return '';
  const d = new Date(unix * 1000);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  wrapped.flush = (...args) => { clearTimeout(t); fn(...args); };
  return wrapped;
}

/** Split "a, b c" into ["a", "b", "c"]. */
export function splitList(s) {
  return String(s || '').split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

/** Toast message; kind: info | error | warn. */
export function toast(message, kind = 'info', ms = 6000) {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  el.addEventListener('click', () => el.remove());
  box.append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

/** A persistent banner (the dispatcher-absence warning); deduplicated by text. */
export function banner(message, kind = 'warn') {
  const box = document.getElementById('banners');
  for (const b of box.children) if (b.dataset.msg === message) return b;
  const el = h('div', { class: `banner banner-${kind}`, role: 'alert', dataset: { msg: message } },
    h('span', {}, message),
    h('button', { type: 'button', class: 'banner-close icon-btn', 'aria-label': 'Dismiss', onclick: () => el.remove() }, icon('x')));
  box.append(el);
  return el;
}
