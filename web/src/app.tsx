// The shell: auth gate, top bar, routes, error banner, command palette.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { auth } from './api/client';
import { endpoints } from './api/endpoints';
import { ErrorBanner, ErrorBoundary, Link } from './components/bits';
import { Palette } from './components/Palette';
import { currentTheme, toggleTheme } from './lib/prefs';
import { useStore } from './lib/store';
import { location$, navigate, parseRoute } from './router';
import { clearErrors, me$, paletteOpen$, reportError, sessions$ } from './state';
import { NewSession } from './views/NewSession';
import { Repos } from './views/Repos';
import { SessionList } from './views/SessionList';
import { SessionView } from './views/SessionView';
import { SignIn } from './views/SignIn';

function signOut(reason?: string) {
  auth.setToken(null);
  me$.set(null);
  sessions$.set(null);
  clearErrors();
  const here = location.pathname + location.search;
  const next = here.startsWith('/signin') ? '' : `?next=${encodeURIComponent(here)}`;
  signOutReason = reason ?? null;
  navigate(`/signin${next}`, { replace: true });
}
let signOutReason: string | null = null;

// Any 401 from the API: the token is gone or wrong; back to sign-in.
auth.onUnauthorized = () => signOut('Your token was refused: sign in again.');

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
    if (!auth.token() && route.name !== 'signin') {
      const here = loc.path + loc.search;
      navigate(here === '/' ? '/signin' : `/signin?next=${encodeURIComponent(here)}`, { replace: true });
    }
  }, [route.name, loc.path, loc.search]);

  const onSignOut = useCallback(() => signOut(), []);

  if (route.name === 'signin' || !auth.token()) {
    return (
      <ErrorBoundary>
        <ErrorBanner />
        <SignIn next={route.name === 'signin' ? route.next : null} reason={signOutReason} />
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
      </nav>
      <div class="spacer" />
      <button type="button" class="kbd-button" onClick={() => paletteOpen$.set(true)} aria-label="Open the command palette">
        <span class="hide-narrow">Search or run…</span> <kbd>{mac ? '⌘' : 'Ctrl'} K</kbd>
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
      {me && (
        <span class="me hide-narrow" title={me.email}>
          {me.name}
        </span>
      )}
      <button type="button" class="button ghost small" data-testid="signout" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}
