// Icons as inline SVG, drawn from the vendored Lucide set
// (vendor/lucide-icons.js): no icon font, no emoji font, no extra request.
// A machine without an emoji font would show a box for "🎬"; a board icon
// given as an emoji (the Hermes convention) is mapped to the closest SVG.
import LUCIDE from './vendor/lucide-icons.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Board icons people pick (emoji, without variation selectors) → Lucide name. */
export const BOARD_ICONS = {
  '📋': 'clipboard-list', '🗂': 'folder-kanban', '📁': 'folder', '📂': 'folder', '📌': 'pin', '📍': 'pin',
  '📦': 'package', '🎬': 'clapperboard', '🚀': 'rocket', '🐛': 'bug', '🐞': 'bug', '🪲': 'bug', '🔧': 'wrench',
  '🛠': 'hammer', '🔨': 'hammer', '🧰': 'toolbox', '⚙': 'settings', '💡': 'lightbulb', '📝': 'notebook-pen',
  '✏': 'pencil', '✍': 'pencil', '📚': 'library', '📖': 'book-open', '📕': 'book-open', '📗': 'book-open',
  '📘': 'book-open', '🏠': 'house', '🏡': 'house', '⭐': 'star', '🌟': 'star', '✨': 'sparkles', '🔥': 'flame',
  '🧪': 'test-tube', '⚗': 'flask-conical', '🔬': 'microscope', '🎨': 'palette', '💼': 'briefcase', '🤖': 'bot',
  '📈': 'chart-line', '📊': 'chart-column', '🔒': 'lock', '🔐': 'lock', '🔑': 'key', '🗝': 'key', '🌐': 'globe',
  '🌍': 'earth', '🌎': 'earth', '🌏': 'earth', '📣': 'megaphone', '📢': 'megaphone', '🎯': 'target', '🏁': 'flag',
  '🚩': 'flag', '⚡': 'zap', '🧠': 'brain', '🔍': 'search', '🔎': 'search', '🧩': 'puzzle', '🎮': 'gamepad-2',
  '📷': 'camera', '📸': 'camera', '🛒': 'shopping-cart', '💰': 'banknote', '💵': 'banknote', '💸': 'banknote',
  '🏗': 'construction', '🚧': 'construction', '💻': 'laptop', '🖥': 'monitor', '📱': 'smartphone', '☁': 'cloud',
  '🗄': 'database', '💾': 'hard-drive', '🔔': 'bell', '📅': 'calendar', '📆': 'calendar', '🗓': 'calendar',
  '⏰': 'alarm-clock', '⏱': 'timer', '⏲': 'timer', '❤': 'heart', '💙': 'heart', '💚': 'heart', '✅': 'circle-check',
  '✔': 'circle-check', '❌': 'circle-x', '⚠': 'triangle-alert', '🌱': 'sprout', '🌿': 'leaf', '🍃': 'leaf',
  '🌳': 'trees', '🌲': 'trees', '🏆': 'trophy', '🥇': 'trophy', '✉': 'mail', '📧': 'mail', '📨': 'mail',
  '📮': 'mail', '🧭': 'compass', '🗺': 'map', '📰': 'newspaper', '🛡': 'shield', '👤': 'user', '👥': 'users',
  '🏷': 'tag', '🎁': 'gift', '☕': 'coffee', '🎓': 'graduation-cap', '🐾': 'paw-print', '⌨': 'terminal',
  '🖊': 'pencil', '🧑‍💻': 'laptop', '👩‍💻': 'laptop', '👨‍💻': 'laptop', '🌀': 'activity', '📡': 'server',
};
/** The icon of a board that has none, or whose icon has no SVG here. */
export const DEFAULT_BOARD_ICON = 'kanban';

/** An inline SVG icon (decorative unless `label` is given). */
export function icon(name, { label, className = '' } = {}) {
  const nodes = LUCIDE[name];
  if (!nodes) throw new Error(`no icon named ${name}`);
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}${className ? ` ${className}` : ''}`);
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  svg.setAttribute('focusable', 'false');
  for (const [tag, attrs] of nodes) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    svg.append(el);
  }
  return svg;
}

/** True when `s` contains a pictographic (emoji) character. */
export function hasEmoji(s) {
  return /\p{Extended_Pictographic}/u.test(String(s || ''));
}

/**
 * The icon of a board, from its `icon` field (an emoji, by the Hermes
 * convention, or a Lucide name): an SVG when one fits; a plain letter or
 * digit as a text monogram (any font has it); otherwise the default icon.
 */
export function boardIcon(value, boardName = '') {
  const raw = String(value || '').trim();
  const key = raw.replace(/[\uFE0E\uFE0F]/g, '');
  const label = boardName ? `${boardName} icon` : undefined;
  if (BOARD_ICONS[key]) return icon(BOARD_ICONS[key], { label, className: 'board-icon' });
  if (LUCIDE[key]) return icon(key, { label, className: 'board-icon' });
  if (key && !hasEmoji(key) && [...key].length <= 2) {
    const span = document.createElement('span');
    span.className = 'board-icon board-monogram';
    span.textContent = key.toUpperCase();
    if (label) span.setAttribute('aria-label', label);
    return span;
  }
  return icon(DEFAULT_BOARD_ICON, { label, className: 'board-icon' });
}

/** Replace every `<span data-icon="name">` of `root` with its SVG (static markup in index.html). */
export function hydrateIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) el.replaceWith(icon(el.dataset.icon));
}

/** Every icon name the dashboard may draw (the tests check each is vendored). */
export const USED_ICONS = new Set([
  ...Object.values(BOARD_ICONS), DEFAULT_BOARD_ICON,
  'activity', 'arrow-down', 'arrow-right', 'arrow-up', 'chevron-down', 'chevron-left', 'chevron-right', 'chevron-up',
  'circle-check', 'kanban', 'list-checks', 'message-square', 'plus', 'triangle-alert', 'x', 'zap',
]);
