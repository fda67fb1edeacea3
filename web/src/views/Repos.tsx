// `/repos` — registered repositories, and a form to register one (local path or git URL).
import { useEffect, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo, Repo, ReviewSettings } from '../api/types';
import { InlineError, Link } from '../components/bits';
import { ImagePanel } from '../components/RepoImage';
import { relativeTime } from '../lib/format';
import { useStore } from '../lib/store';
import { me$, reportError } from '../state';

export function Repos() {
  const me = useStore(me$);
  const [open, setOpen] = useState<string | null>(null);
  const [imageOpen, setImageOpen] = useState<string | null>(null);
  const [repos, setRepos] = useState<Repo[] | null>(null);
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [branch, setBranch] = useState('main');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const [added, setAdded] = useState<string | null>(null);

  const load = () =>
    endpoints
      .repos()
      .then((r) => setRepos(r.repos))
      .catch((err) => {
        setRepos((r) => r ?? []);
        reportError(err);
      });

  useEffect(() => {
    document.title = 'Repos · openinspect';
    void load();
  }, []);

  // Suggest a name from the URL or path.
  const onUrl = (value: string) => {
    setUrl(value);
    if (!name || name === guessName(url)) setName(guessName(value));
  };

  const submit = async () => {
    setBusy(true);
    setError(null);
    setAdded(null);
    try {
      const repo = await endpoints.createRepo({ name: name.trim(), url: url.trim(), default_branch: branch.trim() || 'main' });
      setAdded(repo.name);
      setName('');
      setUrl('');
      setBranch('main');
      await load();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="page repos-page">
      <div class="page-head">
        <h1>Repositories</h1>
      </div>
      <form
        class="form card"
        aria-label="Register a repository"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <h2>Register a repository</h2>
        <label class="field">
          <span>Local path or git URL</span>
          <input
            data-testid="repo-url"
            required
            placeholder="/home/me/src/project or https://github.com/org/project.git"
            value={url}
            onInput={(e) => onUrl((e.target as HTMLInputElement).value)}
          />
        </label>
        <div class="row2">
          <label class="field">
            <span>Name</span>
            <input
              data-testid="repo-name"
              required
              pattern="[A-Za-z0-9._\/\-]+"
              title="Letters, digits, . _ / -"
              placeholder="org/project"
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field">
            <span>Default branch</span>
            <input
              data-testid="repo-default-branch"
              required
              value={branch}
              onInput={(e) => setBranch((e.target as HTMLInputElement).value)}
            />
          </label>
        </div>
        <InlineError error={error} testId="repo-error" />
        <div class="form-actions">
          {added && (
            <span class="ok small" role="status">
              Registered {added}.
            </span>
          )}
          <div class="spacer" />
          <button type="submit" class="button primary" data-testid="repo-submit" disabled={busy}>
            {busy ? 'Registering…' : 'Register'}
          </button>
        </div>
      </form>
      <section class="card" aria-label="Registered repositories">
        {repos === null && <p class="muted">Loading…</p>}
        {repos?.length === 0 && <p class="muted">No repository registered yet. Sessions can also use any local path or git URL.</p>}
        <ul class="repo-list">
          {repos?.map((r) => (
            <li key={r.id} class="repo-row" data-testid="repo-row" data-repo-id={r.id}>
              <span class="repo-name">{r.name}</span>
              <span class="mono muted repo-url" title={r.url}>
                {r.url}
              </span>
              <code class="small">{r.default_branch}</code>
              <span class="muted small">{relativeTime(r.created_at)}</span>
              <Link href={`/new?repo=${encodeURIComponent(r.name)}`} class="button ghost small">
                New session
              </Link>
              <button
                type="button"
                class="button ghost small"
                data-testid="repo-review-toggle"
                aria-expanded={open === r.id}
                onClick={() => setOpen(open === r.id ? null : r.id)}
              >
                Review bot
              </button>
              <button
                type="button"
                class="button ghost small"
                data-testid="repo-image-toggle"
                aria-expanded={imageOpen === r.id}
                onClick={() => setImageOpen(imageOpen === r.id ? null : r.id)}
              >
                Image
              </button>
              {open === r.id && <ReviewPanel repo={r.name} canEdit={me?.role === 'admin'} />}
              {imageOpen === r.id && <ImagePanel repo={r.name} canEdit={me?.role === 'admin'} />}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

type AutoChoice = 'default' | 'on' | 'off';

/** The review bot's settings of one repo: what it does, and (for admins) a form to change it. */
function ReviewPanel({ repo, canEdit }: { repo: string; canEdit: boolean }) {
  const [shown, setShown] = useState<ReviewSettings | null>(null);
  const [auto, setAuto] = useState<AutoChoice>('default');
  const [instructions, setInstructions] = useState('');
  const [model, setModel] = useState('');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  const fill = (s: ReviewSettings) => {
    setShown(s);
    setAuto(s.auto_review === null ? 'default' : s.auto_review ? 'on' : 'off');
    setInstructions(s.instructions ?? '');
    setModel(s.model ?? '');
  };

  useEffect(() => {
    endpoints.reviewSettings(repo).then(fill).catch((err) => setError(toErrorInfo(err)));
  }, [repo]);

  const save = async () => {
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      fill(
        await endpoints.putReviewSettings(repo, {
          auto_review: auto === 'default' ? null : auto === 'on',
          instructions: instructions.trim() || null,
          model: model.trim() || null,
        }),
      );
      setSaved(true);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  if (shown === null) return <div class="review-panel">{error ? <InlineError error={error} /> : <p class="muted small">Loading…</p>}</div>;
  const effective = shown.effective;
  return (
    <form
      class="review-panel form"
      aria-label={`Review bot settings of ${repo}`}
      data-testid="review-panel"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <p class="small" data-testid="review-effective">
        New pull requests are {effective.auto_review ? 'reviewed' : 'not reviewed'} automatically
        {shown.auto_review === null ? ' (the server’s default)' : ''}; model: {effective.model ?? 'the default model'}.
      </p>
      <div class="row2">
        <label class="field">
          <span>Auto-review</span>
          <select
            data-testid="review-auto"
            disabled={!canEdit}
            value={auto}
            onChange={(e) => setAuto((e.target as HTMLSelectElement).value as AutoChoice)}
          >
            <option value="default">Server default</option>
            <option value="on">On</option>
            <option value="off">Off</option>
          </select>
        </label>
        <label class="field">
          <span>Model</span>
          <input
            data-testid="review-model"
            disabled={!canEdit}
            placeholder="default"
            value={model}
            onInput={(e) => setModel((e.target as HTMLInputElement).value)}
          />
        </label>
      </div>
      <label class="field">
        <span>Review instructions</span>
        <textarea
          data-testid="review-instructions"
          disabled={!canEdit}
          rows={3}
          maxLength={8000}
          placeholder="What the bot should look for in this repo"
          value={instructions}
          onInput={(e) => setInstructions((e.target as HTMLTextAreaElement).value)}
        />
      </label>
      <InlineError error={error} testId="review-error" />
      {canEdit ? (
        <div class="form-actions">
          {saved && (
            <span class="ok small" role="status">
              Saved.
            </span>
          )}
          <div class="spacer" />
          <button type="submit" class="button primary small" data-testid="review-save" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      ) : (
        <p class="muted small">Only admins change a repo’s review settings.</p>
      )}
    </form>
  );
}

function guessName(url: string): string {
  const clean = url.trim().replace(/\.git$/, '').replace(/\/+$/, '');
  const parts = clean.split(/[/:]/).filter(Boolean);
  const tail = /^(https?|ssh|git)$/i.test(parts[0] ?? '') ? parts.slice(-2) : parts.slice(-1);
  return tail.join('/').replace(/[^A-Za-z0-9._/-]/g, '-');
}
