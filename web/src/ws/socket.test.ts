import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import type { ServerMessage } from '../api/types';
import {
  BACKOFF_MAX_MS,
  PING_INTERVAL_MS,
  PONG_TIMEOUT_MS,
  SessionSocket,
  type SocketStatus,
  type WebSocketLike,
  backoffDelay,
} from './socket';

class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: unknown[] = [];
  closedWith: number | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.closedWith = code;
    this.readyState = 3;
  }
  // test helpers
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code: number, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const subscribed = (last_seq: number) => ({
  type: 'subscribed',
  session: {},
  participants: [],
  queue: [],
  events: [],
  has_more: false,
  reset: false,
  last_seq,
});

function setup(opts: { token?: () => Promise<{ token: string; expires_at: number; url: string }> } = {}) {
  const sockets: FakeSocket[] = [];
  const statuses: SocketStatus[] = [];
  const messages: ServerMessage[] = [];
  let resume: number | null = null;
  let tokens = 0;
  const getToken = vi.fn(
    opts.token ??
      (async () => ({ token: `t${++tokens}`, expires_at: 0, url: 'ws://x/api/sessions/s/ws' })),
  );
  const socket = new SessionSocket(
    's',
    {
      onMessage: (m) => messages.push(m),
      onStatus: (s) => statuses.push(s),
      resumeSeq: () => resume,
    },
    {
      getToken,
      createSocket: (url) => {
        const ws = new FakeSocket(url);
        sockets.push(ws);
        return ws;
      },
      defaultUrl: () => 'ws://fallback',
      random: () => 0.5,
      now: () => Date.now(),
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    },
  );
  return {
    socket,
    sockets,
    statuses,
    messages,
    getToken,
    setResume: (n: number | null) => {
      resume = n;
    },
    last: () => statuses[statuses.length - 1]!,
  };
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('doubles from 0.5 s with jitter and caps at 10 s', () => {
    const mid = () => 0.5;
    expect(backoffDelay(0, () => 0)).toBe(250);
    expect(backoffDelay(0, () => 1)).toBe(500);
    expect(backoffDelay(1, mid)).toBe(750);
    expect(backoffDelay(2, mid)).toBe(1500);
    expect(backoffDelay(10, () => 1)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelay(50, () => 0)).toBe(BACKOFF_MAX_MS / 2);
  });
});

describe('SessionSocket', () => {
  it('subscribes fresh, then resumes from the last applied seq with a fresh token', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    expect(t.sockets).toHaveLength(1);
    t.sockets[0]!.open();
    expect(t.sockets[0]!.sent).toEqual([{ type: 'subscribe', token: 't1', batch: true }]);
    expect(t.last().state).toBe('connecting');
    t.sockets[0]!.receive(subscribed(10));
    expect(t.last()).toMatchObject({ state: 'online', everOnline: true });
    expect(t.messages[0]!.type).toBe('subscribed');

    t.setResume(12);
    t.sockets[0]!.drop(1006);
    expect(t.last()).toMatchObject({ state: 'offline' });
    await vi.advanceTimersByTimeAsync(600);
    expect(t.sockets).toHaveLength(2);
    t.sockets[1]!.open();
    expect(t.sockets[1]!.sent).toEqual([{ type: 'subscribe', token: 't2', since_seq: 12, batch: true }]);
    expect(t.getToken).toHaveBeenCalledTimes(2);
    t.socket.close();
  });

  it('backs off exponentially while the server is down', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const before = Date.now();
      t.sockets[t.sockets.length - 1]!.drop(1006);
      const due = t.last().retryAt! - before;
      delays.push(due);
      await vi.advanceTimersByTimeAsync(due);
      await flush();
    }
    expect(delays).toEqual([375, 750, 1500, 3000, 6000, 7500, 7500]);
    expect(t.sockets).toHaveLength(8);
    t.socket.close();
  });

  it('does not retry a missing session (4004) and reports it', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    t.sockets[0]!.open();
    t.sockets[0]!.drop(4004, 'Session ses_x not found');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.sockets).toHaveLength(1);
    expect(t.last()).toMatchObject({ state: 'offline', fatal: { code: 'session_not_found' } });
  });

  it('retries a refused token (4001) once, then reports it', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    t.sockets[0]!.drop(4001, 'bad token');
    await vi.advanceTimersByTimeAsync(10);
    expect(t.sockets).toHaveLength(2);
    t.sockets[1]!.drop(4001, 'bad token');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.sockets).toHaveLength(2);
    expect(t.last().fatal).toMatchObject({ code: 'ws_unauthorized', message: 'bad token' });
  });

  it('reports a 404 from the ws-token endpoint without retrying', async () => {
    const t = setup({
      token: async () => {
        throw new ApiError(404, 'session_not_found', 'No session ses_x');
      },
    });
    t.socket.start();
    await flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.getToken).toHaveBeenCalledTimes(1);
    expect(t.last().fatal).toMatchObject({ code: 'session_not_found', message: 'No session ses_x' });
  });

  it('pings every 25 s and reconnects when no pong comes back', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    t.sockets[0]!.open();
    t.sockets[0]!.receive(subscribed(1));
    await vi.advanceTimersByTimeAsync(PING_INTERVAL_MS);
    expect(t.sockets[0]!.sent.at(-1)).toEqual({ type: 'ping' });
    t.sockets[0]!.receive({ type: 'pong' });
    await vi.advanceTimersByTimeAsync(PONG_TIMEOUT_MS);
    expect(t.last().state).toBe('online');
    await vi.advanceTimersByTimeAsync(PING_INTERVAL_MS - PONG_TIMEOUT_MS + PONG_TIMEOUT_MS + 1);
    expect(t.last().state).toBe('offline');
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.sockets).toHaveLength(2);
    t.socket.close();
  });

  it('hands out the frames of a batch one by one, in order', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    t.sockets[0]!.open();
    const event = (seq: number) => ({ type: 'event', event: { type: 'warning', seq } });
    t.sockets[0]!.receive({ type: 'batch', frames: [subscribed(0), event(1), event(2)] });
    expect(t.last().state).toBe('online');
    t.sockets[0]!.receive(event(3));
    expect(t.messages.map((m) => (m.type === 'event' ? m.event.seq : m.type))).toEqual([
      'subscribed',
      1,
      2,
      3,
    ]);
    t.socket.close();
  });

  it('sends only while subscribed', async () => {
    const t = setup();
    t.socket.start();
    await flush();
    expect(t.socket.send({ type: 'typing' })).toBe(false);
    t.sockets[0]!.open();
    expect(t.socket.send({ type: 'typing' })).toBe(false);
    t.sockets[0]!.receive(subscribed(0));
    expect(t.socket.send({ type: 'typing' })).toBe(true);
    t.socket.close();
    expect(t.sockets[0]!.closedWith).toBe(1000);
  });
});
