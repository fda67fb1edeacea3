// Error hints as the web app shows them. The server writes one client-neutral hint per error (no
// CLI commands or flags, no backticks: tests/test_errors.py checks each); some codes get a web
// phrasing here, and, as a safety net, clauses of CLI advice or environment variables (which mean
// nothing in a browser) are dropped and backticked words become code spans (never raw backticks).

/** Web phrasings of hints, by error code. */
const WEB_HINTS: Record<string, string> = {
  session_not_found: 'Pick a session from the session list',
  unauthenticated: 'Sign in again, or mint a new token on the Tokens page',
  model_not_configured: 'Pick a configured model in the model menu, or ask an admin to set this one up',
  repo_not_found: 'Register the repo on the Repos page, or check the path',
};

/** What reads as CLI advice: a command, a flag, an environment variable, a config file. */
const CLI_ADVICE = /`openinspect\b|\bopeninspect [a-z]|(^|\s)--[a-z]|\bOPENINSPECT_[A-Z_]+|\b(?:uv|pip|make|export) [a-z]|config\.toml/;

export interface HintPart {
  text: string;
  code: boolean;
}

/** The hint to show for `code` in the web app, as text and code spans; null when none fits. */
export function webHint(code: string | null | undefined, hint: string | null | undefined): HintPart[] | null {
  const known = code ? WEB_HINTS[code] : undefined;
  if (known) return [{ text: known, code: false }];
  if (!hint) return null;
  // Clauses: sentences, then the alternatives of a sentence ("do A, set B, or run C").
  const kept: string[] = [];
  for (const sentence of hint.split(/(?<=[.;!?])\s+/)) {
    if (!CLI_ADVICE.test(sentence)) {
      kept.push(sentence);
      continue;
    }
    const parts = sentence.split(/,\s*(?:or\s+)?|\s+or\s+|\s*\(|\)\s*/).map((p) => p.trim()).filter(Boolean);
    const ok = parts.filter((p) => !CLI_ADVICE.test(p) && /[a-z]{3}/i.test(p));
    if (ok.length) kept.push(ok.join(', or ').replace(/^./, (c) => c.toUpperCase()));
  }
  const text = kept.join(' ').trim();
  if (!text) return null;
  return text.split(/`([^`]*)`/).map((t, i) => ({ text: i % 2 ? t : t.replace(/`/g, ''), code: i % 2 === 1 })).filter((p) => p.text);
}

/** The web hint as plain text (titles, logs). */
export function webHintText(code: string | null | undefined, hint: string | null | undefined): string | null {
  const parts = webHint(code, hint);
  return parts ? parts.map((p) => p.text).join('') : null;
}
