// Markdown to safe HTML. marked renders; DOMPurify removes script, event
// handler attributes, javascript:/data: links and anything else able to
// run code. The page's Content-Security-Policy (index.html) is a second
// line of defence. Both libraries load on first use (the drawer asks
// before it draws) or when the page is idle, not before the board is shown.

const SAFE_URL = /^(?:https?:|mailto:|#|\/(?!\/)|\.{0,2}\/|[^:]*$)/i;

function guardLinks(node) {
  if (node.tagName === 'A') {
    const href = node.getAttribute('href') || '';
    if (!SAFE_URL.test(href.trim())) node.removeAttribute('href');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
    node.setAttribute('target', '_blank');
  }
  if (node.tagName === 'IMG') {
    const src = node.getAttribute('src') || '';
    if (!/^(?:https:|data:image\/(?:png|gif|jpeg|webp);)/i.test(src.trim())) node.removeAttribute('src');
    node.setAttribute('loading', 'lazy');
    node.setAttribute('referrerpolicy', 'no-referrer');
  }
}

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math'],
  FORBID_ATTR: ['style', 'srcset', 'formaction'],
  ALLOW_DATA_ATTR: false,
};

/** {marked, DOMPurify} once loaded and configured. */
let lib = null;
let loading = null;

/** Load and configure the renderer and the sanitizer (once). */
export function loadMarkdown() {
  loading ??= Promise.all([import('./vendor/marked.esm.js'), import('./vendor/purify.es.js')])
    .then(([{ marked }, { default: DOMPurify }]) => {
      marked.setOptions({ gfm: true, breaks: true, async: false });
      DOMPurify.addHook('afterSanitizeAttributes', guardLinks);
      lib = { marked, DOMPurify };
    })
    .catch((e) => {
      loading = null; // the next use tries again
      throw e;
    });
  return loading;
}

/** Sanitized HTML of a markdown text (after `loadMarkdown()` resolved). */
function renderMarkdown(text) {
  const raw = lib.marked.parse(String(text ?? ''));
  return lib.DOMPurify.sanitize(raw, PURIFY_CONFIG);
}

/** Fill `el` with the rendered markdown (as plain text until the libraries are loaded). */
export function setMarkdown(el, text) {
  if (lib) {
    el.innerHTML = renderMarkdown(text);
    return;
  }
  el.textContent = String(text ?? '');
  // Left as plain text if the libraries cannot be loaded.
  loadMarkdown().then(() => { if (el.isConnected) el.innerHTML = renderMarkdown(text); }, () => {});
}
