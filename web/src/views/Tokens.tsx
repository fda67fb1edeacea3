// `/settings/tokens` — your API tokens (GET /api/tokens): mint one for scripts (shown once, with
// a copy button), revoke one (after a confirmation). Browser sign-ins and the CLI's logins are
// tokens too, and are listed with their kind.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ApiToken, ErrorInfo, TokenCreated, TokenKind } from '../api/types';
import { InlineError } from '../components/bits';
import { relativeTime } from '../lib/format';
import { signOut } from '../signout';

const KIND_LABEL: Record<TokenKind, string> = {
  api: 'API',
  web: 'browser sign-in',
  cli: 'command line',
};

const EXPIRY_CHOICES: { days: number | null; label: string }[] = [
  { days: 7, label: '7 days' },
  { days: 30, label: '30 days' },
  { days: 90, label: '90 days' },
  { days: 365, label: '1 year' },
  { days: null, label: 'Never' },
];

function absolute(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toLocaleString() : iso;
}

function expired(t: ApiToken, now = Date.now()): boolean {
  return !!t.expires_at && Date.parse(t.expires_at) <= now;
}

/** "in 3d", "in 5h"… for a future time (relativeTime is for the past). */
function until(iso: string, now = Date.now()): string {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 3600) return `in ${Math.max(1, Math.round(s / 60))}m`;
  if (s < 86400) return `in ${Math.round(s / 3600)}h`;
  if (s < 86400 * 60) return `in ${Math.round(s / 86400)}d`;
  return `on ${new Date(Date.parse(iso)).toLocaleDateString()}`;
}

export function Tokens() {
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [loadError, setLoadError] = useState<ErrorInfo | null>(null);
  const [name, setName] = useState('');
  const [days, setDays] = useState('90');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [created, setCreated] = useState<TokenCreated | null>(null);

  const load = () =>
    endpoints
      .tokens()
      .then((r) => {
        setTokens(r.tokens);
        setLoadError(null);
      })
      .catch((err) => {
        setTokens((t) => t ?? []);
        setLoadError(toErrorInfo(err));
      });

  useEffect(() => {
    document.title = 'API tokens · openinspect';
    void load();
  }, []);

  const create = async () => {
    const n = name.trim();
    if (!n) {
      setError({ code: 'invalid_input', message: 'Name the token', hint: 'Say what will use it, e.g. “CI on project X”' });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const res = await endpoints.createToken(days ? { name: n, expires_in_days: Number(days) } : { name: n });
      setCreated(res);
      setName('');
      await load();
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="page tokens-page">
      <div class="page-head">
        <h1>API tokens</h1>
      </div>
      <p class="muted">
        Tokens let scripts and the command line call the API as you (<code>Authorization: Bearer …</code>). Signing in with
        GitHub in a browser, or <code>openinspect login</code>, makes one too.
      </p>
      <form
        class="form card"
        aria-label="Create an API token"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <h2>New token</h2>
        <div class="row2">
          <label class="field">
            <span>Name</span>
            <input
              data-testid="token-name"
              required
              maxLength={200}
              placeholder="CI on project X"
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field token-expiry">
            <span>Expires after</span>
            <select data-testid="token-expires" value={days} onChange={(e) => setDays((e.target as HTMLSelectElement).value)}>
              {EXPIRY_CHOICES.map((c) => (
                <option key={c.label} value={c.days === null ? '' : String(c.days)}>
                  {c.label}
                </option>
              ))}
            </select>
          </label>
        </div>
        <InlineError error={error} testId="token-error" />
        {created && <NewToken created={created} onDone={() => setCreated(null)} />}
        <div class="form-actions">
          <div class="spacer" />
          <button type="submit" class="button primary" data-testid="token-create" disabled={busy}>
            {busy ? 'Creating…' : 'Create token'}
          </button>
        </div>
      </form>
      <section class="card" aria-label="Your tokens">
        <InlineError error={loadError} />
        {tokens === null && <p class="muted">Loading…</p>}
        {tokens?.length === 0 && !loadError && <p class="muted">No tokens yet.</p>}
        {tokens && tokens.length > 0 && (
          <ul class="token-list">
            {tokens.map((t) => (
              <TokenRow key={t.id} token={t} onRevoked={load} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

/** The token just created: shown this once, with a copy button. */
function NewToken({ created, onDone }: { created: TokenCreated; onDone(): void }) {
  const [copied, setCopied] = useState<'yes' | 'select' | null>(null);
  const code = useRef<HTMLElement>(null);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.focus();
  }, [created.token]);

  const selectIt = () => {
    const el = code.current;
    const sel = getSelection();
    if (!el || !sel) return;
    const range = document.createRange();
    range.selectNodeContents(el);
    sel.removeAllRanges();
    sel.addRange(range);
  };

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied('yes');
    } catch {
      // No clipboard API (plain http on another host): select it for Ctrl+C.
      selectIt();
      setCopied('select');
    }
  };

  return (
    <div class="new-token" role="region" aria-label="Your new token" tabIndex={-1} ref={box}>
      <p>
        <strong>Copy the token “{created.info.name}” now:</strong> it is not shown again.
        {created.info.expires_at ? ` It expires ${until(created.info.expires_at)}.` : ' It never expires.'}
      </p>
      <div class="token-value-row">
        <code class="token-value" data-testid="token-value" ref={code} onClick={selectIt}>
          {created.token}
        </code>
        <button type="button" class="button small" data-testid="token-copy" onClick={() => void copy()}>
          {copied === 'yes' ? 'Copied ✓' : 'Copy'}
        </button>
        <button type="button" class="button ghost small" data-testid="token-done" onClick={onDone}>
          Done
        </button>
      </div>
      <span class="muted small" role="status">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'select' ? 'Selected: press Ctrl+C (⌘C) to copy.' : ''}
      </span>
    </div>
  );
}

function TokenRow({ token: t, onRevoked }: { token: ApiToken; onRevoked(): void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const revokeButton = useRef<HTMLButtonElement>(null);
  const isExpired = expired(t);

  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
  }, [confirming]);

  const cancel = () => {
    setConfirming(false);
    setTimeout(() => revokeButton.current?.focus());
  };

  const revoke = async () => {
    setBusy(true);
    setError(null);
    try {
      await endpoints.revokeToken(t.id);
      if (t.current) {
        signOut({ reason: 'You revoked the token this browser was signed in with.' });
        return;
      }
      onRevoked();
    } catch (err) {
      setError(toErrorInfo(err));
      setBusy(false);
    }
  };

  return (
    <li class={`token-row ${isExpired ? 'expired' : ''}`} data-testid="token-row" data-token-id={t.id} data-kind={t.kind}>
      <div class="token-main">
        <span class="token-name">{t.name}</span>
        <span class={`badge token-kind kind-${t.kind}`}>{KIND_LABEL[t.kind] ?? t.kind}</span>
        {t.current && (
          <span class="badge badge-active" title="This browser is signed in with it">
            this browser
          </span>
        )}
        {isExpired && <span class="badge badge-error">expired</span>}
      </div>
      <span class="token-meta muted small">
        <code class="token-prefix" title="How the token starts">
          {t.prefix}…
        </code>
        {' · '}
        <span title={absolute(t.created_at)}>created {relativeTime(t.created_at)}</span>
        {' · '}
        {t.last_used_at ? <span title={absolute(t.last_used_at)}>used {relativeTime(t.last_used_at)}</span> : 'never used'}
        {' · '}
        {t.expires_at ? (
          <span title={absolute(t.expires_at)}>{isExpired ? `expired ${relativeTime(t.expires_at)}` : `expires ${until(t.expires_at)}`}</span>
        ) : (
          'never expires'
        )}
      </span>
      <div class="token-actions">
        {confirming ? (
          <span
            class="confirm"
            role="group"
            aria-label={`Revoke ${t.name}?`}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                e.preventDefault();
                cancel();
              }
            }}
          >
            <span class="small">{t.current ? 'Revoke it and sign this browser out?' : 'Revoke it? Anything using it stops working.'}</span>
            <button ref={confirmButton} type="button" class="button danger small" data-testid="token-revoke-confirm" disabled={busy} onClick={() => void revoke()}>
              {busy ? 'Revoking…' : 'Revoke'}
            </button>
            <button type="button" class="button ghost small" data-testid="token-revoke-cancel" disabled={busy} onClick={cancel}>
              Cancel
            </button>
          </span>
        ) : (
          <button
            ref={revokeButton}
            type="button"
            class="button ghost small"
            data-testid="token-revoke"
            aria-label={`Revoke the token ${t.name}`}
            onClick={() => setConfirming(true)}
          >
            Revoke
          </button>
        )}
      </div>
      <InlineError error={error} />
    </li>
  );
}
