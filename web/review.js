// The review flow in the task drawer (newer Hermes): the buttons a card
// offers by where it stands, over the gateway's review routes
// (crates/kanban-server/src/routes/review.rs). The rules are the core's
// (kanban_core::transitions::review):
// - ready or running (not a review attempt): "Request review" hands the
//   work to review with a summary and, optionally, a reviewer profile;
// - waiting in Review, no reviewer on it (say `kanban.review_dispatch:
//   false`): "Approve" is the operator's verdict (approve: review → done),
//   "Request changes" sends it back to its implementer with the reason
//   (reopen-review);
// - a running review attempt: "Approve" completes it (complete applies to
//   the running attempt, never to a card waiting in Review), "Request
//   changes" ends the attempt and sends the card back (request-changes).
import { post } from './api.js';
import { h, toast } from './util.js';
import { formDialog } from './dialogs.js';

const route = (id, verb) => `/tasks/${encodeURIComponent(id)}/${verb}`;

export const reviewApi = {
  requestReview: (id, body) => post(route(id, 'request-review'), body),
  requestChanges: (id, reason) => post(route(id, 'request-changes'), { reason }),
  reopenReview: (id, reason) => post(route(id, 'reopen-review'), { reason }),
  approve: (id, summary) => post(route(id, 'approve'), { summary }),
};

/** The task's open attempt was claimed from the Review column. */
export function isReviewAttempt(detail) {
  const t = detail.task;
  if (t.status !== 'running' || t.current_run_id == null) return false;
  return (detail.events || []).some((e) => e.kind === 'claimed' && e.run_id === t.current_run_id
    && e.payload?.source_status === 'review');
}

/**
 * The review buttons for the drawer's action row (possibly none).
 * `handlers.complete(id, summary)` completes like a move to done;
 * `handlers.refresh()` re-reads the task after a change.
 */
export function reviewActions(detail, handlers) {
  const t = detail.task;
  const button = (label, cls, onclick) =>
    h('button', { type: 'button', class: `review-btn ${cls}`, dataset: { review: cls }, onclick }, label);
  if (isReviewAttempt(detail)) {
    return [
      button('Approve', 'approve', () => approve(t, handlers, true)),
      button('Request changes…', 'changes', () => sendBack(t, handlers, true)),
    ];
  }
  if (t.status === 'review') {
    return [
      button('Approve', 'approve', () => approve(t, handlers, false)),
      button('Request changes…', 'changes', () => sendBack(t, handlers, false)),
    ];
  }
  if (t.status === 'ready' || t.status === 'running') {
    return [button('Request review…', 'request', () => requestReview(t, handlers))];
  }
  return [];
}

async function run(what, fn, handlers) {
  try {
    await fn();
    toast(what);
  } catch (e) {
    toast(`Refused: ${e.message}`, 'error');
  }
  await handlers.refresh();
}

async function approve(t, handlers, attempt) {
  const message = attempt ? `Complete ${t.id} “${t.title}” and end its reviewer.` : `Mark ${t.id} “${t.title}” as done.`;
  const r = await formDialog({ title: 'Approve?', message,
    fields: [{ name: 'summary', label: 'Verdict (optional)', type: 'textarea' }], submitLabel: 'Approve' });
  if (!r) return;
  const summary = r.summary.trim() || undefined;
  await run(`${t.id} approved`,
    () => (attempt ? handlers.complete(t.id, summary) : reviewApi.approve(t.id, summary)), handlers);
}

async function sendBack(t, handlers, attempt) {
  const r = await formDialog({ title: 'Request changes', message: `Send ${t.id} “${t.title}” back to its implementer.`,
    fields: [{ name: 'reason', label: 'Required changes', type: 'textarea', required: true }], submitLabel: 'Request changes' });
  if (!r) return;
  const reason = r.reason.trim();
  await run(`Changes requested on ${t.id}`,
    () => (attempt ? reviewApi.requestChanges(t.id, reason) : reviewApi.reopenReview(t.id, reason)), handlers);
}

async function requestReview(t, handlers) {
  const r = await formDialog({ title: 'Request review', message: `Hand ${t.id} “${t.title}” to review.`,
    fields: [{ name: 'summary', label: 'Handoff summary', type: 'textarea', required: true },
      { name: 'reviewer', label: 'Reviewer profile (empty = current assignee)', list: 'assignee-list' }],
    submitLabel: 'Request review' });
  if (!r) return;
  const body = { summary: r.summary.trim() };
  if (r.reviewer.trim()) body.reviewer = r.reviewer.trim();
  await run(`Review requested for ${t.id}`, () => reviewApi.requestReview(t.id, body), handlers);
}
