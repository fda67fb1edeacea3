// Pure helpers of the sign-in flows: where to go after signing in, the `/auth/complete`
// fragment, the GitHub login URL, and the `/signin?error=<code>` messages. No DOM, no I/O.
import type { ErrorInfo } from '../api/types';

/** Pages that make no sense to land on after signing in. */
const NOT_A_DESTINATION = /^\/(signin|auth\/complete|auth\/link)(\/|\?|#|$)/;

/**
 * A same-origin path to go to after signing in, or '/'. Only a path counts: it starts with '/'
 * but not '//' nor '/\' (both mean another host to a browser), and has no control characters
 * (URL parsing drops tabs and newlines, so '/\t/evil.example' would become '//evil.example').
 */
export function safeNext(next: string | null | undefined): string {
  if (typeof next !== 'string' || !next.startsWith('/')) return '/';
  if (next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (/[\u0000-\u001f\u007f]/.test(next)) return '/';
  if (NOT_A_DESTINATION.test(next)) return '/';
  return next;
}

export interface AuthFragment {
  /** The API token minted by the sign-in, or null when the fragment has none. */
  token: string | null;
  /** Where to go next, already sanitised by `safeNext`. */
  next: string;
}

/** Read `#token=…&next=…` (what `/auth/github/callback` redirects to) from `location.hash`. */
export function parseAuthFragment(hash: string): AuthFragment {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  const token = (params.get('token') ?? '').trim();
  return { token: token || null, next: safeNext(params.get('next')) };
}

/** The provider's login URL with `?next=` (the page the user wanted). */
export function loginUrl(providerLoginUrl: string, next: string | null | undefined): string {
  const sep = providerLoginUrl.includes('?') ? '&' : '?';
  return `${providerLoginUrl}${sep}next=${encodeURIComponent(safeNext(next))}`;
}

const SIGNIN_ERRORS: Record<string, { message: string; hint: string | null }> = {
  sign_in_refused: {
    message: 'Your GitHub account is not allowed on this server',
    hint: 'Ask an admin of this server to let you in, or sign in with a token',
  },
  oauth_state_invalid: {
    message: 'The sign-in expired or was started in another browser',
    hint: 'Start again with “Sign in with GitHub” in this browser',
  },
  oauth_denied: {
    message: 'GitHub did not sign you in',
    hint: 'Try again, and approve the request on GitHub',
  },
  scm_auth_failed: {
    message: 'GitHub refused this server’s credentials',
    hint: 'An admin should check the GitHub OAuth app settings of this server',
  },
  scm_failed: {
    message: 'GitHub answered with an error while signing you in',
    hint: 'Try again in a moment',
  },
  scm_unavailable: {
    message: 'GitHub could not be reached',
    hint: 'Try again in a moment',
  },
  not_configured: {
    message: 'Sign in with GitHub is not configured on this server',
    hint: 'Sign in with a token instead, or ask an admin to configure GitHub',
  },
};

/** The readable message of a `/signin?error=<code>`. */
export function signinError(code: string): ErrorInfo {
  const known = SIGNIN_ERRORS[code];
  if (known) return { code, ...known };
  return { code, message: 'Signing in did not work', hint: 'Try again, or sign in with a token' };
}

/** Read `#code=…` (a sign-in link: `/auth/link#code=oil_…`) from `location.hash`; null when
 * there is no plausible code (the server checks it; this only keeps junk off the wire). */
export function parseLinkFragment(hash: string): string | null {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  const code = (params.get('code') ?? '').trim();
  return /^[A-Za-z0-9_-]{1,100}$/.test(code) ? code : null;
}

/** Why the app went back to the sign-in page after the API refused its token (by error code). */
export function refusedReason(code: string): string {
  if (code === 'token_expired') return 'Your sign-in expired: sign in again.';
  if (code === 'token_revoked') return 'You were signed out (in another tab, or the token was revoked): sign in again.';
  return 'Your token was refused: sign in again.';
}
