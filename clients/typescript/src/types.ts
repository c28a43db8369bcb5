/** The API's request and response types, named after the service's own models (generated/openapi.d.ts). */
import type { components, operations } from "./generated/openapi.js";

type Schemas = components["schemas"];
/** `T` with the fields in `K` optional: fields the server gives a default when they are left out. */
type Defaulted<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

export type { components, operations, paths } from "./generated/openapi.js";

export type Health = Schemas["Health"];

export type AgentStatus = Schemas["AgentStatus"];
export type AgentType = Schemas["AgentType"];
export type EndReason = Schemas["EndReason"];
export type Agent = Schemas["Agent"];
export type AgentDetail = Schemas["AgentDetail"];
export type AgentPage = Schemas["AgentPage"];
export type ActiveAgents = Schemas["ActiveAgents"];
export type Analytics = Schemas["Analytics"];
export type Budget = Schemas["BudgetModel"];
export type SpawnBody = Schemas["SpawnBody"];
export type LogLine = Schemas["LogLine"];
export type LogPage = Schemas["LogPage"];

export type TaskStatus = Schemas["TaskStatus"];
export type Task = Schemas["Task"];
export type TaskDetail = Schemas["TaskDetail"];
export type TaskPage = Schemas["TaskPage"];
export type TaskCreate = Defaulted<Schemas["TaskCreate"], "priority">;
export type TaskUpdate = Schemas["TaskUpdate"];
export type TaskTimeline = Schemas["TaskTimeline"];
export type DiffPage = Schemas["DiffPage"];
export type Stats = Schemas["Stats"];

export type QueueStatus = Schemas["QueueStatus"];
export type QueueItem = Schemas["QueueItem"];
export type QueueSettings = Schemas["QueueSettingsModel"];
export type Cleared = Schemas["Cleared"];

export type EventType = Schemas["EventType"];
export type EventStatus = Schemas["EventStatus"];
export type Event = Schemas["Event"];
export type EventPage = Schemas["EventPage"];
export type EventCreate = Schemas["EventCreate"];

export type Webhook = Schemas["Webhook"];
export type WebhookCreate = Schemas["WebhookCreate"];
export type WebhookDelivery = Schemas["Delivery"];

export type Profile = Schemas["ProfileModel"];
/** A profile's settings as `PUT /api/profiles/{name}` takes them: `agent_type` and the keys it sets. */
export type ProfileBody = Schemas["Profile"];

export type TokenStatus = Schemas["TokenStatus"];
export type RepoInfo = Schemas["RepoInfo"];
export type DefaultBranch = Schemas["DefaultBranch"];
export type CloneUrl = Schemas["CloneUrl"];
export type PushBody = Schemas["PushBody"];
export type PushResult = Schemas["PushResult"];
export type CreatePullBody = Defaulted<Schemas["CreatePullBody"], "body" | "draft">;
export type CreatedPullRequest = Schemas["CreatedPullRequest"];
export type PullRequest = Schemas["PullRequest"];
export type MergeBody = Defaulted<Schemas["MergeBody"], "merge_method">;
export type MergeResult = Schemas["MergeResult"];
export type RemoteResult = Schemas["RemoteResult"];

export type ListAgentsQuery = NonNullable<operations["list_agents_api_agents_get"]["parameters"]["query"]>;
export type ListTasksQuery = NonNullable<operations["list_tasks_api_tasks_get"]["parameters"]["query"]>;
export type ListEventsQuery = NonNullable<operations["list_events_api_events_get"]["parameters"]["query"]>;
export type EventsQuery = NonNullable<operations["pending_events_api_events_pending_get"]["parameters"]["query"]>;
export type PullsQuery = NonNullable<operations["list_pulls_api_github_prs__repo__get"]["parameters"]["query"]>;

/** A stored line of an agent's log, as the live stream delivers it. */
export interface LogEvent {
  type: "log";
  line: LogLine;
}

/** The supervisor flagged the agent (a stall, a loop, ...); not stored as a line. */
export interface FlagEvent {
  type: "flag";
  flag: string;
  detail: string | null;
}

/** The last event of a stream: the agent has ended, as it stands. */
export interface EndEvent {
  type: "end";
  agent: Agent;
}

export type StreamEvent = LogEvent | FlagEvent | EndEvent;
