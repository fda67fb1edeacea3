// The shell: auth gate, top bar, routes, error banner, command palette.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { isTouch } from './lib/device';
import { auth } from './api/client';
import type { User } from './api/types';
import { endpoints } from './api/endpoints';
import { Avatar, ErrorBanner, ErrorBoundary, Link } from './components/bits';
import { Palette } from './components/Palette';
import { refusedReason, safeNext } from './lib/authFlow';
import { currentTheme, toggleTheme } from './lib/prefs';
import { useStore } from './lib/store';
import { location$, navigate, parseRoute } from './router';
import { signOut, signOutReason } from './signout';
import { me$, paletteOpen$, reportError } from './state';
import { AuthComplete } from './views/AuthComplete';
import { AuthLink } from './views/AuthLink';
import { AutomationView } from './views/AutomationView';
import { Automations, NewAutomation } from './views/Automations';
import { NewSession } from './views/NewSession';
import { People } from './views/People';
import { SlackLink } from './views/SlackLink';
import { Repos } from './views/Repos';
import { Secrets } from './views/Secrets';
import { SessionList } from './views/SessionList';
import { SessionView } from './views/SessionView';
import { SignIn } from './views/SignIn';
import { Tokens } from './views/Tokens';

// Any 401 from the API: the sign-in expired, was revoked, or is wrong; back to sign-in, saying why.
auth.onUnauthorized = (err) => signOut({ reason: refusedReason(err.code) });

// Another tab of this browser signed out (every tab follows) or signed in (this one too).
auth.onOtherTab((token) => {
  if (!token) {
    if (me$.get() || parseRoute(location.pathname).name !== 'signin') signOut({ reason: 'You signed out in another tab.' });
    return;
  }
  me$.set(null);
  endpoints
    .me()
    .then((u) => me$.set(u))
    .catch(reportError);
  const route = parseRoute(location.pathname, location.search);
  if (route.name === 'signin') navigate(safeNext(route.next), { replace: true });
});

export function App() {
  const loc = useStore(location$);
  const me = useStore(me$);
  const route = parseRoute(loc.path, loc.search);
  const [checking, setChecking] = useState(() => !!auth.token() && !me$.get());

  // A stored token: find out who we are (a 401 signs out through onUnauthorized).
  useEffect(() => {
    if (!auth.token() || me$.get()) return;
    endpoints
      .me()
      .then((u) => me$.set(u))
      .catch(reportError)
      .finally(() => setChecking(false));
  }, []);

  useEffect(() => {
    if (!auth.token() && route.name !== 'signin' && route.name !== 'auth-complete' && route.name !== 'auth-link') {
      const here = loc.path + loc.search;
      navigate(here === '/' ? '/signin' : `/signin?next=${encodeURIComponent(here)}`, { replace: true });
    }
  }, [route.name, loc.path, loc.search]);

  const onSignOut = useCallback(() => signOut({ revoke: true }), []);

  if (route.name === 'auth-complete' || route.name === 'auth-link') {
    return <ErrorBoundary>{route.name === 'auth-link' ? <AuthLink /> : <AuthComplete />}</ErrorBoundary>;
  }

  if (route.name === 'signin' || !auth.token()) {
    return (
      <ErrorBoundary>
        <ErrorBanner />
        <SignIn
          next={route.name === 'signin' ? route.next : null}
          error={route.name === 'signin' ? route.error : null}
          reason={signOutReason()}
        />
      </ErrorBoundary>
    );
  }

  return (
    <div class="app">
      <TopBar route={route.name} onSignOut={onSignOut} />
      <ErrorBanner />
      <main id="main" class="main">
        <ErrorBoundary>
          {checking && !me ? (
            <p class="muted page">Signing in…</p>
          ) : route.name === 'list' ? (
            <SessionList />
          ) : route.name === 'new' ? (
            <NewSession />
          ) : route.name === 'session' ? (
            <SessionView key={route.id} id={route.id} />
          ) : route.name === 'repos' ? (
            <Repos />
          ) : route.name === 'automations' ? (
            <Automations />
          ) : route.name === 'automation-new' ? (
            <NewAutomation />
          ) : route.name === 'automation' ? (
            <AutomationView key={route.id} id={route.id} />
          ) : route.name === 'tokens' ? (
            <Tokens />
          ) : route.name === 'people' ? (
            <People />
          ) : route.name === 'secrets' ? (
            <Secrets />
          ) : route.name === 'slack-link' ? (
            <SlackLink code={route.code} />
          ) : (
            <div class="page">
              <h1>Not found</h1>
              <p class="muted">
                Nothing at <code>{route.name === 'not-found' ? route.path : ''}</code>. <Link href="/">Back to the sessions</Link>
              </p>
            </div>
          )}
        </ErrorBoundary>
      </main>
      <Palette onSignOut={onSignOut} />
    </div>
  );
}

function TopBar({ route, onSignOut }: { route: string; onSignOut(): void }) {
  const me = useStore(me$);
  const [theme, setTheme] = useState(currentTheme);
  const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  const touch = isTouch();
  return (
    <header class="topbar">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Link href="/" class="brand" aria-label="openinspect home">
        <span class="logo" aria-hidden="true">◉</span>
        <span class="brand-name">openinspect</span>
      </Link>
      <nav class="nav" aria-label="Main">
        <Link href="/" data-testid="nav-sessions" aria-current={route === 'list' || route === 'session' ? 'page' : undefined}>
          Sessions
        </Link>
        <Link href="/new" data-testid="nav-new-session" aria-current={route === 'new' ? 'page' : undefined}>
          New<span class="hide-narrow"> session</span>
        </Link>
        <Link href="/repos" data-testid="nav-repos" aria-current={route === 'repos' ? 'page' : undefined}>
          Repos
        </Link>
        <Link
          href="/automations"
          class="nav-narrow-hide"
          data-testid="nav-automations"
          aria-current={route === 'automations' || route === 'automation' || route === 'automation-new' ? 'page' : undefined}
        >
          Automations
        </Link>
        <Link href="/settings/tokens" class="nav-narrow-hide" data-testid="nav-tokens" aria-current={route === 'tokens' ? 'page' : undefined}>
          Tokens
        </Link>
        {me?.role === 'admin' && (
          <Link href="/settings/people" class="nav-narrow-hide" data-testid="nav-people" aria-current={route === 'people' ? 'page' : undefined}>
            People
          </Link>
        )}
        {me?.role === 'admin' && (
          <Link href="/settings/secrets" class="nav-narrow-hide" data-testid="nav-secrets" aria-current={route === 'secrets' ? 'page' : undefined}>
            Secrets
          </Link>
        )}
      </nav>
      <div class="spacer" />
      <button type="button" class="kbd-button" onClick={() => paletteOpen$.set(true)} aria-label="Open the command palette">
        <span class="hide-narrow">Search or run…</span>{' '}
        {touch ? <span aria-hidden="true">⌕</span> : <kbd>{mac ? '⌘' : 'Ctrl'} K</kbd>}
      </button>
      <button
        type="button"
        class="icon-button"
        data-testid="theme-toggle"
        aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        title="Toggle theme"
        onClick={() => setTheme(toggleTheme())}
      >
        {theme === 'dark' ? '☀' : '☾'}
      </button>
      {me && <Me me={me} />}
      <button type="button" class="button ghost small" data-testid="signout" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}

/** Who am I: avatar (GitHub's, else initials), GitHub login (else name), and the admin role. */
function Me({ me }: { me: User }) {
  const login = me.github_login;
  const label = login ? `@${login}` : me.name;
  const admin = me.role === 'admin';
  const title = `Signed in as ${me.name}${login ? ` (@${login} on GitHub)` : ''} <${me.email}>${admin ? ' · admin' : ''}`;
  return (
    <span class="me" data-testid="me" data-role={me.role} title={title}>
      <Avatar userId={me.id} name={me.name} src={me.avatar_url} size={24} />
      <span class="me-name hide-narrow" data-testid="me-login">
        {label}
      </span>
      {admin && (
        <span class="me-role hide-narrow" data-testid="me-role">
          admin
        </span>
      )}
    </span>
  );
}
