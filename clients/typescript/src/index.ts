export { OrchestratorClient } from "./client.js";
export type { CallOptions, ClientOptions, StreamOptions } from "./client.js";
export {
  Conflict,
  ConnectionFailed,
  InvalidRequest,
  NotFound,
  OrchestratorError,
  RateLimited,
  ServerError,
  Unauthorized,
  Unavailable,
  UnexpectedResponse,
} from "./errors.js";
export { DEFAULT_RETRY, STREAM_RECONNECT } from "./retry.js";
export type { RetryPolicy } from "./retry.js";
export { LineSplitter, SSEDecoder } from "./sse.js";
export type { ServerSentEvent } from "./sse.js";
export type * from "./types.js";
