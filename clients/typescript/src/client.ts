/** `OrchestratorClient`: every route of the orchestrator's HTTP API as a typed method. */
import {
  ConnectionFailed,
  errorFromResponse,
  InvalidRequest,
  OrchestratorError,
  Unavailable,
  UnexpectedResponse,
} from "./errors.js";
import { retryDelay, retryPolicy, sleep, STREAM_RECONNECT, type RetryPolicy } from "./retry.js";
import { LineSplitter, SSEDecoder } from "./sse.js";
import type {
  ActiveAgents,
  AgentDetail,
  AgentPage,
  Analytics,
  Cleared,
  CloneUrl,
  CreatedPullRequest,
  CreatePullBody,
  DefaultBranch,
  Event,
  EventCreate,
  EventPage,
  EventsQuery,
  Health,
  ListAgentsQuery,
  ListEventsQuery,
  ListTasksQuery,
  LogLine,
  LogPage,
  MergeBody,
  MergeResult,
  PullRequest,
  PullsQuery,
  PushBody,
  PushResult,
  QueueItem,
  QueueSettings,
  QueueStatus,
  RemoteResult,
  RepoInfo,
  SpawnBody,
  StreamEvent,
  Task,
  TaskCreate,
  TaskDetail,
  TaskPage,
  TaskUpdate,
  TokenStatus,
  Webhook,
  WebhookCreate,
  WebhookDelivery,
  Profile,
  ProfileBody,
  TaskTimeline,
  DiffPage,
  Stats,
} from "./types.js";

export interface ClientOptions {
  /** Where the service answers, e.g. `http://127.0.0.1:3020`. */
  baseUrl: string;
  /** The API token (`ORCHESTRATOR_API_TOKEN` or the one the service generated); sent as a Bearer token. */
  token?: string;
  /** A `fetch` to use instead of the platform's (a proxy agent, a test double). */
  fetch?: typeof fetch;
  /** Retries of GET calls after a connection error: a count, or a policy. Default 2, from 200 ms. */
  retries?: number | Partial<RetryPolicy>;
  /** Milliseconds a call may take before it fails with `ConnectionFailed`; 0 for no limit. Default 30 s. */
  timeoutMs?: number;
  /** Milliseconds a live log stream may stay silent before it is reconnected (the server pings every 15 s). */
  streamIdleMs?: number;
}

export interface CallOptions {
  /** Aborts the call (and any wait between retries); the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface StreamOptions extends CallOptions {
  /** Lines with ids above this one (default 0: from the first). */
  after?: number;
  /** Resume after this event id (a line's id), as a reconnecting EventSource would. */
  lastEventId?: string | number;
  /** Reconnections in a row without a new line before giving up with `ConnectionFailed`. */
  reconnect?: Partial<RetryPolicy>;
}

type Query = Record<string, string | number | boolean | null | undefined>;

interface Request {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Query | undefined;
  body?: unknown;
  signal?: AbortSignal | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const STREAM_IDLE_MS = 45_000;

/**
 * One path segment. `.` and `..` are refused, encoded or not (URL parsers resolve even `%2e%2e`): an id or
 * a repository name that came from an agent's output must not turn a call into another route's.
 */
function segment(value: string, what = "id"): string {
  if (typeof value !== "string" || value === "" || /^(\.|%2e){1,2}$/i.test(value)) {
    throw new InvalidRequest(`${what}: ${JSON.stringify(value)} is not a valid path segment`);
  }
  return encodeURIComponent(value);
}

/** `owner/name` or `name`: the slash stays, it is part of the route. */
function repoPath(value: string): string {
  const parts = String(value).replace(/^\/+|\/+$/g, "").split("/");
  return parts.map((part) => segment(part, "repo")).join("/");
}

function pullNumber(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidRequest(`pull request number: ${JSON.stringify(value)} is not a positive integer`);
  }
  return value;
}

function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const reason = cause instanceof Error ? cause.message : cause === undefined ? "" : String(cause);
  return reason && reason !== error.message ? `${error.message} (${reason})` : error.message;
}

/** A signal that aborts with the caller's signal, or after `ms` (then `timedOut()` says so). */
class Deadline {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private expired = false;
  private readonly onAbort: () => void;

  constructor(
    private readonly outer: AbortSignal | undefined,
    ms: number,
  ) {
    this.onAbort = () => this.controller.abort(outer?.reason);
    if (outer?.aborted) this.onAbort();
    else outer?.addEventListener("abort", this.onAbort, { once: true });
    if (ms > 0) this.restart(ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  timedOut(): boolean {
    return this.expired;
  }

  /** Starts the countdown again (a stream that made progress). */
  restart(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new Error(`no answer within ${ms} ms`));
    }, ms);
  }

  close(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener("abort", this.onAbort);
    this.controller.abort();
  }
}

/**
 * The orchestrator's HTTP API. Every method takes an optional `{ signal }` last; errors reject with an
 * `OrchestratorError` subclass carrying the server's `detail` (`NotFound`, `Conflict`, `InvalidRequest`,
 * `Unauthorized`, `RateLimited`, `Unavailable`, `ServerError`, `ConnectionFailed`, `UnexpectedResponse`).
 * GET calls are retried with backoff after a connection error; nothing that could start an agent or create
 * something twice is.
 */
export class OrchestratorClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly streamIdleMs: number;

  constructor(options: ClientOptions) {
    const url = options.baseUrl.trim().replace(/\/+$/, "");
    let protocol = "";
    try {
      protocol = new URL(url).protocol;
    } catch {
      // reported below
    }
    if (protocol !== "http:" && protocol !== "https:") {
      throw new TypeError(`baseUrl must be an http:// or https:// URL, got ${JSON.stringify(options.baseUrl)}`);
    }
    this.baseUrl = url;
    this.token = options.token?.trim() || undefined;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.retry = retryPolicy(options.retries);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.streamIdleMs = options.streamIdleMs ?? STREAM_IDLE_MS;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json", ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  private async send<T>(request: Request): Promise<T> {
    const url = this.baseUrl + request.path + queryString(request.query);
    const hasBody = request.body !== undefined;
    for (let attempt = 1; ; attempt++) {
      const deadline = new Deadline(request.signal, this.timeoutMs);
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(url, {
          method: request.method,
          headers: this.headers(hasBody ? { "Content-Type": "application/json" } : {}),
          body: hasBody ? JSON.stringify(request.body) : null,
          signal: deadline.signal,
        });
        text = await response.text();
      } catch (error) {
        if (request.signal?.aborted) throw request.signal.reason;
        const failed = deadline.timedOut()
          ? new ConnectionFailed(`no answer from ${this.baseUrl} within ${this.timeoutMs} ms`)
          : new ConnectionFailed(`cannot reach the orchestrator at ${this.baseUrl}: ${describe(error)}`, undefined, {
              cause: error,
            });
        const wait = request.method === "GET" ? retryDelay(this.retry, attempt) : undefined;
        if (wait === undefined) throw failed;
        await sleep(wait, request.signal);
        continue;
      } finally {
        deadline.close();
      }
      if (response.status >= 400) throw errorFromResponse(response, text);
      if (response.status === 204 || text === "") return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new UnexpectedResponse(
          `${request.method} ${request.path}: the answer is not JSON: ${text.slice(0, 200)}`,
          response.status,
        );
      }
    }
  }

  private get<T>(path: string, query?: Query, options?: CallOptions): Promise<T> {
    return this.send<T>({ method: "GET", path, query, signal: options?.signal });
  }

  private post<T>(path: string, body: unknown, options?: CallOptions): Promise<T> {
    return this.send<T>({ method: "POST", path, body, signal: options?.signal });
  }

  // health

  /** `ok` or `degraded`; with the token also the database, runtime and `claude` CLI state. */
  async health(options?: CallOptions): Promise<Health> {
    return this.get("/api/health", undefined, options);
  }

  // agents

  async listAgents(query?: ListAgentsQuery, options?: CallOptions): Promise<AgentPage> {
    return this.get("/api/agents", query, options);
  }

  async activeAgents(options?: CallOptions): Promise<ActiveAgents> {
    return this.get("/api/agents/active", undefined, options);
  }

  async agentAnalytics(options?: CallOptions): Promise<Analytics> {
    return this.get("/api/agents/analytics", undefined, options);
  }

  async getAgent(agentId: string, options?: CallOptions): Promise<AgentDetail> {
    return this.get(`/api/agents/${segment(agentId)}`, undefined, options);
  }

  /** One page of stored lines with ids above `after`. */
  async getLogs(agentId: string, page?: { after?: number; limit?: number }, options?: CallOptions): Promise<LogPage> {
    return this.get(`/api/agents/${segment(agentId)}/logs`, page, options);
  }

  /** Every stored line after `after`, page by page (no waiting for new ones: see `streamLogs`). */
  async *iterLogs(agentId: string, from?: { after?: number }, options?: CallOptions): AsyncGenerator<LogLine> {
    let after = from?.after ?? 0;
    for (;;) {
      const page = await this.getLogs(agentId, { after, limit: 5000 }, options);
      yield* page.items;
      if (!page.has_more) return;
      after = page.next_after;
    }
  }

  /**
   * The agent's lines as they are written (`{type: "log"}`), the supervisor's flags (`{type: "flag"}`),
   * then one `{type: "end", agent}` when it has ended. A dropped or silent connection is resumed from the
   * last line delivered with `Last-Event-ID`, so no line is lost or doubled; breaking out of the loop or
   * aborting `signal` closes the connection.
   */
  async *streamLogs(agentId: string, options: StreamOptions = {}): AsyncGenerator<StreamEvent> {
    const { signal } = options;
    const reconnect = { ...STREAM_RECONNECT, ...options.reconnect };
    const path = `/api/agents/${segment(agentId)}/logs`;
    const url = this.baseUrl + path + queryString({ after: options.after ?? 0 });
    let last = options.lastEventId === undefined ? undefined : Number(options.lastEventId);
    if (last !== undefined && !Number.isSafeInteger(last)) {
      throw new TypeError(`lastEventId must be a line id, got ${JSON.stringify(options.lastEventId)}`);
    }
    let failures = 0;
    const dropped = (reason: string, hintMs?: number): number => {
      failures += 1;
      const wait = retryDelay(reconnect, failures, hintMs);
      if (wait === undefined) {
        throw new ConnectionFailed(
          `log stream of ${agentId} from ${this.baseUrl} lost after ${failures} tries: ${reason}`,
        );
      }
      return wait;
    };
    for (;;) {
      const connection = new Deadline(signal, this.streamIdleMs);
      let wait: number;
      try {
        const extra: Record<string, string> = { Accept: "text/event-stream", "Cache-Control": "no-cache" };
        if (last !== undefined) extra["Last-Event-ID"] = String(last);
        const response = await this.fetchImpl(url, { headers: this.headers(extra), signal: connection.signal });
        if (response.status >= 400) {
          const error = errorFromResponse(response, await response.text());
          if (!(error instanceof Unavailable)) throw error;
          wait = dropped(error.detail, error.retryAfter === undefined ? undefined : error.retryAfter * 1000);
        } else {
          const type = response.headers.get("content-type") ?? "";
          if (!type.startsWith("text/event-stream") || response.body === null) {
            throw new UnexpectedResponse(`log stream of ${agentId}: got ${type || "no content type"}`, response.status);
          }
          const reader = response.body.getReader();
          const text = new TextDecoder();
          const lines = new LineSplitter();
          const decoder = new SSEDecoder();
          for (;;) {
            const chunk = await reader.read();
            if (chunk.done) break;
            connection.restart(this.streamIdleMs);
            for (const line of lines.push(text.decode(chunk.value, { stream: true }))) {
              const event = decoder.feed(line);
              if (event === undefined) continue;
              let data: unknown;
              try {
                data = JSON.parse(event.data);
              } catch {
                throw new UnexpectedResponse(
                  `log stream of ${agentId}: unreadable ${event.event} event: ${event.data.slice(0, 200)}`,
                );
              }
              if (event.event === "log") {
                const item = { ...(data as Omit<LogLine, "agent_id">), agent_id: agentId };
                if (last !== undefined && item.id <= last) continue; // delivered already: never twice
                last = item.id;
                failures = 0;
                yield { type: "log", line: item };
                signal?.throwIfAborted(); // aborted while the caller held the line: no more
              } else if (event.event === "flag") {
                const flag = data as { flag: string; detail?: string | null };
                yield { type: "flag", flag: flag.flag, detail: flag.detail ?? null };
                signal?.throwIfAborted();
              } else if (event.event === "end") {
                yield { type: "end", agent: data as Extract<StreamEvent, { type: "end" }>["agent"] };
                return;
              }
            }
          }
          wait = dropped("the stream ended before the agent did");
        }
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof OrchestratorError) throw error;
        wait = dropped(connection.timedOut() ? `silent for ${this.streamIdleMs} ms` : describe(error));
      } finally {
        connection.close();
      }
      await sleep(wait, signal);
    }
  }

  /** Starts an agent: a `prompt`, or a `task_id` whose prompt the server renders. */
  async spawnAgent(body: SpawnBody, options?: CallOptions): Promise<AgentDetail> {
    return this.post("/api/agents/spawn", body, options);
  }

  async killAgent(agentId: string, options?: CallOptions): Promise<AgentDetail> {
    return this.post(`/api/agents/${segment(agentId)}/kill`, undefined, options);
  }

  /** A new agent with the same type, task, prompt and workspace; `resume` continues the CLI session. */
  async retryAgent(agentId: string, retry?: { resume?: boolean }, options?: CallOptions): Promise<AgentDetail> {
    return this.post(`/api/agents/${segment(agentId)}/retry`, { resume: retry?.resume ?? false }, options);
  }

  // tasks

  async createTask(task: TaskCreate, options?: CallOptions): Promise<Task> {
    return this.post("/api/tasks", task, options);
  }

  async listTasks(query?: ListTasksQuery, options?: CallOptions): Promise<TaskPage> {
    return this.get("/api/tasks", query, options);
  }

  async getTask(taskId: string, options?: CallOptions): Promise<TaskDetail> {
    return this.get(`/api/tasks/${segment(taskId)}`, undefined, options);
  }

  /** Changes only the fields given. */
  async updateTask(taskId: string, changes: TaskUpdate, options?: CallOptions): Promise<Task> {
    const path = `/api/tasks/${segment(taskId)}`;
    return this.send({ method: "PATCH", path, body: changes, signal: options?.signal });
  }

  async deleteTask(taskId: string, options?: CallOptions): Promise<void> {
    return this.send({ method: "DELETE", path: `/api/tasks/${segment(taskId)}`, signal: options?.signal });
  }

  /** The task's agents as spans on a time axis, its waits, and what it cost so far. */
  async taskTimeline(taskId: string, options?: CallOptions): Promise<TaskTimeline> {
    return this.get(`/api/tasks/${segment(taskId)}/timeline`, undefined, options);
  }

  /** A page of files of the diff of the task's branch against its base; NotFound while it has no branch. */
  async taskDiff(taskId: string, query?: { page?: number }, options?: CallOptions): Promise<DiffPage> {
    return this.get(`/api/tasks/${segment(taskId)}/diff`, query, options);
  }

  /** Past the approval gate the task waits at (`waiting_for: "approval:..."`); Conflict when it waits at none. */
  async approveTask(taskId: string, options?: CallOptions): Promise<Task> {
    return this.post(`/api/tasks/${segment(taskId)}/approve`, undefined, options);
  }

  /** The task ends failed at its approval gate, with `reason`; Conflict when it waits at none. */
  async rejectTask(taskId: string, reason: string, options?: CallOptions): Promise<Task> {
    return this.post(`/api/tasks/${segment(taskId)}/reject`, { reason }, options);
  }

  // queue

  async queueStatus(options?: CallOptions): Promise<QueueStatus> {
    return this.get("/api/queue", undefined, options);
  }

  async queueSettings(options?: CallOptions): Promise<QueueSettings> {
    return this.get("/api/queue/settings", undefined, options);
  }

  async setQueueSetting<K extends keyof QueueSettings>(
    key: K,
    value: QueueSettings[K],
    options?: CallOptions,
  ): Promise<QueueSettings> {
    return this.post("/api/queue/settings", { key, value }, options);
  }

  async pauseQueue(options?: CallOptions): Promise<QueueSettings> {
    return this.setQueueSetting("paused", true, options);
  }

  async resumeQueue(options?: CallOptions): Promise<QueueSettings> {
    return this.setQueueSetting("paused", false, options);
  }

  async queueAdd(taskId: string, options?: CallOptions): Promise<QueueItem> {
    return this.post(`/api/queue/add/${segment(taskId)}`, undefined, options);
  }

  async queueRemove(taskId: string, options?: CallOptions): Promise<QueueStatus> {
    return this.send({ method: "DELETE", path: `/api/queue/${segment(taskId)}`, signal: options?.signal });
  }

  /** Removes the completed and failed entries. */
  async queueClear(options?: CallOptions): Promise<Cleared> {
    return this.post("/api/queue/clear", undefined, options);
  }

  // events

  async listEvents(query?: ListEventsQuery, options?: CallOptions): Promise<EventPage> {
    return this.get("/api/events", query, options);
  }

  /** Events not handled yet (pending or being handled). */
  async pendingEvents(query?: EventsQuery, options?: CallOptions): Promise<EventPage> {
    return this.get("/api/events/pending", query, options);
  }

  /** Events handled (processed or failed). */
  async processedEvents(query?: EventsQuery, options?: CallOptions): Promise<EventPage> {
    return this.get("/api/events/processed", query, options);
  }

  async getEvent(eventId: string, options?: CallOptions): Promise<Event> {
    return this.get(`/api/events/${segment(eventId)}`, undefined, options);
  }

  /** Records an event; with an `id`, sending it again answers the stored one. */
  async createEvent(event: EventCreate, options?: CallOptions): Promise<Event> {
    return this.post("/api/events", event, options);
  }

  async markEventProcessed(eventId: string, options?: CallOptions): Promise<Event> {
    return this.post(`/api/events/${segment(eventId)}/processed`, undefined, options);
  }

  // github

  /** Whether the service has a GitHub token, and what GitHub says about it. */
  async githubStatus(options?: CallOptions): Promise<TokenStatus> {
    return this.get("/api/github/status", undefined, options);
  }

  async githubRepo(repo: string, options?: CallOptions): Promise<RepoInfo> {
    return this.get(`/api/github/repo/${repoPath(repo)}`, undefined, options);
  }

  async githubDefaultBranch(repo: string, options?: CallOptions): Promise<DefaultBranch> {
    return this.get(`/api/github/repo/${repoPath(repo)}/default-branch`, undefined, options);
  }

  async githubCloneUrl(repo: string, options?: CallOptions): Promise<CloneUrl> {
    return this.get(`/api/github/clone-url/${repoPath(repo)}`, undefined, options);
  }

  /** Pushes `branch` of the workspace at `path` (under the service's workspaces) to `repo`. */
  async githubPush(push: PushBody, options?: CallOptions): Promise<PushResult> {
    return this.post("/api/github/push", push, options);
  }

  /** Opens a pull request; an open one for the same head is answered instead (`created` false). */
  async githubCreatePull(pull: CreatePullBody, options?: CallOptions): Promise<CreatedPullRequest> {
    return this.post("/api/github/pr", pull, options);
  }

  async githubPull(repo: string, number: number, options?: CallOptions): Promise<PullRequest> {
    return this.get(`/api/github/pr/${repoPath(repo)}/${pullNumber(number)}`, undefined, options);
  }

  async githubPulls(repo: string, query?: PullsQuery, options?: CallOptions): Promise<PullRequest[]> {
    return this.get(`/api/github/prs/${repoPath(repo)}`, query, options);
  }

  async githubMergePull(repo: string, number: number, merge?: MergeBody, options?: CallOptions): Promise<MergeResult> {
    return this.post(`/api/github/pr/${repoPath(repo)}/${pullNumber(number)}/merge`, merge ?? {}, options);
  }

  /** Points the `origin` remote of the workspace at `path` to `repo`. */
  async githubEnsureRemote(repo: string, path: string, options?: CallOptions): Promise<RemoteResult> {
    return this.post(`/api/github/ensure-remote/${repoPath(repo)}`, { path }, options);
  }

  // webhooks

  /** Signed deliveries of `event_types` to `url` (HMAC-SHA256 of the body with `secret`). */
  async createWebhook(webhook: WebhookCreate, options?: CallOptions): Promise<Webhook> {
    return this.post("/api/webhooks", webhook, options);
  }

  async listWebhooks(options?: CallOptions): Promise<Webhook[]> {
    return this.get("/api/webhooks", undefined, options);
  }

  async deleteWebhook(webhookId: string, options?: CallOptions): Promise<void> {
    return this.send({ method: "DELETE", path: `/api/webhooks/${segment(webhookId)}`, signal: options?.signal });
  }

  async webhookDeliveries(
    webhookId: string,
    query?: { limit?: number },
    options?: CallOptions,
  ): Promise<WebhookDelivery[]> {
    return this.get(`/api/webhooks/${segment(webhookId)}/deliveries`, query, options);
  }

  // agent profiles

  async listProfiles(options?: CallOptions): Promise<Profile[]> {
    return this.get("/api/profiles", undefined, options);
  }

  async getProfile(name: string, options?: CallOptions): Promise<Profile> {
    return this.get(`/api/profiles/${segment(name)}`, undefined, options);
  }

  /** Creates or replaces the profile `name` over `profile.agent_type`. */
  async setProfile(name: string, profile: ProfileBody, options?: CallOptions): Promise<Profile> {
    const path = `/api/profiles/${segment(name)}`;
    return this.send({ method: "PUT", path, body: profile, signal: options?.signal });
  }

  async deleteProfile(name: string, options?: CallOptions): Promise<void> {
    return this.send({ method: "DELETE", path: `/api/profiles/${segment(name)}`, signal: options?.signal });
  }

  // the charts' figures

  /** Spend per hour and day, agents running and queue depth per hour, success per agent type. */
  async stats(query?: { hours?: number; days?: number }, options?: CallOptions): Promise<Stats> {
    return this.get("/api/stats", query, options);
  }
}
