// Formatting helpers: relative time, durations, money, names.

export function relativeTime(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.round((now - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h}h ago`;
  const d = Math.round(h / 24);
  if (d < 30) return `${d}d ago`;
  return new Date(t).toLocaleDateString();
}

export function duration(ms: number | null | undefined): string {
  if (ms == null) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m}m ${Math.round(s % 60)}s`;
}

/** Money, one way everywhere (the CLI prints the same): dollars to four decimals. */
export function usd(n: number | null | undefined): string {
  return `$${(Number.isFinite(n) ? (n as number) : 0).toFixed(4)}`;
}

/** Two letters for an avatar; asides in brackets ("Sam (bot)", "Ada (you)") and punctuation are
 * not part of a name. */
export function initials(name: string): string {
  const words = (s: string) => s.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  let parts = words(name.replace(/\([^)]*\)|\[[^\]]*\]/g, ' '));
  if (parts.length === 0) parts = words(name);
  if (parts.length === 0) return '?';
  if (parts.length === 1) return parts[0]!.slice(0, 2).toUpperCase();
  return (parts[0]![0]! + parts[parts.length - 1]![0]!).toUpperCase();
}

/** A stable hue for a user id (avatars). */
export function hueOf(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return Math.abs(h) % 360;
}

/** Last path segment or repo name of a repo URL/path. */
export function repoLabel(url: string): string {
  const clean = url.replace(/\.git$/, '').replace(/\/+$/, '');
  const parts = clean.split(/[/:]/).filter(Boolean);
  return parts.slice(-2).join('/') || url;
}

const ORIGIN_LABELS = new Map<string, string>(Object.entries({
  web: 'web app',
  cli: 'CLI',
  api: 'API',
  slack: 'Slack',
  linear: 'Linear',
  github: 'GitHub',
  schedule: 'schedule',
  webhook: 'webhook',
  sentry: 'Sentry',
  parent: 'parent session',
}));

/** Where a session was started from, in words (unknown doors as the server names them). */
export function originLabel(origin: string | undefined): string {
  const key = origin ?? 'api';
  return ORIGIN_LABELS.get(key) ?? key;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 8);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A short model name: scripted models by file name, others as given. */
export function modelLabel(id: string): string {
  if (id.startsWith('scripted:')) {
    const path = id.slice('scripted:'.length);
    return `scripted:${path.split('/').pop() ?? path}`;
  }
  return id;
}
