// `/signin` — Sign in with GitHub when the server offers it (GET /auth/providers), or paste a
// token: the admin token (printed by the server on first start; also in
// $OPENINSPECT_HOME/admin.token) or an API token. A pasted token is never stored: it is
// exchanged (POST /auth/web-token) for a browser sign-in of the same person that expires, kept
// in localStorage for every tab. `?error=<code>` (a failed GitHub sign-in) is shown readably.
import { useEffect, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { auth } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { AuthProvider, ErrorInfo } from '../api/types';
import { ErrorText } from '../components/bits';
import { loginUrl, safeNext, signinError } from '../lib/authFlow';
import { navigate } from '../router';
import { clearErrors, me$ } from '../state';

export function SignIn({ next, reason, error: errorCode }: { next: string | null; reason?: string | null; error?: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ErrorInfo | null>(() => (errorCode ? signinError(errorCode) : null));
  const [busy, setBusy] = useState(false);
  // null while asking; the sign-in page works without it (a token can always be pasted).
  const [providers, setProviders] = useState<AuthProvider[] | null>(null);

  useEffect(() => {
    document.title = 'Sign in · openinspect';
    const ctl = new AbortController();
    endpoints
      .providers(ctl.signal)
      .then((r) => setProviders(r.providers ?? []))
      .catch(() => {
        if (!ctl.signal.aborted) setProviders([]);
      });
    return () => ctl.abort();
  }, []);

  useEffect(() => setError(errorCode ? signinError(errorCode) : null), [errorCode]);

  const github = providers?.find((p) => p.id === 'github') ?? null;

  const submit = async () => {
    const t = token.trim();
    if (!t) {
      setError({ code: 'invalid_input', message: 'Paste a token', hint: null });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const signed = await endpoints.exchangeToken(t);
      auth.setToken(signed.token, 'web');
      me$.set(signed.user);
      clearErrors();
      navigate(safeNext(next), { replace: true });
    } catch (err) {
      const info = toErrorInfo(err);
      setError(
        info.code === 'unauthenticated' || (err as { status?: number }).status === 401
          ? { ...info, hint: info.hint ?? 'Check the token: the server prints it on first start and keeps it in $OPENINSPECT_HOME/admin.token' }
          : info,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="signin-page">
      <form
        class="card signin"
        aria-label="Sign in"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div class="brand big">
          <span class="logo" aria-hidden="true">◉</span> openinspect
        </div>
        {reason && (
          <p class="signin-reason" role="status" data-testid="signin-reason">
            {reason}
          </p>
        )}
        {error && (
          <div class="inline-error" role="alert" data-testid="signin-error">
            <ErrorText error={error} />
          </div>
        )}
        {github && (
          <>
            <a class="button github wide" data-testid="signin-github" href={loginUrl(github.login_url, next)}>
              <GitHubMark /> Sign in with {github.name || 'GitHub'}
            </a>
            <div class="or" role="separator">
              <span>or use a token</span>
            </div>
          </>
        )}
        <label class="field">
          <span>{github ? 'API or admin token' : 'Admin token'}</span>
          <input
            type="password"
            data-testid="signin-token"
            autoComplete="current-password"
            autoFocus
            placeholder={github ? 'Paste a token' : 'Paste the admin token'}
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          />
        </label>
        <p class="muted small">
          The admin token is printed by the server on first start, and stored in <code>$OPENINSPECT_HOME/admin.token</code>. The
          token you paste is not stored: it is exchanged for a sign-in of this browser that expires, and ends when you sign out.
        </p>
        <button type="submit" class={`button ${github ? '' : 'primary'} wide`} data-testid="signin-submit" disabled={busy}>
          {busy ? 'Checking…' : github ? 'Sign in with the token' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}

/** GitHub's mark (octocat silhouette), sized to the text. */
function GitHubMark() {
  return (
    <svg class="gh-mark" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false">
      <path
        fill="currentColor"
        d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z"
      />
    </svg>
  );
}
