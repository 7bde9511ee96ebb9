// Markdown to safe HTML. marked renders; DOMPurify removes script, event
// handler attributes, javascript:/data: links and anything else able to
// run code. The page's Content-Security-Policy (index.html) is a second
// line of defence.
import { marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.js';

marked.setOptions({ gfm: true, breaks: true, async: false });

const SAFE_URL = /^(?:https?:|mailto:|#|\/(?!\/)|\.{0,2}\/|[^:]*$)/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
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
});

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math'],
  FORBID_ATTR: ['style', 'srcset', 'formaction'],
  ALLOW_DATA_ATTR: false,
};

/** Sanitized HTML of a markdown text. */
export function renderMarkdown(text) {
  const raw = marked.parse(String(text ?? ''));
  return DOMPurify.sanitize(raw, PURIFY_CONFIG);
}

/** Fill `el` with the rendered markdown. */
export function setMarkdown(el, text) {
  el.innerHTML = renderMarkdown(text);
}
