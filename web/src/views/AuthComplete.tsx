// `/auth/complete#token=…&next=…` — where Sign in with GitHub lands. The token travels in the
// fragment (never sent to a server); it is read, stored like a pasted token, and dropped from
// the address bar and history at once; then on to `next` (same-origin paths only).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, auth, toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo } from '../api/types';
import { ErrorText, Link } from '../components/bits';
import { parseAuthFragment } from '../lib/authFlow';
import { navigate } from '../router';
import { clearErrors, me$ } from '../state';

export function AuthComplete() {
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [attempt, setAttempt] = useState(0);
  const taken = useRef<{ token: string | null; next: string } | null>(null);

  useEffect(() => {
    document.title = 'Signing in · openinspect';
    if (taken.current === null) {
      taken.current = parseAuthFragment(location.hash);
      // Drop the fragment before anything else: the token must not stay in the URL or history.
      history.replaceState(history.state, '', location.pathname + location.search);
      if (taken.current.token) auth.setToken(taken.current.token, 'web');
    }
    const { token, next } = taken.current;
    if (!token && auth.token()) {
      // Reloaded after the token was taken (the fragment is gone): already signed in.
      navigate(next, { replace: true });
      return;
    }
    if (!token) {
      setError({
        code: 'no_token',
        message: 'The sign-in did not hand a token over to this page',
        hint: 'Sign in again; if it keeps happening, an extension may be rewriting the address',
      });
      return;
    }
    let live = true;
    setError(null);
    // The explicit token: a 401 here is this page's to explain, not a global sign-out.
    endpoints
      .me(token)
      .then((user) => {
        if (!live) return;
        me$.set(user);
        clearErrors();
        navigate(next, { replace: true });
      })
      .catch((err) => {
        if (!live) return;
        if (err instanceof ApiError && err.status === 401) auth.setToken(null);
        setError(toErrorInfo(err));
      });
    return () => {
      live = false;
    };
  }, [attempt]);

  const retryable = !!error && error.code !== 'no_token' && !!auth.token();
  return (
    <div class="signin-page">
      <div class="card signin">
        <div class="brand big">
          <span class="logo" aria-hidden="true">◉</span> openinspect
        </div>
        {error ? (
          <>
            <div class="inline-error" role="alert" data-testid="signin-error">
              <ErrorText error={error} />
            </div>
            <div class="form-actions">
              {retryable && (
                <button type="button" class="button" onClick={() => setAttempt((n) => n + 1)}>
                  Try again
                </button>
              )}
              <div class="spacer" />
              <Link class="button primary" href="/signin">
                Back to sign-in
              </Link>
            </div>
          </>
        ) : (
          <p class="muted" role="status">
            Signing you in…
          </p>
        )}
      </div>
    </div>
  );
}
