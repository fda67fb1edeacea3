// The session's pull request in the header: a chip with its number and state (open green,
// merged purple, closed red) linking to it, and Create PR / Update PR with its dialog
// (POST /api/sessions/{id}/pull-request).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo, GitCommitEvent, PrState, PullRequest } from '../api/types';
import { shortSha } from '../lib/format';
import type { PullState } from '../timeline/reduce';
import { Dialog } from './Dialog';
import { InlineError } from './bits';

const STATE_ICON: Record<PrState, string> = { open: '⇡', merged: '⇄', closed: '✕' };

export function prStateLabel(state: PrState, draft = false): string {
  if (state === 'open') return draft ? 'draft' : 'open';
  return state;
}

export function PrChip({ pull }: { pull: PullState }) {
  const label = prStateLabel(pull.state, pull.draft);
  return (
    <a
      class={`pr-chip pr-${pull.state}`}
      href={pull.url}
      target="_blank"
      rel="noopener noreferrer"
      data-testid="pr-chip"
      data-state={pull.state}
      data-number={String(pull.number)}
      title={`${pull.title ? `${pull.title} — ` : ''}pull request #${pull.number} is ${label} (opens GitHub)`}
    >
      <span aria-hidden="true">{STATE_ICON[pull.state]}</span>
      <span class="pr-num">#{pull.number}</span>
      <span class="pr-state-label">{label}</span>
    </a>
  );
}

/** GitHub limits (the server checks them too). */
const TITLE_MAX = 256;
const BODY_MAX = 60_000;

/** A short PR description from what the timeline holds: the session and its commits. */
export function prSummary(opts: { title: string; sessionUrl: string; commits: readonly GitCommitEvent[] }): string {
  const lines = [`Made with openinspect in the session “${opts.title}”: ${opts.sessionUrl}`];
  const commits = opts.commits.slice(-20);
  if (commits.length) {
    lines.push('', 'Commits:');
    for (const c of commits) lines.push(`- ${c.message.split('\n')[0]} (${shortSha(c.sha)})`);
    if (opts.commits.length > commits.length) lines.push(`- … and ${opts.commits.length - commits.length} earlier`);
  }
  return lines.join('\n');
}

/** The server's error envelope, worded for this dialog. */
function prError(err: unknown): ErrorInfo {
  const info = toErrorInfo(err);
  if (info.code === 'not_configured')
    return { ...info, message: 'GitHub is not configured on this server, so pull requests cannot be opened', hint: info.hint ?? 'An admin can set up the GitHub App (see docs/github.md)' };
  if (info.code === 'network_error') return info;
  if (err instanceof ApiError && err.status >= 500 && err.status !== 501 && !info.hint)
    return { ...info, hint: 'Try again in a moment' };
  return info;
}

export function PrDialog(props: {
  sessionId: string;
  /** The open PR this would update, if any. */
  open: PullState | null;
  defaultTitle: string;
  defaultBody: string;
  onClose(): void;
  onDone(pr: PullRequest): void;
}) {
  // As when the dialog opened: a PR opened by this very dialog must not turn it into "Update".
  const [updatingPr] = useState(props.open);
  const updating = updatingPr !== null;
  const [title, setTitle] = useState(() => (props.open?.title || props.defaultTitle).slice(0, TITLE_MAX));
  const [body, setBody] = useState(props.defaultBody);
  const [draft, setDraft] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [done, setDone] = useState<PullRequest | null>(null);
  const closeButton = useRef<HTMLButtonElement>(null);
  const submitButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (done) closeButton.current?.focus(); // the form is gone: keep focus in the dialog
  }, [done]);
  useEffect(() => {
    if (error && !busy) submitButton.current?.focus(); // it was disabled while busy: focus it again
  }, [error, busy]);

  const submit = async () => {
    if (busy) return;
    const t = title.trim();
    if (!t) {
      setError({ code: 'invalid_input', message: 'A pull request needs a title', hint: 'Summarise the change in one line' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const pr = await endpoints.openPullRequest(props.sessionId, { title: t, body, draft: updating ? false : draft });
      setDone(pr);
      props.onDone(pr);
    } catch (err) {
      setError(prError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      title={updating ? `Update pull request #${updatingPr!.number}` : 'Open a pull request'}
      onClose={props.onClose}
      testId="pr-dialog"
      busy={busy}
    >
      {done ? (
        <div class="dialog-body">
          <p role="status" data-testid="pr-result" data-state={done.state} data-number={String(done.number)}>
            {updating ? 'Updated' : 'Opened'}{' '}
            <a href={done.url} target="_blank" rel="noopener noreferrer">
              #{done.number} {done.title}
            </a>
            {done.draft ? ' as a draft' : ''}
            {done.opened_as === 'app' ? (
              <span class="muted small"> — by the openinspect GitHub App on your behalf (you have no GitHub sign-in here)</span>
            ) : null}
            .
          </p>
          <div class="form-actions">
            <div class="spacer" />
            <a class="button" href={done.url} target="_blank" rel="noopener noreferrer">
              View on GitHub
            </a>
            <button ref={closeButton} type="button" class="button primary" onClick={props.onClose}>
              Close
            </button>
          </div>
        </div>
      ) : (
        <form
          class="dialog-body"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <p class="muted small">
            {updating
              ? 'Pushes the latest work and replaces the title and description of the open pull request.'
              : 'Pushes the latest work and opens a pull request of the session branch against its base, as you on GitHub.'}
          </p>
          <label class="field">
            <span>Title</span>
            <input
              data-testid="pr-title"
              required
              maxLength={TITLE_MAX}
              value={title}
              autoFocus
              onInput={(e) => setTitle((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field">
            <span>Description</span>
            <textarea
              data-testid="pr-body"
              rows={8}
              maxLength={BODY_MAX}
              value={body}
              onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault();
                  void submit();
                }
              }}
            />
          </label>
          <label class="check" title={updating ? 'Only when opening a new pull request' : undefined}>
            <input
              type="checkbox"
              data-testid="pr-draft"
              checked={draft && !updating}
              disabled={updating}
              onChange={(e) => setDraft((e.target as HTMLInputElement).checked)}
            />
            <span>Open as a draft</span>
          </label>
          <InlineError error={error} testId="pr-error" />
          <div class="form-actions">
            <span class="muted small">Ctrl+Enter to submit · Esc to cancel</span>
            <div class="spacer" />
            <button type="button" class="button ghost" onClick={props.onClose} disabled={busy}>
              Cancel
            </button>
            <button ref={submitButton} type="submit" class="button primary" data-testid="pr-submit" disabled={busy}>
              {busy ? (updating ? 'Updating…' : 'Opening…') : updating ? 'Update PR' : 'Create PR'}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
