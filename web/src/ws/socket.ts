// The session WebSocket client: token → connect → subscribe {token, since_seq}; ping every 25 s;
// reconnects by itself with exponential backoff and jitter (0.5 s → 10 s), fetching a fresh
// ws-token each time and resuming from the last durable seq the timeline applied, so the server
// resends exactly what we missed (the reducer drops any overlap by seq).
//
// Close codes (src/openinspect/api/ws.py): 4001 bad token — retried once with a fresh token, then
// reported; 4004 no such session — reported, never retried; 4008 no subscribe in time and
// 4009 fell behind — reconnect (4009 at once).

import { ApiError } from '../api/client';
import type { BatchMessage, ClientMessage, ErrorInfo, ServerMessage, WsToken } from '../api/types';

export type ConnState = 'connecting' | 'online' | 'offline';

export interface SocketStatus {
  state: ConnState;
  /** Set when the socket gave up (auth, not found): shown, not retried. */
  fatal: ErrorInfo | null;
  /** Consecutive failed attempts. */
  attempt: number;
  /** When the next attempt is due (ms since epoch), while offline. */
  retryAt: number | null;
  /** Has been online at least once (an offline banner only makes sense after that). */
  everOnline: boolean;
}

export interface SocketHandlers {
  onMessage(msg: ServerMessage): void;
  onStatus(status: SocketStatus): void;
  /** The seq to resume from, or null to join fresh (newest window). */
  resumeSeq(): number | null;
  /** The subscribed socket closed (streams may miss deltas from now on). */
  onDisconnect?(): void;
}

/** The subset of WebSocket we use (a fake in tests). */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export interface SocketDeps {
  getToken(sessionId: string): Promise<WsToken>;
  createSocket(url: string): WebSocketLike;
  /** Fallback when the token carries no url: ws(s)://host/api/sessions/{id}/ws. */
  defaultUrl(sessionId: string): string;
  random(): number;
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const PING_INTERVAL_MS = 25_000;
export const PONG_TIMEOUT_MS = 10_000;
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 10_000;
const AUTH_RETRIES = 1;

/** Delay before attempt n (0-based): exponential, capped, with jitter in [½, 1] of the step. */
export function backoffDelay(attempt: number, random: () => number): number {
  const step = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  return Math.round(step / 2 + (random() * step) / 2);
}

const OPEN = 1;

export class SessionSocket {
  private ws: WebSocketLike | null = null;
  private closed = false;
  private attempt = 0;
  private authFailures = 0;
  private everOnline = false;
  private online = false;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private pongTimer: unknown = null;
  private generation = 0;
  private status: SocketStatus = {
    state: 'connecting',
    fatal: null,
    attempt: 0,
    retryAt: null,
    everOnline: false,
  };

  constructor(
    readonly sessionId: string,
    private readonly handlers: SocketHandlers,
    private readonly deps: SocketDeps,
  ) {}

  start(): void {
    this.closed = false;
    void this.connect();
  }

  /** Close for good (leaving the page). */
  close(): void {
    this.closed = true;
    this.generation++;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        /* already closed */
      }
    }
  }

  /** Send if subscribed; false otherwise (the caller may fall back to REST or drop it). */
  send(msg: ClientMessage): boolean {
    if (!this.online || !this.ws || this.ws.readyState !== OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  get isOnline(): boolean {
    return this.online;
  }

  /** Reconnect now (a gap was detected, the network came back, or the user asked). */
  reconnect(): void {
    if (this.closed || this.status.fatal) return;
    this.attempt = 0;
    this.drop();
    void this.connect();
  }

  private setStatus(patch: Partial<SocketStatus>): void {
    this.status = { ...this.status, ...patch, attempt: this.attempt, everOnline: this.everOnline };
    this.handlers.onStatus(this.status);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    this.deps.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setStatus({ state: 'connecting', retryAt: null });
    let token: WsToken;
    try {
      token = await this.deps.getToken(this.sessionId);
    } catch (err) {
      if (gen !== this.generation) return;
      if (err instanceof ApiError && (err.status === 404 || err.status === 401 || err.status === 403)) {
        return this.fail({ code: err.code, message: err.message, hint: err.hint });
      }
      return this.scheduleRetry();
    }
    if (gen !== this.generation || this.closed) return;
    let ws: WebSocketLike;
    try {
      ws = this.deps.createSocket(token.url || this.deps.defaultUrl(this.sessionId));
    } catch {
      return this.scheduleRetry();
    }
    this.ws = ws;
    ws.onopen = () => {
      const since = this.handlers.resumeSeq();
      // batch: frames that wait together at the server come as one message (see below).
      const msg: ClientMessage =
        since === null
          ? { type: 'subscribe', token: token.token, batch: true }
          : { type: 'subscribe', token: token.token, since_seq: since, batch: true };
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      let parsed: ServerMessage | BatchMessage;
      try {
        parsed = JSON.parse(String(ev.data)) as ServerMessage | BatchMessage;
      } catch {
        return;
      }
      // A batch is its frames, in order, each handled as if it had come alone.
      for (const msg of parsed.type === 'batch' ? parsed.frames : [parsed]) {
        if (gen !== this.generation) return;
        this.handle(msg);
      }
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      this.ws = null;
      this.online = false;
      this.clearTimers();
      this.handlers.onDisconnect?.();
      this.onClose(ev.code, ev.reason);
    };
  }

  private handle(msg: ServerMessage): void {
    if (msg.type === 'subscribed') {
      this.online = true;
      this.everOnline = true;
      this.attempt = 0;
      this.authFailures = 0;
      this.startPing();
      this.setStatus({ state: 'online', fatal: null, retryAt: null });
    } else if (msg.type === 'pong') {
      this.deps.clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    this.handlers.onMessage(msg);
  }

  private onClose(code: number, reason: string): void {
    if (this.closed) return;
    if (code === 4004) {
      return this.fail({
        code: 'session_not_found',
        message: reason || 'This session does not exist',
        hint: 'It may have been deleted; go back to the session list',
      });
    }
    if (code === 4001) {
      this.authFailures++;
      if (this.authFailures > AUTH_RETRIES) {
        return this.fail({
          code: 'ws_unauthorized',
          message: reason || 'The server refused the WebSocket token',
          hint: 'Reload the page; if it persists, sign in again',
        });
      }
      return this.scheduleRetry(0);
    }
    if (code === 4009) return this.scheduleRetry(0); // fell behind: resume at once
    this.scheduleRetry();
  }

  private fail(error: ErrorInfo): void {
    this.clearTimers();
    this.drop();
    this.setStatus({ state: 'offline', fatal: error, retryAt: null });
  }

  private scheduleRetry(delay?: number): void {
    if (this.closed) return;
    const ms = delay ?? backoffDelay(this.attempt, this.deps.random);
    this.attempt++;
    this.setStatus({ state: 'offline', retryAt: this.deps.now() + ms });
    this.deps.clearTimeout(this.retryTimer);
    this.retryTimer = this.deps.setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, ms);
  }

  private startPing(): void {
    this.deps.clearTimeout(this.pingTimer);
    const tick = () => {
      if (!this.send({ type: 'ping' })) return;
      this.deps.clearTimeout(this.pongTimer);
      this.pongTimer = this.deps.setTimeout(() => {
        // No pong: the connection is dead even if the browser has not noticed.
        const ws = this.ws;
        if (ws) {
          ws.onclose?.({ code: 1006, reason: 'ping timeout' });
          ws.onclose = ws.onmessage = null;
          try {
            ws.close();
          } catch {
            /* ignore */
          }
        }
      }, PONG_TIMEOUT_MS);
      this.pingTimer = this.deps.setTimeout(tick, PING_INTERVAL_MS);
    };
    this.pingTimer = this.deps.setTimeout(tick, PING_INTERVAL_MS);
  }

  private clearTimers(): void {
    this.deps.clearTimeout(this.pingTimer);
    this.deps.clearTimeout(this.pongTimer);
    this.deps.clearTimeout(this.retryTimer);
    this.pingTimer = this.pongTimer = this.retryTimer = null;
  }

  /** Forget the current socket without triggering its close handling. */
  private drop(): void {
    this.generation++;
    this.online = false;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = ws.onopen = null;
      try {
        ws.close(1000, 'reconnect');
      } catch {
        /* ignore */
      }
    }
  }
}

/** Dependencies for a real browser. */
export function browserDeps(getToken: (id: string) => Promise<WsToken>): SocketDeps {
  return {
    getToken,
    createSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
    defaultUrl: (id) =>
      `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/sessions/${encodeURIComponent(id)}/ws`,
    random: Math.random,
    now: Date.now,
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (h) => window.clearTimeout(h as number | undefined),
  };
}
