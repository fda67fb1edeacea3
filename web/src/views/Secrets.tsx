// `/settings/secrets` (admins) — repo secrets: environment variables every box gets (global)
// or the boxes of one registered repo get (its own win over global ones of the same name). Set
// one (PUT /api/secrets/{name}), import pasted `.env` text (POST /api/secrets/import), list them
// (names, scopes and times: the API never returns a value) and delete one after a confirmation.
// A value typed here is sent once and cleared from the form; nothing on this page can show it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo, Repo, Secret } from '../api/types';
import { InlineError } from '../components/bits';
import { relativeTime } from '../lib/format';
import { useStore } from '../lib/store';
import { me$ } from '../state';

const GLOBAL = '';
const NAME_PATTERN = '[A-Za-z_][A-Za-z0-9_]*';

export function Secrets() {
  const me = useStore(me$);
  const [repos, setRepos] = useState<Repo[]>([]);
  const [scope, setScope] = useState(GLOBAL);
  const [secrets, setSecrets] = useState<Secret[] | null>(null);
  const [loadError, setLoadError] = useState<ErrorInfo | null>(null);
  const repo = scope === GLOBAL ? null : scope;

  const load = (which: string | null = repo) =>
    endpoints
      .secrets(which)
      .then((r) => {
        setSecrets(r.secrets);
        setLoadError(null);
      })
      .catch((err) => {
        setSecrets((s) => s ?? []);
        setLoadError(toErrorInfo(err));
      });

  useEffect(() => {
    document.title = 'Secrets · openinspect';
    if (me?.role !== 'admin') return;
    endpoints
      .repos()
      .then((r) => setRepos(r.repos))
      .catch((err) => setLoadError(toErrorInfo(err)));
  }, [me?.role]);

  useEffect(() => {
    if (me?.role !== 'admin') return;
    setSecrets(null);
    void load(repo);
  }, [me?.role, scope]);

  if (me && me.role !== 'admin') {
    return (
      <div class="page">
        <h1>Secrets</h1>
        <p class="muted">Only admins manage the secrets boxes get.</p>
      </div>
    );
  }

  const shown = scope === GLOBAL ? (secrets ?? []).filter((s) => s.scope === 'global') : (secrets ?? []);
  return (
    <div class="page tokens-page secrets-page">
      <div class="page-head">
        <h1>Secrets</h1>
      </div>
      <p class="muted">
        Environment variables of the sandboxes: global ones reach every box, a repo’s reach its boxes and win over a global one
        of the same name. Values are write-only: once saved they are never shown again, and wherever a box prints one it reads{' '}
        <code>[secret:NAME]</code>. A change reaches the boxes started after it.
      </p>
      <label class="field secrets-scope">
        <span>Scope</span>
        <select data-testid="secrets-scope" value={scope} onChange={(e) => setScope((e.target as HTMLSelectElement).value)}>
          <option value={GLOBAL}>Global (every box)</option>
          {repos.map((r) => (
            <option key={r.id} value={r.name}>
              Repo {r.name}
            </option>
          ))}
        </select>
      </label>
      <SetSecret repo={repo} onSaved={() => load()} />
      <ImportSecrets repo={repo} onImported={() => load()} />
      <section class="card" aria-label="Secrets">
        <h2>{repo ? `What a box of ${repo} gets` : 'Global secrets'}</h2>
        <InlineError error={loadError} />
        {secrets === null && <p class="muted">Loading…</p>}
        {secrets && shown.length === 0 && !loadError && <p class="muted">No secrets yet.</p>}
        {shown.length > 0 && (
          <ul class="token-list" data-testid="secret-list">
            {shown.map((s) => (
              <SecretRow key={`${s.scope}:${s.repo}:${s.name}`} secret={s} onDeleted={() => load()} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function SetSecret({ repo, onSaved }: { repo: string | null; onSaved(): void }) {
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  const save = async () => {
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const made = await endpoints.setSecret(name.trim(), value, repo);
      setSaved(made.name);
      setName('');
      setValue('');
      onSaved();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="form card"
      aria-label="Set a secret"
      autocomplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <h2>Set a secret{repo ? ` of ${repo}` : ''}</h2>
      <label class="field">
        <span>Name</span>
        <input
          data-testid="secret-name"
          required
          maxLength={128}
          pattern={NAME_PATTERN}
          title="An environment variable name: letters, digits and _, not starting with a digit"
          placeholder="NPM_TOKEN"
          spellcheck={false}
          autocomplete="off"
          value={name}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
      </label>
      <label class="field">
        <span>Value</span>
        <textarea
          data-testid="secret-value"
          class="mono secret-value"
          required
          rows={2}
          spellcheck={false}
          autocomplete="off"
          placeholder="Shown only while you type it: it is never shown again"
          value={value}
          onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <InlineError error={error} testId="secret-error" />
      <div class="form-actions">
        {saved && (
          <span class="ok small" role="status" data-testid="secret-saved">
            Saved {saved}.
          </span>
        )}
        <div class="spacer" />
        <button type="submit" class="button primary" data-testid="secret-set" disabled={busy}>
          {busy ? 'Saving…' : 'Save secret'}
        </button>
      </div>
    </form>
  );
}

function ImportSecrets({ repo, onImported }: { repo: string | null; onImported(): void }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [done, setDone] = useState<string[] | null>(null);

  const run = async () => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const res = await endpoints.importSecrets(text, repo);
      setDone(res.imported.map((s) => s.name));
      setText('');
      onImported();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="form card"
      aria-label="Import a .env file"
      autocomplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        void run();
      }}
    >
      <h2>Import a .env file{repo ? ` into ${repo}` : ''}</h2>
      <label class="field">
        <span>
          <code>KEY=value</code> lines; <code>export</code>, quotes and <code># comments</code> are understood. A bad line imports
          nothing.
        </span>
        <textarea
          data-testid="secrets-import-text"
          class="mono"
          required
          rows={5}
          spellcheck={false}
          autocomplete="off"
          placeholder={'export NPM_TOKEN=…\nDATABASE_URL="postgres://…"  # staging'}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <InlineError error={error} testId="secrets-import-error" />
      <div class="form-actions">
        {done && (
          <span class="ok small" role="status" data-testid="secrets-import-result">
            Imported {done.length}: {done.join(', ')}.
          </span>
        )}
        <div class="spacer" />
        <button type="submit" class="button" data-testid="secrets-import" disabled={busy}>
          {busy ? 'Importing…' : 'Import'}
        </button>
      </div>
    </form>
  );
}

function SecretRow({ secret: s, onDeleted }: { secret: Secret; onDeleted(): void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const deleteButton = useRef<HTMLButtonElement>(null);
  const where = s.scope === 'global' ? 'global' : `repo ${s.repo}`;

  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  const cancel = () => {
    setConfirming(false);
    setTimeout(() => deleteButton.current?.focus());
  };

  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await endpoints.deleteSecret(s.name, s.scope === 'repo' ? s.repo : null);
      onDeleted();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  };

  return (
    <li
      class={`token-row ${s.shadowed ? 'expired' : ''}`}
      data-testid="secret-row"
      data-name={s.name}
      data-scope={s.scope}
      data-shadowed={s.shadowed ? 'true' : 'false'}
    >
      <div class="token-main">
        <code class="token-name">{s.name}</code>
        <span class="badge">{where}</span>
        {s.shadowed && (
          <span class="badge" title="The repo has a secret of its own of this name, which its boxes get instead">
            overridden
          </span>
        )}
      </div>
      <span class="token-meta muted small">
        <span title={s.updated_at}>updated {relativeTime(s.updated_at)}</span>
        {s.created_at !== s.updated_at && (
          <>
            {' · '}
            <span title={s.created_at}>created {relativeTime(s.created_at)}</span>
          </>
        )}
      </span>
      <div class="token-actions">
        {confirming ? (
          <span
            class="confirm"
            role="group"
            aria-label={`Delete ${s.name}?`}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                e.preventDefault();
                cancel();
              }
            }}
          >
            <span class="small">Delete it? Boxes started from now on go without it.</span>
            <button
              ref={confirmButton}
              type="button"
              class="button danger small"
              data-testid="secret-delete-confirm"
              disabled={busy}
              onClick={() => void remove()}
            >
              {busy ? 'Deleting…' : 'Delete'}
            </button>
            <button type="button" class="button ghost small" data-testid="secret-delete-cancel" disabled={busy} onClick={cancel}>
              Cancel
            </button>
          </span>
        ) : (
          <button
            ref={deleteButton}
            type="button"
            class="button ghost small"
            data-testid="secret-delete"
            aria-label={`Delete the secret ${s.name} (${where})`}
            onClick={() => setConfirming(true)}
          >
            Delete
          </button>
        )}
      </div>
      <InlineError error={error} />
    </li>
  );
}
