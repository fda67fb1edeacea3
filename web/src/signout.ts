// Signing out: forget this browser's sign-in (every tab: the token lives in localStorage) and go
// to the sign-in page (with ?next= back here).
import { auth } from './api/client';
import { endpoints } from './api/endpoints';
import { navigate } from './router';
import { clearErrors, me$, sessions$ } from './state';

let lastReason: string | null = null;

/** Why the last sign-out happened when it was not the user's doing (shown on the sign-in page). */
export function signOutReason(): string | null {
  return lastReason;
}

/**
 * Sign this browser out. `revoke` (the user asked): a browser sign-in (every token the app
 * stores is one: pasted tokens are exchanged for one) is revoked on the server (POST
 * /auth/logout; failures ignored: it is forgotten here anyway). Clearing the stored token tells
 * the other tabs, which sign out too (`auth.onOtherTab`). A token kept as pasted (`'pasted'`) is
 * only forgotten: revoking it would lock out the CLI and the scripts that use it.
 */
export function signOut(opts: { reason?: string; revoke?: boolean } = {}): void {
  const token = auth.token();
  if (opts.revoke && token && auth.tokenSource() === 'web') endpoints.logout(token).catch(() => {});
  auth.setToken(null);
  me$.set(null);
  sessions$.set(null);
  clearErrors();
  const here = location.pathname + location.search;
  const next = here.startsWith('/signin') || here.startsWith('/auth/') ? '' : `?next=${encodeURIComponent(here)}`;
  lastReason = opts.reason ?? null;
  navigate(`/signin${next}`, { replace: true });
}
