/** One error hierarchy for everything the client can meet: the server's refusals and the network. */

/**
 * The server refused or failed a request, or could not be reached. `status` is the HTTP status
 * (`undefined` when no answer came) and `detail` the server's own message.
 */
export class OrchestratorError extends Error {
  readonly detail: string;
  readonly status: number | undefined;

  constructor(detail: string, status?: number, options?: { cause?: unknown }) {
    super(status === undefined ? detail : `${status}: ${detail}`, options);
    this.name = new.target.name;
    this.detail = detail;
    this.status = status;
  }
}

/** 400 or 422: the request was malformed; the detail names the field. */
export class InvalidRequest extends OrchestratorError {}

/** 401 or 403: a missing or wrong API token. */
export class Unauthorized extends OrchestratorError {}

/** 404: no such agent, task, event, webhook or queue entry. */
export class NotFound extends OrchestratorError {}

/** 409: the request conflicts with the current state (e.g. killing an agent that has ended). */
export class Conflict extends OrchestratorError {}

/** 429: past the server's spawn rate; `retryAfter` is its hint in seconds, if it gave one. */
export class RateLimited extends OrchestratorError {
  readonly retryAfter: number | undefined;

  constructor(detail: string, status = 429, retryAfter?: number) {
    super(detail, status);
    this.retryAfter = retryAfter;
  }
}

/** A 5xx answer. */
export class ServerError extends OrchestratorError {}

/** 503: the server cannot do it now; `retryAfter` is its hint in seconds, if it gave one. */
export class Unavailable extends ServerError {
  readonly retryAfter: number | undefined;

  constructor(detail: string, status = 503, retryAfter?: number) {
    super(detail, status);
    this.retryAfter = retryAfter;
  }
}

/** An answer the client could not read: not the JSON it expects (a proxy's page, another version?). */
export class UnexpectedResponse extends OrchestratorError {}

/** The server could not be reached, did not answer in time, or the connection broke. */
export class ConnectionFailed extends OrchestratorError {}

const BY_STATUS: Record<number, new (detail: string, status?: number) => OrchestratorError> = {
  400: InvalidRequest,
  401: Unauthorized,
  403: Unauthorized,
  404: NotFound,
  409: Conflict,
  422: InvalidRequest,
};

/** The server's `detail` (its error body is `{"detail": "..."}`), else the body's text, else the status. */
export function detailOf(status: number, statusText: string, text: string): string {
  const trimmed = text.trim();
  try {
    const body: unknown = JSON.parse(trimmed);
    if (body !== null && typeof body === "object" && "detail" in body) {
      const detail = (body as { detail: unknown }).detail;
      return typeof detail === "string" ? detail : JSON.stringify(detail);
    }
  } catch {
    // not JSON: the text itself
  }
  return trimmed.slice(0, 500) || statusText || `HTTP ${status}`;
}

function retryAfterOf(headers: Headers): number | undefined {
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** The typed error for an error answer whose body has been read as `text`. */
export function errorFromResponse(response: Response, text: string): OrchestratorError {
  const { status } = response;
  const detail = detailOf(status, response.statusText, text);
  if (status === 503) return new Unavailable(detail, status, retryAfterOf(response.headers));
  if (status === 429) return new RateLimited(detail, status, retryAfterOf(response.headers));
  if (status >= 500) return new ServerError(detail, status);
  const Kind = BY_STATUS[status] ?? OrchestratorError;
  return new Kind(detail, status);
}
