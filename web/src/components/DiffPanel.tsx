// The Changes panel: the session branch against its base (GET /api/sessions/{id}/diff), per file,
// unified or split, refetched after each commit/push (the parent bumps `refreshKey`).
import { memo } from 'preact/compat';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { DiffFile, DiffResponse, ErrorInfo } from '../api/types';
import { type DiffLine, type Hunk, parsePatch, splitRows } from '../lib/diff';
import { escapeHtml } from '../lib/ansi';
import { plural, shortSha } from '../lib/format';
import { highlight, languageOfPath } from '../lib/highlight';
import { InlineError } from './bits';

type Mode = 'unified' | 'split';

function savedMode(): Mode {
  try {
    return localStorage.getItem('oi.diffMode') === 'split' ? 'split' : 'unified';
  } catch {
    return 'unified';
  }
}

export function DiffPanel(props: {
  sessionId: string;
  refreshKey: number;
  onClose?(): void;
  /** Each diff loaded (the session view learns from `head_sha` that the branch was pushed). */
  onLoaded?(diff: DiffResponse): void;
}) {
  const [data, setData] = useState<DiffResponse | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [loading, setLoading] = useState(false);
  const [mode, setMode] = useState<Mode>(savedMode);
  const [manual, setManual] = useState(0);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const first = useRef(true);

  useEffect(() => {
    const ctl = new AbortController();
    // Debounce bursts (a commit is followed by a push within milliseconds).
    const timer = window.setTimeout(
      () => {
        setLoading(true);
        endpoints
          .diff(props.sessionId, ctl.signal)
          .then((d) => {
            setData(d);
            setError(null);
            props.onLoaded?.(d);
          })
          .catch((err) => {
            if (!ctl.signal.aborted) setError(toErrorInfo(err));
          })
          .finally(() => {
            if (!ctl.signal.aborted) setLoading(false);
          });
      },
      first.current ? 0 : 400,
    );
    first.current = false;
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [props.sessionId, props.refreshKey, manual]);

  const choose = (m: Mode) => {
    setMode(m);
    try {
      localStorage.setItem('oi.diffMode', m);
    } catch {
      /* ignore */
    }
  };

  const files = data?.files ?? [];
  const totals = files.reduce((t, f) => ({ add: t.add + f.additions, del: t.del + f.deletions }), { add: 0, del: 0 });
  const filesRef = useRef<HTMLDivElement>(null);
  /** Open a file from the list and bring it into view. */
  const jumpTo = (path: string) => {
    setCollapsed((s) => {
      if (!s.has(path)) return s;
      const n = new Set(s);
      n.delete(path);
      return n;
    });
    requestAnimationFrame(() => {
      const el = Array.from(filesRef.current?.querySelectorAll<HTMLElement>('[data-testid="diff-file"]') ?? []).find((e) => e.dataset.path === path);
      el?.scrollIntoView({ block: 'start' });
      el?.querySelector<HTMLElement>('.diff-file-head')?.focus();
    });
  };
  const toggle = (path: string) =>
    setCollapsed((s) => {
      const n = new Set(s);
      if (n.has(path)) n.delete(path);
      else n.add(path);
      return n;
    });

  return (
    <section class="diff-panel" data-testid="diff-panel" aria-label="Changes">
      <header class="panel-head">
        <h2>
          Changes
          {files.length > 0 && (
            <span class="muted small">
              {' '}
              {plural(files.length, 'file')} <span class="add">+{totals.add}</span>{' '}
              <span class="del">−{totals.del}</span>
            </span>
          )}
        </h2>
        <div class="seg" role="group" aria-label="Diff layout">
          <button
            type="button"
            data-testid="diff-mode-unified"
            aria-pressed={mode === 'unified'}
            onClick={() => choose('unified')}
          >
            Unified
          </button>
          <button type="button" data-testid="diff-mode-split" aria-pressed={mode === 'split'} onClick={() => choose('split')}>
            Split
          </button>
        </div>
        <button
          type="button"
          class="icon-button"
          data-testid="diff-refresh"
          aria-label="Refresh changes"
          title="Refresh"
          onClick={() => setManual((n) => n + 1)}
          disabled={loading}
        >
          <span class={loading ? 'spin' : ''}>↻</span>
        </button>
        {props.onClose && (
          <button type="button" class="icon-button" data-testid="changes-close" aria-label="Hide changes" title="Hide" onClick={props.onClose}>
            ×
          </button>
        )}
      </header>
      <InlineError error={error} />
      {data && (
        <div class="muted small diff-range">
          <code>{data.base}</code>
          {data.base_sha ? ` ${shortSha(data.base_sha)}` : ''} → <code>{data.branch}</code>
          {data.head_sha ? ` ${shortSha(data.head_sha)}` : ''}
        </div>
      )}
      {data && files.length === 0 && (
        <p class="muted empty" data-testid="diff-empty">
          {data.prompts_finished > 0 ? (
            <>
              No changes: <code>{data.branch}</code> matches <code>{data.base}</code>.
            </>
          ) : (
            'No changes pushed yet.'
          )}
        </p>
      )}
      {!data && !error && <p class="muted empty">Loading changes…</p>}
      {data?.truncated && <p class="muted small">The diff is too large: some files are not shown.</p>}
      {files.length > 1 && (
        <nav class="diff-file-list" data-testid="diff-file-list" aria-label="Changed files">
          <ul>
            {files.map((f) => (
              <li key={f.path}>
                <button
                  type="button"
                  class="link-button diff-file-link"
                  data-testid="diff-file-link"
                  data-path={f.path}
                  onClick={() => jumpTo(f.path)}
                  title={`Show ${f.path}`}
                >
                  <span class={`file-status fs-${f.status}`}>{f.status[0]!.toUpperCase()}</span>
                  <span class="mono path">{f.path}</span>
                  <span class="add">+{f.additions}</span>
                  <span class="del">−{f.deletions}</span>
                </button>
              </li>
            ))}
          </ul>
        </nav>
      )}
      <div class="diff-files" ref={filesRef}>
        {files.map((f) => (
          <FileDiff key={f.path} file={f} mode={mode} open={!collapsed.has(f.path)} onToggle={() => toggle(f.path)} />
        ))}
      </div>
    </section>
  );
}

const FileDiff = memo(function FileDiff(props: { file: DiffFile; mode: Mode; open: boolean; onToggle(): void }) {
  const { file, mode, open } = props;
  const hunks = useMemo(() => parsePatch(file.patch), [file.patch]);
  const lang = hunks.reduce((n, h) => n + h.lines.length, 0) <= HIGHLIGHT_MAX_LINES ? languageOfPath(file.path) : null;
  return (
    <div class="diff-file" data-testid="diff-file" data-path={file.path}>
      <button type="button" class="diff-file-head" aria-expanded={open} onClick={props.onToggle}>
        <span class="chev" aria-hidden="true">
          {open ? '▾' : '▸'}
        </span>
        <span class={`file-status fs-${file.status}`} title={file.status}>
          {file.status[0]!.toUpperCase()}
        </span>
        <span class="mono path">
          {file.old_path && file.old_path !== file.path ? `${file.old_path} → ` : ''}
          {file.path}
        </span>
        <span class="add">+{file.additions}</span>
        <span class="del">−{file.deletions}</span>
      </button>
      {open && (
        <div class="diff-body">
          {file.binary ? (
            <p class="muted small">Binary file</p>
          ) : hunks.length === 0 ? (
            <p class="muted small">{file.status === 'renamed' ? 'Renamed without changes' : 'No textual changes'}</p>
          ) : mode === 'unified' ? (
            <Unified hunks={hunks} lang={lang} />
          ) : (
            <Split hunks={hunks} lang={lang} />
          )}
          {file.truncated && <p class="muted small">This file's diff was truncated by the server.</p>}
        </div>
      )}
    </div>
  );
});

const SIGN: Record<DiffLine['kind'], string> = { add: '+', del: '-', ctx: ' ', note: '' };

/** Files with more diff lines than this are shown without syntax colour (it costs per line). */
const HIGHLIGHT_MAX_LINES = 4000;

/** One line of code, coloured by the file's language (each line on its own: a construct that
 * spans lines, like a long string, may be coloured only on its first line). */
function Code({ text, lang }: { text: string; lang: string | null }) {
  return <span class="code-text" dangerouslySetInnerHTML={{ __html: lang ? highlight(text, lang) : escapeHtml(text) }} />;
}

function Unified({ hunks, lang }: { hunks: Hunk[]; lang: string | null }) {
  return (
    <table class="diff-table unified mono">
      {hunks.map((h, hi) => (
        <tbody key={hi}>
          <tr class="hunk-head">
            <td colSpan={3}>{h.header}</td>
          </tr>
          {h.lines.map((l, i) => (
            <tr key={i} class={`d-${l.kind}`}>
              <td class="ln">{l.oldNo ?? ''}</td>
              <td class="ln">{l.newNo ?? ''}</td>
              <td class="code">
                <span class="sign">{SIGN[l.kind]}</span>
                {l.kind === 'note' ? l.text : <Code text={l.text} lang={lang} />}
              </td>
            </tr>
          ))}
        </tbody>
      ))}
    </table>
  );
}

function Split({ hunks, lang }: { hunks: Hunk[]; lang: string | null }) {
  return (
    <table class="diff-table split mono">
      {hunks.map((h, hi) => (
        <tbody key={hi}>
          <tr class="hunk-head">
            <td colSpan={4}>{h.header}</td>
          </tr>
          {splitRows(h.lines).map((r, i) => (
            <tr key={i}>
              <td class="ln">{r.left?.oldNo ?? ''}</td>
              <td class={`code half ${r.left ? `d-${r.left.kind}` : 'd-empty'}`}>{r.left ? <Code text={r.left.text} lang={lang} /> : ''}</td>
              <td class="ln">{r.right?.newNo ?? ''}</td>
              <td class={`code half ${r.right ? `d-${r.right.kind}` : 'd-empty'}`}>{r.right ? <Code text={r.right.text} lang={lang} /> : ''}</td>
            </tr>
          ))}
        </tbody>
      ))}
    </table>
  );
}
