// `/automations` — the automations you may manage (an admin: all), each with its trigger, status
// and last run; `/automations/new` — the editor, for a new one.
import { useEffect, useState } from 'preact/hooks';
import { endpoints } from '../api/endpoints';
import type { Automation } from '../api/types';
import { AutomationEditor } from '../components/AutomationEditor';
import { Link } from '../components/bits';
import { inZone, justCreated$, RunBadge, StatusBadge } from '../components/automationBits';
import { triggerSummary } from '../lib/automations';
import { relativeTime } from '../lib/format';
import { navigate } from '../router';
import { reportError } from '../state';

export function Automations() {
  const [list, setList] = useState<Automation[] | null>(null);

  useEffect(() => {
    document.title = 'Automations · openinspect';
    endpoints
      .automations()
      .then((r) => setList(r.automations))
      .catch((err) => {
        setList((l) => l ?? []);
        reportError(err);
      });
  }, []);

  return (
    <div class="page automations-page">
      <div class="page-head">
        <h1>Automations</h1>
        <div class="spacer" />
        <Link href="/automations/new" class="button primary" data-testid="automation-new">
          New automation
        </Link>
      </div>
      <p class="muted">Sessions that start on their own: on a schedule, from a webhook, a Sentry alert or a GitHub event.</p>
      <section class="card" aria-label="Automations">
        {list === null && <p class="muted">Loading…</p>}
        {list?.length === 0 && <p class="muted">No automation yet.</p>}
        <ul class="automation-list" data-testid="automation-list">
          {list?.map((a) => (
            <li key={a.id}>
              <Link href={`/automations/${a.id}`} class="automation-row" data-testid="automation-row" data-automation-id={a.id} data-status={a.status}>
                <span class="automation-name">{a.name}</span>
                <StatusBadge automation={a} />
                <span class="automation-trigger mono muted small" title={triggerSummary(a.trigger)}>
                  {triggerSummary(a.trigger)}
                </span>
                <span class="automation-last small" data-testid="automation-last-run">
                  {a.last_run ? (
                    <>
                      <RunBadge run={a.last_run} /> <span class="muted">{relativeTime(a.last_run.created_at)}</span>
                    </>
                  ) : (
                    <span class="muted">never run</span>
                  )}
                </span>
                {a.next_run_at && a.trigger.kind === 'schedule' && (
                  <span class="automation-next muted small" data-testid="automation-next-run">
                    next {inZone(a.next_run_at, a.trigger.tz)}
                  </span>
                )}
              </Link>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

export function NewAutomation() {
  useEffect(() => {
    document.title = 'New automation · openinspect';
  }, []);
  return (
    <div class="page automations-page">
      <div class="page-head">
        <h1>New automation</h1>
      </div>
      <AutomationEditor
        onSaved={(saved, secret, webhookUrl) => {
          justCreated$.set(secret || webhookUrl ? { id: saved.id, secret, webhookUrl } : null);
          navigate(`/automations/${saved.id}`);
        }}
        onCancel={() => navigate('/automations')}
      />
    </div>
  );
}
