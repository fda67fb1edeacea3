// `/automations/:id` — one automation: what fires it and what it does, its next firings (a
// schedule), run now / pause / resume / edit / delete (after a confirmation), and its run history
// with links to the sessions; refreshed while a run is active. Right after it was created, a
// webhook's URL and secret, this once.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { Automation, AutomationRun, ErrorInfo, SchedulePreview } from '../api/types';
import { AutomationEditor } from '../components/AutomationEditor';
import { Firings, inZone, justCreated$, RunBadge, StatusBadge } from '../components/automationBits';
import { InlineError, Link } from '../components/bits';
import { TRIGGER_LABELS, triggerSummary } from '../lib/automations';
import { relativeTime } from '../lib/format';
import { useStore } from '../lib/store';
import { navigate } from '../router';

const ACTIVE_POLL_MS = 2000;
const ACTIVE = new Set(['queued', 'starting', 'running']);

export function AutomationView({ id }: { id: string }) {
  const [automation, setAutomation] = useState<Automation | null>(null);
  const [runs, setRuns] = useState<AutomationRun[] | null>(null);
  const [loadError, setLoadError] = useState<ErrorInfo | null>(null);
  const [actionError, setActionError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [preview, setPreview] = useState<SchedulePreview | null>(null);

  const loadRuns = () =>
    endpoints
      .automationRuns(id)
      .then((r) => setRuns(r.runs))
      .catch((err) => setLoadError(toErrorInfo(err)));

  useEffect(() => {
    endpoints
      .automation(id)
      .then((a) => {
        setAutomation(a);
        document.title = `${a.name} · Automations · openinspect`;
      })
      .catch((err) => setLoadError(toErrorInfo(err)));
    void loadRuns();
  }, [id]);

  // The next firings, in the automation's zone, whenever its schedule changes.
  const schedule = automation?.trigger.kind === 'schedule' ? automation.trigger : null;
  useEffect(() => {
    if (!schedule || automation?.paused) {
      setPreview(null);
      return;
    }
    const abort = new AbortController();
    endpoints
      .previewSchedule(schedule.cron, schedule.tz, abort.signal)
      .then(setPreview)
      .catch(() => setPreview(null));
    return () => abort.abort();
  }, [schedule?.cron, schedule?.tz, automation?.paused]);

  // While a run is active, follow it (and the automation's status, which its end may change).
  const active = runs?.some((r) => ACTIVE.has(r.status)) ?? false;
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => {
      void loadRuns();
      endpoints
        .automation(id)
        .then(setAutomation)
        .catch(() => {});
    }, ACTIVE_POLL_MS);
    return () => clearInterval(timer);
  }, [active, id]);

  const act = async (name: string, call: () => Promise<unknown>) => {
    setBusy(name);
    setActionError(null);
    try {
      await call();
    } catch (err) {
      setActionError(toErrorInfo(err));
    } finally {
      setBusy(null);
    }
  };

  if (loadError && !automation) {
    return (
      <div class="page automations-page">
        <InlineError error={loadError} testId="automation-load-error" />
        <p>
          <Link href="/automations">Back to the automations</Link>
        </p>
      </div>
    );
  }
  if (!automation) return <p class="muted page">Loading…</p>;
  const a = automation;

  return (
    <div class="page automations-page" data-testid="automation-view" data-automation-id={a.id}>
      <div class="page-head">
        <Link href="/automations" class="back muted" aria-label="All automations">
          ←
        </Link>
        <h1 data-testid="automation-title">{a.name}</h1>
        <StatusBadge automation={a} />
        <div class="spacer" />
        <button
          type="button"
          class="button primary small"
          data-testid="automation-run-now"
          disabled={busy !== null}
          onClick={() =>
            act('run', async () => {
              const run = await endpoints.runAutomation(a.id);
              setRuns((rs) => [run, ...(rs ?? []).filter((r) => r.id !== run.id)]);
            })
          }
        >
          {busy === 'run' ? 'Starting…' : 'Run now'}
        </button>
        <button
          type="button"
          class="button small"
          data-testid={a.paused ? 'automation-resume' : 'automation-pause'}
          disabled={busy !== null}
          onClick={() =>
            act('pause', async () => setAutomation(await (a.paused ? endpoints.resumeAutomation(a.id) : endpoints.pauseAutomation(a.id))))
          }
        >
          {a.paused ? 'Resume' : 'Pause'}
        </button>
        <button type="button" class="button ghost small" data-testid="automation-edit" aria-pressed={editing} onClick={() => setEditing((e) => !e)}>
          Edit
        </button>
        {confirmDelete ? (
          <span class="confirm" role="group" aria-label={`Delete ${a.name}?`}>
            <span class="small">Delete it and its run history? Its sessions stay.</span>
            <button
              type="button"
              class="button danger small"
              data-testid="automation-delete-confirm"
              disabled={busy !== null}
              onClick={() =>
                act('delete', async () => {
                  await endpoints.deleteAutomation(a.id);
                  navigate('/automations');
                })
              }
            >
              Delete
            </button>
            <button type="button" class="button ghost small" data-testid="automation-delete-cancel" onClick={() => setConfirmDelete(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <button type="button" class="button ghost small" data-testid="automation-delete" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        )}
      </div>
      <InlineError error={actionError} testId="automation-action-error" />
      <Secret automationId={a.id} />
      {editing ? (
        <AutomationEditor
          automation={a}
          onSaved={(saved) => {
            setAutomation(saved);
            setEditing(false);
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <section class="card automation-details" aria-label="What it does">
          <dl class="facts">
            <dt>Trigger</dt>
            <dd data-testid="automation-trigger">
              {TRIGGER_LABELS[a.trigger.kind]} · <span class="mono">{triggerSummary(a.trigger)}</span>
            </dd>
            <dt>Repository</dt>
            <dd class="mono">
              {a.repo}
              {a.base_branch ? ` (${a.base_branch})` : ''}
            </dd>
            {a.webhook_url && (
              <>
                <dt>URL</dt>
                <dd class="mono" data-testid="automation-webhook-url">
                  {a.webhook_url}
                </dd>
              </>
            )}
            {a.conditions.length > 0 && (
              <>
                <dt>Conditions</dt>
                <dd class="mono small">
                  {a.conditions.map((c, i) => (
                    <div key={i}>
                      {c.path} {c.op} {c.op === 'exists' ? '' : JSON.stringify(c.value)}
                    </div>
                  ))}
                </dd>
              </>
            )}
            <dt>While a run is active</dt>
            <dd>{a.concurrency === 'skip' ? 'a firing is skipped' : 'a firing waits its turn'}</dd>
            <dt>Model</dt>
            <dd>{a.model ?? 'the server’s default'}</dd>
            {a.trigger.kind === 'schedule' && (
              <>
                <dt>Next firings</dt>
                <dd data-testid="automation-next-firings">
                  {a.paused ? (
                    <span class="muted">none while paused</span>
                  ) : preview ? (
                    <Firings times={preview.next} />
                  ) : a.next_run_at ? (
                    inZone(a.next_run_at, a.trigger.tz)
                  ) : null}
                </dd>
              </>
            )}
          </dl>
          <details class="instructions">
            <summary>Instructions</summary>
            <pre class="mono small">{a.instructions}</pre>
          </details>
        </section>
      )}
      <section class="card" aria-label="Run history">
        <h2>Runs</h2>
        {runs === null && <p class="muted">Loading…</p>}
        {runs?.length === 0 && <p class="muted">No run yet. “Run now” starts one.</p>}
        <ul class="run-list" data-testid="run-list">
          {runs?.map((r) => (
            <li key={r.id} class="run-row" data-testid="run-row" data-run-id={r.id} data-status={r.status}>
              <RunBadge run={r} />
              <span class="run-trigger small">{r.trigger === 'manual' ? 'by hand' : r.trigger}</span>
              <time class="muted small" dateTime={r.created_at} title={new Date(r.created_at).toLocaleString()}>
                {relativeTime(r.created_at)}
              </time>
              <span class="run-session">
                {r.session_id ? (
                  <Link href={`/sessions/${r.session_id}`} class="mono small" data-testid="run-session">
                    {r.session_id}
                  </Link>
                ) : (
                  <span class="muted small">no session</span>
                )}
              </span>
              <span class="run-reason muted small" title={r.reason ?? undefined}>
                {r.error_code ? <code>{r.error_code}</code> : null} {r.reason ?? ''}
              </span>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

/** The webhook URL and secret of the automation just created here: shown this once. */
function Secret({ automationId }: { automationId: string }) {
  const created = useStore(justCreated$);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.focus();
  }, [created?.id]);
  // Once means once: leaving the page forgets it.
  useEffect(() => () => justCreated$.set(null), []);
  if (!created || created.id !== automationId) return null;
  return (
    <div class="new-token" role="region" aria-label="The webhook's URL and secret" tabIndex={-1} ref={box} data-testid="automation-secret-once">
      <p>
        <strong>Copy the secret now:</strong> it is not shown again.
      </p>
      {created.webhookUrl && (
        <p class="small">
          URL <code data-testid="automation-created-url">{created.webhookUrl}</code>
        </p>
      )}
      {created.secret && (
        <p class="small">
          Secret <code class="token-value" data-testid="automation-created-secret">{created.secret}</code>
        </p>
      )}
      <button type="button" class="button ghost small" data-testid="automation-secret-done" onClick={() => justCreated$.set(null)}>
        Done
      </button>
    </div>
  );
}
