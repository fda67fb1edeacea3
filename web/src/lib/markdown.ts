// Agent text → sanitized HTML: marked (GFM) + highlight.js for fenced code + DOMPurify.
// Results are cached by text, so re-rendering a row costs nothing.
import DOMPurify from 'dompurify';
import { Marked } from 'marked';
import { escapeHtml } from './ansi';
import { highlight } from './highlight';

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    code({ text, lang }) {
      const language = (lang || '').trim().split(/\s+/)[0] ?? '';
      const body = highlight(text, language || null);
      const label = language ? `<span class="code-lang">${escapeHtml(language)}</span>` : '';
      return `<pre class="code">${label}<code class="hljs">${body}</code></pre>`;
    },
  },
});

let hooked = false;
function purify(html: string): string {
  if (!hooked) {
    hooked = true;
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A' && node.getAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer');
      }
    });
  }
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true } });
}

const cache = new Map<string, string>();
const CACHE_MAX = 800;

export function renderMarkdown(text: string): string {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  let html: string;
  try {
    html = purify(marked.parse(text) as string);
  } catch {
    html = `<pre>${escapeHtml(text)}</pre>`;
  }
  if (text.length < 200_000) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(text, html);
  }
  return html;
}
