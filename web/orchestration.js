// The toolbar's Orchestration pill and settings dialog (reference §6,
// GET/PUT /orchestration, GET /profiles, PATCH /profiles/{name},
// POST /profiles/{name}/describe-auto — crates/kanban-server/src/routes/triage.rs).
// The pill shows kanban.auto_decompose (Auto: the gateway decomposes triage
// cards each tick; Manual: they wait for Decompose) and flips it in one
// click. The dialog picks the orchestrator profile and default assignee,
// the auto-promote switch, and edits the profile descriptions the
// decomposer routes by, or has the auxiliary model write one.
import { request } from './api.js';
import { h, toast } from './util.js';

const root = { withBoard: false };
export const orchestrationApi = {
  get: () => request('GET', '/orchestration', root),
  put: (body) => request('PUT', '/orchestration', { ...root, body }),
  profiles: () => request('GET', '/profiles', root),
  describe: (name, description) =>
    request('PATCH', `/profiles/${encodeURIComponent(name)}`, { ...root, body: { description } }),
  describeAuto: (name) =>
    request('POST', `/profiles/${encodeURIComponent(name)}/describe-auto`, { ...root, body: {} }),
};

const AUTO_TITLE = 'Orchestration: Auto — the gateway decomposes new triage tasks every tick. Click to switch to Manual.';
const MANUAL_TITLE = 'Orchestration: Manual — triage tasks wait until you click Decompose on each card. Click to switch to Auto.';

/** Settings as last read or written (null until loaded). */
let settings = null;
let pill;

function showPill() {
  const on = !!settings?.auto_decompose;
  pill.disabled = settings === null;
  pill.dataset.mode = settings === null ? 'loading' : on ? 'auto' : 'manual';
  pill.title = settings === null ? 'Loading…' : on ? AUTO_TITLE : MANUAL_TITLE;
  pill.setAttribute('aria-pressed', String(on));
  pill.querySelector('.mode').textContent = settings === null ? '…' : on ? 'Auto' : 'Manual';
}

/** PUT a change; the reply is the new settings. */
async function save(change) {
  try {
    settings = await orchestrationApi.put(change);
    showPill();
    return true;
  } catch (e) {
    toast(`Orchestration not saved: ${e.message}`, 'error');
    return false;
  }
}

/** Put the pill and its settings button into `slot` and load the mode. */
export function installOrchestration(slot) {
  pill = h('button', { type: 'button', id: 'orchestration-pill', class: 'orch-pill' },
    'Orchestration: ', h('span', { class: 'mode' }, '…'));
  pill.addEventListener('click', () => {
    if (settings) save({ auto_decompose: !settings.auto_decompose });
  });
  const gear = h('button', { type: 'button', id: 'orchestration-settings', class: 'orch-settings',
    title: 'Orchestrator profile, default assignee and profile descriptions' }, 'Orchestration settings');
  gear.addEventListener('click', () => openDialog());
  slot.replaceChildren(pill, gear);
  showPill();
  orchestrationApi.get()
    .then((s) => { settings = s; showPill(); })
    .catch((e) => toast(`Cannot read the orchestration settings: ${e.message}`, 'error'));
}

function profileSelect(name, label, value, profiles) {
  const sel = h('select', { name, id: `orch-${name}` },
    h('option', { value: '' }, '(default)'),
    profiles.map((p) => h('option', { value: p.name }, p.name)));
  sel.value = value || '';
  sel.addEventListener('change', () => save({ [name]: sel.value }));
  return h('label', { class: 'field' }, h('span', {}, label), sel);
}

function switchBox(name, label, value) {
  const box = h('input', { type: 'checkbox', name, id: `orch-${name}` });
  box.checked = !!value;
  box.addEventListener('change', async () => {
    if (!(await save({ [name]: box.checked }))) box.checked = !box.checked;
  });
  return h('label', { class: 'toggle' }, box, ` ${label}`);
}

/** One profile: its description, Save, and Describe automatically. */
function profileRow(p, reload) {
  const input = h('textarea', { rows: '2', maxlength: '600', placeholder: 'What is this profile good at?',
    'aria-label': `Description of ${p.name}` });
  input.value = p.description || '';
  const saveBtn = h('button', { type: 'button', class: 'orch-save', disabled: true }, 'Save');
  const autoBtn = h('button', { type: 'button', class: 'orch-describe',
    title: 'Have the auxiliary model (auxiliary.profile_describer) write the description' }, 'Describe automatically');
  input.addEventListener('input', () => { saveBtn.disabled = input.value === (p.description || ''); });
  const busy = async (btn, text, fn) => {
    const label = btn.textContent;
    for (const b of [saveBtn, autoBtn]) b.disabled = true;
    btn.textContent = text;
    btn.setAttribute('aria-busy', 'true');
    try { await fn(); } finally {
      btn.textContent = label;
      btn.removeAttribute('aria-busy');
      autoBtn.disabled = false;
      saveBtn.disabled = input.value === (p.description || '');
    }
  };
  saveBtn.addEventListener('click', () => busy(saveBtn, 'Saving…', async () => {
    try {
      await orchestrationApi.describe(p.name, input.value.trim());
      toast(`Description saved for ${p.name}`);
      await reload();
    } catch (e) { toast(`Description not saved: ${e.message}`, 'error'); }
  }));
  autoBtn.addEventListener('click', () => busy(autoBtn, 'Describing…', async () => {
    try {
      const res = await orchestrationApi.describeAuto(p.name);
      if (!res.ok) { toast(`Describe failed: ${res.reason}`, 'error'); return; }
      toast(`Description written for ${p.name}`);
      await reload();
    } catch (e) { toast(`Describe refused: ${e.message}`, 'error'); }
  }));
  if (!p.editable) {
    input.disabled = true;
    input.title = 'A template profile: its description lives in config.yaml (kanban.profiles)';
    saveBtn.hidden = true;
    autoBtn.hidden = true;
  }
  return h('li', { class: 'orch-profile', dataset: { profile: p.name } },
    h('div', { class: 'orch-profile-head' },
      h('strong', {}, p.name), ' ', h('span', { class: 'muted' }, p.kind),
      p.description_auto && p.description ? h('span', { class: 'orch-tag' }, 'auto — review') : null,
      !p.description ? h('span', { class: 'orch-tag' }, 'no description') : null),
    input,
    h('div', { class: 'orch-profile-actions' }, saveBtn, autoBtn));
}

async function openDialog() {
  let profiles;
  try {
    [settings, { profiles }] = await Promise.all([orchestrationApi.get(), orchestrationApi.profiles()]);
    showPill();
  } catch (e) {
    toast(`Cannot read the orchestration settings: ${e.message}`, 'error');
    return;
  }
  const list = h('ul', { class: 'orch-profiles' });
  const fill = (ps) => {
    list.replaceChildren(...(ps.length ? ps.map((p) => profileRow(p, reload))
      : [h('li', { class: 'muted' }, 'No profiles.')]));
  };
  const reload = async () => {
    try { fill((await orchestrationApi.profiles()).profiles); } catch (e) { toast(e.message, 'error'); }
  };
  fill(profiles);
  const dlg = h('dialog', { class: 'dialog orch-dialog', id: 'orchestration-dialog', 'aria-label': 'Orchestration' },
    h('div', { class: 'dialog-form' },
      h('h2', {}, 'Orchestration'),
      profileSelect('orchestrator_profile', 'Orchestrator profile (owns a decomposed root)',
        settings.orchestrator_profile, profiles),
      profileSelect('default_assignee', 'Default assignee (catches unrouted cards)', settings.default_assignee, profiles),
      switchBox('auto_decompose', 'Auto-decompose triage tasks', settings.auto_decompose),
      switchBox('auto_promote_children', 'Promote decomposed children at once', settings.auto_promote_children),
      h('h3', {}, 'Profile descriptions'),
      h('p', { class: 'muted' }, 'The decomposer routes child tasks by these descriptions.'),
      list,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'primary', onclick: () => dlg.close() }, 'Close'))));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}
