// Automations without the DOM: the editor's form → the API's body, conditions as text (the
// CLI's syntax: `openinspect.cli.automation_args`), and how statuses, triggers, runs and fire
// times read.
import type { Automation, AutomationRun, Condition, GithubEvent, SchedulePreset, Trigger, TriggerKind } from '../api/types';

/** The server's presets (`automations.schedule.PRESETS`). */
export const PRESETS: Record<SchedulePreset, string> = {
  hourly: '0 * * * *',
  daily: '0 0 * * *',
  weekly: '0 0 * * 1',
  monthly: '0 0 1 * *',
};

export const GITHUB_EVENTS: { id: GithubEvent; label: string }[] = [
  { id: 'pull_request.opened', label: 'Pull request opened' },
  { id: 'pull_request.synchronize', label: 'Pull request updated' },
  { id: 'pull_request.closed', label: 'Pull request closed' },
  { id: 'issue_comment', label: 'Issue or PR comment' },
  { id: 'check_failed', label: 'Check or workflow failed' },
];

export const TRIGGER_LABELS: Record<TriggerKind, string> = {
  schedule: 'Schedule',
  webhook: 'Webhook',
  sentry: 'Sentry alert',
  github: 'GitHub event',
};

/** The editor's fields, as typed. */
export interface AutomationForm {
  name: string;
  repo: string;
  baseBranch: string;
  model: string;
  effort: string;
  instructions: string;
  kind: TriggerKind;
  /** '' = a custom cron expression. */
  preset: SchedulePreset | '';
  cron: string;
  tz: string;
  auth: 'bearer' | 'hmac';
  secret: string;
  events: GithubEvent[];
  branches: string;
  conditions: string;
  concurrency: 'queue' | 'skip';
}

export function emptyForm(tz = 'UTC'): AutomationForm {
  return {
    name: '',
    repo: '',
    baseBranch: '',
    model: '',
    effort: '',
    instructions: '',
    kind: 'schedule',
    preset: 'daily',
    cron: PRESETS.daily,
    tz,
    auth: 'bearer',
    secret: '',
    events: ['check_failed'],
    branches: '',
    conditions: '',
    concurrency: 'skip',
  };
}

/** The form of an existing automation (for editing). */
export function formOf(a: Automation): AutomationForm {
  const t = a.trigger;
  const form: AutomationForm = {
    ...emptyForm(),
    name: a.name,
    repo: a.repo,
    baseBranch: a.base_branch ?? '',
    model: a.model ?? '',
    effort: a.effort ?? '',
    instructions: a.instructions,
    kind: t.kind,
    conditions: formatConditions(a.conditions),
    concurrency: a.concurrency,
  };
  if (t.kind === 'schedule') return { ...form, cron: t.cron, tz: t.tz, preset: t.preset ?? '' };
  if (t.kind === 'webhook') return { ...form, auth: t.auth ?? 'bearer' };
  if (t.kind === 'github') return { ...form, events: [...t.events], branches: (t.branches ?? []).join(', ') };
  return form;
}

/** The cron expression the form stands for (a preset's, or the one typed). */
export function cronOf(form: Pick<AutomationForm, 'preset' | 'cron'>): string {
  return form.preset ? PRESETS[form.preset] : form.cron.trim().split(/\s+/).join(' ');
}

/** The trigger of the form; `previous` keeps what the editor does not show (webhook headers,
 * GitHub label and author filters…). */
export function triggerOf(form: AutomationForm, previous?: Trigger): Trigger {
  const kept = previous && previous.kind === form.kind ? previous : undefined;
  switch (form.kind) {
    case 'schedule':
      return { kind: 'schedule', cron: cronOf(form), tz: form.tz.trim() || 'UTC', preset: form.preset || null };
    case 'webhook':
      return { ...(kept as object), kind: 'webhook', auth: form.auth };
    case 'sentry':
      return { kind: 'sentry' };
    case 'github':
      return { ...(kept as object), kind: 'github', events: form.events, branches: splitList(form.branches) };
  }
}

function splitList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

const VALUE_OPS = ['equals', 'contains', 'matches'] as const;
export const CONDITION_SYNTAX = 'One per line: PATH:equals:VALUE, PATH:contains:VALUE, PATH:matches:REGEX, PATH:exists, or a JSON object';

/** One condition from the CLI's syntax; an Error saying how to write one otherwise. The first
 * `:equals:` / `:contains:` / `:matches:` from the left (or a final `:exists`) is the operator;
 * a value of equals/contains that is a JSON scalar is that scalar, other text a string; a
 * regular expression is taken as written. */
export function parseCondition(line: string): Condition {
  const text = line.trim();
  if (text.startsWith('{')) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new Error(`The condition ${text} is not valid JSON`);
    }
    const c = data as Partial<Condition> | null;
    if (!c || typeof c !== 'object' || typeof c.path !== 'string' || typeof c.op !== 'string') {
      throw new Error(`The condition ${text} needs a "path" and an "op"`);
    }
    return c as Condition;
  }
  let best: { at: number; op: (typeof VALUE_OPS)[number] } | null = null;
  for (const op of VALUE_OPS) {
    const at = text.indexOf(`:${op}:`);
    if (at > 0 && (best === null || at < best.at)) best = { at, op };
  }
  if (best) {
    const path = text.slice(0, best.at);
    const raw = text.slice(best.at + best.op.length + 2);
    return { path, op: best.op, value: best.op === 'matches' ? raw : scalar(raw) };
  }
  if (text.endsWith(':exists') && text.length > ':exists'.length) return { path: text.slice(0, -':exists'.length), op: 'exists' };
  throw new Error(`Cannot read the condition “${text}”. ${CONDITION_SYNTAX}.`);
}

function scalar(raw: string): string | number | boolean | null {
  try {
    const v: unknown = JSON.parse(raw);
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  } catch {
    /* text */
  }
  return raw;
}

export function parseConditions(text: string): Condition[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map(parseCondition);
}

/** Conditions as the editor's text (what parseConditions reads back). */
export function formatConditions(conditions: readonly Condition[]): string {
  return conditions
    .map((c) => {
      const hasOp = VALUE_OPS.some((op) => c.path.includes(`:${op}:`)) || c.path.endsWith(':exists');
      if (hasOp) return JSON.stringify(c.op === 'exists' ? { path: c.path, op: c.op } : c);
      if (c.op === 'exists') return `${c.path}:exists`;
      const v = c.value;
      const text = c.op === 'matches' || (typeof v === 'string' && scalar(v) === v) ? String(v) : JSON.stringify(v);
      return `${c.path}:${c.op}:${text}`;
    })
    .join('\n');
}

/** How an automation stands, in words, with a badge tone. */
export function statusOf(a: Pick<Automation, 'status' | 'paused_reason' | 'consecutive_failures'>): {
  label: string;
  detail: string | null;
  tone: 'success' | 'stopped' | 'failed';
} {
  if (a.status === 'paused') return { label: 'paused', detail: a.paused_reason, tone: 'stopped' };
  if (a.status === 'degraded') {
    const n = a.consecutive_failures;
    return { label: 'degraded', detail: `${n} failed run${n === 1 ? '' : 's'} in a row`, tone: 'failed' };
  }
  return { label: 'enabled', detail: null, tone: 'success' };
}

/** A trigger in a few words. */
export function triggerSummary(t: Trigger): string {
  if (t.kind === 'schedule') return `${t.preset ? `${t.preset} · ` : ''}${t.cron} (${t.tz})`;
  if (t.kind === 'webhook') return `webhook · ${t.auth === 'hmac' ? 'HMAC signature' : 'bearer secret'}`;
  if (t.kind === 'github') return `GitHub · ${t.events.join(', ')}`;
  return 'Sentry alerts';
}

export function runTone(run: Pick<AutomationRun, 'status'>): string {
  return { succeeded: 'success', failed: 'failed', running: 'running', starting: 'running', queued: 'queued', skipped: 'stopped' }[
    run.status
  ];
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A fire time as the wall clock of the zone it was given in (the preview's ISO strings carry
 * the zone's offset): `Thu 3 Dec 2026, 00:00 (UTC+01:00)`; not converted to the browser's zone. */
export function wallTime(iso: string): string {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) return iso;
  const [, y, mo, d, h, mi, off] = m;
  const weekday = WEEKDAYS[new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d))).getUTCDay()];
  const offset = off === 'Z' || off === '+00:00' ? 'UTC' : `UTC${off}`;
  return `${weekday} ${Number(d)} ${MONTHS[Number(mo) - 1]} ${y}, ${h}:${mi} (${offset})`;
}

/** The session a run of automation `id` started carries `origin_ref` `automation:<id>`; the
 * automation's id, or null for any other reference. */
export function automationOfRef(originRef: string | null | undefined): string | null {
  const m = /^automation:(aut_[A-Za-z0-9_-]+)$/.exec(originRef ?? '');
  return m ? m[1]! : null;
}
