/** The SSE parsing and the stream's resumption over canned answers, without a server. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ConnectionFailed,
  DEFAULT_RETRY,
  InvalidRequest,
  LineSplitter,
  OrchestratorClient,
  SSEDecoder,
  type ServerSentEvent,
  type StreamEvent,
} from "@orchestrator/client";

function decode(chunks: string[]): ServerSentEvent[] {
  const lines = new LineSplitter();
  const decoder = new SSEDecoder();
  const events: ServerSentEvent[] = [];
  for (const chunk of chunks) {
    for (const line of lines.push(chunk)) {
      const event = decoder.feed(line);
      if (event) events.push(event);
    }
  }
  return events;
}

test("ids, event names, multi-line data and comments, with any line ending", () => {
  const stream = ": ping\r\n\r\nid: 7\r\nevent: log\r\ndata: {\"a\":\r\ndata:1}\r\n\r\ndata: plain\n\nevent: end\rdata: x\r\r";
  const expected: ServerSentEvent[] = [
    { event: "log", id: "7", data: '{"a":\n1}' },
    { event: "message", id: undefined, data: "plain" },
    { event: "end", id: undefined, data: "x" },
  ];
  assert.deepEqual(decode([stream]), expected);
  // every way of cutting the bytes in two gives the same events, a \r\n split included
  for (let i = 1; i < stream.length; i++) {
    assert.deepEqual(decode([stream.slice(0, i), stream.slice(i)]), expected, `cut at ${i}`);
  }
  assert.deepEqual(decode([...stream]), expected, "one character at a time");
});

test("a field without a value, an unknown field and an id with NUL are ignored as the spec says", () => {
  assert.deepEqual(decode(["retry: 5\nid: a\0b\ndata\nfoo: bar\n\n"]), [
    { event: "message", id: undefined, data: "" },
  ]);
});

test("the default retry policy retries twice", () => {
  assert.equal(DEFAULT_RETRY.attempts, 2);
});

/** A fetch that answers the n-th live stream with `bodies[n]` (all in one chunk), recording Last-Event-ID. */
function cannedStreams(bodies: string[]): { fetch: typeof fetch; asked: (string | null)[] } {
  const asked: (string | null)[] = [];
  const canned: typeof fetch = async (_input, init) => {
    asked.push(new Headers(init?.headers).get("last-event-id"));
    const body = bodies.shift();
    if (body === undefined) throw new TypeError("no more streams");
    return new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8" } });
  };
  return { fetch: canned, asked };
}

const log = (id: number): string =>
  `id: ${id}\r\nevent: log\r\ndata: ${JSON.stringify({ id, timestamp: "t", stream: "stdout", content: `line ${id}` })}\r\n\r\n`;
const END = `event: end\r\ndata: ${JSON.stringify({ id: "coding-1", status: "completed" })}\r\n\r\n`;

function streamingClient(fetch: typeof globalThis.fetch): OrchestratorClient {
  return new OrchestratorClient({ baseUrl: "http://127.0.0.1:1", fetch });
}

async function collect(events: AsyncIterable<StreamEvent>): Promise<string[]> {
  const seen: string[] = [];
  for await (const event of events) seen.push(event.type === "log" ? String(event.line.id) : event.type);
  return seen;
}

test("a stream cut in the middle of an event resumes after the last whole line, and a replayed line is dropped", async () => {
  const half = log(3).slice(0, -2); // its data line came whole, the blank line that ends it did not
  // the second connection replays line 2, as a server that ignored Last-Event-ID would
  const { fetch, asked } = cannedStreams([": ping\r\n\r\n" + log(1) + log(2) + half, log(2) + log(3) + log(4) + END]);
  const seen = await collect(streamingClient(fetch).streamLogs("coding-1", { reconnect: { backoffMs: 1 } }));
  assert.deepEqual(seen, ["1", "2", "3", "4", "end"]);
  assert.deepEqual(asked, [null, "2"]);
});

test("a stream resumed from lastEventId asks for it on the first connection", async () => {
  const { fetch, asked } = cannedStreams([log(5) + END]);
  assert.deepEqual(await collect(streamingClient(fetch).streamLogs("coding-1", { lastEventId: 4 })), ["5", "end"]);
  assert.deepEqual(asked, ["4"]);
});

test("nothing more is delivered once the signal aborted, even lines already received", async () => {
  const { fetch } = cannedStreams([log(1) + log(2) + log(3) + log(4) + END]);
  const stop = new AbortController();
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const event of streamingClient(fetch).streamLogs("coding-1", { signal: stop.signal })) {
        if (event.type === "log") seen.push(event.line.id);
        if (seen.length === 2) stop.abort();
      }
    })(),
    (e) => e instanceof Error && e.name === "AbortError",
  );
  assert.deepEqual(seen, [1, 2]);
});

test("a stream that keeps dropping without progress gives up with ConnectionFailed", async () => {
  const { fetch, asked } = cannedStreams([log(1), "", "", ""]);
  await assert.rejects(
    collect(streamingClient(fetch).streamLogs("coding-1", { reconnect: { attempts: 2, backoffMs: 1 } })),
    (e) => e instanceof ConnectionFailed && /after 3 tries/.test(e.detail),
  );
  assert.deepEqual(asked, [null, "1", "1"]);
});

test("an id or repository that is a dot segment never reaches the network as another route", async () => {
  const urls: string[] = [];
  const recording: typeof fetch = async (input) => {
    urls.push(String(input));
    return new Response("{}", { headers: { "content-type": "application/json" } });
  };
  const api = new OrchestratorClient({ baseUrl: "http://127.0.0.1:1", fetch: recording });
  const refused = (e: unknown): boolean => e instanceof InvalidRequest && e.status === undefined;
  // resolved by the URL parser, these would be GET /api/agents/active, POST /api/queue/clear and GET /api/
  await assert.rejects(api.githubRepo("../../agents/active"), refused);
  await assert.rejects(api.githubEnsureRemote("../../queue/clear", "/work"), refused);
  await assert.rejects(api.getAgent(".."), refused);
  await assert.rejects(api.killAgent("%2E%2e"), refused);
  await assert.rejects(api.deleteTask("."), refused);
  await assert.rejects(api.getEvent(""), refused);
  await assert.rejects(api.githubPull("acme/calc", Number.NaN), refused);
  await assert.rejects(collect(api.streamLogs("..")), refused);
  assert.deepEqual(urls, []);
  await api.getAgent("a/../b");
  await api.githubRepo("/acme/calc/");
  assert.deepEqual(urls, ["http://127.0.0.1:1/api/agents/a%2F..%2Fb", "http://127.0.0.1:1/api/github/repo/acme/calc"]);
});
