// /sessions/:id — header (title, status, sandbox, cost, presence, connection), the live timeline,
// the queue and prompt box, and the Changes panel.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { DiffResponse, Participant, PullRequest } from '../api/types';
import { Avatar, InlineError, Link, StatusDot } from '../components/bits';
import { DiffPanel } from '../components/DiffPanel';
import { ModelPicker } from '../components/ModelPicker';
import { PrChip, PrDialog, prSummary } from '../components/PullRequest';
import { ArchiveButton, EditableTitle, toggleArchived } from '../components/SessionTidy';
import { TimelineRow, estimateRow, sandboxLabel } from '../components/TimelineRow';
import { VirtualList } from '../components/VirtualList';
import { toErrorInfo } from '../api/client';
import type { ErrorInfo } from '../api/types';
import { automationOfRef } from '../lib/automations';
import { isTouch, isWide } from '../lib/device';
import { modelLabel, originLabel, repoLabel, usd } from '../lib/format';
import { useStore } from '../lib/store';
import { UNTITLED, currentSession$, learnTitle, me$, reportError, titleFromPrompt, titles$ } from '../state';
import { type Item, type QueueEntry, commits, currentPull, hasPushed, isRunning, itemType, visibleRows } from '../timeline/reduce';
import type { SocketStatus } from '../ws/socket';
import { navigate } from '../router';
import { type SessionController, useSession } from './useSession';

const getKey = (item: Item) => item.key;
const getAliases = (item: Item) => item.aliases;

const DIFF_EVENTS = new Set(['git-commit', 'git-push', 'prompt-finished']);

export function SessionView({ id }: { id: string }) {
  const ctl = useSession(id);
  const { state, status } = ctl;
  const session = state.session;
  const viewer = useStore(me$);
  const running = isRunning(state);
  const [panel, setPanel] = useState(isWide);
  const [panelWidth, setPanelWidth] = useState<number | null>(savedPanelWidth);
  const [expanded, setExpanded] = useState<Set<string>>(() => new Set());
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const rows = useMemo(() => visibleRows(state.rows, collapsed), [state.rows, collapsed]);
  const [showAll, setShowAll] = useState<Set<string>>(() => new Set());
  const [atBottom, setAtBottom] = useState(true);
  const [jump, setJump] = useState(0);

  // Refetch the diff after each commit or push, and after each prompt (one that changed nothing
  // leaves the branch matching its base, which the panel says).
  const gitCount = useMemo(
    () => state.events.reduce((n, e) => n + (DIFF_EVENTS.has(e.type) ? 1 : 0), 0),
    [state.events],
  );
  // The branch was pushed (its push may be in older, unloaded history: the diff knows too).
  const [diffPushed, setDiffPushed] = useState(false);
  const onDiff = useCallback((d: DiffResponse) => setDiffPushed(!!d.head_sha), []);
  const canPr = usePullRequests(id, ctl);
  const [prDialog, setPrDialog] = useState(false);
  const pushed = diffPushed || hasPushed(state);
  const prPossible = !!session && canPr !== false && (pushed || state.pulls.length > 0);
  const openPull = currentPull(state)?.state === 'open';

  useEffect(() => {
    document.title = session ? `${session.title} · openinspect` : 'openinspect';
  }, [session?.title]);

  // The palette can act on this session: stop it, open its changes or its PR, copy its branch.
  useEffect(() => {
    currentSession$.set({
      id,
      title: session?.title ?? id,
      running,
      stop: ctl.stop,
      branch: session?.branch ?? null,
      openChanges: () => setPanel(true),
      createPr: prPossible ? () => setPrDialog(true) : null,
      prLabel: openPull ? 'Update PR' : 'Create PR',
      archived: session?.status === 'archived',
      toggleArchived: () => session && void toggleArchived(session, reportError),
    });
  }, [id, session, running, ctl.stop, prPossible, openPull]);
  useEffect(() => () => currentSession$.set(null), []);

  const toggle = useCallback(
    (key: string) =>
      setExpanded((s) => {
        const n = new Set(s);
        if (n.has(key)) n.delete(key);
        else n.add(key);
        return n;
      }),
    [],
  );
  const onShowAll = useCallback((key: string) => setShowAll((s) => new Set(s).add(key)), []);
  const onCollapse = useCallback(
    (promptId: string) =>
      setCollapsed((s) => {
        const n = new Set(s);
        if (n.has(promptId)) n.delete(promptId);
        else n.add(promptId);
        return n;
      }),
    [],
  );
  const sessionModel = session?.model ?? '';
  // Anyone who sees the session takes part in it (or is an admin): the server checks again,
  // and also that the viewer may start sessions on its repo.
  const onFork = useCallback(
    async (seq: number) => {
      try {
        const made = await endpoints.forkSession(id, seq);
        navigate(`/sessions/${made.session.id}`);
      } catch (err) {
        reportError(err);
      }
    },
    [id],
  );
  const canFork = !!viewer && !!session;
  const render = useCallback(
    (item: Item) => (
      <TimelineRow
        item={item}
        open={expanded.has(item.key)}
        showAll={showAll.has(item.key)}
        onToggle={toggle}
        onShowAll={onShowAll}
        sessionModel={sessionModel}
        collapsed={item.kind === 'prompt-finished' && collapsed.has(item.promptId)}
        onCollapse={onCollapse}
        onFork={canFork ? onFork : undefined}
      />
    ),
    [expanded, showAll, toggle, onShowAll, sessionModel, collapsed, onCollapse, canFork, onFork],
  );
  const rowProps = useCallback(
    (item: Item) => ({ 'data-testid': 'timeline-item', 'data-seq': String(item.seq), 'data-type': itemType(item) }),
    [],
  );

  const header = state.hasMoreBefore ? (
    <div class="load-older">
      <button type="button" class="button ghost small" data-testid="load-older" onClick={ctl.loadOlder} disabled={ctl.loadingOlder}>
        {ctl.loadingOlder ? 'Loading older events…' : 'Load older events'}
      </button>
    </div>
  ) : state.subscribed && state.events.length > 0 ? (
    <div class="timeline-start muted small">Beginning of the session</div>
  ) : null;

  return (
    <div
      class={`session-page ${panel ? 'with-panel' : ''}`}
      style={panelWidth ? { '--panel-width': `${panelWidth}px` } : undefined}
    >
      <SessionHeader
        ctl={ctl}
        panel={panel}
        onPanel={() => setPanel((p) => !p)}
        prPossible={prPossible}
        prDialog={prDialog}
        setPrDialog={setPrDialog}
      />
      <ConnectionBanner status={status} onRetry={ctl.reconnect} />
      <div class="session-body">
        <section class="timeline-col" aria-label="Timeline">
          {!state.subscribed && !status.fatal && <div class="timeline-loading muted">Connecting to the session…</div>}
          {status.fatal && !state.subscribed && (
            <div class="timeline-loading">
              <InlineError error={status.fatal} />
              <Link href="/">Back to the sessions</Link>
            </div>
          )}
          {state.subscribed && state.rows.length === 0 && <div class="timeline-loading muted">No events yet.</div>}
          <VirtualList
            items={rows}
            getKey={getKey}
            getAliases={getAliases}
            estimate={estimateRow}
            render={render}
            rowProps={rowProps}
            header={header}
            testId="timeline"
            class="timeline"
            ariaLabel="Session timeline"
            onNearTop={ctl.loadOlder}
            onAtBottomChange={setAtBottom}
            scrollToBottomSignal={jump}
          />
          {!atBottom && (
            <button type="button" class="jump-bottom" onClick={() => setJump((n) => n + 1)}>
              ↓ Latest
            </button>
          )}
          <Queue queue={state.queue} onCancel={ctl.cancelPrompt} />
          <PromptBox
            ctl={ctl}
            running={running}
            disabled={!session || session.status === 'archived' || session.status === 'failed'}
            sessionModel={sessionModel}
            onSent={() => setJump((n) => n + 1)}
          />
        </section>
        {panel && (
          <aside class="side-panel" data-testid="changes-panel">
            <ResizeHandle width={panelWidth} onWidth={setPanelWidth} />
            <DiffPanel sessionId={id} refreshKey={gitCount} onClose={() => setPanel(false)} onLoaded={onDiff} />
          </aside>
        )}
      </div>
    </div>
  );
}

const PANEL_WIDTH_KEY = 'oi.panelWidth';
const PANEL_MIN_PX = 320;
/** The timeline keeps at least this much of the window. */
const TIMELINE_MIN_PX = 360;
const PANEL_STEP_PX = 32;

function savedPanelWidth(): number | null {
  try {
    const n = Number(localStorage.getItem(PANEL_WIDTH_KEY));
    return Number.isFinite(n) && n >= PANEL_MIN_PX ? n : null;
  } catch {
    return null;
  }
}

function clampPanel(px: number): number {
  return Math.round(Math.max(PANEL_MIN_PX, Math.min(px, window.innerWidth - TIMELINE_MIN_PX)));
}

/** The Changes panel's left edge: drag it (or use ←/→ when focused) to resize; kept per browser. */
function ResizeHandle({ width, onWidth }: { width: number | null; onWidth(px: number): void }) {
  const set = (px: number) => {
    const w = clampPanel(px);
    onWidth(w);
    try {
      localStorage.setItem(PANEL_WIDTH_KEY, String(w));
    } catch {
      /* private mode: the width lasts for this page */
    }
  };
  const current = (el: HTMLElement) => width ?? el.parentElement?.getBoundingClientRect().width ?? 480;
  return (
    <div
      class="panel-resize"
      data-testid="changes-resize"
      role="separator"
      aria-orientation="vertical"
      aria-label="Resize the changes panel"
      aria-valuenow={width ?? undefined}
      tabIndex={0}
      onPointerDown={(e) => {
        const el = e.currentTarget as HTMLElement;
        el.setPointerCapture(e.pointerId);
        const right = el.parentElement!.getBoundingClientRect().right;
        const move = (ev: PointerEvent) => set(right - ev.clientX);
        const up = () => {
          el.removeEventListener('pointermove', move);
          el.removeEventListener('pointerup', up);
        };
        el.addEventListener('pointermove', move);
        el.addEventListener('pointerup', up);
        e.preventDefault();
      }}
      onKeyDown={(e) => {
        const el = e.currentTarget as HTMLElement;
        if (e.key === 'ArrowLeft') set(current(el) + PANEL_STEP_PX);
        else if (e.key === 'ArrowRight') set(current(el) - PANEL_STEP_PX);
        else return;
        e.preventDefault();
      }}
    />
  );
}

/** The session's PRs: the REST list on open and after each pr-* event, merged by the reducer.
 * Returns whether the session can have a PR at all (null until known). */
function usePullRequests(id: string, ctl: SessionController): boolean | null {
  const { state, dispatch, resumeSeq } = ctl;
  const [canOpen, setCanOpen] = useState<boolean | null>(null);
  const prEvents = useMemo(
    () => state.events.reduce((n, e) => n + (e.type === 'pr-opened' || e.type === 'pr-updated' ? 1 : 0), 0),
    [state.events],
  );
  useEffect(() => {
    if (!state.subscribed) return; // the session exists and is ours to see
    const ctlr = new AbortController();
    const asOf = resumeSeq();
    const timer = window.setTimeout(() => {
      endpoints
        .pullRequests(id, ctlr.signal)
        .then((r) => {
          setCanOpen(r.can_open !== false);
          dispatch({ type: 'pull-requests', pull_requests: r.pull_requests, as_of_seq: asOf });
        })
        .catch((err) => {
          if (!ctlr.signal.aborted && !(err instanceof ApiError && err.status === 404)) reportError(err);
        });
    }, prEvents ? 300 : 0); // a burst of PR events: one request
    return () => {
      clearTimeout(timer);
      ctlr.abort();
    };
  }, [id, state.subscribed, prEvents, dispatch, resumeSeq]);
  return canOpen;
}

function SessionHeader(props: {
  ctl: SessionController;
  panel: boolean;
  onPanel(): void;
  prPossible: boolean;
  prDialog: boolean;
  setPrDialog(open: boolean): void;
}) {
  const { ctl, panel, onPanel, prDialog, setPrDialog } = props;
  const { state, status } = ctl;
  const s = state.session;
  const startedBy = automationOfRef(s?.origin_ref);
  const running = isRunning(state);
  const sandbox = state.sandboxStatus ?? 'none';
  const shownTitle = s ? displayTitle(s.id, s.title, state.rows) : '';
  const pull = currentPull(state);
  const openPull = pull?.state === 'open' ? pull : null;
  const onPrDone = useCallback(
    (pr: PullRequest) => ctl.dispatch({ type: 'pull-requests', pull_requests: [pr], as_of_seq: ctl.resumeSeq() }),
    [ctl.dispatch, ctl.resumeSeq],
  );
  useEffect(() => {
    if (s && shownTitle !== s.title) learnTitle(s.id, shownTitle);
  }, [s?.id, s?.title, shownTitle]);
  return (
    <header class="session-header">
      <div class="session-title-row">
        <Link href="/" class="back" aria-label="All sessions">
          ←
        </Link>
        {s && <StatusDot status={s.status} label={`Session ${s.status}`} />}
        {s ? (
          <EditableTitle session={s} shown={shownTitle} />
        ) : (
          <h1 data-testid="session-title" class="session-title">
            {status.fatal ? 'Session unavailable' : 'Loading…'}
          </h1>
        )}
        {s && <span class={`badge badge-${s.status}`}>{running ? 'running' : s.status}</span>}
        {pull && <PrChip pull={pull} />}
        <div class="spacer" />
        {props.prPossible && (
          <button
            type="button"
            class="button small"
            data-testid="pr-create"
            aria-haspopup="dialog"
            onClick={() => setPrDialog(true)}
            title={openPull ? `Push the latest work and update pull request #${openPull.number}` : 'Open a pull request of the session branch'}
          >
            {openPull ? 'Update PR' : 'Create PR'}
          </button>
        )}
        {s && <ArchiveButton session={s} onError={reportError} />}
        <Presence participants={state.participants} />
        <span
          class={`conn conn-${status.state}`}
          data-testid="connection-status"
          data-state={status.state}
          role="status"
          title={status.state === 'online' ? 'Live' : status.state === 'connecting' ? 'Connecting' : 'Offline'}
        >
          <StatusDot status={status.state} />
          <span class="conn-label">{status.state === 'online' ? 'Live' : status.state === 'connecting' ? 'Connecting' : 'Offline'}</span>
        </span>
        <button type="button" class="button ghost small" data-testid="changes-toggle" aria-pressed={panel} onClick={onPanel}>
          Changes
        </button>
      </div>
      {s && (
        <div class="session-meta">
          <span title={s.repo_url}>
            <span class="muted">repo</span> <code>{repoLabel(s.repo_url)}</code>
          </span>
          <span>
            <code>{s.base_branch}</code> <span class="muted">→</span> <code>{s.branch}</code>
          </span>
          <span>
            <span class="muted">model</span> <span title={s.model}>{modelLabel(s.model)}</span>
            {s.effort ? ` · ${s.effort}` : ''}
          </span>
          <span class="sandbox" data-testid="sandbox-status" data-status={sandbox}>
            <StatusDot status={sandbox} /> {sandboxLabel(sandbox)}
          </span>
          <span data-testid="usage-cost" title="Total model cost of this session">
            <span class="muted">cost</span> {usd(state.totalCostUsd)}
          </span>
          <span data-testid="session-origin" data-origin={s.origin ?? 'api'} title={s.origin_ref ?? undefined}>
            <span class="muted">from</span> {originLabel(s.origin)}
            {startedBy && (
              <>
                {' '}
                <span class="muted">·</span>{' '}
                <Link href={`/automations/${startedBy}`} data-testid="session-automation">
                  automation
                </Link>
              </>
            )}
          </span>
          {s.forked_from_id && (
            <span data-testid="session-forked-from">
              <span class="muted">forked from</span>{' '}
              <Link href={`/sessions/${s.forked_from_id}`} class="mono small">
                {s.forked_from_id}
              </Link>{' '}
              <span class="muted">at event {s.forked_from_seq}</span>
            </span>
          )}
        </div>
      )}
      {prDialog && s && (
        <PrDialog
          sessionId={s.id}
          open={openPull}
          defaultTitle={shownTitle}
          defaultBody={prSummary({ title: shownTitle, sessionUrl: `${location.origin}/sessions/${s.id}`, commits: commits(state) })}
          onClose={() => setPrDialog(false)}
          onDone={onPrDone}
        />
      )}
    </header>
  );
}

function Presence({ participants }: { participants: readonly Participant[] }) {
  const me = useStore(me$);
  return (
    <div class="presence" data-testid="presence" aria-label={`${participants.length} watching`} role="group">
      {participants.map((p) => (
        <Avatar
          key={p.user_id}
          userId={p.user_id}
          name={p.user_id === me?.id ? `${p.name} (you)` : p.name}
          status={p.status}
          size={24}
          testId="presence-avatar"
        />
      ))}
    </div>
  );
}

function ConnectionBanner({ status, onRetry }: { status: SocketStatus; onRetry(): void }) {
  const [now, setNow] = useState(Date.now());
  const offline = status.state !== 'online' && status.everOnline && !status.fatal;
  useEffect(() => {
    if (!offline) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [offline]);
  if (!offline) return null;
  const secs = status.retryAt ? Math.max(0, Math.ceil((status.retryAt - now) / 1000)) : 0;
  return (
    <div class="offline-banner" role="status">
      <StatusDot status="offline" />
      {status.state === 'connecting' ? 'Reconnecting…' : `Offline — reconnecting${secs ? ` in ${secs} s` : ''}.`}{' '}
      <span class="muted">Nothing will be lost: the timeline resumes where it left off.</span>
      {status.state === 'offline' && (
        <button type="button" class="link-button" onClick={onRetry}>
          Retry now
        </button>
      )}
    </div>
  );
}

function Queue({ queue, onCancel }: { queue: readonly QueueEntry[]; onCancel(id: string): void }) {
  if (queue.length === 0) return null;
  return (
    <div class="queue" data-testid="queue" aria-label="Prompt queue">
      {queue.map((q) => (
        <div key={q.id} class={`queued q-${q.status}`} data-testid={q.status === 'queued' ? 'queued-prompt' : 'running-prompt'} data-prompt-id={q.id}>
          <span class={`badge badge-${q.status}`}>{q.status}</span>
          <span class="queued-text" title={q.content}>
            {q.content}
          </span>
          <span class="muted small">{q.author.name}</span>
          {q.status === 'queued' && (
            <button
              type="button"
              class="icon-button"
              data-testid="queued-cancel"
              aria-label={`Cancel queued prompt: ${q.content.slice(0, 40)}`}
              onClick={() => onCancel(q.id)}
            >
              ×
            </button>
          )}
        </div>
      ))}
    </div>
  );
}

function PromptBox(props: { ctl: SessionController; running: boolean; disabled: boolean; sessionModel: string; onSent(): void }) {
  const { ctl, running } = props;
  const [text, setText] = useState('');
  const [model, setModel] = useState('');
  const [effort, setEffort] = useState('');
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const ref = useRef<HTMLTextAreaElement>(null);
  const touch = useMemo(isTouch, []);

  const send = async () => {
    const content = text;
    if (!content.trim() || sending) return;
    setSending(true);
    setError(null);
    setText('');
    try {
      await ctl.sendPrompt(content, model || undefined, effort || undefined);
      props.onSent();
    } catch (err) {
      setText((t) => t || content); // give the text back
      setError(toErrorInfo(err));
      reportError(err);
    } finally {
      setSending(false);
      ref.current?.focus();
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.isComposing) return;
    // On a touch keyboard Enter is a new line; Send is the button.
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !touch) {
      e.preventDefault();
      void send();
    } else if (e.key === 'Escape' && running) {
      e.preventDefault();
      ctl.stop();
    }
  };

  return (
    <form
      class="prompt-box"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <InlineError error={error} />
      <textarea
        ref={ref}
        data-testid="prompt-input"
        aria-label="Prompt"
        placeholder={placeholder(props.disabled, running)}
        rows={touch ? 2 : 3}
        value={text}
        disabled={props.disabled}
        onInput={(e) => {
          setText((e.target as HTMLTextAreaElement).value);
          ctl.typing();
        }}
        onKeyDown={onKeyDown}
      />
      <div class="prompt-actions">
        <ModelPicker
          model={model}
          effort={effort}
          onModel={setModel}
          onEffort={setEffort}
          defaultLabel={props.sessionModel ? `Session model (${modelLabel(props.sessionModel)})` : 'Session model'}
          defaultModel={props.sessionModel}
          modelTestId="prompt-model"
          effortTestId="prompt-effort"
          compact
        />
        <div class="spacer" />
        <button
          type="button"
          class="button danger"
          data-testid="stop-button"
          disabled={!running}
          onClick={ctl.stop}
          title={touch ? 'Stop the running prompt' : 'Stop the running prompt (Esc)'}
        >
          ■ Stop
        </button>
        <button type="submit" class="button primary" data-testid="prompt-send" disabled={props.disabled || sending || !text.trim()}>
          {sending ? 'Sending…' : running ? 'Queue' : 'Send'}
        </button>
      </div>
    </form>
  );
}

/** The prompt box's placeholder; keyboard shortcuts only where there is a keyboard. */
function placeholder(disabled: boolean, running: boolean): string {
  if (disabled) return 'This session does not take prompts';
  if (isTouch()) return running ? 'Queue a follow-up…' : 'Ask the agent…';
  return running ? 'Queue a follow-up… (Esc stops the running prompt)' : 'Ask the agent… (Enter to send, Shift+Enter for a new line)';
}

/** The server titles prompt-less sessions "Untitled session": show the first prompt instead. */
function displayTitle(id: string, title: string, rows: readonly Item[]): string {
  if (title !== UNTITLED) return title;
  const first = rows.find((r) => r.kind === 'prompt');
  if (first && first.kind === 'prompt') {
    const shown = titleFromPrompt(first.content);
    if (shown) return shown;
  }
  return titles$.get()[id] ?? title;
}
