/** What the tests share: the server the pytest launcher started, and a fetch that breaks live streams. */
import { OrchestratorClient, type ClientOptions } from "@orchestrator/client";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/e2e/test_typescript_client.py`);
  return value;
}

export const BASE_URL = required("ORCHESTRATOR_URL");
export const TOKEN = required("ORCHESTRATOR_API_TOKEN");
/** Prompts that make the fake model run a few slow tool calls, one per agent (the pytest side made them). */
export const STEPS: string[] = required("TS_STEPS_PROMPTS").split("\n");

export function client(options: Partial<ClientOptions> = {}): OrchestratorClient {
  return new OrchestratorClient({ baseUrl: BASE_URL, token: TOKEN, ...options });
}

const EVENT_END = /\r\n\r\n|\n\n|\r\r/g;

/**
 * Lets exactly `events` whole SSE events of `body` through (however the bytes are chunked), then half of
 * the next one, then breaks the stream as a dropped connection would.
 */
function cut(body: ReadableStream<Uint8Array>, events: number): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const bytes = new TextDecoder("latin1"); // one character per byte: offsets in the text are byte offsets
  let seen = "";
  let passed = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = await reader.read();
      if (chunk.done) {
        controller.close();
        return;
      }
      seen += bytes.decode(chunk.value, { stream: true });
      const ends = [...seen.matchAll(EVENT_END)].map((m) => m.index + m[0].length);
      if (ends.length < events) {
        controller.enqueue(chunk.value);
        passed += chunk.value.length;
        return;
      }
      const end = ends[events - 1]!;
      const following = ends[events] ?? seen.length;
      const stop = end + Math.floor((following - end) / 2);
      controller.enqueue(chunk.value.subarray(0, stop - passed));
      await reader.cancel();
      controller.error(new TypeError("connection dropped by the test"));
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

export interface StreamRequest {
  /** The Last-Event-ID the client sent. */
  lastEventId: string | null;
  /** The id of the last line the caller had been given when the client connected. */
  lastDelivered: string | null;
}

/**
 * The platform's fetch, except that the n-th live log stream breaks after `drops[n]` events;
 * `lastDelivered` tells what the caller had been given when each stream is asked for.
 */
export function droppingFetch(
  drops: number[],
  lastDelivered: () => string | null,
): { fetch: typeof fetch; streams: StreamRequest[] } {
  const streams: StreamRequest[] = [];
  const dropping: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const headers = new Headers(init?.headers);
    if (headers.get("accept") !== "text/event-stream") return response;
    streams.push({ lastEventId: headers.get("last-event-id"), lastDelivered: lastDelivered() });
    const events = drops.shift();
    if (events === undefined || response.body === null) return response;
    return new Response(cut(response.body, events), { status: response.status, headers: response.headers });
  };
  return { fetch: dropping, streams };
}

/** A fetch that fails like an unreachable server the first `failures` times, counting every call. */
export function failingFetch(failures: number): { fetch: typeof fetch; calls: string[] } {
  const calls: string[] = [];
  const failing: typeof fetch = async (input, init) => {
    calls.push(`${init?.method ?? "GET"} ${String(input)}`);
    if (calls.length <= failures) throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") });
    return fetch(input, init);
  };
  return { fetch: failing, calls };
}
