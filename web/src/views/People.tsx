// `/settings/people` (admins) — the people of this server (GET /api/users): add someone (POST
// /api/users) and hand them a one-time sign-in link (POST /api/users/{id}/login-links) instead of
// sharing the admin token. The link is shown once, with a copy button; minting another voids it.
import { useEffect, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo, LoginLink, User } from '../api/types';
import { InlineError } from '../components/bits';
import { relativeTime } from '../lib/format';
import { useStore } from '../lib/store';
import { me$ } from '../state';

export function People() {
  const me = useStore(me$);
  const [users, setUsers] = useState<User[] | null>(null);
  const [loadError, setLoadError] = useState<ErrorInfo | null>(null);
  const [link, setLink] = useState<LoginLink | null>(null);

  const load = () =>
    endpoints
      .users()
      .then((r) => {
        setUsers(r.users);
        setLoadError(null);
      })
      .catch((err) => {
        setUsers((u) => u ?? []);
        setLoadError(toErrorInfo(err));
      });

  useEffect(() => {
    document.title = 'People · openinspect';
    if (me?.role === 'admin') void load();
  }, [me?.role]);

  if (me && me.role !== 'admin') {
    return (
      <div class="page">
        <h1>People</h1>
        <p class="muted">Only admins manage the people of this server.</p>
      </div>
    );
  }

  return (
    <div class="page tokens-page">
      <div class="page-head">
        <h1>People</h1>
      </div>
      <p class="muted">
        Add a teammate and send them a sign-in link: it signs them in to this web app once (as themselves, with a sign-in
        that expires), so nobody shares the admin token.
      </p>
      <AddPerson
        onAdded={async (user) => {
          await load();
          try {
            setLink(await endpoints.loginLink(user.id));
          } catch (err) {
            setLoadError(toErrorInfo(err));
          }
        }}
      />
      {link && <NewLink link={link} onDone={() => setLink(null)} />}
      <section class="card" aria-label="People">
        <InlineError error={loadError} />
        {users === null && <p class="muted">Loading…</p>}
        {users && users.length > 0 && (
          <ul class="token-list">
            {users.map((u) => (
              <PersonRow key={u.id} user={u} self={u.id === me?.id} onLink={setLink} />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function AddPerson({ onAdded }: { onAdded(user: User): Promise<void> }) {
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<'member' | 'admin'>('member');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);

  const add = async () => {
    setBusy(true);
    setError(null);
    try {
      const user = await endpoints.createUser({ name: name.trim(), email: email.trim(), role });
      setName('');
      setEmail('');
      await onAdded(user);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      class="form card"
      aria-label="Add a person"
      onSubmit={(e) => {
        e.preventDefault();
        void add();
      }}
    >
      <h2>Add a person</h2>
      <div class="row2">
        <label class="field">
          <span>Name</span>
          <input data-testid="person-name" required maxLength={200} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Email</span>
          <input
            data-testid="person-email"
            type="email"
            required
            maxLength={320}
            value={email}
            onInput={(e) => setEmail((e.target as HTMLInputElement).value)}
          />
        </label>
        <label class="field token-expiry">
          <span>Role</span>
          <select data-testid="person-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as 'member' | 'admin')}>
            <option value="member">member</option>
            <option value="admin">admin</option>
          </select>
        </label>
      </div>
      <InlineError error={error} testId="person-error" />
      <div class="form-actions">
        <div class="spacer" />
        <button type="submit" class="button primary" data-testid="person-add" disabled={busy}>
          {busy ? 'Adding…' : 'Add and make a sign-in link'}
        </button>
      </div>
    </form>
  );
}

function PersonRow({ user: u, self, onLink }: { user: User; self: boolean; onLink(link: LoginLink): void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const mint = async () => {
    setBusy(true);
    setError(null);
    try {
      const link = await endpoints.loginLink(u.id);
      onLink(link);
      await copyText(link.url);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <li class="token-row" data-testid="person-row" data-user-id={u.id} data-email={u.email}>
      <div class="token-main">
        <span class="token-name">{u.name}</span>
        <span class="badge">{u.role}</span>
        {self && <span class="badge badge-active">you</span>}
      </div>
      <span class="token-meta muted small">
        {u.email}
        {u.github_login ? ` · @${u.github_login}` : ''} · added {relativeTime(u.created_at)}
      </span>
      <div class="token-actions">
        <button
          type="button"
          class="button ghost small"
          data-testid="person-link"
          aria-label={`Copy a sign-in link for ${u.name}`}
          disabled={busy}
          onClick={() => void mint()}
        >
          {busy ? 'Making…' : 'Copy sign-in link'}
        </button>
      </div>
      <InlineError error={error} />
    </li>
  );
}

/** Copy to the clipboard; false when there is no clipboard (plain http on another host). */
async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** The link just minted: shown this once (it works once), with a copy button. */
function NewLink({ link, onDone }: { link: LoginLink; onDone(): void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="new-token card" role="region" aria-label="Sign-in link" data-testid="person-link-box">
      <p>
        <strong>Send this link to {link.user.name}:</strong> it signs them in once, until {new Date(link.expires_at).toLocaleString()}. A
        new link for them voids this one.
      </p>
      <div class="token-value-row">
        <code class="token-value" data-testid="person-link-url">
          {link.url}
        </code>
        <button type="button" class="button small" data-testid="person-link-copy" onClick={() => void copyText(link.url).then(setCopied)}>
          {copied ? 'Copied ✓' : 'Copy'}
        </button>
        <button type="button" class="button ghost small" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
