// Wire types of the openinspect REST + WebSocket API (mirrors src/openinspect/domain/*.py and
// src/openinspect/api/schemas.py). Unknown fields are ignored; unknown event types still render.

export type SessionStatus = 'created' | 'active' | 'idle' | 'archived' | 'failed';
/** The door a session was started through (the server's `SessionOrigin`). */
export type SessionOrigin =
  | 'web'
  | 'cli'
  | 'api'
  | 'slack'
  | 'linear'
  | 'github'
  | 'schedule'
  | 'webhook'
  | 'sentry'
  | 'parent';
export type PromptStatus =
  | 'queued'
  | 'running'
  | 'success'
  | 'error'
  | 'stopped'
  | 'cancelled'
  | 'interrupted';
export type SandboxStatus =
  | 'none'
  | 'warming'
  | 'booting'
  | 'ready'
  | 'snapshotting'
  | 'stopped'
  | 'lost'
  | 'failed';

export interface User {
  id: string;
  name: string;
  email: string;
  git_name: string;
  git_email: string;
  role: 'admin' | 'member';
  created_at: string;
  /** Set once the user signed in with GitHub (null for the admin token's user, say). */
  github_login?: string | null;
  avatar_url?: string | null;
}

// ---- sign-in and tokens (src/openinspect/api/people_schemas.py) ------------------------------

export interface AuthProvider {
  id: 'github';
  name: string;
  /** Send the browser here (GET, with ?next=) to sign in. */
  login_url: string;
  device_url: string;
}

export interface AuthProviders {
  /** Enabled sign-in methods; empty when none. */
  providers: AuthProvider[];
  token_login?: boolean;
}

export type TokenKind = 'api' | 'web' | 'cli';

export interface ApiToken {
  id: string;
  name: string;
  kind: TokenKind;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  /** The token this request was made with. */
  current?: boolean;
}

export interface TokenCreated {
  /** The token itself: in this answer only. */
  token: string;
  info: ApiToken;
}

/** A browser sign-in (POST /auth/login-link, POST /auth/web-token). */
export interface SignedIn {
  token: string;
  user: User;
}

/** A one-time sign-in link an admin minted for someone (POST /api/users/{id}/login-links). */
/** Which Slack user a one-time link code would link (GET /api/slack/link/{code}). */
export interface SlackLinkInfo {
  team_id: string;
  slack_user_id: string;
  slack_name: string | null;
  expires_at: string;
}

export interface LoginLink {
  url: string;
  expires_at: string;
  user: User;
}

export interface UserCreate {
  name: string;
  email: string;
  role: 'admin' | 'member';
}

// ---- pull requests (src/openinspect/domain/models.py PullRequestRecord) ----------------------

export type PrState = 'open' | 'closed' | 'merged';

export interface PullRequest {
  id: string;
  session_id: string;
  repo: string;
  number: number;
  url: string;
  branch: string;
  base: string;
  title: string;
  state: PrState;
  draft: boolean;
  opened_as: 'user' | 'app';
  author_login: string | null;
  created_at: string;
  updated_at: string;
}

export interface Author {
  id: string;
  name: string;
  email: string;
}

/** How a session's newest prompt ended (from the session list). */
export interface LastPrompt {
  status: string;
  error_code: string | null;
  /** The first line of the error, when the prompt failed. */
  error_message?: string | null;
}

export interface DiffStat {
  files: number;
  additions: number;
  deletions: number;
}

export interface PullSummary {
  number: number;
  url: string;
  state: PrState;
  draft: boolean;
}

export interface SessionListResponse {
  sessions: Session[];
  creators?: Record<string, Author>;
  last_prompts?: Record<string, LastPrompt>;
  /** Registered repo names, by repo id. */
  repo_names?: Record<string, string>;
  /** Branch against base, by session id, when known. */
  diff_stats?: Record<string, DiffStat>;
  /** The newest pull request, by session id. */
  pulls?: Record<string, PullSummary>;
}

export interface Repo {
  id: string;
  name: string;
  url: string;
  default_branch: string;
  created_at: string;
}

/** A registered repo's review-bot settings (null: the server's default), and what the bot does. */
export interface ReviewSettings {
  repo: string;
  auto_review: boolean | null;
  instructions: string | null;
  model: string | null;
  effective: { auto_review: boolean; instructions: string | null; model: string | null };
  updated_at: string | null;
}

/** One build of a repo's image (`GET /api/repos/{repo}/image/builds`). */
export interface ImageBuild {
  id: string;
  base_branch: string;
  commit_sha: string | null;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'bad';
  trigger: 'first' | 'moved' | 'manual';
  requested_by: string | null;
  /** New boxes may start from it. */
  good: boolean;
  size_bytes: number | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** A build with the end of its boot log. */
export interface ImageBuildDetail extends ImageBuild {
  log: string;
}

/** A repo's image: whether new boxes start from one, and which. */
export interface RepoImage {
  repo: string;
  enabled: boolean;
  /** Whether the server's sandbox backend can keep images at all. */
  supported: boolean;
  base_branch: string;
  rebuild_interval_s: number;
  current: ImageBuild | null;
  pending: ImageBuild | null;
}

/** A repo secret as the API shows it: never its value (values are write-only). */
export interface Secret {
  name: string;
  scope: 'global' | 'repo';
  /** The repo's name, for a repo secret. */
  repo: string | null;
  created_at: string;
  updated_at: string;
  /** A global secret the listed repo overrides with one of its own (listings with `repo`). */
  shadowed: boolean;
}

export interface ReviewSettingsUpdate {
  auto_review: boolean | null;
  instructions: string | null;
  model: string | null;
}

export interface Session {
  id: string;
  title: string;
  repo_url: string;
  repo_id: string | null;
  base_branch: string;
  branch: string;
  model: string;
  effort: string | null;
  status: SessionStatus;
  sandbox_status: SandboxStatus;
  creator_id: string;
  parent_id: string | null;
  total_cost_usd: number;
  last_seq: number;
  created_at: string;
  updated_at: string;
  /** Absent from servers older than the origin field. */
  origin?: SessionOrigin;
  origin_ref?: string | null;
  /** The session (and its event) this one was forked from; absent from older servers. */
  forked_from_id?: string | null;
  forked_from_seq?: number | null;
}

export interface Prompt {
  id: string;
  session_id: string;
  author: Author;
  content: string;
  model: string | null;
  effort: string | null;
  client_request_id: string | null;
  status: PromptStatus;
  error_code: string | null;
  error_message: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface ModelInfo {
  id: string;
  provider: string;
  label: string;
  efforts: string[];
  default_effort: string | null;
  available: boolean;
}

export interface ModelList {
  default: string;
  models: ModelInfo[];
}

export interface Participant {
  user_id: string;
  name: string;
  status: 'active' | 'idle';
  clients?: number;
}

export interface WsToken {
  token: string;
  expires_at: number;
  url: string;
}

export interface ErrorInfo {
  code: string;
  message: string;
  hint?: string | null;
}

// ---- events (src/openinspect/domain/events.py) ----------------------------------------------

interface Base {
  v?: number;
  session_id: string;
  seq: number;
  ts: string;
  prompt_id?: string | null;
}

export interface SessionCreatedEvent extends Base {
  type: 'session-created';
  title: string;
  repo_url: string;
  base_branch: string;
  branch: string;
  model: string;
  effort: string | null;
  creator: Author;
  /** Set when the session is a fork: the source's conversation and commit at `seq`. */
  forked_from?: { session_id: string; seq: number } | null;
}
export interface SessionUpdatedEvent extends Base {
  type: 'session-updated';
  status?: SessionStatus | null;
  title?: string | null;
  total_cost_usd?: number | null;
}
export interface PromptQueuedEvent extends Base {
  type: 'prompt-queued';
  author: Author;
  content: string;
  model: string;
  effort: string | null;
  client_request_id?: string | null;
  position: number;
}
export interface PromptStartedEvent extends Base {
  type: 'prompt-started';
  model: string;
  effort: string | null;
}
export interface PromptFinishedEvent extends Base {
  type: 'prompt-finished';
  status: PromptStatus;
  error?: ErrorInfo | null;
  duration_ms?: number | null;
}
export interface PromptCancelledEvent extends Base {
  type: 'prompt-cancelled';
}
export interface AgentTextEvent extends Base {
  type: 'agent-text';
  part_id: string;
  text: string;
}
export interface AgentTextDeltaEvent extends Base {
  type: 'agent-text-delta';
  part_id: string;
  delta: string;
}
export interface AgentThinkingEvent extends Base {
  type: 'agent-thinking';
  part_id: string;
  text: string;
}
export interface ToolCallEvent extends Base {
  type: 'tool-call';
  call_id: string;
  tool: string;
  args: Record<string, unknown>;
}
export interface ToolResultEvent extends Base {
  type: 'tool-result';
  call_id: string;
  tool: string;
  output: string;
  is_error?: boolean;
  exit_code?: number | null;
  duration_ms?: number | null;
  truncated_for_model?: boolean;
  /** The prompt was stopped while the call ran: `output` is what it printed until then. */
  stopped?: boolean;
}
/** Output a running command printed since its previous delta (ephemeral, never stored). */
export interface ToolOutputDeltaEvent extends Base {
  type: 'tool-output-delta';
  call_id: string;
  /** The call's deltas count from 0: a first one above 0 means we joined mid-command. */
  index: number;
  data: string;
  /** Output left out just before `data` (throttled); the durable result has it. */
  skipped_chars: number;
}
export interface UsageEvent extends Base {
  type: 'usage';
  model: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  total_cost_usd: number;
}
export interface SandboxStatusEvent extends Base {
  type: 'sandbox-status';
  status: SandboxStatus;
  message?: string | null;
}
export interface SandboxLogEvent extends Base {
  type: 'sandbox-log';
  source: string;
  line: string;
}
export interface GitCommitEvent extends Base {
  type: 'git-commit';
  sha: string;
  branch: string;
  message: string;
  author: Author;
  files_changed: number;
}
export interface GitPushEvent extends Base {
  type: 'git-push';
  sha: string;
  branch: string;
  remote: string;
}
export interface PrOpenedEvent extends Base {
  type: 'pr-opened';
  url: string;
  number: number;
}
export interface PrUpdatedEvent extends Base {
  type: 'pr-updated';
  url: string;
  number: number;
  state: PrState;
}
export interface ArtifactCreatedEvent extends Base {
  type: 'artifact-created';
  kind: string;
  url: string;
}
export interface ChildSessionUpdatedEvent extends Base {
  type: 'child-session-updated';
  child_session_id: string;
  status: SessionStatus;
}
export interface WarningEvent extends Base {
  type: 'warning';
  code: string;
  message: string;
}
export interface ErrorEvent extends Base {
  type: 'error';
  code: string;
  message: string;
  hint?: string | null;
}
/** The agent's notify tool: a message posted to Slack (the session's thread, or `channel`). */
export interface NotifyEvent extends Base {
  type: 'notify';
  text: string;
  channel?: string | null;
}
/** A spend limit paused the session's queue (queued prompts wait until it is raised). */
export interface SpendLimitReachedEvent extends Base {
  type: 'spend-limit-reached';
  scope: 'global' | 'repo' | 'automation' | 'user-daily';
  key: string;
  user_id?: string | null;
  spent_usd: number;
  limit_usd: number;
  message: string;
  hint: string;
}
/** The limit that paused the queue no longer holds: the queued prompts run again. */
export interface SpendLimitLiftedEvent extends Base {
  type: 'spend-limit-lifted';
  scope: 'global' | 'repo' | 'automation' | 'user-daily';
}

export type DurableEvent =
  | SessionCreatedEvent
  | SessionUpdatedEvent
  | PromptQueuedEvent
  | PromptStartedEvent
  | PromptFinishedEvent
  | PromptCancelledEvent
  | AgentTextEvent
  | AgentThinkingEvent
  | ToolCallEvent
  | ToolResultEvent
  | UsageEvent
  | SandboxStatusEvent
  | SandboxLogEvent
  | GitCommitEvent
  | GitPushEvent
  | PrOpenedEvent
  | PrUpdatedEvent
  | ArtifactCreatedEvent
  | ChildSessionUpdatedEvent
  | WarningEvent
  | ErrorEvent
  | NotifyEvent
  | SpendLimitReachedEvent
  | SpendLimitLiftedEvent;

export type SessionEvent = DurableEvent | AgentTextDeltaEvent | ToolOutputDeltaEvent;

// ---- WebSocket messages ------------------------------------------------------------------------

export interface SubscribedMessage {
  type: 'subscribed';
  session: Session;
  participants: Participant[];
  queue: Prompt[];
  events: DurableEvent[];
  has_more: boolean;
  reset: boolean;
  last_seq: number;
}

export type ServerMessage =
  | SubscribedMessage
  | { type: 'event'; event: SessionEvent }
  | { type: 'presence'; participants: Participant[] }
  | { type: 'history-page'; events: DurableEvent[]; has_more: boolean }
  | { type: 'prompt-accepted'; client_request_id: string | null; prompt: Prompt }
  | { type: 'error'; code: string; message: string; hint?: string | null; client_request_id?: string | null }
  | { type: 'pong' };

/** Sent instead of several frames in a row to a client that subscribed with ``batch``. */
export interface BatchMessage {
  type: 'batch';
  frames: ServerMessage[];
}

export type ClientMessage =
  | { type: 'subscribe'; token: string; since_seq?: number; batch?: boolean }
  | { type: 'prompt'; content: string; model?: string; effort?: string; client_request_id: string }
  | { type: 'cancel-prompt'; prompt_id: string }
  | { type: 'stop' }
  | { type: 'typing' }
  | { type: 'presence'; status: 'active' | 'idle' }
  | { type: 'history'; before_seq: number; limit?: number }
  | { type: 'ping' };

// ---- the diff endpoint (GET /api/sessions/{id}/diff) --------------------------------------------

export interface DiffFile {
  path: string;
  old_path: string | null;
  status: 'added' | 'modified' | 'deleted' | 'renamed';
  additions: number;
  deletions: number;
  patch: string;
  binary: boolean;
  truncated: boolean;
}

export interface DiffResponse {
  base: string;
  branch: string;
  base_sha: string | null;
  head_sha: string | null;
  files: DiffFile[];
  truncated: boolean;
  /** Prompts of the session that have ended: with none, an empty diff means nothing ran yet. */
  prompts_finished: number;
}

// ---- automations (src/openinspect/api/automation_schemas.py) --------------------------------

export type AutomationStatus = 'enabled' | 'degraded' | 'paused';
export type RunStatus = 'queued' | 'skipped' | 'starting' | 'running' | 'succeeded' | 'failed';
export type SchedulePreset = 'hourly' | 'daily' | 'weekly' | 'monthly';
export type GithubEvent =
  | 'pull_request.opened'
  | 'pull_request.synchronize'
  | 'pull_request.closed'
  | 'issue_comment'
  | 'check_failed';
export type ConditionOp = 'equals' | 'contains' | 'exists' | 'matches';

export interface ScheduleTrigger {
  kind: 'schedule';
  cron: string;
  tz: string;
  preset?: SchedulePreset | null;
}
export interface WebhookTrigger {
  kind: 'webhook';
  auth?: 'bearer' | 'hmac';
  signature_header?: string;
  idempotency_header?: string | null;
  idempotency_path?: string | null;
}
export interface SentryTrigger {
  kind: 'sentry';
}
export interface GithubTrigger {
  kind: 'github';
  events: GithubEvent[];
  branches?: string[];
  labels?: string[];
  authors?: string[];
  max_fix_attempts?: number;
}
export type Trigger = ScheduleTrigger | WebhookTrigger | SentryTrigger | GithubTrigger;
export type TriggerKind = Trigger['kind'];

export interface Condition {
  path: string;
  op: ConditionOp;
  value?: string | number | boolean | null;
}

export interface AutomationRun {
  id: string;
  automation_id: string;
  /** What fired it: the automation's trigger kind, or `manual` (run now). */
  trigger: TriggerKind | 'manual';
  key: string;
  payload_digest: string | null;
  status: RunStatus;
  reason: string | null;
  session_id: string | null;
  prompt_id: string | null;
  error_code: string | null;
  follow_up: boolean;
  origin_ref: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  fire_time: string | null;
}

export interface Automation {
  id: string;
  name: string;
  repo: string;
  base_branch: string | null;
  model: string | null;
  effort: string | null;
  instructions: string;
  trigger: Trigger;
  conditions: Condition[];
  concurrency: 'queue' | 'skip';
  status: AutomationStatus;
  paused: boolean;
  paused_reason: string | null;
  consecutive_failures: number;
  run_as: string;
  created_by: string;
  created_at: string;
  updated_at: string;
  next_run_at: string | null;
  webhook_url: string | null;
  last_run?: AutomationRun | null;
}

export interface AutomationCreated {
  automation: Automation;
  webhook_url: string | null;
  /** A webhook's secret, shown this once. */
  secret: string | null;
}

export interface SchedulePreview {
  cron: string;
  tz: string;
  /** The next five fire times, ISO 8601 in the zone's offset. */
  next: string[];
}
