// Specify / Decompose on a triage card (reference §6): the drawer's
// buttons over POST /tasks/{id}/specify and /decompose
// (crates/kanban-server/src/routes/triage.rs). The auxiliary model is
// slow, so a button shows it is working and the pair is disabled until the
// answer comes; a refusal (`ok: false`) is shown with its reason and the
// card stays in triage, unchanged.
import { post } from './api.js';
import { h, toast } from './util.js';

const route = (id, verb) => `/tasks/${encodeURIComponent(id)}/${verb}`;

export const triageApi = {
  specify: (id) => post(route(id, 'specify'), {}),
  decompose: (id) => post(route(id, 'decompose'), {}),
};

function describe(verb, res) {
  if (verb === 'decompose' && res.fanout) {
    return `${res.task_id} decomposed into ${res.child_ids.length} tasks: ${res.child_ids.join(', ')}`;
  }
  return `${res.task_id} specified${res.new_title ? ` as “${res.new_title}”` : ''}; moved to todo`;
}

/**
 * The triage buttons for the drawer's action row (none unless the card is
 * in triage). `handlers.refresh()` re-reads the task after a change.
 */
export function triageActions(task, handlers) {
  if (task.status !== 'triage') return null;
  const buttons = [];
  const run = async (verb, btn) => {
    buttons.forEach((b) => { b.disabled = true; });
    btn.setAttribute('aria-busy', 'true');
    const label = btn.textContent;
    btn.textContent = verb === 'specify' ? 'Specifying…' : 'Decomposing…';
    try {
      const res = await triageApi[verb](task.id);
      if (res.ok) toast(describe(verb, res));
      else toast(`${verb === 'specify' ? 'Specify' : 'Decompose'} failed: ${res.reason}`, 'error');
    } catch (e) {
      toast(`${verb === 'specify' ? 'Specify' : 'Decompose'} refused: ${e.message}`, 'error');
    } finally {
      btn.textContent = label;
      btn.removeAttribute('aria-busy');
      buttons.forEach((b) => { b.disabled = false; });
      await handlers.refresh();
    }
  };
  for (const [verb, label, title] of [
    ['specify', 'Specify', 'Have the auxiliary model write a spec and move the card to todo'],
    ['decompose', 'Decompose', 'Have the auxiliary model split the card into routed child tasks'],
  ]) {
    const btn = h('button', { type: 'button', class: `triage-btn triage-${verb}`, title, dataset: { triage: verb } }, label);
    btn.addEventListener('click', () => run(verb, btn));
    buttons.push(btn);
  }
  return buttons;
}
