// The session list's groups, from what the list endpoint says (pure: no DOM).
import type { LastPrompt, Session } from '../api/types';

export type Group = 'running' | 'attention' | 'recent';

/** Prompt outcomes that want a person to look: the agent failed or was cut off. */
const ATTENTION_OUTCOMES = new Set(['error', 'interrupted']);

/** Where a session belongs, from the session and how its newest prompt ended. */
export function groupOf(s: Session, last?: LastPrompt): Group {
  if (s.status === 'active') return 'running';
  if (s.status === 'failed' || s.sandbox_status === 'failed') return 'attention';
  if (last && ATTENTION_OUTCOMES.has(last.status)) return 'attention';
  return 'recent';
}
