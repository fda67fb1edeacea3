// History-API routing: /, /new, /sessions/:id, /repos, /automations, /automations/new,
// /automations/:id, /settings/tokens, /settings/people, /settings/secrets, /signin,
// /auth/complete, /auth/link, /slack/link.
import { createStore } from './lib/store';

export type Route =
  | { name: 'list' }
  | { name: 'new' }
  | { name: 'session'; id: string }
  | { name: 'repos' }
  | { name: 'automations' }
  | { name: 'automation-new' }
  | { name: 'automation'; id: string }
  | { name: 'tokens' }
  | { name: 'people' }
  | { name: 'secrets' }
  | { name: 'signin'; next: string | null; error: string | null }
  /** Where Sign in with GitHub lands, with the token in the fragment. */
  | { name: 'auth-complete' }
  /** Where a sign-in link an admin minted lands, with the code in the fragment. */
  | { name: 'auth-link' }
  /** Where the Slack app's "Link my account" button lands, with a one-time code. */
  | { name: 'slack-link'; code: string | null }
  | { name: 'not-found'; path: string };

export function parseRoute(pathname: string, search = ''): Route {
  const path = pathname.replace(/\/+$/, '') || '/';
  if (path === '/') return { name: 'list' };
  if (path === '/new') return { name: 'new' };
  if (path === '/repos') return { name: 'repos' };
  if (path === '/automations') return { name: 'automations' };
  if (path === '/automations/new') return { name: 'automation-new' };
  if (path === '/settings/tokens') return { name: 'tokens' };
  if (path === '/settings/people') return { name: 'people' };
  if (path === '/settings/secrets') return { name: 'secrets' };
  if (path === '/signin') {
    const q = new URLSearchParams(search);
    return { name: 'signin', next: q.get('next'), error: q.get('error') };
  }
  if (path === '/auth/complete') return { name: 'auth-complete' };
  if (path === '/auth/link') return { name: 'auth-link' };
  if (path === '/slack/link') return { name: 'slack-link', code: new URLSearchParams(search).get('code') };
  const m = /^\/sessions\/([^/]+)$/.exec(path);
  if (m) return { name: 'session', id: decodeURIComponent(m[1]!) };
  const a = /^\/automations\/([^/]+)$/.exec(path);
  if (a) return { name: 'automation', id: decodeURIComponent(a[1]!) };
  return { name: 'not-found', path };
}

export const location$ = createStore({ path: location.pathname, search: location.search });

addEventListener('popstate', () => location$.set({ path: location.pathname, search: location.search }));

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  const url = new URL(to, location.origin);
  if (url.pathname === location.pathname && url.search === location.search) return;
  if (opts.replace) history.replaceState(null, '', url.pathname + url.search);
  else history.pushState(null, '', url.pathname + url.search);
  location$.set({ path: url.pathname, search: url.search });
  if (!opts.replace) window.scrollTo(0, 0);
}
