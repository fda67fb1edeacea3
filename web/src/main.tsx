import { render } from 'preact';
import { App } from './app';
import { ErrorBoundary } from './components/bits';
import { reportError } from './state';
import './styles.css';

// Errors outside render (event handlers, promises) still reach the banner, never a blank page.
addEventListener('unhandledrejection', (e) => reportError(e.reason));
addEventListener('error', (e) => {
  if (e.error) reportError(e.error);
});

render(
  <ErrorBoundary>
    <App />
  </ErrorBoundary>,
  document.getElementById('app')!,
);
