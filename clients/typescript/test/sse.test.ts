/** The SSE parsing and the retry policy, without a server. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_RETRY, LineSplitter, SSEDecoder, type ServerSentEvent } from "@orchestrator/client";

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
