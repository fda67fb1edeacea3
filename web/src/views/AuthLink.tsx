// `/auth/link#code=…` — a one-time sign-in link an admin minted (POST /api/users/{id}/login-links).
// The code travels in the fragment (never sent to a server); it is read and dropped from the
// address bar and history at once, then exchanged once (POST /auth/login-link) for a browser
// sign-in of the link's person, which replaces whoever was signed in here.
import { useEffect, useRef, useState } from 'preact/hooks';
import { auth, toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo } from '../api/types';
import { ErrorText, Link } from '../components/bits';
import { parseLinkFragment } from '../lib/authFlow';
import { navigate } from '../router';
import { clearErrors, me$ } from '../state';

export function AuthLink() {
  const [error, setError] = useState<ErrorInfo | null>(null);
  const taken = useRef(false);

  useEffect(() => {
    document.title = 'Signing in · openinspect';
    if (taken.current) return;
    taken.current = true;
    const code = parseLinkFragment(location.hash);
    // Drop the fragment before anything else: the code must not stay in the URL or history.
    history.replaceState(history.state, '', location.pathname + location.search);
    if (!code) {
      setError({
        code: 'no_code',
        message: 'This sign-in link is incomplete',
        hint: 'Open the whole link you were given; if it keeps happening, ask for a new one',
      });
      return;
    }
    endpoints
      .redeemLink(code)
      .then((signed) => {
        const previous = auth.token();
        if (previous && auth.tokenSource() === 'web') endpoints.logout(previous).catch(() => {});
        auth.setToken(signed.token, 'web');
        me$.set(signed.user);
        clearErrors();
        navigate('/', { replace: true });
      })
      .catch((err) => setError(toErrorInfo(err)));
  }, []);

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
              <div class="spacer" />
              <Link class="button primary" href="/signin">
                Go to sign-in
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
