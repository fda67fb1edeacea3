// App-wide state: the signed-in user, error banner entries, a cache of the session list (for the
// palette), known user names, and what the current session view offers to the palette.
import { ApiError, toErrorInfo } from './api/client';
import { endpoints } from './api/endpoints';
import type { ErrorInfo, ModelList, Session, User } from './api/types';
import { createStore } from './lib/store';

export const me$ = createStore<User | null>(null);

export interface BannerError extends ErrorInfo {
  id: number;
  /** Same code+message shown once, with a count. */
  count: number;
}

export const errors$ = createStore<BannerError[]>([]);
let nextErrorId = 1;

/** Show an error (the server's {code, message, hint}) in the banner. */
export function reportError(err: unknown): void {
  if (err instanceof DOMException && err.name === 'AbortError') return;
  if (err instanceof ApiError && err.status === 401) return; // handled by sign-out
  const info = toErrorInfo(err);
  errors$.set((list) => {
    const same = list.find((e) => e.code === info.code && e.message === info.message);
    if (same) return list.map((e) => (e === same ? { ...e, count: e.count + 1 } : e));
    return [...list.slice(-4), { ...info, hint: info.hint ?? null, id: nextErrorId++, count: 1 }];
  });
}

export function dismissError(id: number): void {
  errors$.set((list) => list.filter((e) => e.id !== id));
}

export function clearErrors(): void {
  errors$.set([]);
}

export const sessions$ = createStore<Session[] | null>(null);

/** What the open session view lets the palette do. */
export interface CurrentSession {
  id: string;
  title: string;
  running: boolean;
  stop(): void;
  branch: string | null;
  /** Open the Changes panel. */
  openChanges(): void;
  /** Open the pull request dialog; null when this session cannot have a PR (yet). */
  createPr: (() => void) | null;
  /** "Create PR" or "Update PR". */
  prLabel: string;
  archived: boolean;
  /** Archive the session, or unarchive it when it is archived. */
  toggleArchived(): void;
}
export const currentSession$ = createStore<CurrentSession | null>(null);

export const paletteOpen$ = createStore(false);

// ---- user names learnt from events and presence (the session list only has creator ids) ------

const NAMES_KEY = 'oi.names';
function loadNames(): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(NAMES_KEY) ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}
export const names$ = createStore<Record<string, string>>(loadNames());

export function learnName(userId: string, name: string): void {
  if (!userId || !name || names$.get()[userId] === name) return;
  names$.set((n) => ({ ...n, [userId]: name }));
  try {
    localStorage.setItem(NAMES_KEY, JSON.stringify(names$.get()));
  } catch {
    /* ignore */
  }
}

// ---- the model catalog, fetched once ---------------------------------------------------------


export const models$ = createStore<ModelList | null>(null);
let modelsLoading: Promise<void> | null = null;

export function loadModels(): void {
  if (models$.get() || modelsLoading) return;
  modelsLoading = endpoints
    .models()
    .then((m) => models$.set(m))
    .catch((err) => {
      reportError(err);
    })
    .finally(() => {
      modelsLoading = null;
    });
}

const GENERIC_EFFORTS = ['low', 'medium', 'high'];

/** The effort options of a model id (custom/scripted ids get the server's generic options). */
export function effortsOf(list: ModelList | null, modelId: string): { efforts: string[]; default: string | null } {
  const m = list?.models.find((x) => x.id === modelId);
  if (m) return { efforts: m.efforts, default: m.default_effort };
  return { efforts: GENERIC_EFFORTS, default: null };
}

// ---- titles for sessions the server calls "Untitled session" (created before their first
// prompt): the first prompt's first line, learnt when creating or viewing one -----------------

export const UNTITLED = 'Untitled session';
const TITLES_KEY = 'oi.titles';
function loadTitles(): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(TITLES_KEY) ?? '{}') as Record<string, string>;
  } catch {
    return {};
  }
}
export const titles$ = createStore<Record<string, string>>(loadTitles());

export function titleFromPrompt(prompt: string): string {
  const line = prompt.trim().split('\n')[0] ?? '';
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

export function learnTitle(sessionId: string, title: string): void {
  if (!title || titles$.get()[sessionId] === title) return;
  const next = { ...titles$.get(), [sessionId]: title };
  const keys = Object.keys(next);
  for (const k of keys.slice(0, Math.max(0, keys.length - 500))) delete next[k];
  titles$.set(next);
  try {
    localStorage.setItem(TITLES_KEY, JSON.stringify(next));
  } catch {
    /* ignore */
  }
}

/** The title to show for a session. */
export function shownTitle(session: { id: string; title: string }, titles: Record<string, string>): string {
  return session.title === UNTITLED ? titles[session.id] ?? session.title : session.title;
}
