// Modal dialogs built on <dialog>: a small form, resolved with its values
// (or null when cancelled). Used for move confirmations, the move menu and
// the new-board dialog.
import { h } from './util.js';

/**
 * fields: [{name, label, type: text|textarea|select|number|checkbox, value, options, required, placeholder}]
 * Resolves to {name: value} or null.
 */
export function formDialog({ title, message, fields = [], submitLabel = 'OK', danger = false }) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog', 'aria-label': title });
    const inputs = {};
    const rows = fields.map((f) => {
      let input;
      if (f.type === 'textarea') input = h('textarea', { name: f.name, rows: '3', placeholder: f.placeholder || '' });
      else if (f.type === 'select') {
        input = h('select', { name: f.name }, (f.options || []).map((o) =>
          h('option', { value: typeof o === 'string' ? o : o.value }, typeof o === 'string' ? o : o.label)));
      } else input = h('input', { name: f.name, type: f.type || 'text', placeholder: f.placeholder || '', required: !!f.required });
      if (f.type === 'checkbox') input.checked = !!f.value;
      else if (f.value !== undefined) input.value = f.value;
      if (f.list) input.setAttribute('list', f.list);
      inputs[f.name] = input;
      return h('label', { class: `field field-${f.type || 'text'}` }, h('span', {}, f.label), input);
    });
    let result = null;
    const form = h('form', { class: 'dialog-form' },
      h('h2', {}, title),
      message ? h('p', { class: 'dialog-message' }, message) : null,
      rows,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', value: 'cancel', onclick: () => dlg.close() }, 'Cancel'),
        h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, submitLabel)));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      for (const f of fields) {
        if (f.required && !String(inputs[f.name].value).trim()) { inputs[f.name].focus(); return; }
      }
      result = {};
      for (const f of fields) result[f.name] = f.type === 'checkbox' ? inputs[f.name].checked : inputs[f.name].value;
      dlg.close();
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    dlg.append(form);
    document.body.append(dlg);
    dlg.showModal();
    (Object.values(inputs)[0] || form.querySelector('button[type=submit]')).focus();
  });
}

/** Confirmation (and the extra input) for moves into done, archived or blocked. */
export async function confirmMove(task, to) {
  const name = `${task.id} “${task.title}”`;
  if (to === 'blocked') {
    return formDialog({ title: 'Block task?', message: `Block ${name}? Say what it is waiting for.`,
      fields: [{ name: 'reason', label: 'Reason', type: 'textarea', placeholder: 'waiting for…' }], submitLabel: 'Block' });
  }
  if (to === 'done') {
    return formDialog({ title: 'Complete task?', message: `Mark ${name} as done?`,
      fields: [{ name: 'summary', label: 'Summary (optional)', type: 'textarea' }], submitLabel: 'Mark done' });
  }
  if (to === 'archived') {
    return formDialog({ title: 'Archive task?', message: `Archive ${name}? It leaves the board (toggle “Archived” to see it).`,
      submitLabel: 'Archive', danger: true });
  }
  return {};
}
