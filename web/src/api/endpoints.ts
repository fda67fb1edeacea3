// The REST endpoints the app uses, typed.
import { api } from './client';
import type {
  ApiToken,
  AuthProviders,
  Automation,
  AutomationCreated,
  AutomationRun,
  Condition,
  DiffResponse,
  DurableEvent,
  ImageBuild,
  ImageBuildDetail,
  LoginLink,
  ModelList,
  Prompt,
  PullRequest,
  Repo,
  RepoImage,
  ReviewSettings,
  ReviewSettingsUpdate,
  SchedulePreview,
  Secret,
  Session,
  SessionListResponse,
  SignedIn,
  SlackLinkInfo,
  TokenCreated,
  Trigger,
  User,
  UserCreate,
  WsToken,
} from './types';

const enc = encodeURIComponent;

export interface CreateSessionBody {
  repo: string;
  base_branch?: string;
  model?: string;
  effort?: string;
  title?: string;
  prompt?: string;
  client_request_id?: string;
  /** A retried create with the same key and body returns the session the first one made. */
  idempotency_key?: string;
}

export interface PromptBody {
  content: string;
  model?: string;
  effort?: string;
  client_request_id: string;
}

export interface PullRequestBody {
  title: string;
  body: string;
  draft: boolean;
}

/** What the automation editor sends (create; an edit sends the same fields, less `secret`). */
export interface AutomationBody {
  name: string;
  repo: string;
  instructions: string;
  trigger: Trigger;
  conditions: Condition[];
  concurrency: 'queue' | 'skip';
  base_branch: string | null;
  model: string | null;
  effort?: string | null;
  secret?: string;
}

export const endpoints = {
  /** Sign-in methods (no auth needed). */
  providers: (signal?: AbortSignal) => api.get<AuthProviders>('/auth/providers', { signal }),
  /** Revoke the token the request is made with; `token` is passed explicitly so that a 401 here
   * does not trigger the global sign-out. */
  logout: (token: string) => api.post<void>('/auth/logout', undefined, { token }),
  /** Exchange a pasted token (explicit: a 401 is the sign-in page's to explain) for an expiring
   * browser sign-in of the same user. */
  exchangeToken: (token: string) => api.post<SignedIn>('/auth/web-token', undefined, { token }),
  /** Use a sign-in link's code once (no auth). */
  redeemLink: (code: string) => api.post<SignedIn>('/auth/login-link', { code }, { token: '' }),
  /** Which Slack user a link code names (nothing is linked by looking). */
  slackLinkInfo: (code: string) => api.get<SlackLinkInfo>(`/api/slack/link/${enc(code)}`),
  /** Link that Slack user to the signed-in person; the code is used once. */
  slackLink: (code: string) => api.post<{ ok: boolean; team_id: string; slack_user_id: string }>('/api/slack/link', { code }),
  users: () => api.get<{ users: User[] }>('/api/users'),
  createUser: (body: UserCreate) => api.post<User>('/api/users', body),
  loginLink: (userId: string) => api.post<LoginLink>(`/api/users/${enc(userId)}/login-links`),
  me: (token?: string) => api.get<User>('/api/me', token ? { token } : undefined),
  /** The newest sessions; the archived ones instead with `archived`. */
  sessions: (signal?: AbortSignal, archived = false) =>
    api.get<SessionListResponse>(`/api/sessions?limit=200${archived ? '&archived=true' : ''}`, { signal }),
  /** A new session (the caller's) from this one at its event `atSeq`: its conversation up to
   * there and its commit there. */
  forkSession: (id: string, atSeq: number) =>
    api.post<{ session: Session; prompt: Prompt | null }>(`/api/sessions/${enc(id)}/fork`, { at_seq: atSeq }),
  /** Rename, archive or unarchive; the change also arrives as a `session-updated` event. */
  patchSession: (id: string, body: { title?: string; archived?: boolean }) =>
    api.patch<{ session: Session; queue: Prompt[] }>(`/api/sessions/${enc(id)}`, body),
  session: (id: string) => api.get<{ session: Session; queue: Prompt[] }>(`/api/sessions/${enc(id)}`),
  /** The web app says it is the web app: the session records it as its origin. */
  createSession: (body: CreateSessionBody) =>
    api.post<{ session: Session; prompt: Prompt | null }>('/api/sessions', { origin: 'web', ...body }),
  prompt: (id: string, body: PromptBody) => api.post<Prompt>(`/api/sessions/${enc(id)}/prompts`, body),
  cancelPrompt: (id: string, promptId: string) =>
    api.post<Prompt>(`/api/sessions/${enc(id)}/prompts/${enc(promptId)}/cancel`),
  stop: (id: string) => api.post<{ stopped: boolean }>(`/api/sessions/${enc(id)}/stop`),
  events: (id: string, beforeSeq: number, limit: number) =>
    api.get<{ events: DurableEvent[]; has_more: boolean }>(
      `/api/sessions/${enc(id)}/events?before_seq=${beforeSeq}&limit=${limit}`,
    ),
  wsToken: (id: string) => api.post<WsToken>(`/api/sessions/${enc(id)}/ws-token`),
  diff: (id: string, signal?: AbortSignal) =>
    api.get<DiffResponse>(`/api/sessions/${enc(id)}/diff`, { signal }),
  repos: () => api.get<{ repos: Repo[] }>('/api/repos'),
  createRepo: (body: { name: string; url: string; default_branch: string }) =>
    api.post<Repo>('/api/repos', body),
  reviewSettings: (repo: string) => api.get<ReviewSettings>(`/api/repos/${encodeURIComponent(repo)}/review-settings`),
  putReviewSettings: (repo: string, body: ReviewSettingsUpdate) =>
    api.put<ReviewSettings>(`/api/repos/${encodeURIComponent(repo)}/review-settings`, body),
  repoImage: (repo: string) => api.get<RepoImage>(`/api/repos/${enc(repo)}/image`),
  putRepoImage: (repo: string, enabled: boolean) =>
    api.put<RepoImage>(`/api/repos/${enc(repo)}/image`, { enabled }),
  imageBuilds: (repo: string) =>
    api.get<{ builds: ImageBuild[]; next_before: string | null }>(`/api/repos/${enc(repo)}/image/builds`),
  imageBuild: (repo: string, id: string) =>
    api.get<ImageBuildDetail>(`/api/repos/${enc(repo)}/image/builds/${enc(id)}`),
  /** Build the repo's image now (admins); the build queued, or the one already pending. */
  buildImage: (repo: string) => api.post<ImageBuild>(`/api/repos/${enc(repo)}/image/builds`),
  /** Every secret, or (with `repo`) what a box of that repo gets: the global ones and its own. */
  secrets: (repo: string | null) =>
    api.get<{ secrets: Secret[] }>(`/api/secrets${repo ? `?repo=${enc(repo)}` : ''}`),
  /** Create or replace a secret; the value is never shown again. */
  setSecret: (name: string, value: string, repo: string | null) =>
    api.put<Secret>(`/api/secrets/${enc(name)}${repo ? `?repo=${enc(repo)}` : ''}`, { value }),
  /** Set every secret of pasted `.env` text, all or none (422 `secret_invalid` names the bad lines). */
  importSecrets: (text: string, repo: string | null) =>
    api.post<{ imported: Secret[] }>(`/api/secrets/import${repo ? `?repo=${enc(repo)}` : ''}`, { text }),
  deleteSecret: (name: string, repo: string | null) =>
    api.del(`/api/secrets/${enc(name)}${repo ? `?repo=${enc(repo)}` : ''}`),
  models: () => api.get<ModelList>('/api/models'),
  pullRequests: (id: string, signal?: AbortSignal) =>
    api.get<{ pull_requests: PullRequest[]; can_open?: boolean; cannot_open_reason?: string | null }>(
      `/api/sessions/${enc(id)}/pull-requests`,
      { signal },
    ),
  openPullRequest: (id: string, body: PullRequestBody) =>
    api.post<PullRequest>(`/api/sessions/${enc(id)}/pull-request`, body),
  tokens: () => api.get<{ tokens: ApiToken[] }>('/api/tokens'),
  createToken: (body: { name: string; expires_in_days?: number }) => api.post<TokenCreated>('/api/tokens', body),
  revokeToken: (tokenId: string) => api.del(`/api/tokens/${enc(tokenId)}`),
  automations: () => api.get<{ automations: Automation[] }>('/api/automations?limit=200'),
  automation: (id: string) => api.get<Automation>(`/api/automations/${enc(id)}`),
  createAutomation: (body: AutomationBody) => api.post<AutomationCreated>('/api/automations', body),
  editAutomation: (id: string, body: Partial<AutomationBody>) => api.patch<Automation>(`/api/automations/${enc(id)}`, body),
  deleteAutomation: (id: string) => api.del(`/api/automations/${enc(id)}`),
  pauseAutomation: (id: string) => api.post<Automation>(`/api/automations/${enc(id)}/pause`),
  resumeAutomation: (id: string) => api.post<Automation>(`/api/automations/${enc(id)}/resume`),
  runAutomation: (id: string) => api.post<AutomationRun>(`/api/automations/${enc(id)}/run`),
  automationRuns: (id: string) => api.get<{ runs: AutomationRun[] }>(`/api/automations/${enc(id)}/runs?limit=50`),
  /** The next five firings of `cron` in `tz`, or 422 `schedule_invalid` saying why not. */
  previewSchedule: (cron: string, tz: string, signal?: AbortSignal) =>
    api.get<SchedulePreview>(`/api/automations/preview?cron=${enc(cron)}&tz=${enc(tz)}`, { signal }),
};
