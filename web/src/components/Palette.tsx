// Command palette (Ctrl/Cmd+K): jump to sessions and run actions; type to filter (fuzzy),
// ↑/↓ to move, Enter to run, Esc to close.
import { Fragment } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { endpoints } from '../api/endpoints';
import { fuzzyFilter } from '../lib/fuzzy';
import { repoLabel } from '../lib/format';
import { toggleTheme } from '../lib/prefs';
import { useStore } from '../lib/store';
import { navigate } from '../router';
import { currentSession$, me$, paletteOpen$, reportError, sessions$, shownTitle, titles$ } from '../state';

interface Entry {
  id: string;
  label: string;
  hint: string;
  group: 'Actions' | 'Sessions';
  run(): void;
}

/** Copy to the clipboard; a failure (no permission, an insecure page) is reported, not silent. */
async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    reportError({ code: 'copy_failed', message: `Could not copy to the clipboard: ${text}`, hint: 'Select the branch name in the header and copy it' });
  }
}

export function Palette({ onSignOut }: { onSignOut(): void }) {
  const open = useStore(paletteOpen$);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        paletteOpen$.set(!paletteOpen$.get());
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
  if (!open) return null;
  return <PaletteDialog onSignOut={onSignOut} />;
}

function PaletteDialog({ onSignOut }: { onSignOut(): void }) {
  const sessions = useStore(sessions$);
  const current = useStore(currentSession$);
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const list = useRef<HTMLUListElement>(null);
  const returnFocus = useRef<Element | null>(document.activeElement);

  useEffect(() => {
    input.current?.focus();
    if (sessions$.get() === null)
      endpoints
        .sessions()
        .then((r) => sessions$.set(r.sessions))
        .catch(() => {});
    return () => (returnFocus.current as HTMLElement | null)?.focus?.();
  }, []);

  const close = () => paletteOpen$.set(false);
  const me = useStore(me$);
  const entries = useMemo(() => {
    const actions: Entry[] = [
      { id: 'new', label: 'New session', hint: 'Start work on a repo', group: 'Actions', run: () => navigate('/new') },
      { id: 'list', label: 'Go to sessions', hint: 'The session list', group: 'Actions', run: () => navigate('/') },
      { id: 'repos', label: 'Go to repos', hint: 'Register a repository', group: 'Actions', run: () => navigate('/repos') },
      { id: 'automations', label: 'Go to automations', hint: 'Schedules, webhooks, Sentry and GitHub events', group: 'Actions', run: () => navigate('/automations') },
      { id: 'tokens', label: 'API tokens', hint: 'Create or revoke tokens for scripts', group: 'Actions', run: () => navigate('/settings/tokens') },
      { id: 'theme', label: 'Toggle theme', hint: 'Dark / light', group: 'Actions', run: () => void toggleTheme() },
    ];
    if (me?.role === 'admin') {
      actions.push({ id: 'people', label: 'People', hint: 'Add a teammate, copy their sign-in link', group: 'Actions', run: () => navigate('/settings/people') });
      actions.push({ id: 'secrets', label: 'Secrets', hint: 'Environment variables of the boxes, global or per repo', group: 'Actions', run: () => navigate('/settings/secrets') });
    }
    if (current) {
      if (current.running)
        actions.unshift({ id: 'stop', label: 'Stop the running prompt', hint: current.title, group: 'Actions', run: current.stop });
      actions.unshift({ id: 'changes', label: 'Open changes', hint: current.title, group: 'Actions', run: current.openChanges });
      if (current.createPr) actions.unshift({ id: 'pr', label: current.prLabel, hint: current.title, group: 'Actions', run: current.createPr });
      actions.push({
        id: 'archive',
        label: current.archived ? 'Unarchive session' : 'Archive session',
        hint: current.title,
        group: 'Actions',
        run: current.toggleArchived,
      });
      const branch = current.branch;
      if (branch)
        actions.push({ id: 'branch', label: 'Copy branch name', hint: branch, group: 'Actions', run: () => void copyText(branch) });
    }
    actions.push({ id: 'signout', label: 'Sign out', hint: 'End this browser’s sign-in (every tab)', group: 'Actions', run: onSignOut });
    const sess: Entry[] = (sessions ?? []).map((s) => ({
      id: `s:${s.id}`,
      label: shownTitle(s, titles$.get()),
      hint: `${repoLabel(s.repo_url)} · ${s.status === 'active' ? 'running' : s.status}`,
      group: 'Sessions',
      run: () => navigate(`/sessions/${s.id}`),
    }));
    const all = [...actions, ...sess];
    const found = fuzzyFilter(query, all, (e) => `${e.label} ${e.group === 'Sessions' ? e.hint : ''}`);
    return query.trim() ? found.slice(0, 50) : [...actions, ...sess.slice(0, 12)];
  }, [query, sessions, current, onSignOut, me?.role]);

  useEffect(() => setActive(0), [query]);
  useEffect(() => {
    list.current?.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
  }, [active]);

  const runAt = (i: number) => {
    const e = entries[i];
    if (!e) return;
    close();
    e.run();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => (entries.length ? (a + 1) % entries.length : 0));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => (entries.length ? (a - 1 + entries.length) % entries.length : 0));
    } else if (e.key === 'Enter') {
      e.preventDefault();
      runAt(active);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      close();
    } else if (e.key === 'Tab') {
      e.preventDefault(); // keep focus in the dialog
    }
  };

  let lastGroup = '';
  return (
    <div class="palette-backdrop" onMouseDown={(e) => e.target === e.currentTarget && close()}>
      <div class="palette" role="dialog" aria-modal="true" aria-label="Command palette" data-testid="command-palette">
        <input
          ref={input}
          data-testid="palette-input"
          class="palette-input"
          placeholder="Jump to a session or run a command…"
          role="combobox"
          aria-expanded="true"
          aria-controls="palette-list"
          aria-activedescendant={entries[active] ? `pal-${active}` : undefined}
          aria-autocomplete="list"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
          onKeyDown={onKeyDown}
        />
        <ul id="palette-list" ref={list} class="palette-list" role="listbox" aria-label="Results">
          {entries.length === 0 && <li class="muted palette-empty">Nothing matches.</li>}
          {entries.map((e, i) => {
            const head = e.group !== lastGroup ? e.group : null;
            lastGroup = e.group;
            return (
              <Fragment key={e.id}>
                {head && (
                  <li class="palette-group" role="presentation">
                    {head}
                  </li>
                )}
                <li
                  id={`pal-${i}`}
                  role="option"
                  aria-selected={i === active}
                  class={`palette-item ${i === active ? 'active' : ''}`}
                  data-testid="palette-item"
                  data-action={e.id}
                  onMouseMove={() => setActive(i)}
                  onClick={() => runAt(i)}
                >
                  <span class="palette-label">{e.label}</span>
                  <span class="muted small">{e.hint}</span>
                </li>
              </Fragment>
            );
          })}
        </ul>
        <div class="palette-foot muted small">↑↓ to move · Enter to run · Esc to close</div>
      </div>
    </div>
  );
}
