// The automation editor (create and edit): name, repo, instructions, one trigger, conditions,
// concurrency, model. A schedule's cron field (or preset) shows its next five firings in the
// automation's time zone as you type: GET /api/automations/preview, debounced, the older request
// aborted; the server's refusal (`schedule_invalid`, with why) shows in their place.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { type AutomationBody, endpoints } from '../api/endpoints';
import type { Automation, ErrorInfo, GithubEvent, Repo, SchedulePreset, SchedulePreview, TriggerKind } from '../api/types';
import {
  type AutomationForm,
  CONDITION_SYNTAX,
  GITHUB_EVENTS,
  PRESETS,
  TRIGGER_LABELS,
  cronOf,
  emptyForm,
  formOf,
  parseConditions,
  triggerOf,
} from '../lib/automations';
import { useStore } from '../lib/store';
import { models$ } from '../state';
import { Firings } from './automationBits';
import { InlineError } from './bits';
import { ModelPicker } from './ModelPicker';

const PREVIEW_DEBOUNCE_MS = 300;
const KINDS: TriggerKind[] = ['schedule', 'webhook', 'sentry', 'github'];

function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function zones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone');
  } catch {
    return [];
  }
}

/** The next firings of the form's schedule, fetched `PREVIEW_DEBOUNCE_MS` after the last key. */
function usePreview(cron: string, tz: string, active: boolean): { preview: SchedulePreview | null; error: ErrorInfo | null; busy: boolean } {
  const [state, setState] = useState<{ preview: SchedulePreview | null; error: ErrorInfo | null; busy: boolean }>({
    preview: null,
    error: null,
    busy: false,
  });
  useEffect(() => {
    if (!active || !cron.trim() || !tz.trim()) {
      setState({ preview: null, error: null, busy: false });
      return;
    }
    setState((s) => ({ ...s, busy: true }));
    const abort = new AbortController();
    const timer = setTimeout(() => {
      endpoints
        .previewSchedule(cron, tz.trim(), abort.signal)
        .then((preview) => setState({ preview, error: null, busy: false }))
        .catch((err) => {
          if (err instanceof DOMException && err.name === 'AbortError') return;
          setState({ preview: null, error: toErrorInfo(err), busy: false });
        });
    }, PREVIEW_DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [cron, tz, active]);
  return state;
}

export function AutomationEditor(props: {
  /** The automation to edit; none: a new one. */
  automation?: Automation;
  onSaved(saved: Automation, secret: string | null, webhookUrl: string | null): void;
  onCancel(): void;
}) {
  const editing = props.automation;
  const [form, setForm] = useState<AutomationForm>(() => (editing ? formOf(editing) : emptyForm(browserZone())));
  const [repos, setRepos] = useState<Repo[]>([]);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const models = useStore(models$);
  const zoneList = useMemo(zones, []);
  const set = <K extends keyof AutomationForm>(key: K, value: AutomationForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const cron = cronOf(form);
  const { preview, error: previewError, busy: previewBusy } = usePreview(cron, form.tz, form.kind === 'schedule');

  useEffect(() => {
    endpoints
      .repos()
      .then((r) => setRepos(r.repos))
      .catch(() => setRepos([]));
  }, []);

  const onKind = (kind: TriggerKind) =>
    setForm((f) => ({ ...f, kind, concurrency: editing ? f.concurrency : kind === 'schedule' ? 'skip' : 'queue' }));

  const submit = async () => {
    setError(null);
    let conditions;
    try {
      conditions = parseConditions(form.conditions);
    } catch (err) {
      setError({ code: 'invalid_input', message: (err as Error).message, hint: null });
      return;
    }
    if (form.kind === 'github' && form.events.length === 0) {
      setError({ code: 'invalid_input', message: 'Choose at least one GitHub event', hint: null });
      return;
    }
    const body: AutomationBody = {
      name: form.name.trim(),
      repo: form.repo.trim(),
      instructions: form.instructions,
      trigger: triggerOf(form, editing?.trigger),
      conditions,
      concurrency: form.concurrency,
      base_branch: form.baseBranch.trim() || null,
      model: form.model || null,
      effort: form.effort || null,
    };
    if (!editing && form.secret.trim()) body.secret = form.secret.trim();
    setBusy(true);
    try {
      if (editing) {
        props.onSaved(await endpoints.editAutomation(editing.id, body), null, null);
      } else {
        const created = await endpoints.createAutomation(body);
        props.onSaved(created.automation, created.secret, created.webhook_url);
      }
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  };

  const input = (key: keyof AutomationForm) => (e: Event) => set(key, (e.target as HTMLInputElement).value as never);
  const defaultModel = models?.default ?? '';
  return (
    <form
      class="form card automation-editor"
      aria-label={editing ? 'Edit the automation' : 'New automation'}
      data-testid="automation-editor"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <div class="row2">
        <label class="field">
          <span>Name</span>
          <input data-testid="automation-name" required maxLength={200} placeholder="Nightly dependency sweep" value={form.name} onInput={input('name')} />
        </label>
        <label class="field">
          <span>Repository</span>
          <input
            data-testid="automation-repo"
            required
            list="automation-repo-options"
            placeholder="A registered repo, a local path or a git URL"
            value={form.repo}
            onInput={input('repo')}
          />
          <datalist id="automation-repo-options">
            {repos.map((r) => (
              <option key={r.id} value={r.name}>
                {r.url}
              </option>
            ))}
          </datalist>
        </label>
      </div>
      <label class="field">
        <span>Instructions</span>
        <textarea
          data-testid="automation-instructions"
          required
          rows={5}
          maxLength={10000}
          placeholder="What the agent should do each time it runs"
          value={form.instructions}
          onInput={input('instructions')}
        />
      </label>
      <fieldset class="field trigger-choice">
        <legend>Trigger</legend>
        <div class="seg" role="group" aria-label="Trigger">
          {KINDS.map((k) => (
            <button
              type="button"
              key={k}
              aria-pressed={form.kind === k}
              data-testid={`automation-trigger-${k}`}
              disabled={!!editing && editing.trigger.kind !== k}
              title={editing && editing.trigger.kind !== k ? 'A trigger keeps its kind: make a new automation for another' : undefined}
              onClick={() => onKind(k)}
            >
              {TRIGGER_LABELS[k]}
            </button>
          ))}
        </div>
      </fieldset>
      {form.kind === 'schedule' && (
        <div class="trigger-panel">
          <div class="chips" aria-label="Presets">
            {(Object.keys(PRESETS) as SchedulePreset[]).map((p) => (
              <button
                type="button"
                key={p}
                class={`chip ${form.preset === p ? 'on' : ''}`}
                data-testid={`automation-preset-${p}`}
                aria-pressed={form.preset === p}
                onClick={() => setForm((f) => ({ ...f, preset: p, cron: PRESETS[p] }))}
              >
                {p}
              </button>
            ))}
          </div>
          <div class="row2">
            <label class="field">
              <span>Cron (minute hour day month weekday)</span>
              <input
                data-testid="automation-cron"
                class="mono"
                required
                spellcheck={false}
                value={form.preset ? PRESETS[form.preset] : form.cron}
                onInput={(e) => setForm((f) => ({ ...f, preset: '', cron: (e.target as HTMLInputElement).value }))}
              />
            </label>
            <label class="field">
              <span>Time zone</span>
              <input data-testid="automation-tz" required list="automation-tz-options" spellcheck={false} value={form.tz} onInput={input('tz')} />
              <datalist id="automation-tz-options">
                {zoneList.map((z) => (
                  <option key={z} value={z} />
                ))}
              </datalist>
            </label>
          </div>
          <div class="schedule-preview" data-testid="schedule-preview" aria-live="polite" data-busy={previewBusy ? 'true' : 'false'}>
            {previewError ? (
              <InlineError error={previewError} testId="schedule-preview-error" />
            ) : preview ? (
              <>
                <span class="muted small">
                  Next firings in <strong>{preview.tz}</strong> (at most one per 15 minutes):
                </span>
                <Firings times={preview.next} />
              </>
            ) : (
              <span class="muted small">{previewBusy ? 'Working out the next firings…' : ''}</span>
            )}
          </div>
        </div>
      )}
      {form.kind === 'webhook' && (
        <div class="trigger-panel">
          <p class="muted small">
            POST JSON (up to 64 KB) to the automation's URL, shown with its secret once it is created.
          </p>
          <label class="field">
            <span>Authentication</span>
            <select data-testid="automation-webhook-auth" value={form.auth} onChange={(e) => set('auth', (e.target as HTMLSelectElement).value as 'bearer' | 'hmac')}>
              <option value="bearer">Bearer secret (Authorization header)</option>
              <option value="hmac">HMAC-SHA256 signature header</option>
            </select>
          </label>
        </div>
      )}
      {form.kind === 'sentry' && !editing && (
        <div class="trigger-panel">
          <label class="field">
            <span>Client secret of the Sentry internal integration</span>
            <input data-testid="automation-secret" type="password" required autoComplete="off" value={form.secret} onInput={input('secret')} />
          </label>
        </div>
      )}
      {form.kind === 'github' && (
        <div class="trigger-panel">
          <div class="chips" role="group" aria-label="GitHub events">
            {GITHUB_EVENTS.map((ev) => {
              const on = form.events.includes(ev.id);
              return (
                <button
                  type="button"
                  key={ev.id}
                  class={`chip ${on ? 'on' : ''}`}
                  aria-pressed={on}
                  data-testid={`automation-event-${ev.id}`}
                  onClick={() => set('events', on ? form.events.filter((x) => x !== ev.id) : ([...form.events, ev.id] as GithubEvent[]))}
                >
                  {ev.label}
                </button>
              );
            })}
          </div>
          <label class="field">
            <span>Branches (comma-separated; empty: any)</span>
            <input data-testid="automation-branches" value={form.branches} onInput={input('branches')} />
          </label>
        </div>
      )}
      {form.kind !== 'schedule' && (
        <label class="field">
          <span>Conditions on the payload (RFC 9535 JSONPath; all must hold)</span>
          <textarea
            data-testid="automation-conditions"
            class="mono"
            rows={3}
            spellcheck={false}
            placeholder={'$.level:equals:error\n$.issue.id:exists'}
            title={CONDITION_SYNTAX}
            value={form.conditions}
            onInput={input('conditions')}
          />
        </label>
      )}
      <div class="row2">
        <label class="field">
          <span>Base branch</span>
          <input data-testid="automation-base-branch" placeholder="The repo's default branch" value={form.baseBranch} onInput={input('baseBranch')} />
        </label>
        <label class="field">
          <span>While a run is active</span>
          <select data-testid="automation-concurrency" value={form.concurrency} onChange={(e) => set('concurrency', (e.target as HTMLSelectElement).value as 'queue' | 'skip')}>
            <option value="skip">Skip the firing</option>
            <option value="queue">Queue it</option>
          </select>
        </label>
      </div>
      <div class="row2">
        <ModelPicker
          model={form.model}
          effort={form.effort}
          onModel={(m) => set('model', m)}
          onEffort={(e) => set('effort', e)}
          defaultLabel={defaultModel ? `Default (${defaultModel})` : 'Default'}
          defaultModel={defaultModel}
          modelTestId="automation-model"
          effortTestId="automation-effort"
        />
      </div>
      <InlineError error={error} testId="automation-error" />
      <div class="form-actions">
        <div class="spacer" />
        <button type="button" class="button ghost" onClick={props.onCancel} disabled={busy}>
          Cancel
        </button>
        <button type="submit" class="button primary" data-testid="automation-save" disabled={busy}>
          {busy ? 'Saving…' : editing ? 'Save' : 'Create automation'}
        </button>
      </div>
    </form>
  );
}
