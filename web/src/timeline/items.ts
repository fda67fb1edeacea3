// Timeline items: what the session view shows, folded from the sorted durable events.
//
// Invariants
// - Every item's `key` is unique and derived from a `seq` (or a prompt id, itself unique per
//   session), never from ids the model chose: providers and local model servers reuse tool-call
//   ids across turns and restarts, and two rows with one key make the virtual list measure two
//   different rows as one (the row heights then flip on every render and the tab hangs).
// - A tool result pairs with the newest call with its `call_id` that has no result yet, in the
//   same prompt when there is one: a reused id pairs each result with its own call.
// - Items are in ascending `seq` (a prompt is placed where it started, not where it was queued:
//   queued prompts are shown in the queue, in one place, until they start).
// - The fold is linear in the number of events: nothing a server sends makes it loop.

import type {
  Author,
  DurableEvent,
  ErrorInfo,
  PromptQueuedEvent,
  PromptStatus,
  SandboxStatus,
  ToolResultEvent,
  UsageEvent,
} from '../api/types';

interface ItemBase {
  /** Stable identity across rebuilds (keys of the virtual list and of the height cache). */
  key: string;
  /** Sort position: the seq of the first event of the item (streams: the seq they follow). */
  seq: number;
  /** Changes whenever what the item shows changes; equal sig ⇒ the same object is reused. */
  sig: string;
  /** The prompt whose collapsed turn hides this row (tool calls, thinking, interim text). */
  turn?: string | null;
  /** Keys this item had while older history was not loaded (a tool result without its call, a
   * sandbox line whose first events were older): the virtual list keeps its scroll anchor. */
  aliases?: string[];
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

/** Token use and cost of one prompt, summed over its model requests. */
export interface TurnUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** The session's total after this prompt. */
  totalCostUsd: number;
}

export interface PromptEndItem extends ItemBase {
  kind: 'prompt-finished';
  promptId: string;
  status: PromptStatus;
  error: ErrorInfo | null;
  durationMs: number | null;
  ts: string;
  usage: TurnUsage | null;
  toolCalls: number;
  /** Rows of this turn a collapse would hide. */
  hideable: number;
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

export type ToolStatus = 'running' | 'done' | 'error' | 'stopped';

/** A running command's output so far, from its ephemeral deltas (see reduce.ts). */
export interface LiveOutput {
  /** `${prompt id}|${call id}`. */
  key: string;
  promptId: string | null;
  callId: string;
  /** The newest output (at most `LIVE_OUTPUT_MAX_CHARS`). */
  text: string;
  /** The index the next delta should have. */
  nextIndex: number;
  /** Some output is not in `text`: joined mid-command, a reconnect, or throttled. */
  partial: boolean;
  /** Bumped on every change (row signatures). */
  version: number;
}

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
  /** When the call started (its tool-call event), for the elapsed timer; null if not loaded. */
  startedAt: string | null;
  /** Output streamed so far while it runs (set on rows, never on built items). */
  live?: LiveOutput;
}

export interface LogLine {
  seq: number;
  source: string;
  line: string;
}

/** One line for the sandbox that updates in place: its latest status and its setup log. */
export interface SandboxItem extends ItemBase {
  kind: 'sandbox';
  status: SandboxStatus | null;
  message: string | null;
  /** The seq of the newest event folded in (for the signature). */
  lastSeq: number;
  lines: LogLine[];
}

/** Anything shown as one row straight from its event: commits, pushes, PRs, warnings… */
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
  | SandboxItem
  | EventItem;

/** The `data-type` of a timeline row: the event type, or "prompt" / "tool" / "sandbox-status". */
export function itemType(item: Item): string {
  switch (item.kind) {
    case 'prompt':
      return 'prompt';
    case 'tool':
      return 'tool';
    case 'streaming':
      return 'agent-text-delta';
    case 'sandbox':
      return 'sandbox-status';
    case 'event':
      return item.event.type;
    default:
      return item.kind;
  }
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

const liveRows = new WeakMap<ToolItem, { live: LiveOutput; row: ToolItem }>();

/** Rows with each running tool card given its live output (the newest card of a call id, in
 * its prompt). A card keeps its identity while neither it nor its output changed. */
export function withLiveOutput(rows: readonly Item[], live: readonly LiveOutput[]): readonly Item[] {
  if (live.length === 0) return rows;
  const byKey = new Map(live.map((l) => [l.key, l]));
  const out = rows.slice();
  for (let i = out.length - 1; i >= 0 && byKey.size; i--) {
    const row = out[i]!;
    if (row.kind !== 'tool' || row.status !== 'running') continue;
    const key = `${row.promptId ?? ''}|${row.callId}`;
    const l = byKey.get(key);
    if (!l) continue;
    byKey.delete(key);
    const hit = liveRows.get(row);
    if (hit && hit.live === l) out[i] = hit.row;
    else {
      const lit: ToolItem = { ...row, live: l, sig: `${row.sig}:live${l.version}` };
      liveRows.set(row, { live: l, row: lit });
      out[i] = lit;
    }
  }
  return out;
}

/** Rows to show when the turns in `collapsed` (prompt ids) are folded into their footer. */
export function visibleRows(rows: readonly Item[], collapsed: ReadonlySet<string>): readonly Item[] {
  if (collapsed.size === 0) return rows;
  return rows.filter((r) => !(r.turn && collapsed.has(r.turn)));
}

// ---- building items from events ---------------------------------------------------------------

/** A new sandbox line starts after a turn only for these (others update the current line). */
const SANDBOX_RESTART: ReadonlySet<string> = new Set(['warming', 'booting', 'stopped', 'lost', 'failed']);

/**
 * Fold sorted durable events into items: a prompt and its end (with the turn's usage), tool
 * calls paired with their results, one sandbox line per boot. Items whose `sig` is unchanged keep
 * their previous object, so rows that did not change are not re-rendered.
 */
export function buildItems(
  events: readonly DurableEvent[],
  previous: readonly Item[] = [],
): { items: Item[]; textParts: Set<string> } {
  const items: Item[] = [];
  const queued = new Map<string, PromptQueuedEvent>();
  const prompts = new Map<string, number>();
  const ends = new Map<string, number>();
  const usage = new Map<string, TurnUsage>();
  const openCalls = new Map<string, number[]>(); // call id → tool items without a result, oldest first
  const openTools = new Map<string, number[]>(); // prompt id → tool items without a result
  const toolCounts = new Map<string, number>();
  const lastText = new Map<string, number>(); // prompt id → index of its newest agent-text
  const textParts = new Set<string>();
  const pushed = new Map<string, string>(); // branch → sha of its newest push
  let sandbox = -1;
  let turnEnded = false;
  let running: string | null = null;

  const turnRows = new Map<string, number>(); // prompt id → rows a collapse of its turn hides
  const push = (item: Item): number => {
    if (item.turn) turnRows.set(item.turn, (turnRows.get(item.turn) ?? 0) + 1);
    return items.push(item) - 1;
  };
  const turnOf = (e: DurableEvent): string | null => e.prompt_id ?? running;

  const promptItem = (id: string, at: DurableEvent, status: PromptStatus): number => {
    const q = queued.get(id);
    return push({
      kind: 'prompt',
      key: `prompt:${id}`,
      seq: at.seq,
      sig: '',
      promptId: id,
      author: q?.author ?? { id: '', name: 'Someone', email: '' },
      content: q?.content ?? '(the prompt is in older history)',
      model: q?.model ?? '',
      effort: q?.effort ?? null,
      status,
      ts: q?.ts ?? at.ts,
    });
  };

  const addUsage = (e: UsageEvent): boolean => {
    if (!e.prompt_id) return false;
    const u = usage.get(e.prompt_id);
    const next: TurnUsage = {
      model: e.model,
      inputTokens: (u?.inputTokens ?? 0) + e.input_tokens,
      outputTokens: (u?.outputTokens ?? 0) + e.output_tokens,
      costUsd: (u?.costUsd ?? 0) + e.cost_usd,
      totalCostUsd: e.total_cost_usd,
    };
    usage.set(e.prompt_id, next);
    const i = ends.get(e.prompt_id);
    if (i !== undefined) items[i] = { ...(items[i] as PromptEndItem), usage: next };
    return true;
  };

  const pairResult = (e: ToolResultEvent): number | undefined => {
    const open = openCalls.get(e.call_id);
    if (!open?.length) return undefined;
    let at = open.length - 1;
    for (let j = open.length - 1; j >= 0; j--) {
      if ((items[open[j]!] as ToolItem).promptId === (e.prompt_id ?? null)) {
        at = j;
        break;
      }
    }
    const [i] = open.splice(at, 1);
    return i;
  };

  for (const e of events) {
    switch (e.type) {
      case 'prompt-queued':
        // Shown in the queue until it starts; the row is placed where it started.
        if (e.prompt_id) queued.set(e.prompt_id, e);
        break;
      case 'prompt-started': {
        if (!e.prompt_id) break;
        running = e.prompt_id;
        const i = prompts.get(e.prompt_id);
        if (i === undefined) prompts.set(e.prompt_id, promptItem(e.prompt_id, e, 'running'));
        const p = items[prompts.get(e.prompt_id)!] as PromptItem;
        items[prompts.get(e.prompt_id)!] = { ...p, status: 'running', model: e.model, effort: e.effort };
        break;
      }
      case 'prompt-cancelled': {
        const i = e.prompt_id ? prompts.get(e.prompt_id) : undefined;
        if (i !== undefined) items[i] = { ...(items[i] as PromptItem), status: 'cancelled' };
        else if (e.prompt_id && queued.has(e.prompt_id)) prompts.set(e.prompt_id, promptItem(e.prompt_id, e, 'cancelled'));
        else push(eventItem(e));
        break;
      }
      case 'prompt-finished': {
        const id = e.prompt_id ?? '';
        let i = id ? prompts.get(id) : undefined;
        if (i === undefined && id && queued.has(id)) prompts.set(id, (i = promptItem(id, e, e.status)));
        if (i !== undefined) items[i] = { ...(items[i] as PromptItem), status: e.status };
        for (const t of openTools.get(id) ?? []) {
          const tool = items[t] as ToolItem;
          if (!tool.result) {
            items[t] = { ...tool, status: 'error', interrupted: true };
            const open = openCalls.get(tool.callId);
            if (open) open.splice(open.indexOf(t), 1);
          }
        }
        openTools.delete(id);
        // The turn's final answer stays visible when the turn is collapsed.
        const last = lastText.get(id);
        if (last !== undefined) items[last] = { ...items[last]!, turn: null };
        const hideable = (turnRows.get(id) ?? 0) - (last !== undefined ? 1 : 0);
        ends.set(
          id,
          push({
            kind: 'prompt-finished',
            key: `end:${e.seq}`,
            seq: e.seq,
            sig: '',
            promptId: id,
            status: e.status,
            error: e.error ?? null,
            durationMs: e.duration_ms ?? null,
            ts: e.ts,
            usage: usage.get(id) ?? null,
            toolCalls: toolCounts.get(id) ?? 0,
            hideable,
          }),
        );
        if (running === id) running = null;
        turnEnded = true;
        break;
      }
      case 'agent-text': {
        textParts.add(e.part_id);
        const turn = turnOf(e);
        const i = push({
          kind: 'agent-text',
          key: `text:${e.seq}`,
          seq: e.seq,
          sig: '',
          turn,
          partId: e.part_id,
          promptId: e.prompt_id ?? null,
          text: e.text,
        });
        if (turn) lastText.set(turn, i);
        break;
      }
      case 'agent-thinking':
        push({
          kind: 'agent-thinking',
          key: `think:${e.seq}`,
          seq: e.seq,
          sig: '',
          turn: turnOf(e),
          partId: e.part_id,
          text: e.text,
        });
        break;
      case 'tool-call': {
        const turn = turnOf(e);
        const i = push({
          kind: 'tool',
          key: `tool:${e.seq}`,
          seq: e.seq,
          sig: '',
          turn,
          callId: e.call_id,
          tool: e.tool,
          promptId: e.prompt_id ?? null,
          args: e.args,
          result: null,
          status: 'running',
          interrupted: false,
          startedAt: e.ts,
        });
        appendTo(openCalls, e.call_id, i);
        if (e.prompt_id) appendTo(openTools, e.prompt_id, i);
        if (turn) toolCounts.set(turn, (toolCounts.get(turn) ?? 0) + 1);
        break;
      }
      case 'tool-result': {
        const status: ToolStatus = e.stopped
          ? 'stopped'
          : e.is_error || (e.exit_code ?? 0) !== 0
            ? 'error'
            : 'done';
        const i = pairResult(e);
        if (i !== undefined) {
          items[i] = { ...(items[i] as ToolItem), result: e, status, interrupted: false, aliases: [`tool:${e.seq}`] };
        } else {
          push({
            kind: 'tool',
            key: `tool:${e.seq}`,
            seq: e.seq,
            sig: '',
            turn: turnOf(e),
            callId: e.call_id,
            tool: e.tool,
            promptId: e.prompt_id ?? null,
            args: undefined,
            result: e,
            status,
            interrupted: false,
            startedAt: null,
          });
        }
        break;
      }
      case 'sandbox-log':
      case 'sandbox-status': {
        const restart = e.type === 'sandbox-log' || SANDBOX_RESTART.has(e.status);
        if (sandbox < 0 || (turnEnded && restart)) {
          sandbox = push({ kind: 'sandbox', key: `sandbox:${e.seq}`, seq: e.seq, sig: '', status: null, message: null, lastSeq: e.seq, lines: [] });
          turnEnded = false;
        }
        const line = items[sandbox] as SandboxItem;
        if (e.seq !== line.seq) (line.aliases ??= []).push(`sandbox:${e.seq}`);
        if (e.type === 'sandbox-log') {
          // The lines array was created by this fold: appending in place keeps it linear.
          line.lines.push({ seq: e.seq, source: e.source, line: e.line });
          line.lastSeq = e.seq;
        } else {
          items[sandbox] = { ...line, status: e.status, message: e.message ?? null, lastSeq: e.seq };
        }
        break;
      }
      case 'usage':
        if (!addUsage(e)) push(eventItem(e));
        break;
      case 'git-push':
        // A push that moved nothing (the branch's tip is the one pushed last time) is no news.
        if (pushed.get(e.branch) !== e.sha) push(eventItem(e));
        pushed.set(e.branch, e.sha);
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
  const seen = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    let item = items[i]!;
    // Keys are unique by construction; should two ever clash, the later one is renamed.
    if (seen.has(item.key)) item = { ...item, key: `${item.key}@${item.seq}:${i}` };
    seen.add(item.key);
    const sig = signature(item);
    const old = before.get(item.key);
    items[i] = old && old.sig === sig ? old : { ...item, sig };
  }
  return { items, textParts };
}

function appendTo(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function eventItem(e: DurableEvent): EventItem {
  return { kind: 'event', key: `ev:${e.seq}`, seq: e.seq, sig: '', event: e };
}

function signature(item: Item): string {
  const turn = item.turn ?? '';
  switch (item.kind) {
    case 'prompt':
      return `p:${item.seq}:${item.status}:${item.model}:${item.effort ?? ''}:${item.content.length}`;
    case 'prompt-finished':
      return `f:${item.seq}:${item.usage?.costUsd ?? ''}:${item.usage?.inputTokens ?? ''}:${item.toolCalls}:${item.hideable}`;
    case 'tool':
      return `t:${item.seq}:${item.result?.seq ?? ''}:${item.status}:${item.interrupted}:${turn}`;
    case 'sandbox':
      return `b:${item.seq}:${item.lastSeq}:${item.lines.length}:${item.status ?? ''}`;
    case 'streaming':
      return item.sig;
    default:
      return `e:${item.seq}:${turn}`;
  }
}
