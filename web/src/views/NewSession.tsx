// `/new` — start a session: repo, base branch, model, effort, prompt.
//
// Warming the sandbox before Enter: the server boots a sandbox when a session's WebSocket sends
// `typing`. So, once a repo is chosen and the user starts typing the prompt, we create the
// session *without* a prompt (once: a "draft"), open its WebSocket and send `typing` every ~2 s
// while they type. On submit, the prompt goes to that same session (REST, with a
// client_request_id that a retried submit of the same content reuses, so it cannot queue the
// prompt twice) and we navigate to it; the
// sandbox has had the whole typing time to boot. If the user changed the repo, branch or model
// after the draft was made, the draft no longer fits: we create a new session with the prompt
// in one request instead (the empty draft is deleted by the server after sessions.draft_ttl_s).
// Every create carries an idempotency key, reused by a retry of the same request, so a create
// whose answer was lost returns the session it made instead of making a second one.
import { useEffect, useRef, useState } from 'preact/hooks';
import { toErrorInfo } from '../api/client';
import { type CreateSessionBody, endpoints } from '../api/endpoints';
import type { ErrorInfo, Repo } from '../api/types';
import { InlineError } from '../components/bits';
import { ModelPicker } from '../components/ModelPicker';
import { RetryId } from '../lib/ids';
import { useStore } from '../lib/store';
import { navigate } from '../router';
import { learnTitle, models$, reportError, titleFromPrompt } from '../state';
import { SessionSocket, browserDeps } from '../ws/socket';

interface Draft {
  id: string;
  params: string;
}

const TYPING_EVERY_MS = 2000;

export function NewSession() {
  const [repos, setRepos] = useState<Repo[] | null>(null);
  // ?repo=, ?branch=, ?model=, ?effort= prefill the form (links from the repos page, scripts).
  const q = new URLSearchParams(location.search);
  const [repo, setRepo] = useState(() => q.get('repo') ?? '');
  const [branch, setBranch] = useState(() => q.get('branch') ?? '');
  const [model, setModel] = useState(() => q.get('model') ?? '');
  const [effort, setEffort] = useState(() => q.get('effort') ?? '');
  const [title, setTitle] = useState('');
  const [prompt, setPrompt] = useState('');
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [draftError, setDraftError] = useState<ErrorInfo | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [warming, setWarming] = useState<'idle' | 'creating' | 'warming'>('idle');
  const models = useStore(models$);
  const draft = useRef<Draft | null>(null);
  const draftFailedFor = useRef<string | null>(null);
  const creating = useRef<Promise<Draft | null> | null>(null);
  const socket = useRef<SessionSocket | null>(null);
  const lastTyping = useRef(0);
  const draftKey = useRef(new RetryId());
  const submitId = useRef(new RetryId());

  useEffect(() => {
    document.title = 'New session · openinspect';
    endpoints
      .repos()
      .then((r) => setRepos(r.repos))
      .catch((err) => {
        setRepos([]);
        reportError(err);
      });
    return () => socket.current?.close();
  }, []);

  const registered = repos?.find((r) => r.name === repo.trim() || r.id === repo.trim() || r.url === repo.trim());
  const body = (): CreateSessionBody => ({
    repo: repo.trim(),
    ...(branch.trim() ? { base_branch: branch.trim() } : {}),
    ...(model ? { model } : {}),
    ...(effort ? { effort } : {}),
    ...(title.trim() ? { title: title.trim() } : {}),
  });
  const paramsKey = () => JSON.stringify({ ...body(), title: undefined });

  const sendTyping = () => {
    const now = Date.now();
    if (now - lastTyping.current < TYPING_EVERY_MS) return;
    if (socket.current?.send({ type: 'typing' })) lastTyping.current = now;
  };

  const ensureDraft = () => {
    const key = paramsKey();
    if (!repo.trim() || draft.current || creating.current || draftFailedFor.current === key) return;
    setWarming('creating');
    creating.current = endpoints
      .createSession({ ...body(), idempotency_key: draftKey.current.for(JSON.stringify(body())) })
      .then(({ session }) => {
        draftKey.current.done();
        const d = { id: session.id, params: key };
        draft.current = d;
        setDraftError(null);
        setWarming('warming');
        const ws = new SessionSocket(
          session.id,
          {
            onMessage: (msg) => {
              if (msg.type === 'subscribed') {
                lastTyping.current = 0;
                sendTyping();
              }
            },
            onStatus: () => {},
            resumeSeq: () => null,
          },
          browserDeps(endpoints.wsToken),
        );
        socket.current = ws;
        ws.start();
        return d;
      })
      .catch((err) => {
        draftFailedFor.current = key; // do not retry until the repo/branch/model change
        setDraftError(toErrorInfo(err));
        setWarming('idle');
        return null;
      })
      .finally(() => {
        creating.current = null;
      });
  };

  const submit = async () => {
    if (submitting) return;
    if (!repo.trim()) {
      setError({ code: 'invalid_input', message: 'Choose a repo: a registered name, a local path or a git URL', hint: null });
      return;
    }
    if (!prompt.trim()) {
      setError({ code: 'invalid_input', message: 'Write a prompt for the agent', hint: null });
      return;
    }
    setSubmitting(true);
    setError(null);
    const client_request_id = submitId.current.for(JSON.stringify([paramsKey(), title.trim(), prompt]));
    try {
      const pending = creating.current ? await creating.current : draft.current;
      let id: string;
      if (pending && pending.params === paramsKey()) {
        await endpoints.prompt(pending.id, {
          content: prompt,
          client_request_id,
          ...(model ? { model } : {}),
          ...(effort ? { effort } : {}),
        });
        id = pending.id;
      } else {
        const created = await endpoints.createSession({
          ...body(),
          prompt,
          client_request_id,
          idempotency_key: client_request_id,
        });
        id = created.session.id;
      }
      submitId.current.done();
      socket.current?.close();
      socket.current = null;
      if (!title.trim()) learnTitle(id, titleFromPrompt(prompt));
      navigate(`/sessions/${id}`);
    } catch (err) {
      setError(toErrorInfo(err));
      reportError(err);
      setSubmitting(false);
    }
  };

  const defaultModel = models?.default ?? '';
  return (
    <div class="page new-page">
      <div class="page-head">
        <h1>New session</h1>
      </div>
      <form
        class="form card"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label class="field">
          <span>Repository</span>
          <input
            data-testid="new-repo"
            list="repo-options"
            required
            autoFocus={!repo}
            placeholder="A registered repo, a local path or a git URL"
            value={repo}
            onInput={(e) => {
              setRepo((e.target as HTMLInputElement).value);
              setDraftError(null);
            }}
          />
          <datalist id="repo-options">
            {(repos ?? []).map((r) => (
              <option key={r.id} value={r.name}>
                {r.url}
              </option>
            ))}
          </datalist>
          {repos && repos.length > 0 && (
            <div class="chips" aria-label="Registered repos">
              {repos.slice(0, 8).map((r) => (
                <button type="button" key={r.id} class={`chip ${registered?.id === r.id ? 'on' : ''}`} onClick={() => setRepo(r.name)} title={r.url}>
                  {r.name}
                </button>
              ))}
            </div>
          )}
          <InlineError error={draftError} />
        </label>
        <div class="row2">
          <label class="field">
            <span>Base branch</span>
            <input
              data-testid="new-base-branch"
              placeholder={registered ? registered.default_branch : "The repo's default branch"}
              value={branch}
              onInput={(e) => setBranch((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field">
            <span>Title (optional)</span>
            <input placeholder="Untitled session" value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
          </label>
        </div>
        <div class="row2">
          <ModelPicker
            model={model}
            effort={effort}
            onModel={setModel}
            onEffort={setEffort}
            defaultLabel={defaultModel ? `Default (${defaultModel})` : 'Default'}
            defaultModel={defaultModel}
            modelTestId="new-model"
            effortTestId="new-effort"
          />
        </div>
        <label class="field">
          <span>Prompt</span>
          <textarea
            data-testid="new-prompt"
            rows={7}
            placeholder="What should the agent do? (Enter to start, Shift+Enter for a new line)"
            value={prompt}
            onInput={(e) => {
              setPrompt((e.target as HTMLTextAreaElement).value);
              ensureDraft();
              sendTyping();
            }}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                void submit();
              }
            }}
          />
        </label>
        <InlineError error={error} />
        <div class="form-actions">
          <span class="muted small" role="status">
            {warming === 'creating' ? 'Preparing a sandbox…' : warming === 'warming' ? 'Sandbox warming up while you type.' : ''}
          </span>
          <div class="spacer" />
          <button type="submit" class="button primary" data-testid="new-submit" disabled={submitting}>
            {submitting ? 'Starting…' : 'Start session'}
          </button>
        </div>
      </form>
    </div>
  );
}
