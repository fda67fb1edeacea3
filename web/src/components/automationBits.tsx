// Pieces of the automation pages: status and run badges, a time in a zone, and the secret of an
// automation just created (kept in memory only, shown once on its page).
import type { Automation, AutomationRun } from '../api/types';
import { runTone, statusOf, wallTime } from '../lib/automations';
import { createStore } from '../lib/store';

/** What the create answer said once: the webhook's URL and secret, for the page it lands on. */
export const justCreated$ = createStore<{ id: string; secret: string | null; webhookUrl: string | null } | null>(null);

export function StatusBadge({ automation }: { automation: Pick<Automation, 'status' | 'paused_reason' | 'consecutive_failures'> }) {
  const s = statusOf(automation);
  return (
    <span class="automation-status" data-testid="automation-status" data-status={automation.status}>
      <span class={`badge badge-${s.tone}`}>{s.label}</span>
      {s.detail && <span class="muted small"> {s.detail}</span>}
    </span>
  );
}

export function RunBadge({ run }: { run: Pick<AutomationRun, 'status'> }) {
  return (
    <span class={`badge badge-${runTone(run)}`} data-testid="run-status" data-status={run.status}>
      {run.status}
    </span>
  );
}

/** An instant as the wall clock of `tz` ("3 Dec 2026, 00:00 Europe/Berlin"). */
export function inZone(iso: string, tz: string): string {
  try {
    const text = new Date(Date.parse(iso)).toLocaleString(undefined, { timeZone: tz, dateStyle: 'medium', timeStyle: 'short' });
    return `${text} ${tz}`;
  } catch {
    return iso;
  }
}

/** Fire times (ISO, in the zone's offset) as that zone's wall clock, one a line. */
export function Firings({ times }: { times: readonly string[] }) {
  return (
    <ol class="firings">
      {times.map((t) => (
        <li key={t} data-testid="schedule-firing" data-at={t}>
          {wallTime(t)}
        </li>
      ))}
    </ol>
  );
}
