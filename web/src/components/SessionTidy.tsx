// Tidying a session from its header: the title is editable in place (click, Enter saves, Esc
// cancels) and the session can be archived or unarchived. Both go through PATCH
// /api/sessions/{id}; the server's `session-updated` event then updates every open view.
import { useEffect, useRef, useState } from 'preact/hooks';
import { endpoints } from '../api/endpoints';
import { toErrorInfo } from '../api/client';
import type { ErrorInfo, Session } from '../api/types';
import { InlineError } from './bits';

export const TITLE_MAX = 200;

/** The session's title as a heading that turns into a text field when clicked. */
export function EditableTitle(props: { session: Session; shown: string }) {
  const { session, shown } = props;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(shown);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (editing) input.current?.select();
  }, [editing]);

  const start = () => {
    setDraft(shown);
    setError(null);
    setEditing(true);
  };
  const save = async () => {
    const title = draft.trim();
    if (!title || title === shown) {
      setEditing(false);
      return;
    }
    setSaving(true);
    try {
      await endpoints.patchSession(session.id, { title });
      setEditing(false);
      setError(null);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setSaving(false);
    }
  };

  if (!editing)
    return (
      <h1 data-testid="session-title" class="session-title">
        <button type="button" class="title-button" title="Rename (click to edit)" onClick={start}>
          {shown}
        </button>
      </h1>
    );
  return (
    <div class="title-edit">
      <input
        ref={input}
        data-testid="session-title-input"
        class="title-input"
        aria-label="Session title"
        maxLength={TITLE_MAX}
        value={draft}
        disabled={saving}
        onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            e.preventDefault();
            void save();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            e.stopPropagation(); // Esc here cancels the edit, not the running prompt
            setEditing(false);
            setError(null);
          }
        }}
        onBlur={() => {
          if (!saving && !error) setEditing(false);
        }}
      />
      <InlineError error={error} testId="session-title-error" />
    </div>
  );
}

/** Archive the session, or unarchive it when it is archived; the error (say, a prompt still
 * running: `session_busy`) is reported through `onError`. */
export async function toggleArchived(session: Session, onError: (e: ErrorInfo) => void): Promise<void> {
  try {
    await endpoints.patchSession(session.id, { archived: session.status !== 'archived' });
  } catch (err) {
    onError(toErrorInfo(err));
  }
}

export function ArchiveButton(props: { session: Session; onError(e: ErrorInfo): void }) {
  const archived = props.session.status === 'archived';
  return (
    <button
      type="button"
      class="button ghost small"
      data-testid="archive-toggle"
      title={archived ? 'Bring the session back to the list' : 'Hide the session from the list and stop its sandbox'}
      onClick={() => void toggleArchived(props.session, props.onError)}
    >
      {archived ? 'Unarchive' : 'Archive'}
    </button>
  );
}
