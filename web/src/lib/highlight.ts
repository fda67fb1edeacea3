// highlight.js core with a handful of languages (keeps the bundle small).
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { escapeHtml } from './ansi';

hljs.registerLanguage('bash', bash);
hljs.registerLanguage('css', css);
hljs.registerLanguage('diff', diff);
hljs.registerLanguage('go', go);
hljs.registerLanguage('javascript', javascript);
hljs.registerLanguage('json', json);
hljs.registerLanguage('python', python);
hljs.registerLanguage('rust', rust);
hljs.registerLanguage('typescript', typescript);
hljs.registerLanguage('xml', xml);
hljs.registerLanguage('yaml', yaml);
hljs.registerAliases(['sh', 'shell', 'zsh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['js', 'jsx', 'mjs', 'cjs'], { languageName: 'javascript' });
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['yml'], { languageName: 'yaml' });
hljs.registerAliases(['patch'], { languageName: 'diff' });

const AUTO = ['bash', 'python', 'typescript', 'json', 'diff', 'go', 'rust', 'yaml'];

/** Highlighted HTML for code; plain escaped text when the language is unknown or it is huge. */
export function highlight(code: string, lang?: string | null): string {
  if (code.length > 100_000) return escapeHtml(code);
  const name = (lang || '').trim().split(/\s+/)[0]?.toLowerCase();
  try {
    if (name && hljs.getLanguage(name)) return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
    if (!name && code.length < 5_000) return hljs.highlightAuto(code, AUTO).value;
  } catch {
    /* fall through */
  }
  return escapeHtml(code);
}

/** A language for a file path (diff view), or null. */
export function languageOfPath(path: string): string | null {
  const ext = path.split('.').pop()?.toLowerCase() ?? '';
  const map: Record<string, string> = {
    ts: 'typescript', tsx: 'typescript', js: 'javascript', jsx: 'javascript', mjs: 'javascript',
    py: 'python', sh: 'bash', bash: 'bash', json: 'json', go: 'go', rs: 'rust', yml: 'yaml',
    yaml: 'yaml', css: 'css', html: 'xml', xml: 'xml', svg: 'xml', diff: 'diff', patch: 'diff',
  };
  return map[ext] ?? null;
}
