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
  ErrorInfo,
  GitCommitEvent,
  Participant,
  PrState,
  Prompt,
  PromptStatus,
  PullRequest,
  SandboxStatus,
  ServerMessage,
  Session,
  SessionEvent,
  ToolResultEvent,
} from '../api/types';

// ---- items ------------------------------------------------------------------------------------

interface ItemBase {
  /** Stable identity across rebuilds (keys of the virtual list and of the height cache). */
  key: string;
  /** Sort position: the seq of the first event of the item (streams: the seq they follow). */
  seq: number;
  /** Changes whenever what the item shows changes; equal sig ⇒ the same object is reused. */
  sig: string;
}

export interface PromptItem extends ItemBase {
  kind: 'prompt';
  promptId: string;
  author: Author;
  content: string;
  model: string;
  effort: string | null;
  status: PromptStatus;
  ts: string;
}

export interface PromptEndItem extends ItemBase {
  kind: 'prompt-finished';
  promptId: string;
  status: PromptStatus;
  error: ErrorInfo | null;
  durationMs: number | null;
  ts: string;
}

export interface TextItem extends ItemBase {
  kind: 'agent-text';
  partId: string;
  promptId: string | null;
  text: string;
}

export interface ThinkingItem extends ItemBase {
  kind: 'agent-thinking';
  partId: string;
  text: string;
}

export interface StreamItem extends ItemBase {
  kind: 'streaming';
  partId: string;
  promptId: string | null;
  text: string;
  /** Some deltas may have been missed (a reconnect happened while it streamed). */
  gapped: boolean;
}

export type ToolStatus = 'running' | 'done' | 'error';

export interface ToolItem extends ItemBase {
  kind: 'tool';
  callId: string;
  tool: string;
  promptId: string | null;
  /** Undefined when only the result is loaded (its call is in older, unloaded history). */
  args: Record<string, unknown> | undefined;
  result: ToolResultEvent | null;
  status: ToolStatus;
  /** The prompt ended without a result for this call (stopped or failed). */
  interrupted: boolean;
}

export interface LogLine {
  seq: number;
  source: string;
  line: string;
}

export interface LogsItem extends ItemBase {
  kind: 'sandbox-log';
  lines: LogLine[];
  /** Closed by the sandbox-status that ended the boot, if any. */
  outcome: SandboxStatus | null;
}

/** Anything shown as one row straight from its event: commits, pushes, PRs, usage, warnings… */
export interface EventItem extends ItemBase {
  kind: 'event';
  event: DurableEvent;
}

export type Item =
  | PromptItem
  | PromptEndItem
  | TextItem
  | ThinkingItem
  | StreamItem
  | ToolItem
  | LogsItem
  | EventItem;

/** The `data-type` of a timeline row: the event type, or "prompt" / "tool". */
export function itemType(item: Item): string {
  switch (item.kind) {
    case 'prompt':
      return 'prompt';
    case 'tool':
      return 'tool';
    case 'streaming':
      return 'agent-text-delta';
    case 'event':
      return item.event.type;
    default:
      return item.kind;
  }
}

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
  /** `items` and `streams` merged in display order: what the view renders. */
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
        return action.event.type === 'agent-text-delta'
          ? this.delta(action.event)
          : this.live(action.event);
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
        return;
      default:
        return; // prompt-accepted, error, pong: not timeline state
    }
  }

  private subscribed(msg: Extract<ServerMessage, { type: 'subscribed' }>): void {
    if (msg.reset) {
      this.events = [];
      this.streams = [];
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
  private live(e: DurableEvent): void {
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
    if (e.type === 'prompt-finished' && e.prompt_id)
      this.dropStreams((p) => p.promptId === e.prompt_id);
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
    if (this.eventsChanged || this.streamsChanged) s.rows = mergeRows(s.items, s.streams);
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

/** Items and streams in display order: a stream goes after every item with seq <= its seq. */
export function mergeRows(items: readonly Item[], streams: readonly StreamItem[]): Item[] {
  if (streams.length === 0) return items as Item[];
  const sorted = streams.slice().sort((a, b) => a.seq - b.seq);
  const out: Item[] = [];
  let j = 0;
  for (const item of items) {
    while (j < sorted.length && sorted[j]!.seq < item.seq) out.push(sorted[j++]!);
    out.push(item);
  }
  while (j < sorted.length) out.push(sorted[j++]!);
  return out;
}

// ---- building items from events ---------------------------------------------------------------

const BOOT_END: ReadonlySet<string> = new Set(['ready', 'failed', 'lost', 'stopped']);

/**
 * Fold sorted durable events into items: a prompt and its end, tool calls paired with their
 * results, boot logs grouped until the boot ends. Items whose `sig` is unchanged keep their
 * previous object, so rows that did not change are not re-rendered.
 */
export function buildItems(
  events: readonly DurableEvent[],
  previous: readonly Item[] = [],
): { items: Item[]; textParts: Set<string> } {
  const items: Item[] = [];
  const prompts = new Map<string, number>();
  const tools = new Map<string, number>();
  const openTools = new Map<string, string[]>(); // prompt id → call ids without a result
  const textParts = new Set<string>();
  let openLogs = -1;

  const push = (item: Item): number => items.push(item) - 1;

  for (const e of events) {
    switch (e.type) {
      case 'prompt-queued':
        if (!e.prompt_id) break;
        prompts.set(
          e.prompt_id,
          push({
            kind: 'prompt',
            key: `prompt:${e.prompt_id}`,
            seq: e.seq,
            sig: '',
            promptId: e.prompt_id,
            author: e.author,
            content: e.content,
            model: e.model,
            effort: e.effort,
            status: 'queued',
            ts: e.ts,
          }),
        );
        break;
      case 'prompt-started': {
        const i = e.prompt_id ? prompts.get(e.prompt_id) : undefined;
        if (i !== undefined) {
          const p = items[i] as PromptItem;
          items[i] = { ...p, status: 'running', model: e.model, effort: e.effort };
        }
        break;
      }
      case 'prompt-cancelled': {
        const i = e.prompt_id ? prompts.get(e.prompt_id) : undefined;
        if (i !== undefined) items[i] = { ...(items[i] as PromptItem), status: 'cancelled' };
        else push(eventItem(e));
        break;
      }
      case 'prompt-finished': {
        const i = e.prompt_id ? prompts.get(e.prompt_id) : undefined;
        if (i !== undefined) items[i] = { ...(items[i] as PromptItem), status: e.status };
        for (const callId of (e.prompt_id && openTools.get(e.prompt_id)) || []) {
          const t = tools.get(callId);
          if (t !== undefined) {
            const tool = items[t] as ToolItem;
            if (!tool.result) items[t] = { ...tool, status: 'error', interrupted: true };
          }
        }
        if (e.prompt_id) openTools.delete(e.prompt_id);
        push({
          kind: 'prompt-finished',
          key: `end:${e.seq}`,
          seq: e.seq,
          sig: '',
          promptId: e.prompt_id ?? '',
          status: e.status,
          error: e.error ?? null,
          durationMs: e.duration_ms ?? null,
          ts: e.ts,
        });
        break;
      }
      case 'agent-text':
        textParts.add(e.part_id);
        push({
          kind: 'agent-text',
          key: `text:${e.seq}`,
          seq: e.seq,
          sig: '',
          partId: e.part_id,
          promptId: e.prompt_id ?? null,
          text: e.text,
        });
        break;
      case 'agent-thinking':
        push({
          kind: 'agent-thinking',
          key: `think:${e.seq}`,
          seq: e.seq,
          sig: '',
          partId: e.part_id,
          text: e.text,
        });
        break;
      case 'tool-call':
        tools.set(
          e.call_id,
          push({
            kind: 'tool',
            key: `tool:${e.call_id}`,
            seq: e.seq,
            sig: '',
            callId: e.call_id,
            tool: e.tool,
            promptId: e.prompt_id ?? null,
            args: e.args,
            result: null,
            status: 'running',
            interrupted: false,
          }),
        );
        if (e.prompt_id) {
          const open = openTools.get(e.prompt_id) ?? [];
          open.push(e.call_id);
          openTools.set(e.prompt_id, open);
        }
        break;
      case 'tool-result': {
        const status: ToolStatus = e.is_error || (e.exit_code ?? 0) !== 0 ? 'error' : 'done';
        const i = tools.get(e.call_id);
        if (i !== undefined) {
          items[i] = { ...(items[i] as ToolItem), result: e, status, interrupted: false };
        } else {
          tools.set(
            e.call_id,
            push({
              kind: 'tool',
              key: `tool:${e.call_id}`,
              seq: e.seq,
              sig: '',
              callId: e.call_id,
              tool: e.tool,
              promptId: e.prompt_id ?? null,
              args: undefined,
              result: e,
              status,
              interrupted: false,
            }),
          );
        }
        break;
      }
      case 'sandbox-log': {
        const line = { seq: e.seq, source: e.source, line: e.line };
        if (openLogs >= 0) {
          // The lines array was created by this fold: appending in place keeps it linear.
          (items[openLogs] as LogsItem).lines.push(line);
        } else {
          openLogs = push({
            kind: 'sandbox-log',
            key: `logs:${e.seq}`,
            seq: e.seq,
            sig: '',
            lines: [line],
            outcome: null,
          });
        }
        break;
      }
      case 'sandbox-status':
        if (openLogs >= 0 && BOOT_END.has(e.status)) {
          items[openLogs] = { ...(items[openLogs] as LogsItem), outcome: e.status };
          openLogs = -1;
        }
        push(eventItem(e));
        break;
      case 'session-updated':
        // Cost-only updates and the active ⇄ idle flip of every prompt are shown in the header,
        // not as rows: only a rename or a terminal status is worth a line.
        if (e.title || e.status === 'failed' || e.status === 'archived') push(eventItem(e));
        break;
      default:
        push(eventItem(e));
    }
  }

  // Signatures, and reuse of unchanged items.
  const before = new Map<string, Item>();
  for (const item of previous) before.set(item.key, item);
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const sig = signature(item);
    const old = before.get(item.key);
    items[i] = old && old.sig === sig ? old : { ...item, sig };
  }
  return { items, textParts };
}

function eventItem(e: DurableEvent): EventItem {
  return { kind: 'event', key: `ev:${e.seq}`, seq: e.seq, sig: '', event: e };
}

function signature(item: Item): string {
  switch (item.kind) {
    case 'prompt':
      return `p:${item.seq}:${item.status}:${item.model}:${item.effort ?? ''}`;
    case 'tool':
      return `t:${item.seq}:${item.result?.seq ?? ''}:${item.status}:${item.interrupted}`;
    case 'sandbox-log':
      return `l:${item.seq}:${item.lines.length}:${item.outcome ?? ''}`;
    case 'streaming':
      return item.sig;
    default:
      return `e:${item.seq}`;
  }
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
