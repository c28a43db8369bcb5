/** The client against the real server the pytest launcher started (tests/e2e/test_typescript_client.py). */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  Conflict,
  ConnectionFailed,
  InvalidRequest,
  NotFound,
  OrchestratorClient,
  OrchestratorError,
  Unauthorized,
  type LogLine,
  type StreamEvent,
} from "@orchestrator/client";
import { fetchDocument, GENERATED, typesOf } from "../tools/openapi.js";
import { BASE_URL, client, droppingFetch, failingFetch, STEPS, TOKEN } from "./support.js";

const lines = (events: StreamEvent[]): LogLine[] =>
  events.flatMap((e) => (e.type === "log" ? [e.line] : []));

async function stored(api: OrchestratorClient, agentId: string): Promise<number[]> {
  const ids: number[] = [];
  for await (const line of api.iterLogs(agentId)) ids.push(line.id);
  return ids;
}

test("the checked-in types are what the live /openapi.json generates", async () => {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const live = await typesOf(await fetchDocument(BASE_URL, TOKEN));
  const checkedIn = await readFile(root + GENERATED, "utf8");
  if (live !== checkedIn) {
    const fresh = `${root}.test-build/openapi.live.d.ts`;
    await writeFile(fresh, live);
    assert.fail(
      `${GENERATED} differs from what the server's /openapi.json generates (written to ${fresh}): copy that ` +
        "over it, or regenerate it from a running service with ORCHESTRATOR_URL=... ORCHESTRATOR_API_TOKEN=... npm run generate",
    );
  }
});

test("spawn, then a live stream that survives two dropped connections without a gap or a duplicate", async () => {
  const events: StreamEvent[] = [];
  const { fetch, streams } = droppingFetch([3, 2], () => {
    const last = lines(events).at(-1);
    return last === undefined ? null : String(last.id);
  });
  const api = client({ fetch });
  const agent = await api.spawnAgent({ agent_type: "coding", prompt: STEPS[0]!, max_turns: 20 });
  assert.ok(agent.status === "starting" || agent.status === "running");
  assert.equal(agent.max_turns, 20);

  for await (const event of api.streamLogs(agent.id)) events.push(event);
  const end = events.at(-1);
  assert.equal(end?.type, "end");
  assert.equal(end.type === "end" && end.agent.status, "completed");

  const ids = await stored(api, agent.id);
  assert.deepEqual(lines(events).map((l) => l.id), ids, "a line was lost or doubled across the drops");
  assert.ok(lines(events).every((l) => l.agent_id === agent.id));
  assert.equal(streams.length, 3, "the stream broke twice, so it connected three times");
  assert.equal(streams[0]!.lastEventId, null);
  assert.notEqual(streams[1]!.lastDelivered, null, "the first drop came after some lines");
  for (const stream of streams) {
    assert.equal(stream.lastEventId, stream.lastDelivered, "each connection resumes after the last line delivered");
  }

  const detail = await api.getAgent(agent.id);
  assert.equal(detail.log_lines, ids.length);
  const page = await api.getLogs(agent.id, { limit: 2 });
  assert.ok(page.has_more);
  assert.deepEqual(page.items.map((l) => l.id), ids.slice(0, 2));
  assert.deepEqual((await api.listAgents({ status: "completed" })).items.map((a) => a.id), [agent.id]);
  assert.equal((await api.agentAnalytics()).by_status.completed, 1);
  await assert.rejects(api.killAgent(agent.id), (e) => e instanceof Conflict && /ended/.test(e.detail));

  const again = await api.retryAgent(agent.id);
  assert.equal(again.retry_of, agent.id);
  assert.ok((await api.activeAgents()).ids.includes(again.id));
  assert.equal((await api.killAgent(again.id)).id, again.id);
});

test("a stream aborted by its signal mid-way resumes with lastEventId: no gap, no duplicate", async () => {
  const api = client();
  const agent = await api.spawnAgent({ agent_type: "coding", prompt: STEPS[1]! });
  const first: StreamEvent[] = [];
  const stop = new AbortController();
  await assert.rejects(
    (async () => {
      for await (const event of api.streamLogs(agent.id, { signal: stop.signal })) {
        first.push(event);
        if (lines(first).length === 3) stop.abort();
      }
    })(),
    (e) => e instanceof Error && e.name === "AbortError",
  );
  const before = lines(first);
  assert.equal(before.length, 3, "nothing is delivered once the signal has aborted");
  const rest: StreamEvent[] = [];
  for await (const event of api.streamLogs(agent.id, { lastEventId: before.at(-1)!.id })) rest.push(event);
  assert.equal(rest.at(-1)?.type, "end");
  const ids = await stored(api, agent.id);
  assert.ok(ids.length > 3);
  assert.deepEqual([...before, ...lines(rest)].map((l) => l.id), ids);
});

test("tasks, the queue and its settings, events", async () => {
  const api = client();
  const settings = await api.queueSettings();
  assert.equal(typeof settings.max_concurrent, "number");
  assert.equal((await api.setQueueSetting("max_concurrent", 3)).max_concurrent, 3);
  assert.equal((await api.pauseQueue()).paused, true);
  assert.equal((await api.queueSettings()).paused, true);
  await assert.rejects(
    api.setQueueSetting("max_concurrent", -1),
    (e) => e instanceof InvalidRequest && e.status === 422 && /max_concurrent/.test(e.detail),
  );

  const task = await api.createTask({ id: "t-ts-readme", title: "Add a README", description: "short" });
  assert.equal(task.id, "t-ts-readme");
  assert.equal((await api.updateTask(task.id, { priority: 7 })).priority, 7);
  const item = await api.queueAdd(task.id);
  assert.equal(item.task_id, task.id);
  const queue = await api.queueStatus();
  assert.ok(JSON.stringify(queue).includes(task.id));
  assert.ok((await api.listTasks()).items.some((t) => t.id === task.id));
  assert.equal((await api.getTask(task.id)).title, "Add a README");
  await assert.rejects(api.approveTask(task.id), (e) => e instanceof Conflict && e.status === 409);
  await assert.rejects(api.rejectTask("t-ts-none", "no"), NotFound);
  await api.queueRemove(task.id);
  assert.equal((await api.resumeQueue()).paused, false);
  await api.deleteTask(task.id);
  await assert.rejects(api.getTask(task.id), NotFound);

  const event = await api.createEvent({ id: "ev-ts-1", type: "pr.created", payload: { number: 1 } });
  assert.equal(event.id, "ev-ts-1");
  assert.equal((await api.getEvent(event.id)).type, "pr.created");
  assert.ok((await api.listEvents({ type: "pr.created" })).items.some((e) => e.id === event.id));
  assert.equal(typeof (await api.pendingEvents()).total, "number");
  assert.equal((await api.markEventProcessed(event.id)).status, "processed");
  assert.ok((await api.processedEvents()).items.some((e) => e.id === event.id));
});

test("a task's timeline and diff, agent profiles, the charts' figures", async () => {
  const api = client();
  const task = await api.createTask({ id: "t-ts-page", title: "A page", description: "short" });
  const timeline = await api.taskTimeline(task.id);
  assert.deepEqual([timeline.task_id, timeline.status, timeline.agents, timeline.waits], [task.id, "pending", [], []]);
  await assert.rejects(api.taskDiff(task.id), (e) => e instanceof NotFound && /branch/.test(e.detail));
  await assert.rejects(api.taskDiff(task.id, { page: 0 }), (e) => e instanceof InvalidRequest && /page/.test(e.detail));
  await assert.rejects(api.taskTimeline("t-ts-none"), NotFound);
  await api.deleteTask(task.id);

  const profile = await api.setProfile("ts-careful", { agent_type: "reviewer", model: "claude-opus", max_turns: 5 });
  assert.deepEqual([profile.name, profile.agent_type, profile.settings], [
    "ts-careful",
    "reviewer",
    { model: "claude-opus", max_turns: 5 },
  ]);
  assert.equal((await api.getProfile("ts-careful")).settings.model, "claude-opus");
  assert.ok((await api.listProfiles()).some((p) => p.name === "ts-careful"));
  await assert.rejects(
    api.setProfile("ts-bad", { agent_type: "reviewer", max_turns: -1 }),
    (e) => e instanceof InvalidRequest && /max_turns/.test(e.detail),
  );
  await api.deleteProfile("ts-careful");
  await assert.rejects(api.getProfile("ts-careful"), NotFound);

  const stats = await api.stats({ hours: 3, days: 2 });
  assert.deepEqual([stats.hours.length, stats.days.length], [3, 2]);
  await assert.rejects(api.stats({ hours: 1000 }), (e) => e instanceof InvalidRequest && /hours/.test(e.detail));
});

test("webhooks and the GitHub routes", async () => {
  const api = client();
  const hook = await api.createWebhook({
    url: `${BASE_URL}/nowhere`,
    event_types: ["agent.failed"],
    secret: "s3cret-value",
  });
  assert.deepEqual((await api.listWebhooks()).map((h) => h.id), [hook.id]);
  assert.ok(!JSON.stringify(await api.listWebhooks()).includes("s3cret"), "the secret is never answered");
  assert.deepEqual(await api.webhookDeliveries(hook.id, { limit: 10 }), []);
  await assert.rejects(
    api.createWebhook({ url: `${BASE_URL}/nowhere`, event_types: ["agent.exploded"], secret: "s3cret-value" }),
    (e) => e instanceof InvalidRequest && /event_types/.test(e.detail),
  );
  await api.deleteWebhook(hook.id);
  await assert.rejects(api.deleteWebhook(hook.id), NotFound);

  const status = await api.githubStatus();
  assert.equal(status.configured, true);
  assert.equal(status.login, "octo-bot");
  assert.equal((await api.githubRepo("calc")).full_name, "acme/calc");
  assert.equal(typeof (await api.githubDefaultBranch("acme/calc")).default_branch, "string");
  assert.equal((await api.githubCloneUrl("calc")).authenticated, false);
  assert.deepEqual(await api.githubPulls("calc", { state: "all" }), []);
  await assert.rejects(api.githubPull("acme/calc", 999), NotFound);
});

test("a 404 and a 422 become NotFound and InvalidRequest with the server's message", async () => {
  const api = client();
  await assert.rejects(api.getAgent("coding-00000000"), (e) => {
    assert.ok(e instanceof NotFound && e instanceof OrchestratorError);
    assert.equal(e.status, 404);
    assert.match(e.detail, /coding-00000000/);
    return true;
  });
  await assert.rejects(api.spawnAgent({ agent_type: "wizard" as "coding", prompt: "hi" }), (e) => {
    assert.ok(e instanceof InvalidRequest);
    assert.equal(e.status, 422);
    assert.match(e.detail, /agent_type/);
    return true;
  });
  await assert.rejects(api.spawnAgent({ agent_type: "coding", task_id: "no-such-task" }), NotFound);
  await assert.rejects(
    (async () => {
      for await (const _ of api.streamLogs("coding-00000000")) assert.fail("no event");
    })(),
    NotFound,
  );
});

test("the token: none or a wrong one is Unauthorized, the right one passes", async () => {
  const anonymous = new OrchestratorClient({ baseUrl: BASE_URL });
  assert.equal((await anonymous.health()).status, "ok");
  await assert.rejects(anonymous.listAgents(), (e) => e instanceof Unauthorized && e.status === 401);
  const wrong = client({ token: "wrong" });
  await assert.rejects(wrong.queueStatus(), (e) => e instanceof Unauthorized && /token/i.test(e.detail));
  await assert.rejects(
    (async () => {
      for await (const _ of wrong.streamLogs("coding-00000000")) assert.fail("no event");
    })(),
    Unauthorized,
  );
  assert.equal(typeof (await client().queueStatus()), "object");
});

test("GET calls are retried after a connection error, a spawn never is", async () => {
  const reads = failingFetch(2);
  assert.equal(typeof (await client({ fetch: reads.fetch, retries: { backoffMs: 10 } }).queueSettings()).paused, "boolean");
  assert.equal(reads.calls.length, 3);

  const spawns = failingFetch(1);
  await assert.rejects(
    client({ fetch: spawns.fetch, retries: { backoffMs: 10 } }).spawnAgent({ agent_type: "coding", prompt: "x" }),
    (e) => e instanceof ConnectionFailed && /ECONNREFUSED/.test(e.detail),
  );
  assert.equal(spawns.calls.length, 1);

  const tooMany = failingFetch(5);
  await assert.rejects(client({ fetch: tooMany.fetch, retries: { attempts: 1, backoffMs: 10 } }).listAgents(), ConnectionFailed);
  assert.equal(tooMany.calls.length, 2);
});

test("an unreachable server is ConnectionFailed; an aborted signal stops a call and its retries", async () => {
  const closed = new OrchestratorClient({ baseUrl: "http://127.0.0.1:9", token: TOKEN, retries: 0 });
  await assert.rejects(closed.health(), (e) => e instanceof ConnectionFailed && e.status === undefined);

  const stop = new AbortController();
  stop.abort();
  await assert.rejects(client().health({ signal: stop.signal }), (e) => e instanceof Error && e.name === "AbortError");

  const waiting = failingFetch(100);
  const later = new AbortController();
  const call = client({ fetch: waiting.fetch, retries: { attempts: 50, backoffMs: 1000 } }).listAgents(
    undefined,
    { signal: later.signal },
  );
  setTimeout(() => later.abort(), 100);
  await assert.rejects(call, (e) => e instanceof Error && e.name === "AbortError");
  assert.equal(waiting.calls.length, 1, "the wait before the retry ended with the signal");
  assert.throws(() => new OrchestratorClient({ baseUrl: "ftp://example.com" }), TypeError);
});
