// Small persisted preferences: theme, list filter, and the last seq seen per session (unread).

function read(key: string, storage: Storage | undefined = globalThis.localStorage): string | null {
  try {
    return storage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function write(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    /* storage disabled */
  }
}

export type Theme = 'dark' | 'light';

export function currentTheme(): Theme {
  const t = document.documentElement.dataset.theme;
  return t === 'light' ? 'light' : 'dark';
}

export function setTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
  write('oi.theme', theme);
}

export function toggleTheme(): Theme {
  const next: Theme = currentTheme() === 'dark' ? 'light' : 'dark';
  setTheme(next);
  return next;
}

export type ListFilter = 'mine' | 'all';

export function listFilter(): ListFilter {
  return read('oi.filter') === 'mine' ? 'mine' : 'all';
}

export function setListFilter(f: ListFilter): void {
  write('oi.filter', f);
}

const SEEN_KEY = 'oi.seen';
let seenCache: Record<string, number> | null = null;

function seenMap(): Record<string, number> {
  if (seenCache) return seenCache;
  try {
    const parsed = JSON.parse(read(SEEN_KEY) ?? '{}') as unknown;
    seenCache = parsed && typeof parsed === 'object' ? (parsed as Record<string, number>) : {};
  } catch {
    seenCache = {};
  }
  return seenCache;
}

export function seenSeq(sessionId: string): number {
  return seenMap()[sessionId] ?? 0;
}

/** Record that the user saw the session up to `seq` (never goes back). */
export function markSeen(sessionId: string, seq: number): void {
  const map = seenMap();
  if ((map[sessionId] ?? 0) >= seq) return;
  map[sessionId] = seq;
  const keys = Object.keys(map);
  if (keys.length > 1000) for (const k of keys.slice(0, keys.length - 1000)) delete map[k];
  write(SEEN_KEY, JSON.stringify(map));
}

export function markAllSeen(sessions: readonly { id: string; last_seq: number }[]): void {
  for (const s of sessions) markSeen(s.id, s.last_seq);
}

/** Another tab changed what was seen. */
export function onSeenChange(fn: () => void): () => void {
  const handler = (e: StorageEvent) => {
    if (e.key === SEEN_KEY) {
      seenCache = null;
      fn();
    }
  };
  addEventListener('storage', handler);
  return () => removeEventListener('storage', handler);
}
