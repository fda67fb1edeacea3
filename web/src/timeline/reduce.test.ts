import { describe, expect, it } from 'vitest';
import type {
  Author,
  DurableEvent,
  PrState,
  Prompt,
  PullRequest,
  Session,
  SubscribedMessage,
} from '../api/types';
import {
  type Item,
  type TimelineState,
  currentPull,
  hasPushed,
  initialTimeline,
  itemType,
  reduce,
  reduceAll,
  visibleRows,
} from './reduce';

const SID = 'ses_1';
const ALICE: Author = { id: 'usr_a', name: 'Alice', email: 'a@example.com' };
const BOB: Author = { id: 'usr_b', name: 'Bob', email: 'b@example.com' };

function session(over: Partial<Session> = {}): Session {
  return {
    id: SID,
    title: 'Fix the bug',
    repo_url: '/tmp/repo',
    repo_id: null,
    base_branch: 'main',
    branch: 'openinspect/abc',
    model: 'scripted:x',
    effort: null,
    status: 'idle',
    sandbox_status: 'none',
    creator_id: ALICE.id,
    parent_id: null,
    total_cost_usd: 0,
    last_seq: 0,
    created_at: '2024-01-01T00:00:00Z',
    updated_at: '2024-01-01T00:00:00Z',
    ...over,
  };
}

const ts = '2024-01-01T00:00:00Z';
const base = (seq: number, prompt_id: string | null = null) => ({ session_id: SID, seq, ts, prompt_id });

const E = {
  created: (seq: number): DurableEvent => ({
    ...base(seq),
    type: 'session-created',
    title: 'Fix the bug',
    repo_url: '/tmp/repo',
    base_branch: 'main',
    branch: 'openinspect/abc',
    model: 'scripted:x',
    effort: null,
    creator: ALICE,
  }),
  queued: (seq: number, pid: string, author = ALICE, content = 'do it'): DurableEvent => ({
    ...base(seq, pid),
    type: 'prompt-queued',
    author,
    content,
    model: 'scripted:x',
    effort: null,
    position: 0,
  }),
  started: (seq: number, pid: string): DurableEvent => ({
    ...base(seq, pid),
    type: 'prompt-started',
    model: 'scripted:x',
    effort: null,
  }),
  finished: (seq: number, pid: string, status: 'success' | 'error' | 'stopped' = 'success'): DurableEvent => ({
    ...base(seq, pid),
    type: 'prompt-finished',
    status,
    error: status === 'error' ? { code: 'model_error', message: 'boom', hint: null } : null,
    duration_ms: 1200,
  }),
  cancelled: (seq: number, pid: string): DurableEvent => ({ ...base(seq, pid), type: 'prompt-cancelled' }),
  text: (seq: number, pid: string, part: string, text: string): DurableEvent => ({
    ...base(seq, pid),
    type: 'agent-text',
    part_id: part,
    text,
  }),
  call: (seq: number, pid: string, id: string, command = 'ls'): DurableEvent => ({
    ...base(seq, pid),
    type: 'tool-call',
    call_id: id,
    tool: 'bash',
    args: { command },
  }),
  result: (seq: number, pid: string, id: string, exit_code = 0): DurableEvent => ({
    ...base(seq, pid),
    type: 'tool-result',
    call_id: id,
    tool: 'bash',
    output: 'out',
    is_error: false,
    exit_code,
    duration_ms: 5,
  }),
  log: (seq: number, line: string): DurableEvent => ({ ...base(seq), type: 'sandbox-log', source: 'setup', line }),
  sandbox: (seq: number, status: 'booting' | 'ready' | 'failed'): DurableEvent => ({
    ...base(seq),
    type: 'sandbox-status',
    status,
  }),
  push: (seq: number): DurableEvent => ({ ...base(seq), type: 'git-push', sha: 'abc123', branch: 'openinspect/abc', remote: 'origin' }),
  prOpened: (seq: number, number = 7): DurableEvent => ({
    ...base(seq),
    type: 'pr-opened',
    url: `https://github.com/o/r/pull/${number}`,
    number,
  }),
  prUpdated: (seq: number, state: PrState, number = 7): DurableEvent => ({
    ...base(seq),
    type: 'pr-updated',
    url: `https://github.com/o/r/pull/${number}`,
    number,
    state,
  }),
  usage: (seq: number, total: number): DurableEvent => ({
    ...base(seq),
    type: 'usage',
    model: 'scripted:x',
    input_tokens: 10,
    output_tokens: 5,
    cost_usd: 0.01,
    total_cost_usd: total,
  }),
};

function delta(seq: number, pid: string, part: string, text: string) {
  return {
    type: 'event' as const,
    event: { ...base(seq, pid), type: 'agent-text-delta' as const, part_id: part, delta: text },
  };
}
const ev = (event: DurableEvent) => ({ type: 'event' as const, event });

function output(seq: number, pid: string, call: string, index: number, data: string, skipped = 0) {
  return {
    type: 'event' as const,
    event: { ...base(seq, pid), type: 'tool-output-delta' as const, call_id: call, index, data, skipped_chars: skipped },
  };
}
const liveOf = (s: TimelineState) =>
  s.rows.flatMap((r) => (r.kind === 'tool' && r.live ? [[r.callId, r.live.text, r.live.partial]] : []));

function subscribed(
  events: DurableEvent[],
  over: Partial<SubscribedMessage> = {},
): SubscribedMessage {
  const last = events.length ? events[events.length - 1]!.seq : 0;
  return {
    type: 'subscribed',
    session: session({ last_seq: last }),
    participants: [],
    queue: [],
    events,
    has_more: false,
    reset: true,
    last_seq: last,
    ...over,
  };
}

function prompt(id: string, status: Prompt['status'], author = ALICE, content = 'do it'): Prompt {
  return {
    id,
    session_id: SID,
    author,
    content,
    model: null,
    effort: null,
    client_request_id: null,
    status,
    error_code: null,
    error_message: null,
    created_at: ts,
    started_at: null,
    finished_at: null,
  };
}

const seqs = (s: TimelineState) => s.events.map((e) => e.seq);
const kinds = (s: TimelineState) => s.rows.map((r: Item) => itemType(r));

function range(from: number, to: number): DurableEvent[] {
  const out: DurableEvent[] = [];
  for (let i = from; i <= to; i++) out.push(E.log(i, `line ${i}`));
  return out;
}

describe('streaming text', () => {
  it('accumulates deltas, then the durable agent-text replaces them', () => {
    let s = reduce(initialTimeline, subscribed([E.created(1), E.queued(2, 'p1'), E.started(3, 'p1')]));
    s = reduce(s, delta(3, 'p1', 'p1.0.0', 'Hel'));
    s = reduce(s, delta(3, 'p1', 'p1.0.0', 'lo '));
    s = reduce(s, delta(3, 'p1', 'p1.0.0', 'world'));
    const streaming = s.rows.filter((r) => r.kind === 'streaming');
    expect(streaming).toHaveLength(1);
    expect(streaming[0]).toMatchObject({ text: 'Hello world', partId: 'p1.0.0', seq: 3 });
    expect(s.rows[s.rows.length - 1]!.kind).toBe('streaming');

    s = reduce(s, ev(E.text(4, 'p1', 'p1.0.0', 'Hello world!')));
    expect(s.rows.filter((r) => r.kind === 'streaming')).toHaveLength(0);
    const texts = s.rows.filter((r) => r.kind === 'agent-text');
    expect(texts).toHaveLength(1);
    expect(texts[0]).toMatchObject({ text: 'Hello world!' });
    // A late delta of a finished part is ignored.
    s = reduce(s, delta(4, 'p1', 'p1.0.0', 'late'));
    expect(s.rows.filter((r) => r.kind === 'streaming')).toHaveLength(0);
  });

  it('keeps a stream before durable events that follow it, and drops it when its prompt ends', () => {
    let s = reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1')]));
    s = reduce(s, delta(2, 'p1', 'p1.0.0', 'thinking aloud'));
    s = reduce(s, ev(E.call(3, 'p1', 'c1')));
    expect(kinds(s)).toEqual(['prompt', 'agent-text-delta', 'tool']);
    s = reduce(s, ev(E.finished(4, 'p1', 'stopped')));
    expect(kinds(s)).toEqual(['prompt', 'tool', 'prompt-finished']);
  });

  it('marks a stream as gapped across a reconnect', () => {
    let s = reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1')]));
    s = reduce(s, delta(2, 'p1', 'p1.0.0', 'abc'));
    s = reduce(s, { type: 'disconnected' });
    const stream = s.rows.find((r) => r.kind === 'streaming');
    expect(stream).toMatchObject({ gapped: true, text: 'abc' });
  });
});

describe('snapshot then live', () => {
  it('replays the subscribed window and appends live events in order', () => {
    let s = reduce(
      initialTimeline,
      subscribed([E.created(1), E.queued(2, 'p1'), E.started(3, 'p1')], {
        queue: [prompt('p1', 'running')],
        participants: [{ user_id: ALICE.id, name: 'Alice', status: 'active' }],
      }),
    );
    expect(s.subscribed).toBe(true);
    expect(s.resumeSeq).toBe(3);
    expect(s.queue).toEqual([expect.objectContaining({ id: 'p1', status: 'running' })]);
    expect(s.participants).toHaveLength(1);
    s = reduceAll(s, [ev(E.call(4, 'p1', 'c1')), ev(E.result(5, 'p1', 'c1')), ev(E.text(6, 'p1', 'x', 'done'))]);
    expect(seqs(s)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(kinds(s)).toEqual(['session-created', 'prompt', 'tool', 'agent-text']);
    expect(s.resumeSeq).toBe(6);
    expect(s.gap).toBe(false);
    expect(s.session?.last_seq).toBe(6);
  });

  it('updates cost, sandbox status and session status from live events only', () => {
    let s = reduce(initialTimeline, subscribed([E.usage(1, 0.5)], { session: session({ total_cost_usd: 0.75, last_seq: 1 }) }));
    // The replayed usage (0.5) is older than the snapshot (0.75): the snapshot wins.
    expect(s.totalCostUsd).toBe(0.75);
    s = reduce(s, ev(E.usage(2, 0.9)));
    expect(s.totalCostUsd).toBe(0.9);
    s = reduce(s, ev(E.sandbox(3, 'booting')));
    expect(s.sandboxStatus).toBe('booting');
    s = reduce(s, ev({ ...base(4), type: 'session-updated', status: 'active' }));
    expect(s.session?.status).toBe('active');
  });
});

describe('resume after reconnect', () => {
  it('drops the overlap and keeps every event once, in order', () => {
    let s = reduce(initialTimeline, subscribed(range(1, 10)));
    s = reduce(s, { type: 'disconnected' });
    // The client resubscribes with since_seq = 10; a sloppy server (or a racing live event)
    // may resend some of what we have.
    s = reduce(s, subscribed(range(8, 15), { reset: false }));
    s = reduce(s, ev(E.log(15, 'again')));
    s = reduce(s, ev(E.log(16, 'live')));
    expect(seqs(s)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(s.resumeSeq).toBe(16);
    const logs = s.rows.filter((r) => r.kind === 'sandbox');
    expect(logs).toHaveLength(1);
    expect(logs[0]!.kind === 'sandbox' && logs[0]!.lines.map((l) => l.seq)).toEqual(
      Array.from({ length: 16 }, (_, i) => i + 1),
    );
  });

  it('detects a gap in the live stream and keeps the resume point before it', () => {
    let s = reduce(initialTimeline, subscribed(range(1, 5)));
    s = reduce(s, ev(E.log(6, 'six')));
    s = reduce(s, ev(E.log(9, 'nine')));
    expect(s.gap).toBe(true);
    expect(s.resumeSeq).toBe(6);
    // Resubscribing from 6 fills the hole.
    s = reduce(s, subscribed(range(7, 9), { reset: false }));
    expect(s.gap).toBe(false);
    expect(seqs(s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(s.resumeSeq).toBe(9);
  });

  it('a delta that follows an event we never got is a gap too', () => {
    let s = reduce(initialTimeline, subscribed(range(1, 3)));
    s = reduce(s, delta(5, 'p1', 'p1.0.0', 'x'));
    expect(s.gap).toBe(true);
  });

  it('does not requeue prompts from replayed events, but the snapshot queue counts', () => {
    let s = reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1'), E.finished(3, 'p1')]));
    expect(s.queue).toEqual([]);
    s = reduce(
      s,
      subscribed([E.queued(4, 'p2', BOB)], { reset: false, queue: [prompt('p2', 'queued', BOB)] }),
    );
    expect(s.queue.map((q) => [q.id, q.status])).toEqual([['p2', 'queued']]);
    // The live copy of the same prompt-queued (a racing bus message) changes nothing.
    s = reduce(s, ev(E.queued(4, 'p2', BOB)));
    expect(s.queue).toHaveLength(1);
  });

  it('a reset subscribe starts over', () => {
    let s = reduce(initialTimeline, subscribed(range(1, 5)));
    s = reduce(s, subscribed(range(100, 110), { has_more: true }));
    expect(seqs(s)[0]).toBe(100);
    expect(s.events).toHaveLength(11);
    expect(s.hasMoreBefore).toBe(true);
  });
});

describe('history pages', () => {
  it('slots an older page before the current window', () => {
    let s = reduce(initialTimeline, subscribed(range(501, 1000), { has_more: true }));
    expect(s.hasMoreBefore).toBe(true);
    s = reduce(s, ev(E.log(1001, 'live')));
    s = reduce(s, { type: 'history-page', events: range(301, 500), has_more: true });
    expect(seqs(s)[0]).toBe(301);
    expect(seqs(s)[seqs(s).length - 1]).toBe(1001);
    expect(s.hasMoreBefore).toBe(true);
    // An overlapping and final page.
    s = reduce(s, { type: 'history-page', events: range(1, 310), has_more: false });
    expect(seqs(s)).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
    expect(s.hasMoreBefore).toBe(false);
    // Live state is not moved by history (the resume point stays at the live edge).
    expect(s.resumeSeq).toBe(1001);
  });

  it('pairs a tool result with its call once the call arrives in an older page', () => {
    let s = reduce(initialTimeline, subscribed([E.result(11, 'p1', 'c1'), E.text(12, 'p1', 'x', 'ok')], { has_more: true }));
    let tools = s.rows.filter((r) => r.kind === 'tool');
    expect(tools).toHaveLength(1);
    expect(tools[0]).toMatchObject({ args: undefined, status: 'done' });
    const before = tools[0]!.key;
    s = reduce(s, { type: 'history-page', events: [E.queued(8, 'p1'), E.started(9, 'p1'), E.call(10, 'p1', 'c1', 'make test')], has_more: false });
    tools = s.rows.filter((r) => r.kind === 'tool');
    expect(tools).toHaveLength(1);
    expect(tools[0]).toMatchObject({ args: { command: 'make test' }, status: 'done', seq: 10 });
    // Its key changed (it is keyed by the call's seq now): the old one is an alias, so the
    // virtual list keeps its scroll anchor on it.
    expect(tools[0]!.aliases).toContain(before);
    expect(kinds(s)).toEqual(['prompt', 'tool', 'agent-text']);
  });
});

describe('live command output', () => {
  const running = () =>
    reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1'), E.call(3, 'p1', 'c1')]));

  it('accumulates on the running card, and its result replaces it', () => {
    let s = running();
    const card = s.rows.find((r) => r.kind === 'tool');
    s = reduceAll(s, [output(3, 'p1', 'c1', 0, '1\n'), output(3, 'p1', 'c1', 1, '2\n')]);
    expect(liveOf(s)).toEqual([['c1', '1\n2\n', false]]);
    // Only the card changed; the card keeps its identity while its output does not change.
    expect(s.rows.find((r) => r.kind === 'tool')).not.toBe(card);
    const lit = s.rows.find((r) => r.kind === 'tool');
    s = reduce(s, ev(E.log(4, 'unrelated')));
    expect(s.rows.find((r) => r.kind === 'tool')).toBe(lit);
    s = reduce(s, ev(E.result(5, 'p1', 'c1')));
    expect(liveOf(s)).toEqual([]);
    expect(s.live).toEqual([]);
    expect(s.rows.find((r) => r.kind === 'tool')).toMatchObject({ status: 'done', result: { seq: 5 } });
  });

  it('ignores a delta replayed after the result, and drops output when the prompt ends', () => {
    let s = running();
    s = reduce(s, ev(E.result(4, 'p1', 'c1')));
    s = reduce(s, output(3, 'p1', 'c1', 2, 'stale\n'));
    expect(s.live).toEqual([]);
    s = reduce(s, ev(E.call(5, 'p1', 'c2')));
    s = reduce(s, output(5, 'p1', 'c2', 0, 'x'));
    expect(liveOf(s)).toEqual([['c2', 'x', false]]);
    s = reduce(s, ev(E.finished(6, 'p1', 'stopped')));
    expect(s.live).toEqual([]);
  });

  it('a client that joins mid-command, a throttled delta or a reconnect marks it partial', () => {
    let s = reduce(running(), output(3, 'p1', 'c1', 4, 'late\n'));
    expect(liveOf(s)).toEqual([['c1', 'late\n', true]]);
    s = reduce(running(), output(3, 'p1', 'c1', 0, 'a'));
    s = reduce(s, output(3, 'p1', 'c1', 1, 'b', 10_000));
    expect(liveOf(s)).toEqual([['c1', 'ab', true]]);
    s = reduce(running(), output(3, 'p1', 'c1', 0, 'a'));
    s = reduce(s, { type: 'disconnected' });
    expect(liveOf(s)).toEqual([['c1', 'a', true]]);
  });

  it('a reused call id streams onto the running call of its own prompt only', () => {
    let s = reduce(
      initialTimeline,
      subscribed([E.queued(1, 'p1'), E.started(2, 'p1'), E.call(3, 'p1', 'c1'), E.result(4, 'p1', 'c1'), E.finished(5, 'p1'), E.queued(6, 'p2'), E.started(7, 'p2'), E.call(8, 'p2', 'c1')]),
    );
    s = reduce(s, output(8, 'p2', 'c1', 0, 'second'));
    const tools = s.rows.filter((r) => r.kind === 'tool');
    expect(tools.map((t) => t.kind === 'tool' && [t.seq, t.live?.text ?? null])).toEqual([
      [3, null],
      [8, 'second'],
    ]);
  });

  it('a stopped result marks the card stopped', () => {
    let s = running();
    s = reduce(s, ev({ ...E.result(4, 'p1', 'c1'), exit_code: null, is_error: true, stopped: true } as DurableEvent));
    expect(s.rows.find((r) => r.kind === 'tool')).toMatchObject({ status: 'stopped' });
  });

  it('keeps only the newest output of a long command', () => {
    let s = running();
    for (let i = 0; i < 100; i++) s = reduce(s, output(3, 'p1', 'c1', i, `${String(i).padStart(999, '.')}\n`));
    const text = s.live[0]!.text;
    expect(text.length).toBeLessThanOrEqual(64_000);
    expect(text.endsWith('99\n')).toBe(true);
  });
});

describe('tool cards', () => {
  it('two calls sharing a call_id are two rows with unique keys, each with its own result', () => {
    // Providers and restarted local model servers reuse ids: p1 and p2 both call "call_1".
    const s = reduce(
      initialTimeline,
      subscribed([
        E.queued(1, 'p1'),
        E.started(2, 'p1'),
        E.call(3, 'p1', 'call_1', 'echo one'),
        E.result(4, 'p1', 'call_1', 0),
        E.finished(5, 'p1'),
        E.queued(6, 'p2'),
        E.started(7, 'p2'),
        E.call(8, 'p2', 'call_1', 'echo two'),
        E.call(9, 'p2', 'call_1', 'echo three'),
        E.result(10, 'p2', 'call_1', 1),
        E.result(11, 'p2', 'call_1', 0),
        E.finished(12, 'p2'),
      ]),
    );
    const keys = s.rows.map((r) => r.key);
    expect(new Set(keys).size).toBe(keys.length);
    const tools = s.rows.filter((r) => r.kind === 'tool');
    expect(tools.map((t) => t.kind === 'tool' && [t.seq, t.args?.command, t.result?.seq, t.status])).toEqual([
      [3, 'echo one', 4, 'done'],
      [8, 'echo two', 11, 'done'],
      [9, 'echo three', 10, 'error'],
    ]);
  });

  it('a result whose call never came is its own row, and repeats of it do not clash', () => {
    const s = reduce(initialTimeline, subscribed([E.result(1, 'p1', 'x'), E.result(2, 'p1', 'x'), E.result(3, 'p1', 'x')]));
    const keys = s.rows.map((r) => r.key);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(3);
  });

  it('pairs tool-call with tool-result by call_id, interleaved', () => {
    let s = reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1')]));
    s = reduceAll(s, [
      ev(E.call(3, 'p1', 'a', 'ls')),
      ev(E.call(4, 'p1', 'b', 'false')),
      ev(E.result(5, 'p1', 'b', 1)),
    ]);
    let tools = s.rows.filter((r) => r.kind === 'tool');
    expect(tools.map((t) => t.kind === 'tool' && [t.callId, t.status])).toEqual([
      ['a', 'running'],
      ['b', 'error'],
    ]);
    const before = tools[1];
    s = reduce(s, ev(E.result(6, 'p1', 'a', 0)));
    tools = s.rows.filter((r) => r.kind === 'tool');
    expect(tools.map((t) => t.kind === 'tool' && [t.callId, t.status, t.result?.exit_code])).toEqual([
      ['a', 'done', 0],
      ['b', 'error', 1],
    ]);
    // Unchanged items keep their identity (rows that did not change are not re-rendered).
    expect(tools[1]).toBe(before);
  });

  it('a call without a result when its prompt ends is marked interrupted', () => {
    let s = reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1'), E.call(3, 'p1', 'c')]));
    s = reduce(s, ev(E.finished(4, 'p1', 'stopped')));
    expect(s.rows.find((r) => r.kind === 'tool')).toMatchObject({ status: 'error', interrupted: true });
    expect(s.rows.find((r) => r.kind === 'prompt')).toMatchObject({ status: 'stopped' });
  });
});

describe('queue', () => {
  it('follows prompt-queued/started/finished/cancelled', () => {
    let s = reduce(initialTimeline, subscribed([E.created(1)]));
    s = reduceAll(s, [ev(E.queued(2, 'p1', ALICE, 'first')), ev(E.queued(3, 'p2', BOB, 'second')), ev(E.queued(4, 'p3'))]);
    expect(s.queue.map((q) => [q.id, q.status, q.author.name])).toEqual([
      ['p1', 'queued', 'Alice'],
      ['p2', 'queued', 'Bob'],
      ['p3', 'queued', 'Alice'],
    ]);
    s = reduce(s, ev(E.started(5, 'p1')));
    expect(s.queue[0]).toMatchObject({ id: 'p1', status: 'running' });
    s = reduce(s, ev(E.cancelled(6, 'p3')));
    expect(s.queue.map((q) => q.id)).toEqual(['p1', 'p2']);
    s = reduce(s, ev(E.finished(7, 'p1')));
    s = reduce(s, ev(E.started(8, 'p2')));
    expect(s.queue.map((q) => [q.id, q.status])).toEqual([['p2', 'running']]);
    // Each prompt is placed where it left the queue: p3 was cancelled (6) before p2 started (8).
    expect(s.rows.filter((r) => r.kind === 'prompt').map((p) => p.kind === 'prompt' && p.status)).toEqual([
      'success',
      'cancelled',
      'running',
    ]);
  });
});

describe('the sandbox line', () => {
  it('is one line that updates in place: status, message and setup log', () => {
    let s = reduce(initialTimeline, subscribed([E.created(1), E.queued(2, 'p1'), E.sandbox(3, 'booting'), E.log(4, 'a'), E.log(5, 'b')]));
    let lines = s.rows.filter((r) => r.kind === 'sandbox');
    expect(lines).toHaveLength(1);
    const key = lines[0]!.key;
    expect(lines[0]).toMatchObject({ status: 'booting', seq: 3 });
    s = reduceAll(s, [ev(E.sandbox(6, 'ready')), ev(E.started(7, 'p1'))]);
    lines = s.rows.filter((r) => r.kind === 'sandbox');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ key, status: 'ready' });
    expect(lines[0]!.kind === 'sandbox' && lines[0]!.lines.map((l) => l.line)).toEqual(['a', 'b']);
    expect(kinds(s)).toEqual(['session-created', 'sandbox-status', 'prompt']);
  });

  it('a sandbox that stops after a turn and boots again gets a new line', () => {
    const s = reduce(
      initialTimeline,
      subscribed([E.sandbox(1, 'booting'), E.sandbox(2, 'ready'), E.queued(3, 'p1'), E.started(4, 'p1'), E.finished(5, 'p1'), E.sandbox(6, 'booting'), E.sandbox(7, 'ready')]),
    );
    const lines = s.rows.filter((r) => r.kind === 'sandbox');
    expect(lines.map((l) => l.kind === 'sandbox' && [l.seq, l.status])).toEqual([
      [1, 'ready'],
      [6, 'ready'],
    ]);
  });
});

describe('a calmer timeline', () => {
  const turn = [
    E.queued(1, 'p1'),
    E.started(2, 'p1'),
    E.text(3, 'p1', 'a', 'Looking.'),
    E.call(4, 'p1', 'c1'),
    E.result(5, 'p1', 'c1'),
    { ...E.usage(6, 0.01), prompt_id: 'p1' } as DurableEvent,
    E.call(7, 'p1', 'c2'),
    E.result(8, 'p1', 'c2'),
    E.text(9, 'p1', 'b', 'All done.'),
    { ...E.usage(10, 0.02), prompt_id: 'p1' } as DurableEvent,
    E.finished(11, 'p1'),
  ];

  it("rolls a prompt's usage into its footer, not into rows", () => {
    const s = reduce(initialTimeline, subscribed(turn));
    expect(kinds(s)).not.toContain('usage');
    const end = s.rows.find((r) => r.kind === 'prompt-finished');
    expect(end).toMatchObject({ toolCalls: 2, usage: { inputTokens: 20, outputTokens: 10, costUsd: 0.02, totalCostUsd: 0.02 } });
  });

  it('usage that lands after the prompt ended still reaches its footer', () => {
    let s = reduce(initialTimeline, subscribed(turn.slice(0, 5).concat([E.finished(11, 'p1')])));
    s = reduce(s, { type: 'history-page', events: [{ ...E.usage(12, 0.5), prompt_id: 'p1' } as DurableEvent], has_more: false });
    expect(s.rows.find((r) => r.kind === 'prompt-finished')).toMatchObject({ usage: { costUsd: 0.01 } });
  });

  it('a finished turn folds into its footer, keeping the prompt and the final answer', () => {
    const s = reduce(initialTimeline, subscribed(turn));
    const end = s.rows.find((r) => r.kind === 'prompt-finished');
    expect(end).toMatchObject({ hideable: 3 });
    const folded = visibleRows(s.rows, new Set(['p1']));
    expect(folded.map(itemType)).toEqual(['prompt', 'agent-text', 'prompt-finished']);
    expect(folded[1]).toMatchObject({ text: 'All done.' });
    expect(visibleRows(s.rows, new Set())).toBe(s.rows);
  });

  it('queued prompts are shown in the queue only, and in the timeline where they start', () => {
    let s = reduce(initialTimeline, subscribed([E.queued(1, 'p1'), E.started(2, 'p1'), E.call(3, 'p1', 'c1')]));
    s = reduce(s, ev(E.queued(4, 'p2', BOB, 'next one')));
    expect(s.rows.filter((r) => r.kind === 'prompt').map((r) => r.kind === 'prompt' && r.promptId)).toEqual(['p1']);
    expect(s.queue.map((q) => q.id)).toEqual(['p2']);
    s = reduceAll(s, [ev(E.result(5, 'p1', 'c1')), ev(E.finished(6, 'p1')), ev(E.started(7, 'p2'))]);
    const rows = s.rows.map((r) => [r.seq, itemType(r)]);
    expect(rows).toEqual([
      [2, 'prompt'],
      [3, 'tool'],
      [6, 'prompt-finished'],
      [7, 'prompt'],
    ]);
    expect(s.rows[3]).toMatchObject({ content: 'next one', author: BOB, status: 'running' });
  });

  it('a push of a tip already pushed is not a row', () => {
    const s = reduce(initialTimeline, subscribed([E.push(1), E.push(2), { ...E.push(3), sha: 'def456' } as DurableEvent]));
    expect(s.rows.map((r) => [r.seq, itemType(r)])).toEqual([
      [1, 'git-push'],
      [3, 'git-push'],
    ]);
  });
});

describe('scale', () => {
  it('folds live events onto a 5,000-event timeline', () => {
    const events: DurableEvent[] = [];
    let seq = 0;
    for (let p = 0; p < 500; p++) {
      const pid = `p${p}`;
      events.push(E.queued(++seq, pid), E.started(++seq, pid));
      for (let c = 0; c < 3; c++) {
        events.push(E.call(++seq, pid, `${pid}c${c}`), E.result(++seq, pid, `${pid}c${c}`));
      }
      events.push(E.text(++seq, pid, `${pid}.t`, 'ok'), E.finished(++seq, pid));
    }
    let s = reduce(initialTimeline, subscribed(events));
    expect(s.events).toHaveLength(5000);
    // Its speed is measured by `make bench` (web_open_5000_events_ms), not asserted here.
    for (let i = 0; i < 50; i++) s = reduce(s, ev(E.log(++seq, 'x')));
    expect(s.events).toHaveLength(5050);
  });
});

function pullRecord(number: number, state: PrState, title = 'Fix the bug'): PullRequest {
  return {
    id: `pr_${number}`,
    session_id: SID,
    repo: 'o/r',
    number,
    url: `https://github.com/o/r/pull/${number}`,
    branch: 'openinspect/abc',
    base: 'main',
    title,
    state,
    draft: false,
    opened_as: 'user',
    author_login: 'alice',
    created_at: ts,
    updated_at: ts,
  };
}

const pullStates = (s: TimelineState) => s.pulls.map((p) => [p.number, p.state]);

describe('notify', () => {
  it('is one row of its own, shown when its turn is collapsed', () => {
    const notify: DurableEvent = { ...base(4, 'p1'), type: 'notify', text: 'Tests are green', channel: null };
    const s = reduce(initialTimeline, subscribed([E.created(1), notify]));
    expect(kinds(s)).toEqual(['session-created', 'notify']);
    const row = s.rows[1]!;
    expect(row.kind === 'event' && row.event.type === 'notify' && row.event.text).toBe('Tests are green');
    expect(row.turn ?? null).toBeNull();
  });
});

describe('spend limits', () => {
  it('the pause and its end are rows of their own', () => {
    const reached: DurableEvent = {
      ...base(4, 'p1'),
      type: 'spend-limit-reached',
      scope: 'global',
      key: '*',
      user_id: null,
      spent_usd: 0.0201,
      limit_usd: 0.02,
      message: 'This session has spent $0.0201; the limit of every session is $0.02',
      hint: 'An admin raises it',
    };
    const lifted: DurableEvent = { ...base(5, null), type: 'spend-limit-lifted', scope: 'global' };
    const s = reduce(initialTimeline, subscribed([E.created(1), reached, lifted]));
    expect(kinds(s)).toEqual(['session-created', 'spend-limit-reached', 'spend-limit-lifted']);
  });
});

describe('pull requests', () => {
  it('pr-opened then pr-updated: the latest state wins, and both are rows', () => {
    let s = reduce(initialTimeline, subscribed([E.created(1), E.push(2)]));
    expect(s.pulls).toEqual([]);
    expect(currentPull(s)).toBeNull();
    expect(hasPushed(s)).toBe(true);
    s = reduce(s, ev(E.prOpened(3)));
    expect(pullStates(s)).toEqual([[7, 'open']]);
    expect(currentPull(s)).toMatchObject({ number: 7, state: 'open', url: 'https://github.com/o/r/pull/7' });
    s = reduce(s, ev(E.prUpdated(4, 'merged')));
    expect(pullStates(s)).toEqual([[7, 'merged']]);
    expect(kinds(s)).toEqual(['session-created', 'git-push', 'pr-opened', 'pr-updated']);
  });

  it('is replay-safe: a resume or an older page does not roll the state back', () => {
    let s = reduce(initialTimeline, subscribed([E.prOpened(3), E.prUpdated(4, 'closed')], { has_more: true }));
    expect(pullStates(s)).toEqual([[7, 'closed']]);
    const before = s.pulls;
    // A resume that resends what we had, then a reset subscribe that replays it all.
    s = reduce(s, subscribed([E.prOpened(3), E.prUpdated(4, 'closed')], { reset: false }));
    expect(s.pulls).toBe(before);
    s = reduce(s, subscribed([E.prOpened(3), E.prUpdated(4, 'closed')]));
    expect(pullStates(s)).toEqual([[7, 'closed']]);
    // An older page arrives last, carrying an older state of the same PR.
    s = reduce(s, { type: 'history-page', events: [E.prUpdated(1, 'open'), E.prOpened(2)], has_more: false });
    expect(pullStates(s)).toEqual([[7, 'closed']]);
    // The live copy of an event we have changes nothing either.
    s = reduce(s, ev(E.prOpened(3)));
    expect(pullStates(s)).toEqual([[7, 'closed']]);
    // Newer news does.
    s = reduce(s, ev(E.prUpdated(5, 'open')));
    expect(pullStates(s)).toEqual([[7, 'open']]);
  });

  it('merges the REST list by the seq it was asked at', () => {
    let s = reduce(initialTimeline, subscribed([E.created(1), E.push(2)]));
    // The list, asked at seq 2: an open PR with its title.
    s = reduce(s, { type: 'pull-requests', pull_requests: [pullRecord(7, 'open', 'Fix it')], as_of_seq: 2 });
    expect(currentPull(s)).toMatchObject({ number: 7, state: 'open', title: 'Fix it', draft: false });
    // A newer event wins over it and keeps the title.
    s = reduce(s, ev(E.prUpdated(3, 'merged')));
    expect(currentPull(s)).toMatchObject({ state: 'merged', title: 'Fix it' });
    // A slow answer to an older request does not undo it…
    s = reduce(s, { type: 'pull-requests', pull_requests: [pullRecord(7, 'open', 'Old title')], as_of_seq: 2 });
    expect(currentPull(s)).toMatchObject({ state: 'merged', title: 'Fix it' });
    // …but a list asked after it is the truth (e.g. reopened by a webhook we have no event of yet).
    s = reduce(s, { type: 'pull-requests', pull_requests: [pullRecord(7, 'open', 'Reopened')], as_of_seq: 3 });
    expect(currentPull(s)).toMatchObject({ state: 'open', title: 'Reopened' });
    // A replay of the event the list was asked after does not undo the list.
    s = reduce(s, subscribed([E.created(1), E.push(2), E.prUpdated(3, 'merged')]));
    expect(currentPull(s)).toMatchObject({ state: 'open', title: 'Reopened' });
  });

  it('a title learnt from an older list fills in a PR known from newer events', () => {
    let s = reduce(initialTimeline, subscribed([E.prOpened(3), E.prUpdated(4, 'merged')]));
    expect(currentPull(s)).toMatchObject({ title: null });
    s = reduce(s, { type: 'pull-requests', pull_requests: [pullRecord(7, 'open', 'Fix it')], as_of_seq: 2 });
    expect(currentPull(s)).toMatchObject({ state: 'merged', title: 'Fix it' });
  });

  it('shows the open PR in the header, else the newest', () => {
    let s = reduce(initialTimeline, subscribed([E.prOpened(1, 5), E.prUpdated(2, 'closed', 5), E.prOpened(3, 9)]));
    expect(pullStates(s)).toEqual([
      [5, 'closed'],
      [9, 'open'],
    ]);
    expect(currentPull(s)?.number).toBe(9);
    s = reduce(s, ev(E.prUpdated(4, 'merged', 9)));
    expect(currentPull(s)?.number).toBe(9);
    s = reduce(s, { type: 'pull-requests', pull_requests: [pullRecord(5, 'open')], as_of_seq: 4 });
    expect(currentPull(s)?.number).toBe(5);
  });
});
