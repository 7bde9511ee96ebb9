// The drawer's Attachments section: list (name, size, uploader, date) with
// download and delete, a file picker, and upload by dropping files anywhere
// on the open drawer. Uploads go to POST /tasks/{id}/attachments
// (multipart field `file`), the route the CLI and the agents' tools share
// the size cap and name rules with.
import { ApiError, apiUrl, del, onUnauthorized, token } from './api.js';
import { h, fmtAge, fmtTime, toast } from './util.js';
import { icon } from './icons.js';

/** The server's cap (kanban_core::defaults::ATTACHMENT_MAX_BYTES), checked before sending. */
export const ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024;
/** `uploaded_by` of files sent from the dashboard. */
const UPLOADER = 'dashboard';

/** "512 B", "3.4 KiB", "12.0 MiB". */
export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function failure(res) {
  let data = null;
  try { data = JSON.parse(await res.text()); } catch { /* not JSON */ }
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, data?.detail || data?.error || res.statusText, data?.error);
}

/** Upload one File to a task; resolves to the stored attachment row. */
export async function uploadAttachment(taskId, file) {
  if (file.size > ATTACHMENT_MAX_BYTES) {
    throw new ApiError(413, `${file.name} is larger than the ${ATTACHMENT_MAX_BYTES / (1024 * 1024)} MiB limit`);
  }
  const form = new FormData();
  form.append('uploaded_by', UPLOADER);
  form.append('file', file, file.name);
  const res = await fetch(apiUrl(`/tasks/${encodeURIComponent(taskId)}/attachments`), {
    method: 'POST', headers: { Accept: 'application/json', ...authHeaders() }, body: form, credentials: 'same-origin',
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()).attachment;
}

/** Download through fetch (the bearer token cannot ride on a plain link), saved under its name. */
export async function downloadAttachment(att) {
  const res = await fetch(apiUrl(`/attachments/${att.id}`), { headers: authHeaders(), credentials: 'same-origin' });
  if (!res.ok) throw await failure(res);
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: att.filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Upload every file, one after the other; toasts say how it went. True when any was stored. */
async function uploadAll(taskId, files) {
  let stored = 0;
  for (const file of files) {
    try {
      await uploadAttachment(taskId, file);
      stored += 1;
    } catch (e) { toast(`Cannot attach ${file.name}: ${e.message}`, 'error'); }
  }
  if (stored) toast(`${stored} file${stored > 1 ? 's' : ''} attached to ${taskId}`);
  return stored > 0;
}

/**
 * The section for the drawer. ctx: {taskId, now, onChanged() → Promise}
 * (re-reads the task after an upload or a delete).
 */
export function attachmentsSection(attachments, { taskId, now, onChanged }) {
  const picker = h('input', { type: 'file', multiple: true, name: 'attachment-file', hidden: true, 'aria-label': 'Files to attach' });
  picker.addEventListener('change', async () => {
    const files = [...picker.files];
    picker.value = '';
    if (files.length && await uploadAll(taskId, files)) await onChanged();
  });
  const rows = attachments.map((a) => h('li', { class: 'attachment', dataset: { id: a.id } },
    h('button', { type: 'button', class: 'link-btn attachment-name', title: `Download ${a.filename}`,
      onclick: () => downloadAttachment(a).catch((e) => toast(`Download failed: ${e.message}`, 'error')) }, a.filename),
    h('span', { class: 'muted attachment-meta' },
      `${fmtBytes(a.size)} · ${a.uploaded_by || '?'} · `,
      h('time', { title: fmtTime(a.created_at) }, `${fmtAge(now - a.created_at)} ago`)),
    h('button', { type: 'button', class: 'icon-btn attachment-delete', 'aria-label': `Delete ${a.filename}`,
      onclick: async () => {
        try {
          await del(`/attachments/${a.id}`);
          await onChanged();
        } catch (e) { toast(`Delete failed: ${e.message}`, 'error'); }
      } }, icon('x'))));
  return h('section', { class: 'drawer-section attachments' },
    h('h3', {}, `Attachments (${attachments.length}) `,
      h('button', { type: 'button', class: 'link-btn attachment-add', onclick: () => picker.click() }, 'Attach files…')),
    attachments.length ? h('ul', { class: 'attachment-list' }, rows) : h('p', { class: 'muted' }, 'No attachments. Drop files here to attach them.'),
    picker);
}

/**
 * Accept files dropped anywhere on the drawer `el` for the task it shows.
 * ctx: {taskId() → id or null, onChanged() → Promise}. Card drags (no files) are left alone.
 */
export function installDropUpload(el, { taskId, onChanged }) {
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  let depth = 0;
  const clear = () => { depth = 0; el.classList.remove('file-drop'); };
  el.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || !taskId()) return;
    e.preventDefault();
    depth += 1;
    el.classList.add('file-drop');
  });
  el.addEventListener('dragover', (e) => {
    if (!hasFiles(e) || !taskId()) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  el.addEventListener('dragleave', () => { depth -= 1; if (depth <= 0) clear(); });
  el.addEventListener('drop', async (e) => {
    const id = taskId();
    if (!hasFiles(e) || !id) return;
    e.preventDefault();
    clear();
    const files = [...e.dataTransfer.files];
    if (files.length && await uploadAll(id, files)) await onChanged();
  });
}
