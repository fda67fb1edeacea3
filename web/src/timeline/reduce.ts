// The session timeline as a pure reducer: WebSocket messages in, ordered timeline items out.
// No DOM, no I/O: everything the session view shows about a session's history comes from here.
//
// Invariants
// - Durable events are kept once each, sorted by `seq`, whatever order they arrive in (live,
//   replayed by `subscribed`, or older pages from `history-page`), so duplicates from a resume
//   that overlaps what we had are dropped and an older page slots in before the current window.
// - `resumeSeq` is the highest seq received *without a gap* on the live stream: a reconnect
//   subscribes with `since_seq = resumeSeq` and the server resends everything after it. If a
//   live event skips a seq, `gap` is set and `resumeSeq` stays put, so the next resubscribe
//   fills the hole (the socket client reacts to `gap` by reconnecting).
// - `agent-text-delta` is ephemeral and carries the seq of the last durable event before it.
//   Deltas accumulate per `part_id` into a streaming item placed after that seq; the durable
//   `agent-text` with the same `part_id` replaces it. A part whose durable text never comes
//   (the prompt was stopped mid-stream) is dropped when its prompt finishes, as a reload would.
// - `tool-output-delta` is ephemeral too: a running command's output accumulates per
//   (prompt, call id) in `live` (the newest `LIVE_OUTPUT_MAX_CHARS`) and is shown on that call's
//   running card; its durable `tool-result` (or the prompt's end) replaces it. A delta for a call
//   whose result we hold is stale (a resume can replay it after the result) and is ignored. A
//   client that joins mid-command shows output from then on, marked partial.
// - Live state (queue, session status, sandbox status, cost) starts from the `subscribed`
//   snapshot and is then moved only by events newer than the snapshot (`liveBase`): replayed and
//   older history events are already reflected in the snapshot and must not re-queue old prompts.
// - Pull requests (`pulls`) are kept per number with the seq their state is as of: a pr-opened /
//   pr-updated event (live, replayed or from an older page) or a REST snapshot (`pull-requests`,
//   as of the resume seq when it was asked) changes a PR only if it is at least as new as what
//   we hold, so the latest state wins whatever order they arrive in, and replays change nothing.

import type {
  AgentTextDeltaEvent,
  Author,
  DurableEvent,
  GitCommitEvent,
  Participant,
  PrState,
  Prompt,
  PullRequest,
  SandboxStatus,
  ServerMessage,
  Session,
  SessionEvent,
  ToolOutputDeltaEvent,
} from '../api/types';

export * from './items';
import type { Item, LiveOutput, StreamItem } from './items';
import { buildItems, mergeRows, withLiveOutput } from './items';

/** Live output kept per running call: the card shows its tail; the result brings the rest. */
export const LIVE_OUTPUT_MAX_CHARS = 64_000;

// ---- state ------------------------------------------------------------------------------------

export interface QueueEntry {
  id: string;
  content: string;
  author: Author;
  model: string | null;
  effort: string | null;
  status: 'queued' | 'running';
}

/** A pull request of the session, as far as we know. */
export interface PullState {
  number: number;
  url: string;
  state: PrState;
  /** From the REST list only (events carry no title). */
  title: string | null;
  draft: boolean;
  /** The seq this state is as of: its event's, or (resume seq + 0.5) when a REST list was asked. */
  asOf: number;
}

export interface TimelineState {
  /** Durable events, unique, ascending seq. */
  events: readonly DurableEvent[];
  /** Items built from `events` (no streams). */
  items: readonly Item[];
  /** Partial agent text from deltas whose durable text has not landed yet. */
  streams: readonly StreamItem[];
  /** Output of running commands, from their deltas. */
  live: readonly LiveOutput[];
  /** `items` and `streams` merged in display order, running cards with their live output:
   * what the view renders. */
  rows: readonly Item[];
  /** Older durable events exist before the first one we hold. */
  hasMoreBefore: boolean;
  /** Every durable event up to this seq was received on the live stream (resume point). */
  resumeSeq: number;
  /** A live event skipped a seq: resubscribe from `resumeSeq`. */
  gap: boolean;
  /** Live state reflects every event up to this seq (the snapshot's `last_seq`, then live ones). */
  liveBase: number;
  subscribed: boolean;
  session: Session | null;
  participants: readonly Participant[];
  queue: readonly QueueEntry[];
  sandboxStatus: SandboxStatus | null;
  totalCostUsd: number;
  /** The session's pull requests, by number. */
  pulls: readonly PullState[];
}

export const initialTimeline: TimelineState = {
  events: [],
  items: [],
  streams: [],
  live: [],
  rows: [],
  hasMoreBefore: false,
  resumeSeq: 0,
  gap: false,
  liveBase: 0,
  subscribed: false,
  session: null,
  participants: [],
  queue: [],
  sandboxStatus: null,
  totalCostUsd: 0,
  pulls: [],
};

export type TimelineAction =
  | ServerMessage
  /** The socket closed: streaming text may miss deltas from now on. */
  | { type: 'disconnected' }
  /** GET /api/sessions/{id}/pull-requests (or a POST's answer), asked when `resumeSeq` was `as_of_seq`. */
  | { type: 'pull-requests'; pull_requests: readonly PullRequest[]; as_of_seq: number };

/** Apply one action. */
export function reduce(state: TimelineState, action: TimelineAction): TimelineState {
  return reduceAll(state, [action]);
}

/** Apply a batch of actions (e.g. every message of one animation frame) with a single rebuild. */
export function reduceAll(state: TimelineState, actions: readonly TimelineAction[]): TimelineState {
  const d = new Draft(state);
  for (const action of actions) d.apply(action);
  return d.finish();
}

// ---- the draft: copy-on-write over one state ---------------------------------------------------

class Draft {
  private s: TimelineState;
  private events: DurableEvent[] | null = null;
  private streams: StreamItem[] | null = null;
  private queue: QueueEntry[] | null = null;
  private pulls: PullState[] | null = null;
  private live: LiveOutput[] | null = null;
  private eventsChanged = false;
  private streamsChanged = false;

  constructor(state: TimelineState) {
    this.s = { ...state };
  }

  private ev(): DurableEvent[] {
    if (this.events === null) this.events = this.s.events.slice();
    return this.events;
  }

  private st(): StreamItem[] {
    if (this.streams === null) this.streams = this.s.streams.slice();
    this.streamsChanged = true;
    return this.streams;
  }

  private lv(): LiveOutput[] {
    if (this.live === null) this.live = this.s.live.slice();
    return this.live;
  }

  private q(): QueueEntry[] {
    if (this.queue === null) this.queue = this.s.queue.slice();
    return this.queue;
  }

  private pl(): PullState[] {
    if (this.pulls === null) this.pulls = this.s.pulls.slice();
    return this.pulls;
  }

  /** What we learnt about PR `number` as of `asOf`; older news only fills in missing fields. */
  private notePull(
    number: number,
    asOf: number,
    fields: { url: string; state: PrState },
    details?: { title: string; draft: boolean },
  ): void {
    const list = this.pulls ?? this.s.pulls;
    const i = list.findIndex((p) => p.number === number);
    if (i < 0) {
      const next = this.pl();
      next.push({ number, asOf, ...fields, title: details?.title ?? null, draft: details?.draft ?? false });
      next.sort((a, b) => a.number - b.number);
      return;
    }
    const cur = list[i]!;
    if (asOf < cur.asOf) {
      if (details && cur.title === null) this.pl()[i] = { ...cur, ...details };
      return;
    }
    const same =
      cur.url === fields.url &&
      cur.state === fields.state &&
      cur.asOf === asOf &&
      (!details || (cur.title === details.title && cur.draft === details.draft));
    if (!same) this.pl()[i] = { ...cur, ...fields, ...(details ?? {}), asOf };
  }

  apply(action: TimelineAction): void {
    switch (action.type) {
      case 'subscribed':
        return this.subscribed(action);
      case 'event':
        if (action.event.type === 'agent-text-delta') return this.delta(action.event);
        if (action.event.type === 'tool-output-delta') return this.toolOutput(action.event);
        return this.durable(action.event);
      case 'history-page':
        return this.history(action.events, action.has_more);
      case 'presence':
        this.s.participants = action.participants;
        return;
      case 'pull-requests':
        // The list reflects every event up to as_of_seq, and maybe some after it: it ranks just
        // above event as_of_seq (a replay of that event must not undo it) and below the next one.
        for (const p of action.pull_requests)
          this.notePull(p.number, action.as_of_seq + 0.5, { url: p.url, state: p.state }, { title: p.title, draft: p.draft });
        return;
      case 'disconnected':
        if (this.s.streams.length || this.streams?.length)
          this.streams = this.st().map((p) =>
            p.gapped ? p : { ...p, gapped: true, sig: p.sig + ':gap' },
          );
        if ((this.live ?? this.s.live).some((l) => !l.partial))
          this.live = this.lv().map((l) => (l.partial ? l : { ...l, partial: true, version: l.version + 1 }));
        return;
      default:
        return; // prompt-accepted, error, pong: not timeline state
    }
  }

  private subscribed(msg: Extract<ServerMessage, { type: 'subscribed' }>): void {
    if (msg.reset) {
      this.events = [];
      this.streams = [];
      this.live = [];
      this.streamsChanged = true;
      this.eventsChanged = true;
      this.s.hasMoreBefore = msg.has_more;
    } else if (this.s.streams.length) {
      // We were away: deltas sent meanwhile are lost for good (the durable text will come).
      this.apply({ type: 'disconnected' });
    }
    for (const e of msg.events) this.insert(e);
    this.s.subscribed = true;
    this.s.resumeSeq = Math.max(msg.last_seq, msg.reset ? 0 : this.s.resumeSeq);
    this.s.gap = false;
    this.s.liveBase = msg.last_seq;
    this.s.session = msg.session;
    this.s.participants = msg.participants;
    this.s.sandboxStatus = msg.session.sandbox_status;
    this.s.totalCostUsd = msg.session.total_cost_usd;
    this.queue = msg.queue
      .filter((p) => p.status === 'queued' || p.status === 'running')
      .map(queueEntryOfPrompt);
  }

  private history(events: readonly DurableEvent[], hasMore: boolean): void {
    const oldest = this.oldestSeq();
    let older = events.length === 0;
    for (const e of events) {
      if (oldest === null || e.seq < oldest) older = true;
      this.insert(e);
    }
    if (older) this.s.hasMoreBefore = hasMore && events.length > 0;
  }

  private oldestSeq(): number | null {
    const list = this.events ?? this.s.events;
    return list.length ? list[0]!.seq : null;
  }

  /** A durable event from the live stream. */
  private durable(e: DurableEvent): void {
    if (e.seq > this.s.resumeSeq) {
      if (e.seq === this.s.resumeSeq + 1 || !this.s.subscribed) this.s.resumeSeq = e.seq;
      else this.s.gap = true;
    }
    if (!this.insert(e)) return;
    if (e.seq > this.s.liveBase) {
      this.s.liveBase = e.seq;
      this.applyLive(e);
    }
    if (e.type === 'agent-text') this.dropStreams((p) => p.partId === e.part_id);
    if (e.type === 'prompt-finished' && e.prompt_id) {
      this.dropStreams((p) => p.promptId === e.prompt_id);
      this.dropLive((l) => l.promptId === e.prompt_id);
    }
    if (e.type === 'tool-result') {
      const key = `${e.prompt_id ?? ''}|${e.call_id}`;
      this.dropLive((l) => l.key === key);
    }
  }

  private toolOutput(e: ToolOutputDeltaEvent): void {
    if (e.seq > this.s.resumeSeq && this.s.subscribed) this.s.gap = true;
    if (this.hasResultAfter(e.call_id, e.prompt_id ?? null, e.seq)) return;
    const key = `${e.prompt_id ?? ''}|${e.call_id}`;
    const list = this.live ?? this.s.live;
    const i = list.findIndex((l) => l.key === key);
    const cur = i >= 0 ? list[i]! : null;
    const missed = e.index !== (cur?.nextIndex ?? 0) || e.skipped_chars > 0;
    let text = (cur?.text ?? '') + e.data;
    if (text.length > LIVE_OUTPUT_MAX_CHARS) text = text.slice(-LIVE_OUTPUT_MAX_CHARS);
    const next: LiveOutput = {
      key,
      promptId: e.prompt_id ?? null,
      callId: e.call_id,
      text,
      nextIndex: e.index + 1,
      partial: (cur?.partial ?? false) || missed,
      version: (cur?.version ?? 0) + 1,
    };
    if (i >= 0) this.lv()[i] = next;
    else this.lv().push(next);
  }

  /** A result of this call newer than `seq` is among the events we hold. */
  private hasResultAfter(callId: string, promptId: string | null, seq: number): boolean {
    const list = this.events ?? this.s.events;
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i]!;
      if (e.seq <= seq) return false;
      if (e.type === 'tool-result' && e.call_id === callId && (e.prompt_id ?? null) === promptId) return true;
    }
    return false;
  }

  private dropLive(pred: (l: LiveOutput) => boolean): void {
    const list = this.live ?? this.s.live;
    if (list.some(pred)) this.live = this.lv().filter((l) => !pred(l));
  }

  private delta(e: AgentTextDeltaEvent): void {
    if (e.seq > this.s.resumeSeq && this.s.subscribed) this.s.gap = true;
    if (this.hasDurableText(e.part_id)) return;
    const streams = this.streams ?? this.s.streams;
    const i = streams.findIndex((p) => p.partId === e.part_id);
    if (i >= 0) {
      const p = streams[i]!;
      const text = p.text + e.delta;
      this.st()[i] = { ...p, text, sig: `s:${p.partId}:${text.length}:${p.gapped}` };
    } else {
      this.st().push({
        kind: 'streaming',
        key: `stream:${e.part_id}`,
        seq: e.seq,
        sig: `s:${e.part_id}:${e.delta.length}:false`,
        partId: e.part_id,
        promptId: e.prompt_id ?? null,
        text: e.delta,
        gapped: false,
      });
    }
  }

  private hasDurableText(partId: string): boolean {
    // Recent events first: a durable text is almost always near the end.
    const list = this.events ?? this.s.events;
    for (let i = list.length - 1, n = 0; i >= 0 && n < 400; i--, n++) {
      const e = list[i]!;
      if (e.type === 'agent-text' && e.part_id === partId) return true;
    }
    return false;
  }

  private dropStreams(pred: (p: StreamItem) => boolean): void {
    const streams = this.streams ?? this.s.streams;
    if (streams.some(pred)) this.streams = this.st().filter((p) => !pred(p));
  }

  /** Insert a durable event in seq order; false when we already had it. */
  private insert(e: DurableEvent): boolean {
    const list = this.events ?? this.s.events;
    const n = list.length;
    if (n === 0 || list[n - 1]!.seq < e.seq) {
      this.ev().push(e);
      this.eventsChanged = true;
      this.noteEvent(e);
      return true;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.seq < e.seq) lo = mid + 1;
      else hi = mid;
    }
    if (lo < n && list[lo]!.seq === e.seq) return false;
    this.ev().splice(lo, 0, e);
    this.eventsChanged = true;
    this.noteEvent(e);
    return true;
  }

  /** State kept from every event we get, old or new (not only live ones). */
  private noteEvent(e: DurableEvent): void {
    if (e.type === 'pr-opened') this.notePull(e.number, e.seq, { url: e.url, state: 'open' });
    else if (e.type === 'pr-updated') this.notePull(e.number, e.seq, { url: e.url, state: e.state });
  }

  /** Move live state (queue, session, sandbox, cost) by an event newer than the snapshot. */
  private applyLive(e: DurableEvent): void {
    switch (e.type) {
      case 'prompt-queued': {
        if (!e.prompt_id) return;
        const entry: QueueEntry = {
          id: e.prompt_id,
          content: e.content,
          author: e.author,
          model: e.model,
          effort: e.effort,
          status: 'queued',
        };
        const q = this.q();
        const i = q.findIndex((p) => p.id === e.prompt_id);
        if (i >= 0) q[i] = { ...entry, status: q[i]!.status };
        else q.push(entry);
        return;
      }
      case 'prompt-started': {
        const q = this.q();
        const i = q.findIndex((p) => p.id === e.prompt_id);
        if (i >= 0) q[i] = { ...q[i]!, status: 'running', model: e.model, effort: e.effort };
        return;
      }
      case 'prompt-finished':
      case 'prompt-cancelled':
        this.queue = this.q().filter((p) => p.id !== e.prompt_id);
        return;
      case 'session-updated':
        if (this.s.session) {
          this.s.session = {
            ...this.s.session,
            ...(e.status ? { status: e.status } : {}),
            ...(e.title ? { title: e.title } : {}),
            last_seq: e.seq,
          };
        }
        if (e.total_cost_usd != null) this.s.totalCostUsd = e.total_cost_usd;
        return;
      case 'usage':
        this.s.totalCostUsd = e.total_cost_usd;
        return;
      case 'sandbox-status':
        this.s.sandboxStatus = e.status;
        if (this.s.session) this.s.session = { ...this.s.session, sandbox_status: e.status };
        return;
      default:
        return;
    }
  }

  finish(): TimelineState {
    const s = this.s;
    if (this.events) s.events = this.events;
    if (this.queue) s.queue = this.queue;
    if (this.pulls) s.pulls = this.pulls;
    if (this.eventsChanged) {
      const built = buildItems(s.events, s.items);
      s.items = built.items;
      // A durable text that arrived out of band (e.g. in a resume) retires its stream.
      if ((this.streams ?? s.streams).some((p) => built.textParts.has(p.partId)))
        this.streams = this.st().filter((p) => !built.textParts.has(p.partId));
    }
    if (this.streams) s.streams = this.streams;
    if (this.live) s.live = this.live;
    if (this.eventsChanged || this.streamsChanged || this.live)
      s.rows = withLiveOutput(mergeRows(s.items, s.streams), s.live);
    if (s.session && s.resumeSeq > s.session.last_seq)
      s.session = { ...s.session, last_seq: s.resumeSeq };
    return s;
  }
}

function queueEntryOfPrompt(p: Prompt): QueueEntry {
  return {
    id: p.id,
    content: p.content,
    author: p.author,
    model: p.model,
    effort: p.effort,
    status: p.status === 'running' ? 'running' : 'queued',
  };
}

// ---- small selectors ---------------------------------------------------------------------------

/** A prompt is running now (per the live queue). */
export function isRunning(state: TimelineState): boolean {
  return state.queue.some((q) => q.status === 'running');
}

/** Commits shown in the timeline, newest last. */
export function commits(state: TimelineState): GitCommitEvent[] {
  return state.events.filter((e): e is GitCommitEvent => e.type === 'git-commit');
}

/** The PR to show in the header: the open one (newest), else the newest. */
export function currentPull(state: TimelineState): PullState | null {
  let best: PullState | null = null;
  for (const p of state.pulls) {
    if (!best) best = p;
    else if ((p.state === 'open') !== (best.state === 'open')) best = p.state === 'open' ? p : best;
    else if (p.number > best.number) best = p;
  }
  return best;
}

/** The session branch was pushed (a git-push in the events we hold). */
export function hasPushed(state: TimelineState): boolean {
  return state.events.some((e) => e.type === 'git-push');
}

/** The seq to ask `history` before (the oldest we hold), or null when we hold nothing. */
export function oldestSeq(state: TimelineState): number | null {
  return state.events.length ? state.events[0]!.seq : null;
}

export type { SessionEvent };
