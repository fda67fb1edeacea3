// A repo's image on the Repos page: whether new boxes start from one, which one, its builds and
// their logs; admins turn it on or off and ask for a build. Refreshed while a build is pending.
import { useEffect, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo, ImageBuild, ImageBuildDetail, RepoImage } from '../api/types';
import { relativeTime } from '../lib/format';
import { InlineError } from './bits';

const REFRESH_MS = 2000;

function buildLabel(b: ImageBuild): string {
  const sha = b.commit_sha ? b.commit_sha.slice(0, 12) : '—';
  return `${b.id} · ${sha}`;
}

export function ImagePanel({ repo, canEdit }: { repo: string; canEdit: boolean }) {
  const [shown, setShown] = useState<RepoImage | null>(null);
  const [builds, setBuilds] = useState<ImageBuild[]>([]);
  const [log, setLog] = useState<ImageBuildDetail | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);

  const load = async () => {
    try {
      const [image, list] = await Promise.all([endpoints.repoImage(repo), endpoints.imageBuilds(repo)]);
      setShown(image);
      setBuilds(list.builds);
    } catch (err) {
      setError(toErrorInfo(err));
    }
  };

  useEffect(() => {
    void load();
  }, [repo]);

  const pending = shown?.pending != null;
  useEffect(() => {
    if (!pending) return;
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [pending, repo]);

  const act = async (what: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await what();
      await load();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  const openLog = (id: string) =>
    endpoints
      .imageBuild(repo, id)
      .then(setLog)
      .catch((err) => setError(toErrorInfo(err)));

  if (shown === null) return <div class="review-panel">{error ? <InlineError error={error} /> : <p class="muted small">Loading…</p>}</div>;
  return (
    <div class="review-panel image-panel" data-testid="image-panel" aria-label={`Image of ${repo}`}>
      <p class="small" data-testid="image-state" data-enabled={String(shown.enabled)}>
        {!shown.supported
          ? 'This server’s sandbox backend keeps no snapshots, so repos have no images.'
          : shown.enabled
            ? `New boxes start from the image of ${shown.base_branch} (rebuilt when it moves, at most every ${Math.round(shown.rebuild_interval_s / 60)} min), then fetch the newest commits.`
            : 'Images are off: new boxes clone the repo and run setup.sh.'}
        {shown.current && (
          <>
            {' '}
            Current image: <code>{buildLabel(shown.current)}</code>, built {relativeTime(shown.current.finished_at ?? shown.current.created_at)}.
          </>
        )}
      </p>
      <InlineError error={error} testId="image-error" />
      {canEdit && shown.supported && (
        <div class="form-actions">
          <button
            type="button"
            class="button small"
            data-testid="image-toggle"
            disabled={busy}
            onClick={() => void act(() => endpoints.putRepoImage(repo, !shown.enabled))}
          >
            {shown.enabled ? 'Turn images off' : 'Turn images on'}
          </button>
          {shown.enabled && (
            <button
              type="button"
              class="button primary small"
              data-testid="image-build"
              disabled={busy || pending}
              onClick={() => void act(() => endpoints.buildImage(repo))}
            >
              {pending ? 'Building…' : 'Build now'}
            </button>
          )}
        </div>
      )}
      {builds.length > 0 && (
        <ul class="image-builds">
          {builds.map((b) => (
            <li key={b.id} data-testid="image-build-row" data-status={b.status}>
              <span class={`image-status image-${b.status}`}>{b.status}{b.good ? ' · in use' : ''}</span>
              <code class="small">{buildLabel(b)}</code>
              <span class="muted small">{b.trigger}</span>
              <span class="muted small">{relativeTime(b.finished_at ?? b.started_at ?? b.created_at)}</span>
              <button type="button" class="button ghost small" data-testid="image-log-open" onClick={() => void openLog(b.id)}>
                Log
              </button>
              {b.error && <span class="small image-error">{b.error}</span>}
            </li>
          ))}
        </ul>
      )}
      {log && (
        <pre class="image-log mono small" data-testid="image-log" aria-label={`Log of build ${log.id}`}>
          {log.log || '(no log)'}
        </pre>
      )}
    </div>
  );
}
