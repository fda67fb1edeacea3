// One timeline row per reducer item. Rows are memoised on (item, open, showAll): the reducer
// keeps an item's identity while it does not change, so streaming and new events re-render only
// the rows that changed.
import { memo } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import type {
  DurableEvent,
  GitCommitEvent,
  GitPushEvent,
  SandboxStatus,
} from '../api/types';
import { ansiToHtml, escapeHtml, stripAnsi } from '../lib/ansi';
import { duration, modelLabel, plural, relativeTime, shortSha, usd } from '../lib/format';
import { renderMarkdown } from '../lib/markdown';
import type { Item, PromptEndItem, PromptItem, SandboxItem, ToolItem } from '../timeline/reduce';
import { Avatar, Hint, Link, StatusDot } from './bits';

export interface RowProps {
  item: Item;
  open: boolean;
  showAll: boolean;
  onToggle(key: string): void;
  onShowAll(key: string): void;
  sessionModel: string;
  /** For a prompt's end: its turn is folded into the footer. */
  collapsed: boolean;
  onCollapse(promptId: string): void;
  /** Start a new session from this one at the event `seq` (absent: the viewer may not). */
  onFork?(seq: number): void;
}

/** The event a row's "Fork from here" forks at: the end of a prompt, a text, a tool's result
 * (its call while it runs); null for rows with no such point. */
export function forkSeq(item: Item): number | null {
  switch (item.kind) {
    case 'prompt-finished':
    case 'agent-text':
      return item.seq;
    case 'tool':
      return item.result ? item.result.seq : item.seq;
    default:
      return null;
  }
}

function ForkButton(props: { seq: number; onFork(seq: number): void }) {
  return (
    <button
      type="button"
      class="link-button muted small fork-here"
      data-testid="fork-here"
      title="Start a new session from this point: the conversation up to here, the code as last pushed by then"
      onClick={() => props.onFork(props.seq)}
    >
      ⑂ Fork from here
    </button>
  );
}

export const TimelineRow = memo(
  function TimelineRow(props: RowProps) {
    const row = <RowBody {...props} />;
    const seq = props.onFork ? forkSeq(props.item) : null;
    if (seq === null || !props.onFork) return row;
    return (
      <div class="forkable">
        {row}
        <ForkButton seq={seq} onFork={props.onFork} />
      </div>
    );
  },
  (a, b) =>
    a.item === b.item &&
    a.open === b.open &&
    a.showAll === b.showAll &&
    a.sessionModel === b.sessionModel &&
    a.collapsed === b.collapsed &&
    a.onFork === b.onFork,
);

function RowBody(props: RowProps) {
    const { item } = props;
    switch (item.kind) {
      case 'prompt':
        return <PromptRow item={item} sessionModel={props.sessionModel} />;
      case 'prompt-finished':
        return <PromptEnd item={item} collapsed={props.collapsed} onCollapse={props.onCollapse} />;
      case 'agent-text':
        return (
          <div
            class="agent-text md"
            data-testid="agent-text"
            dangerouslySetInnerHTML={{ __html: renderMarkdown(item.text) }}
          />
        );
      case 'streaming':
        return (
          <div class="agent-text md streaming" data-testid="streaming-text" aria-busy="true">
            <div dangerouslySetInnerHTML={{ __html: renderMarkdown(item.text) }} />
            {item.gapped && (
              <p class="muted small">
                Reconnected while this streamed: some text may be missing until the step ends.
              </p>
            )}
          </div>
        );
      case 'agent-thinking':
        return (
          <div class="thinking">
            <button
              type="button"
              class="link-button muted"
              aria-expanded={props.open}
              onClick={() => props.onToggle(item.key)}
            >
              {props.open ? '▾' : '▸'} Thinking
            </button>
            {props.open && <div class="md muted" dangerouslySetInnerHTML={{ __html: renderMarkdown(item.text) }} />}
          </div>
        );
      case 'tool':
        return <ToolCard {...props} item={item} />;
      case 'sandbox':
        return <SandboxLine item={item} open={props.open} onToggle={props.onToggle} />;
      case 'event':
        return <EventRow event={item.event} />;
    }
}

function PromptRow({ item, sessionModel }: { item: PromptItem; sessionModel: string }) {
  const override = item.model && item.model !== sessionModel;
  return (
    <div class={`prompt-item status-${item.status}`} data-testid="prompt-item" data-prompt-id={item.promptId}>
      <div class="prompt-head">
        <Avatar userId={item.author.id} name={item.author.name} size={22} />
        <span class="prompt-author" data-testid="prompt-author">
          {item.author.name}
        </span>
        <time class="muted small" dateTime={item.ts} title={new Date(item.ts).toLocaleString()}>
          {relativeTime(item.ts)}
        </time>
        {override && <span class="chip small" title={item.model}>{modelLabel(item.model)}</span>}
        {item.effort && <span class="chip small">effort {item.effort}</span>}
        <span class={`badge badge-${item.status}`}>{item.status}</span>
      </div>
      <div class="prompt-content">{item.content}</div>
    </div>
  );
}

function PromptEnd({ item, collapsed, onCollapse }: { item: PromptEndItem; collapsed: boolean; onCollapse(promptId: string): void }) {
  // The duration is in the footer ("worked for …"), once.
  let head;
  if (item.status === 'success') head = <span class="turn-word">✓ Done</span>;
  else if (item.status === 'stopped') head = <span class="turn-word">■ Stopped</span>;
  else
    head = (
      <span class="turn-word">
        ✗ Prompt {item.status}
        {item.error && (
          <span>
            {' '}
            — {item.error.message} <span class="muted small">({item.error.code})</span>
            <span class="muted">
              <Hint hint={item.error.hint} code={item.error.code} />
            </span>
          </span>
        )}
      </span>
    );
  const tone = item.status === 'success' ? 'ok' : item.status === 'stopped' ? 'warn' : 'bad';
  const worked = `worked for ${duration(item.durationMs ?? 0) || '0 s'} · ${plural(item.toolCalls, 'tool call')}`;
  const u = item.usage;
  return (
    <div class={`turn-end ${tone}`} data-testid="turn-end">
      {head}
      <div class="turn-foot muted small">
        {item.hideable > 0 ? (
          <button
            type="button"
            class="link-button muted small"
            data-testid="turn-collapse"
            aria-expanded={!collapsed}
            onClick={() => onCollapse(item.promptId)}
            title={collapsed ? 'Show the steps of this turn' : 'Fold the steps of this turn into this line'}
          >
            {collapsed ? '▸' : '▾'} {worked}
          </button>
        ) : (
          <span data-testid="turn-worked">{worked}</span>
        )}
        {u && (
          <span class="turn-usage" data-testid="turn-usage" title={`session total ${usd(u.totalCostUsd)}`}>
            {' '}
            · {modelLabel(u.model)} · {u.inputTokens.toLocaleString()} in / {u.outputTokens.toLocaleString()} out ·{' '}
            {usd(u.costUsd)}
          </span>
        )}
      </div>
    </div>
  );
}

// ---- tool cards ---------------------------------------------------------------------------------

const HEAD_LINES = 80;

function toolSummary(item: ToolItem): string {
  const a = item.args;
  if (!a) return '(call in older history)';
  const str = (k: string) => (typeof a[k] === 'string' ? (a[k] as string) : '');
  switch (item.tool) {
    case 'bash':
      return str('command');
    case 'read':
      return str('path') + (a.offset ? `:${String(a.offset)}` : '');
    case 'write':
      return `${str('path')} (${(str('content').match(/\n/g)?.length ?? 0) + 1} lines)`;
    case 'edit':
      return str('path');
    case 'glob':
      return str('pattern');
    case 'grep':
      return `${str('pattern')}${a.path ? ` in ${str('path')}` : ''}`;
    default: {
      const json = JSON.stringify(a);
      return json.length > 160 ? `${json.slice(0, 160)}…` : json;
    }
  }
}

/** Lines of a running (or stopped) command shown under a folded card. */
const PREVIEW_LINES = 12;

function ToolCard(props: RowProps & { item: ToolItem }) {
  const { item, open, showAll } = props;
  const r = item.result;
  const summary = toolSummary(item);
  const firstLine = summary.split('\n')[0]!;
  const icon = { running: '◌', error: '✗', stopped: '■', done: '✓' }[item.status];
  const output = r ? withoutResultFooter(r) : '';
  return (
    <div class={`tool-card tool-${item.status}`} data-testid="tool-card" data-tool={item.tool} data-status={item.status}>
      <button
        type="button"
        class="tool-head"
        data-testid="tool-card-toggle"
        aria-expanded={open}
        onClick={() => props.onToggle(item.key)}
      >
        <span class={`tool-icon ${item.status === 'running' ? 'spin' : ''}`} aria-hidden="true">
          {icon}
        </span>
        <span class="tool-name">{item.tool}</span>
        <span class="tool-summary mono" title={summary}>
          {item.tool === 'bash' ? '$ ' : ''}
          {firstLine}
          {summary.includes('\n') ? ' …' : ''}
        </span>
        <span class="tool-meta">
          {item.interrupted && <span class="badge badge-stopped">no result</span>}
          {r && r.exit_code != null && (
            <span class={`exit ${r.exit_code === 0 ? 'ok' : 'bad'}`} data-testid="tool-exit-code" title="exit code">
              exit {r.exit_code}
            </span>
          )}
          {r && r.is_error && r.exit_code == null && !r.stopped && <span class="exit bad">error</span>}
          {r?.stopped ? (
            <span class="badge badge-stopped" data-testid="tool-stopped">
              stopped after {duration(r.duration_ms ?? 0)}
            </span>
          ) : (
            r && r.duration_ms != null && <span class="muted">{duration(r.duration_ms)}</span>
          )}
          {item.status === 'running' && (
            <span class="muted">
              running <Elapsed since={item.startedAt} />
            </span>
          )}
        </span>
        <span class="chev" aria-hidden="true">
          {open ? '▾' : '▸'}
        </span>
      </button>
      {!open && item.live && <LiveTail text={item.live.text} partial={item.live.partial} lines={PREVIEW_LINES} />}
      {!open && r?.stopped && output && <LiveTail text={output} partial={false} lines={PREVIEW_LINES} />}
      {open && (
        <div class="tool-body">
          {item.args && <ToolArgs item={item} />}
          {r ? (
            <ToolOutput
              output={output}
              tail={item.tool === 'bash'}
              showAll={showAll}
              onShowAll={() => props.onShowAll(item.key)}
            />
          ) : item.live ? (
            <LiveTail text={item.live.text} partial={item.live.partial} lines={HEAD_LINES} />
          ) : (
            <div class="muted small">{item.interrupted ? 'The prompt ended before this call returned.' : 'Waiting for output…'}</div>
          )}
          {r?.truncated_for_model && <div class="muted small">The model saw a truncated copy of this output.</div>}
        </div>
      )}
    </div>
  );
}

function ToolArgs({ item }: { item: ToolItem }) {
  const a = item.args!;
  if (item.tool === 'bash') {
    // The whole command, however long: the head line shows only what fits.
    const cmd = typeof a.command === 'string' ? a.command : '';
    return (
      <pre class="tool-args tool-command mono" data-testid="tool-command">
        $ {cmd}
      </pre>
    );
  }
  if (item.tool === 'edit' && typeof a.old === 'string' && typeof a.new === 'string') {
    return (
      <pre class="tool-args mono edit-diff">
        {a.old.split('\n').map((l, i) => (
          <div key={`o${i}`} class="d-del">- {l}</div>
        ))}
        {a.new.split('\n').map((l, i) => (
          <div key={`n${i}`} class="d-add">+ {l}</div>
        ))}
      </pre>
    );
  }
  if (item.tool === 'write' && typeof a.content === 'string') {
    return <pre class="tool-args mono">{a.content.length > 4000 ? `${a.content.slice(0, 4000)}\n…` : a.content}</pre>;
  }
  return <pre class="tool-args mono">{JSON.stringify(a, null, 2)}</pre>;
}

/** The bash tool ends its output with "[exit code N]" for the model; the card shows it once. */
export function withoutExitFooter(output: string): string {
  return output.replace(/\n?\[exit code -?\d+\]\n?$/, '');
}

/** The output without the footer the card shows as a badge (exit code, "stopped after"). */
function withoutResultFooter(r: { output: string; exit_code?: number | null; stopped?: boolean }): string {
  if (r.stopped) return r.output.replace(/\n?\[stopped after [\d.]+ s\]\n?$/, '');
  return r.exit_code != null ? withoutExitFooter(r.output) : r.output;
}

/** Seconds since `since` (an ISO time), ticking once a second while shown. */
function Elapsed({ since }: { since: string | null }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  if (!since) return null;
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  const text = s < 60 ? `${s} s` : `${Math.floor(s / 60)}m ${s % 60}s`;
  return (
    <span class="elapsed mono" data-testid="tool-elapsed">
      {text}
    </span>
  );
}

/** The newest `lines` lines of a command's output, as it streams (or as it stopped). */
function LiveTail({ text, partial, lines }: { text: string; partial: boolean; lines: number }) {
  const all = text.split('\n');
  if (all.length && all[all.length - 1] === '') all.pop();
  const shown = all.slice(-lines).join('\n');
  const cut = partial || all.length > lines;
  return (
    <div class="tool-live">
      {cut && <div class="muted small">{partial ? 'Earlier output is not shown live; all of it comes when the command ends.' : `… ${plural(all.length - lines, 'earlier line')}`}</div>}
      <pre
        class="tool-output mono"
        data-testid="tool-live-output"
        aria-live="polite"
        dangerouslySetInnerHTML={{ __html: ansiToHtml(shown) }}
      />
    </div>
  );
}

function ToolOutput(props: { output: string; tail: boolean; showAll: boolean; onShowAll(): void }) {
  const lines = props.output.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const long = lines.length > HEAD_LINES || props.output.length > 20_000;
  let shown = props.output;
  let hidden = 0;
  if (long && !props.showAll) {
    const picked = props.tail ? lines.slice(-HEAD_LINES) : lines.slice(0, HEAD_LINES);
    shown = picked.join('\n');
    if (shown.length > 20_000) shown = props.tail ? shown.slice(-20_000) : shown.slice(0, 20_000);
    hidden = Math.max(0, lines.length - picked.length);
  }
  if (!props.output) return <div class="muted small">(no output)</div>;
  const more = long && !props.showAll && (
    <button type="button" class="link-button show-all" data-testid="show-all" onClick={props.onShowAll}>
      Show all {lines.length} lines{hidden ? ` (${hidden} hidden)` : ''}
    </button>
  );
  return (
    <div class="tool-output-wrap">
      {props.tail && more}
      <pre
        class="tool-output mono"
        data-testid="tool-output"
        aria-label={stripAnsi(shown).slice(0, 80)}
        dangerouslySetInnerHTML={{ __html: ansiToHtml(shown) }}
      />
      {!props.tail && more}
    </div>
  );
}

// ---- the sandbox line ---------------------------------------------------------------------------

function SandboxLine({ item, open, onToggle }: { item: SandboxItem; open: boolean; onToggle(key: string): void }) {
  const last = item.lines[item.lines.length - 1];
  const busy = item.status === null || item.status === 'booting' || item.status === 'warming' || item.status === 'snapshotting';
  return (
    <div class="sandbox-line" data-testid="sandbox-line" data-status={item.status ?? 'booting'}>
      <div class="event-line muted small">
        <StatusDot kind="sandbox" status={item.status ?? 'booting'} /> {sandboxLabel(item.status ?? 'booting')}
        {item.message && <span> — {item.message}</span>}
        {item.lines.length > 0 && (
          <button
            type="button"
            class="link-button muted small"
            data-testid="boot-logs"
            aria-expanded={open}
            onClick={() => onToggle(item.key)}
          >
            {' '}
            · {open ? '▾' : '▸'} setup log, {plural(item.lines.length, 'line')}
          </button>
        )}
        {!open && busy && last && <span class="mono small log-last"> {stripAnsi(last.line).slice(0, 120)}</span>}
      </div>
      {open && (
        <pre
          class="tool-output mono"
          dangerouslySetInnerHTML={{
            __html: item.lines.map((l) => `<span class="log-src">${escapeHtml(l.source)}</span> ${ansiToHtml(l.line)}`).join('\n'),
          }}
        />
      )}
    </div>
  );
}

// ---- single events ------------------------------------------------------------------------------

const SANDBOX_TEXT: Record<SandboxStatus, string> = {
  none: 'No sandbox',
  warming: 'Sandbox warming up',
  booting: 'Sandbox booting',
  ready: 'Sandbox ready',
  snapshotting: 'Sandbox snapshotting',
  stopped: 'Sandbox stopped',
  lost: 'Sandbox lost',
  failed: 'Sandbox failed',
};

export function sandboxLabel(s: SandboxStatus | null): string {
  return s ? SANDBOX_TEXT[s] ?? s : 'Sandbox';
}

function EventRow({ event: e }: { event: DurableEvent }) {
  switch (e.type) {
    case 'git-commit':
      return <Commit e={e} />;
    case 'git-push':
      return <Push e={e} />;
    case 'pr-opened':
      return (
        <div class="event-line pr-event pr-open">
          <span class="ev-icon" aria-hidden="true">⇡</span> Pull request opened:{' '}
          <a href={e.url} target="_blank" rel="noopener noreferrer" data-testid="pr-link">
            #{e.number}
          </a>
        </div>
      );
    case 'pr-updated':
      return (
        <div class={`event-line pr-event pr-${e.state}`} data-testid="pr-state" data-state={e.state}>
          <span class="ev-icon" aria-hidden="true">
            {e.state === 'merged' ? '⇄' : e.state === 'closed' ? '✕' : '⇡'}
          </span>{' '}
          Pull request{' '}
          <a href={e.url} target="_blank" rel="noopener noreferrer">
            #{e.number}
          </a>{' '}
          {e.state === 'open' ? 'updated' : <span class="pr-word">{e.state}</span>}
        </div>
      );
    case 'notify':
      return (
        <div class="event-line notify-event" data-testid="event-notify">
          <span class="ev-icon" aria-hidden="true">🔔</span> notified Slack
          {e.channel ? <span class="muted small"> ({e.channel})</span> : null}: <span class="notify-text">{e.text}</span>
        </div>
      );
    case 'spend-limit-reached':
      return (
        <div class="event-line warn" data-testid="event-spend-limit">
          <span class="ev-icon" aria-hidden="true">⏸</span> Queue paused: {e.message}{' '}
          <span class="muted small">
            ({usd(e.spent_usd)} of {usd(e.limit_usd)})
            <Hint hint={e.hint} code="spend_limit" />
          </span>
        </div>
      );
    case 'spend-limit-lifted':
      return (
        <div class="event-line muted" data-testid="event-spend-lifted">
          <span class="ev-icon" aria-hidden="true">▶</span> Spend limit raised: the queue runs again
        </div>
      );
    case 'warning':
      return (
        <div class="event-line warn" data-testid="event-warning">
          <span class="ev-icon" aria-hidden="true">⚠</span> {e.message} <span class="muted small">({e.code})</span>
        </div>
      );
    case 'error':
      return (
        <div class="event-line bad" data-testid="event-error">
          <span class="ev-icon" aria-hidden="true">✗</span> {e.message} <span class="muted small">({e.code})</span>
          <span class="muted">
            <Hint hint={e.hint} code={e.code} />
          </span>
        </div>
      );
    case 'usage':
      return (
        <div class="event-line usage muted small">
          {modelLabel(e.model)} · {e.input_tokens.toLocaleString()} in / {e.output_tokens.toLocaleString()} out · {usd(e.cost_usd)}
          <span class="usage-total"> · session {usd(e.total_cost_usd)}</span>
        </div>
      );
    case 'sandbox-status':
      return (
        <div class="event-line muted small">
          <StatusDot kind="sandbox" status={e.status} /> {sandboxLabel(e.status)}
          {e.message && <span> — {e.message}</span>}
        </div>
      );
    case 'session-created':
      return (
        <div class="event-line muted small">
          {e.creator.name} started this session on <code>{e.repo_url}</code> from <code>{e.base_branch}</code> →{' '}
          <code>{e.branch}</code> with {modelLabel(e.model)}
          {e.effort ? ` (${e.effort})` : ''}
          {e.forked_from && (
            <span data-testid="forked-from-event">
              , forked from <Link href={`/sessions/${e.forked_from.session_id}`}>{e.forked_from.session_id}</Link> at event{' '}
              {e.forked_from.seq}
            </span>
          )}
        </div>
      );
    case 'session-updated':
      return (
        <div class="event-line muted small">
          {e.title ? `Renamed to “${e.title}”` : `Session ${e.status}`}
        </div>
      );
    case 'artifact-created':
      return (
        <div class="event-line">
          <span class="ev-icon" aria-hidden="true">▣</span> {e.kind}:{' '}
          <a href={e.url} target="_blank" rel="noopener noreferrer">
            {e.url}
          </a>
        </div>
      );
    case 'child-session-updated':
      return (
        <div class="event-line muted small">
          Child session <a href={`/sessions/${e.child_session_id}`}>{e.child_session_id}</a> is {e.status}
        </div>
      );
    case 'prompt-cancelled':
      return <div class="event-line muted small">A queued prompt was cancelled</div>;
    default:
      return <div class="event-line muted small">{(e as { type: string }).type}</div>;
  }
}

function Commit({ e }: { e: GitCommitEvent }) {
  const [subject] = e.message.split('\n');
  return (
    <div class="event-line commit" data-testid="git-commit" data-sha={e.sha}>
      <span class="ev-icon" aria-hidden="true">●</span>
      <code class="sha" title={e.sha}>
        {shortSha(e.sha)}
      </code>
      <span class="commit-msg">{subject}</span>
      <span class="muted small">
        {' '}
        on <code>{e.branch}</code> · {e.author.name} · {e.files_changed} file{e.files_changed === 1 ? '' : 's'}
      </span>
    </div>
  );
}

function Push({ e }: { e: GitPushEvent }) {
  return (
    <div class="event-line push" data-testid="git-push">
      <span class="ev-icon" aria-hidden="true">↑</span> Pushed <code class="sha">{shortSha(e.sha)}</code> to{' '}
      <code>{e.branch}</code> <span class="muted small">({e.remote})</span>
    </div>
  );
}

/** A height guess per row before it is measured. */
export function estimateRow(item: Item): number {
  switch (item.kind) {
    case 'prompt':
      return 64 + Math.ceil(item.content.length / 100) * 20;
    case 'agent-text':
    case 'streaming':
      return 24 + (item.text.split('\n').length + Math.ceil(item.text.length / 110)) * 20;
    case 'tool':
      return 40;
    default:
      return 30;
  }
}
