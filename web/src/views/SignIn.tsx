// `/signin` — the admin token (printed by the server on first start; also in
// $OPENINSPECT_HOME/admin.token). Verified with GET /api/me, then kept in sessionStorage.
import { useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { auth } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo } from '../api/types';
import { ErrorText } from '../components/bits';
import { navigate } from '../router';
import { clearErrors, me$ } from '../state';

export function SignIn({ next, reason }: { next: string | null; reason?: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    const t = token.trim();
    if (!t) {
      setError({ code: 'invalid_input', message: 'Paste the admin token', hint: null });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const user = await endpoints.me(t);
      auth.setToken(t);
      me$.set(user);
      clearErrors();
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
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
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div class="brand big">
          <span class="logo" aria-hidden="true">◉</span> openinspect
        </div>
        {reason && <p class="muted small">{reason}</p>}
        <label class="field">
          <span>Admin token</span>
          <input
            type="password"
            data-testid="signin-token"
            autoComplete="current-password"
            autoFocus
            placeholder="Paste the admin token"
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          />
        </label>
        <p class="muted small">
          Printed by the server on first start, and stored in <code>$OPENINSPECT_HOME/admin.token</code>. Kept only for this browser tab.
        </p>
        {error && (
          <div class="inline-error" role="alert" data-testid="signin-error">
            <ErrorText error={error} />
          </div>
        )}
        <button type="submit" class="button primary wide" data-testid="signin-submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
