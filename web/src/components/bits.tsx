// Small shared pieces: links, avatars, status dots, the error banner and boundary.
import { Component, type ComponentChildren, type JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { ErrorInfo } from '../api/types';
import { hueOf, initials } from '../lib/format';
import { webHint } from '../lib/hints';
import { useStore } from '../lib/store';
import { navigate } from '../router';
import { dismissError, errors$ } from '../state';

type AnchorProps = JSX.HTMLAttributes<HTMLAnchorElement> & { href: string };

/** An <a> that navigates with the History API (new tab / modified clicks behave as usual). */
export function Link(props: AnchorProps) {
  const { href, onClick, ...rest } = props;
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        (onClick as ((ev: MouseEvent) => void) | undefined)?.(e as unknown as MouseEvent);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
    />
  );
}

/** A round avatar: the picture at `src` when given and loadable, else initials on a colour
 * derived from the user id. */
export function Avatar(props: {
  userId: string;
  name: string;
  size?: number;
  status?: 'active' | 'idle';
  testId?: string;
  src?: string | null;
}) {
  const size = props.size ?? 26;
  const hue = hueOf(props.userId);
  const [broken, setBroken] = useState<string | null>(null);
  const src = props.src && /^(https:\/\/|\/(?![/\\]))/.test(props.src) && broken !== props.src ? props.src : null;
  return (
    <span
      class={`avatar ${props.status ? `presence-${props.status}` : ''}`}
      style={{ width: `${size}px`, height: `${size}px`, fontSize: `${Math.round(size * 0.42)}px`, '--hue': String(hue) }}
      title={props.status ? `${props.name} (${props.status})` : props.name}
      aria-label={props.status ? `${props.name}, ${props.status}` : props.name}
      role="img"
      data-testid={props.testId}
      data-user-id={props.testId ? props.userId : undefined}
      data-status={props.testId ? props.status : undefined}
    >
      {src ? (
        <img
          class="avatar-img"
          src={src}
          alt=""
          width={size}
          height={size}
          referrerpolicy="no-referrer"
          decoding="async"
          onError={() => setBroken(src)}
        />
      ) : (
        initials(props.name)
      )}
    </span>
  );
}

const DOT: Record<string, string> = {
  // session
  created: 'gray',
  active: 'blue',
  idle: 'green',
  archived: 'gray',
  failed: 'red',
  // sandbox
  none: 'gray',
  warming: 'yellow',
  booting: 'yellow',
  ready: 'green',
  snapshotting: 'yellow',
  stopped: 'gray',
  lost: 'red',
  // connection
  online: 'green',
  connecting: 'yellow',
  offline: 'red',
};

export function StatusDot(props: { status: string; kind?: string; label?: string }) {
  const color = DOT[props.status] ?? 'gray';
  const pulse = props.status === 'active' || props.status === 'booting' || props.status === 'warming' || props.status === 'connecting';
  return (
    <span
      class={`dot dot-${color} ${pulse ? 'pulse' : ''}`}
      role={props.label ? 'img' : undefined}
      aria-label={props.label}
      aria-hidden={props.label ? undefined : 'true'}
    />
  );
}

/** An error's hint, phrased for the web (no CLI advice, no raw backticks); nothing if none fits. */
export function Hint({ hint, code }: { hint: string | null | undefined; code: string | null | undefined }) {
  const parts = webHint(code, hint);
  if (!parts) return null;
  return (
    <span class="error-hint" data-testid="error-hint">
      {' — '}
      {parts.map((p, i) => (p.code ? <code key={i}>{p.text}</code> : <span key={i}>{p.text}</span>))}
    </span>
  );
}

/** {code, message, hint} as one readable block. */
export function ErrorText({ error }: { error: ErrorInfo }) {
  return (
    <span class="error-text">
      <code class="error-code">{error.code}</code> <span class="error-message">{error.message}</span>
      <Hint hint={error.hint} code={error.code} />
    </span>
  );
}

/** Inline error (forms, panels). */
export function InlineError({ error, testId }: { error: ErrorInfo | null; testId?: string }) {
  if (!error) return null;
  return (
    <div class="inline-error" role="alert" data-testid={testId}>
      <ErrorText error={error} />
    </div>
  );
}

/** The global error banner: every failed request ends up here. */
export function ErrorBanner() {
  const errors = useStore(errors$);
  if (errors.length === 0) return null;
  return (
    <div class="error-banner" role="alert" data-testid="error-banner">
      {errors.map((e) => (
        <div class="error-entry" key={e.id}>
          <span class="error-icon" aria-hidden="true">!</span>
          <ErrorText error={e} />
          {e.count > 1 && <span class="muted small"> ×{e.count}</span>}
          <button type="button" class="icon-button" aria-label="Dismiss error" onClick={() => dismissError(e.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

interface BoundaryState {
  error: Error | null;
}

/** Never a blank page: a render error shows what went wrong and a way out. */
export class ErrorBoundary extends Component<{ children: ComponentChildren }, BoundaryState> {
  override state: BoundaryState = { error: null };

  static override getDerivedStateFromError(error: unknown): BoundaryState {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  override componentDidCatch(error: unknown): void {
    console.error(error);
  }

  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div class="boundary">
        <div class="error-banner" role="alert" data-testid="error-banner">
          <div class="error-entry">
            <span class="error-icon" aria-hidden="true">!</span>
            <ErrorText error={{ code: 'client_error', message: this.state.error.message, hint: 'This is a bug in the web app; reloading usually helps' }} />
          </div>
        </div>
        <p>
          <button type="button" class="button" onClick={() => location.reload()}>
            Reload
          </button>{' '}
          <button type="button" class="button ghost" onClick={() => this.setState({ error: null })}>
            Try again
          </button>
        </p>
      </div>
    );
  }
}
