// `/slack/link?code=…` — where the Slack app's "Link my account" button lands. It shows which
// Slack user the one-time code would link to the signed-in person (GET /api/slack/link/{code},
// which links nothing) and links only on an explicit click (POST /api/slack/link): a code sent
// to someone else must never link them by being opened. The code is dropped from the address
// bar at once, so it stays out of the history.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { endpoints } from '../api/endpoints';
import type { ErrorInfo, SlackLinkInfo } from '../api/types';
import { InlineError, Link } from '../components/bits';
import { useStore } from '../lib/store';
import { me$ } from '../state';

type Phase = 'loading' | 'ready' | 'linking' | 'linked' | 'failed';

export function SlackLink({ code }: { code: string | null }) {
  const me = useStore(me$);
  const [phase, setPhase] = useState<Phase>('loading');
  const [info, setInfo] = useState<SlackLinkInfo | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const kept = useRef(code);

  useEffect(() => {
    document.title = 'Link Slack · openinspect';
    history.replaceState(history.state, '', location.pathname);
    const held = kept.current;
    if (!held) {
      setError({ code: 'no_code', message: 'This Slack link is incomplete', hint: 'Open the whole link the app sent you in Slack' });
      setPhase('failed');
      return;
    }
    endpoints
      .slackLinkInfo(held)
      .then((found) => {
        setInfo(found);
        setPhase('ready');
      })
      .catch((err) => {
        setError(toErrorInfo(err));
        setPhase('failed');
      });
  }, []);

  const link = () => {
    const held = kept.current;
    if (!held) return;
    setPhase('linking');
    endpoints
      .slackLink(held)
      .then(() => setPhase('linked'))
      .catch((err) => {
        setError(toErrorInfo(err));
        setPhase('failed');
      });
  };

  const who = info ? (info.slack_name ? `@${info.slack_name}` : info.slack_user_id) : '';
  return (
    <div class="page slack-link-page">
      <div class="page-head">
        <h1>Link your Slack account</h1>
      </div>
      <div class="card form" data-testid="slack-link">
        {phase === 'loading' && (
          <p class="muted" role="status">
            Looking up the link…
          </p>
        )}
        {(phase === 'ready' || phase === 'linking') && info && (
          <>
            <p data-testid="slack-link-question">
              Link Slack user <strong>{who}</strong> to your account{me ? <> ({me.name})</> : null}?
            </p>
            <p class="muted">
              Requests that Slack user makes to the app will then run as you. Only link your own Slack account.
            </p>
            <div class="form-actions">
              <div class="spacer" />
              <Link class="button ghost" href="/">
                Cancel
              </Link>
              <button type="button" class="button primary" data-testid="slack-link-confirm" disabled={phase === 'linking'} onClick={link}>
                Link
              </button>
            </div>
          </>
        )}
        {phase === 'linked' && (
          <p role="status" data-testid="slack-link-done">
            Linked. Go back to Slack and ask the app again.
          </p>
        )}
        {phase === 'failed' && <InlineError error={error} testId="slack-link-error" />}
      </div>
    </div>
  );
}
