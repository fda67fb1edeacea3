// `/` — the session inbox: Running / Needs attention / Recent, filter mine/all, search,
// unread markers; polled every 3 s while the tab is visible (rows update in place).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { endpoints } from '../api/endpoints';
import type { DiffStat, LastPrompt, PullSummary, Session } from '../api/types';
import { type Group, groupOf } from '../lib/grouping';
import { Link, StatusDot } from '../components/bits';
import { isTouch } from '../lib/device';
import { originLabel, plural, relativeTime, repoLabel, usd } from '../lib/format';
import { type ListFilter, listFilter, markAllSeen, onSeenChange, seenSeq, setListFilter } from '../lib/prefs';
import { createStore, useStore } from '../lib/store';
import { learnName, me$, names$, reportError, sessions$, shownTitle, titles$ } from '../state';

const POLL_MS = 3000;

/** Whether the list shows the archived sessions (and only them) instead of the others. */
export const archivedView$ = createStore(false);

/** The newest prompt outcome of each listed session, by session id. */
export const lastPrompts$ = createStore<Record<string, LastPrompt>>({});

/** What else the list says about each session: repo names (by repo id), diff stats and PRs. */
export interface ListExtras {
  repoNames: Record<string, string>;
  diffStats: Record<string, DiffStat>;
  pulls: Record<string, PullSummary>;
}
export const listExtras$ = createStore<ListExtras>({ repoNames: {}, diffStats: {}, pulls: {} });

/** The registered repo name of a session, else a label from its URL. */
export function sessionRepoName(s: Session, names: Record<string, string>): string {
  return (s.repo_id && names[s.repo_id]) || repoLabel(s.repo_url);
}

/** Fetch the list now and every 3 s while visible; shared by the list and the palette. */
export function useSessionPolling(): void {
  useEffect(() => {
    let inFlight: AbortController | null = null;
    let failures = 0;
    const tick = () => {
      if (document.visibilityState !== 'visible' || inFlight) return;
      const ctl = new AbortController();
      inFlight = ctl;
      const archived = archivedView$.get();
      endpoints
        .sessions(ctl.signal, archived)
        .then(({ sessions, creators, last_prompts, repo_names, diff_stats, pulls }) => {
          failures = 0;
          if (archived !== archivedView$.get()) return; // the filter changed meanwhile
          for (const [id, author] of Object.entries(creators ?? {})) learnName(id, author.name);
          const outcomes = last_prompts ?? {};
          if (JSON.stringify(outcomes) !== JSON.stringify(lastPrompts$.get())) lastPrompts$.set(outcomes);
          const extras: ListExtras = { repoNames: repo_names ?? {}, diffStats: diff_stats ?? {}, pulls: pulls ?? {} };
          if (JSON.stringify(extras) !== JSON.stringify(listExtras$.get())) listExtras$.set(extras);
          const prev = sessions$.get();
          // No flicker: keep the same array when nothing changed.
          if (!prev || !sameList(prev, sessions)) sessions$.set(sessions);
        })
        .catch((err) => {
          if (ctl.signal.aborted) return;
          if (++failures === 1 || failures % 20 === 0) reportError(err);
        })
        .finally(() => {
          if (inFlight === ctl) inFlight = null;
        });
    };
    tick();
    const timer = setInterval(tick, POLL_MS);
    const onVis = () => tick();
    document.addEventListener('visibilitychange', onVis);
    const unsubscribe = archivedView$.subscribe(() => {
      inFlight?.abort();
      inFlight = null;
      sessions$.set(null);
      tick();
    });
    return () => {
      unsubscribe();
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVis);
      inFlight?.abort();
    };
  }, []);
}

function sameList(a: Session[], b: Session[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.id !== y.id ||
      x.updated_at !== y.updated_at ||
      x.last_seq !== y.last_seq ||
      x.status !== y.status ||
      x.sandbox_status !== y.sandbox_status ||
      x.title !== y.title ||
      x.total_cost_usd !== y.total_cost_usd
    )
      return false;
  }
  return true;
}

export function SessionList() {
  useSessionPolling();
  const sessions = useStore(sessions$);
  const me = useStore(me$);
  const names = useStore(names$);
  const titles = useStore(titles$);
  const lastPrompts = useStore(lastPrompts$);
  const extras = useStore(listExtras$);
  const archived = useStore(archivedView$);
  const [filter, setFilter] = useState<ListFilter>(listFilter);
  const [query, setQuery] = useState('');
  const [, setSeenTick] = useState(0);
  const [, setClock] = useState(0);
  const searchRef = useRef<HTMLInputElement>(null);

  useEffect(() => onSeenChange(() => setSeenTick((n) => n + 1)), []);
  useEffect(() => {
    const t = setInterval(() => setClock((n) => n + 1), 30_000);
    return () => clearInterval(t);
  }, []);
  useEffect(() => {
    document.title = 'Sessions · openinspect';
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (e.key === '/' && !e.ctrlKey && !e.metaKey && !(target && /INPUT|TEXTAREA|SELECT/.test(target.tagName))) {
        e.preventDefault();
        searchRef.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const choose = (f: ListFilter) => {
    setFilter(f);
    setListFilter(f);
  };

  const visible = useMemo(() => {
    const q = query.trim().toLowerCase();
    return (sessions ?? []).filter(
      (s) =>
        (filter === 'all' || s.creator_id === me?.id) &&
        (!q ||
          shownTitle(s, titles).toLowerCase().includes(q) ||
          s.repo_url.toLowerCase().includes(q) ||
          sessionRepoName(s, extras.repoNames).toLowerCase().includes(q)),
    );
  }, [sessions, filter, query, me?.id, titles, extras.repoNames]);

  const groups: { id: Group; label: string; rows: Session[] }[] = [
    { id: 'running', label: 'Running', rows: [] },
    { id: 'attention', label: 'Needs attention', rows: [] },
    { id: 'recent', label: 'Recent', rows: [] },
  ];
  for (const s of visible) groups.find((g) => g.id === groupOf(s, lastPrompts[s.id]))!.rows.push(s);
  const unread = visible.filter((s) => s.last_seq > seenSeq(s.id));

  return (
    <div class="page list-page">
      <div class="page-head">
        <h1>Sessions</h1>
        <div class="spacer" />
        <Link href="/new" class="button primary">
          New session
        </Link>
      </div>
      <div class="toolbar">
        <input
          ref={searchRef}
          type="search"
          class="search"
          data-testid="session-search"
          placeholder={isTouch() ? 'Search title or repo' : 'Search title or repo   /'}
          aria-label="Search sessions by title or repo"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
        <div class="seg" role="group" aria-label="Whose sessions">
          <button type="button" data-testid="filter-mine" aria-pressed={filter === 'mine'} onClick={() => choose('mine')}>
            Mine
          </button>
          <button type="button" data-testid="filter-all" aria-pressed={filter === 'all'} onClick={() => choose('all')}>
            All
          </button>
        </div>
        <button
          type="button"
          class="button ghost small"
          data-testid="filter-archived"
          aria-pressed={archived}
          title={archived ? 'Back to the sessions that are not archived' : 'Show the archived sessions'}
          onClick={() => archivedView$.set(!archived)}
        >
          Archived
        </button>
        {unread.length > 0 && (
          <button type="button" class="link-button small" onClick={() => (markAllSeen(unread), setSeenTick((n) => n + 1))}>
            Mark all read
          </button>
        )}
      </div>
      <div class="session-list" data-testid="session-list">
        {sessions === null && <p class="muted empty">Loading sessions…</p>}
        {sessions !== null && visible.length === 0 && (
          <div class="empty">
            <p class="muted">{archived && sessions.length === 0
                ? 'No archived sessions.'
                : sessions.length === 0
                  ? 'No sessions yet.'
                  : 'No session matches.'}</p>
            {sessions.length === 0 && !archived && (
              <Link href="/new" class="button primary">
                Start a session
              </Link>
            )}
          </div>
        )}
        {groups
          .filter((g) => g.rows.length > 0)
          .map((g) => (
            <section key={g.id} class={`group group-${g.id}`} aria-labelledby={`group-${g.id}`}>
              <h2 id={`group-${g.id}`} class="group-title">
                {g.label} <span class="count">{g.rows.length}</span>
              </h2>
              <ul class="rows">
                {g.rows.map((s) => (
                  <SessionRow
                    key={s.id}
                    s={s}
                    title={shownTitle(s, titles)}
                    meId={me?.id ?? null}
                    names={names}
                    last={lastPrompts[s.id]}
                    repoName={sessionRepoName(s, extras.repoNames)}
                    diff={extras.diffStats[s.id]}
                    pull={extras.pulls[s.id]}
                  />
                ))}
              </ul>
            </section>
          ))}
      </div>
    </div>
  );
}

/** How the session's newest prompt ended, in a few words. */
function outcomeText(s: Session, last: LastPrompt | undefined): { tone: string; text: string } {
  if (s.status === 'active') return { tone: 'run', text: 'Running…' };
  if (!last) return { tone: 'muted', text: 'No prompt yet' };
  switch (last.status) {
    case 'success':
      return { tone: 'ok', text: '✓ Done' };
    case 'stopped':
      return { tone: 'warn', text: '■ Stopped' };
    case 'cancelled':
      return { tone: 'muted', text: 'Cancelled' };
    case 'queued':
    case 'running':
      return { tone: 'run', text: 'Running…' };
    case 'interrupted':
      return { tone: 'bad', text: `✗ Interrupted${last.error_message ? `: ${last.error_message}` : ''}` };
    default:
      return { tone: 'bad', text: `✗ Failed: ${last.error_message || last.error_code || 'unknown error'}` };
  }
}

function SessionRow(props: {
  s: Session;
  title: string;
  meId: string | null;
  names: Record<string, string>;
  last: LastPrompt | undefined;
  repoName: string;
  diff: DiffStat | undefined;
  pull: PullSummary | undefined;
}) {
  const { s, title, meId, names, diff, pull } = props;
  const outcome = outcomeText(s, props.last);
  const unread = s.last_seq > seenSeq(s.id);
  const author = s.creator_id === meId ? 'you' : names[s.creator_id] ?? s.creator_id;
  const status = s.status === 'active' ? 'running' : s.status;
  return (
    <li>
      <Link
        href={`/sessions/${s.id}`}
        class={`session-row ${unread ? 'unread' : ''}`}
        data-testid="session-row"
        data-session-id={s.id}
        aria-label={`${title}, ${status}${unread ? ', unread' : ''}`}
      >
        <StatusDot status={s.status} />
        <span class="row-title">
          {title}
          {unread && <span class="unread-dot" title="New activity" aria-hidden="true" />}
          {(s.sandbox_status === 'failed' || s.sandbox_status === 'lost') && (
            <span class="badge badge-error row-sandbox">sandbox {s.sandbox_status}</span>
          )}
          <span class="row-sub small">
            <span class={`row-outcome tone-${outcome.tone}`} data-testid="row-outcome" data-outcome={props.last?.status ?? 'none'} title={outcome.text}>
              {outcome.text}
            </span>
            {diff && (
              <span class="row-diffstat" data-testid="row-diffstat" title={`${plural(diff.files, 'file')} changed`}>
                {' · '}
                <span class="add">+{diff.additions}</span> <span class="del">−{diff.deletions}</span>{' '}
                <span class="muted">{plural(diff.files, 'file')}</span>
              </span>
            )}
            <span class="row-cost muted" data-testid="row-cost" title="Model cost">
              {' · '}
              {usd(s.total_cost_usd)}
            </span>
            {s.origin && s.origin !== 'web' && (
              <span class="row-origin muted" data-testid="row-origin" data-origin={s.origin} title={s.origin_ref ?? undefined}>
                {' · '}via {originLabel(s.origin)}
              </span>
            )}
            {pull && (
              <span class={`row-pr pr-${pull.state}`} data-testid="row-pr" data-state={pull.state}>
                {' · '}PR #{pull.number} {pull.draft && pull.state === 'open' ? 'draft' : pull.state}
              </span>
            )}
          </span>
        </span>
        <span class={`badge badge-${s.status} row-status`}>{status}</span>
        <span class="row-repo mono" data-testid="row-repo" title={s.repo_url}>
          {props.repoName}
        </span>
        <span class="row-branch mono" title={`${s.base_branch} → ${s.branch}`}>
          {s.branch}
        </span>
        <span class="row-author">{author}</span>
        <time class="row-time muted" dateTime={s.updated_at} title={new Date(s.updated_at).toLocaleString()}>
          {relativeTime(s.updated_at)}
        </time>
      </Link>
    </li>
  );
}
