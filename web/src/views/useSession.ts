// The live connection of the session view: a SessionSocket feeding the timeline reducer, message
// batching per animation frame, older history, prompts with client_request_id, presence.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { Prompt, ServerMessage } from '../api/types';
import { requestId } from '../lib/ids';
import { markSeen } from '../lib/prefs';
import { learnName, reportError } from '../state';
import {
  type TimelineAction,
  type TimelineState,
  initialTimeline,
  oldestSeq,
  reduceAll,
} from '../timeline/reduce';
import { SessionSocket, type SocketStatus, browserDeps } from '../ws/socket';

const PROMPT_ACK_TIMEOUT_MS = 8000;
const HISTORY_PAGE = 300;
export const IDLE_AFTER_MS = 60_000;

interface Pending {
  resolve(p: Prompt): void;
  reject(e: unknown): void;
  timer: number;
  fallback(): void;
}

export interface SessionController {
  state: TimelineState;
  status: SocketStatus;
  loadingOlder: boolean;
  loadOlder(): void;
  sendPrompt(content: string, model?: string, effort?: string): Promise<Prompt>;
  cancelPrompt(promptId: string): void;
  stop(): void;
  typing(): void;
  reconnect(): void;
  /** Apply an action from outside the socket (e.g. the REST list of pull requests) at once. */
  dispatch(action: TimelineAction): void;
  /** The resume seq right now (what a REST answer asked now is as of). */
  resumeSeq(): number;
}

export function useSession(sessionId: string): SessionController {
  const [state, setState] = useState<TimelineState>(initialTimeline);
  const [status, setStatus] = useState<SocketStatus>({
    state: 'connecting',
    fatal: null,
    attempt: 0,
    retryAt: null,
    everOnline: false,
  });
  const [loadingOlder, setLoadingOlder] = useState(false);
  const stateRef = useRef(state);
  const socketRef = useRef<SessionSocket | null>(null);
  const pending = useRef(new Map<string, Pending>());
  const idle = useRef(false);
  const flushNow = useRef<() => void>(() => {});

  useEffect(() => {
    stateRef.current = initialTimeline;
    setState(initialTimeline);
    setLoadingOlder(false);
    let queue: TimelineAction[] = [];
    let frame = 0;
    let timer = 0;

    const flush = () => {
      if (frame) cancelAnimationFrame(frame);
      if (timer) clearTimeout(timer);
      frame = timer = 0;
      if (queue.length === 0) return;
      const actions = queue;
      queue = [];
      const prev = stateRef.current;
      const next = reduceAll(prev, actions);
      stateRef.current = next;
      setState(next);
      if (next.gap && !prev.gap) socket.reconnect(); // resubscribe from the last contiguous seq
    };
    flushNow.current = flush;
    const schedule = () => {
      if (frame || timer) return;
      // rAF batches a burst of deltas into one render; hidden tabs get no frames.
      if (document.visibilityState === 'visible') frame = requestAnimationFrame(flush);
      else timer = window.setTimeout(flush, 250);
    };

    const onMessage = (msg: ServerMessage) => {
      switch (msg.type) {
        case 'prompt-accepted': {
          const p = msg.client_request_id ? pending.current.get(msg.client_request_id) : undefined;
          if (p) p.resolve(msg.prompt);
          return;
        }
        case 'error': {
          const p = msg.client_request_id ? pending.current.get(msg.client_request_id) : undefined;
          const err = new ApiError(400, msg.code, msg.message, msg.hint ?? null);
          if (p) p.reject(err);
          else reportError(err);
          return;
        }
        case 'history-page':
          setLoadingOlder(false);
          break;
        case 'subscribed':
          learnNames(msg.participants.map((p) => [p.user_id, p.name]));
          for (const e of msg.events) if (e.type === 'session-created') learnName(e.creator.id, e.creator.name);
          if (idle.current) socket.send({ type: 'presence', status: 'idle' });
          setLoadingOlder(false);
          break;
        case 'presence':
          learnNames(msg.participants.map((p) => [p.user_id, p.name]));
          break;
        case 'pong':
          return;
      }
      queue.push(msg);
      // The snapshot is applied at once (first paint); live messages are batched per frame.
      if (msg.type === 'subscribed') flush();
      else schedule();
    };

    const socket = new SessionSocket(
      sessionId,
      {
        onMessage,
        onStatus: (s) => {
          setStatus(s);
          if (s.fatal) reportError(s.fatal);
        },
        resumeSeq: () => {
          flush(); // apply what we received before choosing where to resume
          const s = stateRef.current;
          return s.subscribed ? s.resumeSeq : null;
        },
        onDisconnect: () => {
          queue.push({ type: 'disconnected' });
          schedule();
        },
      },
      browserDeps(endpoints.wsToken),
    );
    socketRef.current = socket;
    socket.start();

    const onOnline = () => {
      if (!socket.isOnline) socket.reconnect();
    };
    addEventListener('online', onOnline);
    return () => {
      removeEventListener('online', onOnline);
      socket.close();
      socketRef.current = null;
      flushNow.current = () => {};
      if (frame) cancelAnimationFrame(frame);
      if (timer) clearTimeout(timer);
      for (const p of pending.current.values()) clearTimeout(p.timer);
      pending.current.clear();
    };
  }, [sessionId]);

  // Unread markers: what is on screen counts as seen.
  useEffect(() => {
    if (!state.subscribed) return;
    const mark = () => {
      if (document.visibilityState === 'visible') markSeen(sessionId, stateRef.current.resumeSeq);
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [sessionId, state.subscribed, state.resumeSeq]);

  // Presence: idle after a minute without input or while the tab is hidden; active on return.
  useEffect(() => {
    let timer = 0;
    const set = (next: boolean) => {
      if (idle.current === next) return;
      idle.current = next;
      socketRef.current?.send({ type: 'presence', status: next ? 'idle' : 'active' });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => set(true), IDLE_AFTER_MS);
    };
    let lastInput = 0;
    const onInput = () => {
      const now = Date.now();
      if (now - lastInput < 1000 && !idle.current) return; // cheap on mousemove storms
      lastInput = now;
      if (document.visibilityState === 'visible') set(false);
      arm();
    };
    const onVisibility = () => {
      if (document.visibilityState === 'hidden') {
        clearTimeout(timer);
        set(true);
      } else onInput();
    };
    const events = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'focus'] as const;
    for (const e of events) addEventListener(e, onInput, { passive: true, capture: true });
    document.addEventListener('visibilitychange', onVisibility);
    arm();
    return () => {
      clearTimeout(timer);
      for (const e of events) removeEventListener(e, onInput, { capture: true });
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [sessionId]);

  const loadingRef = useRef(false);
  loadingRef.current = loadingOlder;
  const loadOlder = useCallback(() => {
    const s = stateRef.current;
    const before = oldestSeq(s);
    if (!s.hasMoreBefore || before === null || loadingRef.current) return;
    loadingRef.current = true;
    setLoadingOlder(true);
    if (socketRef.current?.send({ type: 'history', before_seq: before, limit: HISTORY_PAGE })) {
      // An error reply carries no request id: do not stay "loading" forever.
      window.setTimeout(() => {
        if (loadingRef.current && oldestSeq(stateRef.current) === before) setLoadingOlder(false);
      }, 10_000);
      return;
    }
    // Offline: the REST page endpoint gives the same page.
    endpoints
      .events(sessionId, before, HISTORY_PAGE)
      .then((page) => {
        const next = reduceAll(stateRef.current, [{ type: 'history-page', ...page }]);
        stateRef.current = next;
        setState(next);
      })
      .catch(reportError)
      .finally(() => setLoadingOlder(false));
  }, [sessionId]);

  const sendPrompt = useCallback(
    (content: string, model?: string, effort?: string): Promise<Prompt> => {
      // A fresh client_request_id per send: the WebSocket and the REST fallback share it, so a
      // retry after a lost acknowledgement cannot queue the prompt twice.
      const client_request_id = requestId();
      const body = {
        content,
        client_request_id,
        ...(model ? { model } : {}),
        ...(effort ? { effort } : {}),
      };
      const viaRest = () => endpoints.prompt(sessionId, body);
      const socket = socketRef.current;
      if (!socket?.send({ type: 'prompt', ...body })) return viaRest();
      return new Promise<Prompt>((resolve, reject) => {
        const done = () => {
          const p = pending.current.get(client_request_id);
          if (p) clearTimeout(p.timer);
          pending.current.delete(client_request_id);
        };
        const entry: Pending = {
          resolve: (p) => {
            done();
            resolve(p);
          },
          reject: (e) => {
            done();
            reject(e);
          },
          fallback: () => {
            done();
            viaRest().then(resolve, reject);
          },
          timer: window.setTimeout(() => entry.fallback(), PROMPT_ACK_TIMEOUT_MS),
        };
        pending.current.set(client_request_id, entry);
      });
    },
    [sessionId],
  );

  const cancelPrompt = useCallback(
    (promptId: string) => {
      if (!socketRef.current?.send({ type: 'cancel-prompt', prompt_id: promptId }))
        endpoints.cancelPrompt(sessionId, promptId).catch(reportError);
    },
    [sessionId],
  );

  const stop = useCallback(() => {
    if (!socketRef.current?.send({ type: 'stop' })) endpoints.stop(sessionId).catch(reportError);
  }, [sessionId]);

  const lastTyping = useRef(0);
  const typing = useCallback(() => {
    const now = Date.now();
    if (now - lastTyping.current < 2000) return;
    if (socketRef.current?.send({ type: 'typing' })) lastTyping.current = now;
  }, []);

  const reconnect = useCallback(() => socketRef.current?.reconnect(), []);

  const dispatch = useCallback((action: TimelineAction) => {
    flushNow.current(); // keep the order: what the socket delivered first applies first
    const next = reduceAll(stateRef.current, [action]);
    stateRef.current = next;
    setState(next);
  }, []);

  const resumeSeq = useCallback(() => stateRef.current.resumeSeq, []);

  return { state, status, loadingOlder, loadOlder, sendPrompt, cancelPrompt, stop, typing, reconnect, dispatch, resumeSeq };
}

function learnNames(pairs: [string, string][]): void {
  for (const [id, name] of pairs) learnName(id, name);
}

