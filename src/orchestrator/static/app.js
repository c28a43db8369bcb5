// The orchestrator dashboard: lists re-read on each change (live.js), an agent's log live over SSE (fetch + stream reader,
// so the API token can travel in a header). No framework, no build step.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "orchestrator.apiToken";
const GENERATED_TOKEN_PATH = "/api/dashboard/token";
const MAX_LOG_LINES = 5000;
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let tokenPrompt = null; // a pending promise while the token dialog is open
let renewing = null; // a pending promise while a new token is fetched or asked for
let followed = null; // { id, abort: AbortController }
let latest = { agents: [], tasks: [] };

// ---------- HTTP ----------
function authHeaders(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = authHeaders(body === undefined ? {} : { "Content-Type": "application/json" });
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    await renewToken(headers.Authorization);
    return api(path, { method, body });
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((data && typeof data.detail === "string" && data.detail) || `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

// A token refused (or none yet): the one the service generated, which it gives to this page only when
// the page is its own on the loopback address; else (a token set by the operator) ask once.
function renewToken(refused) {
  if (token && `Bearer ${token}` !== refused) return Promise.resolve(); // renewed meanwhile
  if (!renewing) {
    renewing = (async () => {
      try {
        const res = await fetch(GENERATED_TOKEN_PATH, { cache: "no-store" });
        const data = res.ok ? await res.json() : null;
        if (data && typeof data.token === "string" && data.token && data.token !== token) {
          token = data.token;
          return;
        }
      } catch {
        // not given: ask
      }
      await askToken();
    })().finally(() => (renewing = null));
  }
  return renewing;
}

function askToken() {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const dialog = $("token-dialog");
    const error = $("token-error");
    error.hidden = !token;
    error.textContent = token ? "The stored token was refused." : "";
    $("token-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const given = $("token-input").value.trim();
      const res = await fetch("/api/queue/settings", { headers: { Authorization: `Bearer ${given}` } });
      if (res.status === 401) {
        error.textContent = "That token was refused.";
        error.hidden = false;
        return;
      }
      token = given;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("token-forget").hidden = false;
      dialog.close();
      tokenPrompt = null;
      resolve();
    };
    dialog.showModal();
    $("token-input").focus();
  });
  return tokenPrompt;
}

// ---------- formatting ----------
const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const badge = (status) => `<span class="badge s-${esc(status)}">${esc(status).replace("_", " ")}</span>`;
const ms = (iso) => (iso ? Date.parse(iso) : NaN);
const clip = (s, n = 160) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const webUrl = (u) => typeof u === "string" && /^https?:\/\//i.test(u); // never a javascript: link

function duration(millis) {
  if (!Number.isFinite(millis) || millis < 0) return "–";
  const s = millis / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const cost = (usd) => (usd == null ? "–" : `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`);
const count = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));

function agentDuration(a) {
  if (a.duration_ms != null && a.completed_at) return duration(a.duration_ms);
  const end = a.completed_at ? ms(a.completed_at) : Date.now();
  return duration(end - ms(a.started_at || a.created_at));
}

// ---------- tables: rows keyed by id and updated in place, so buttons survive a refresh ----------
function syncRows(table, items, keyOf, cellsOf, decorate) {
  const body = table.tBodies[0];
  const old = new Map([...body.rows].map((r) => [r.dataset.key, r]));
  items.forEach((item, i) => {
    const key = String(keyOf(item));
    let row = old.get(key);
    old.delete(key);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.key = key;
    }
    cellsOf(item).forEach(([html, cls = ""], j) => {
      const cell = row.cells[j] || row.insertCell();
      if (cell.rendered !== html) {
        cell.innerHTML = html;
        cell.rendered = html;
      }
      cell.className = cls;
    });
    if (decorate) decorate(row, item);
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
  });
  old.forEach((row) => row.remove());
  const empty = $(`${table.id}-empty`);
  if (empty) empty.hidden = items.length > 0;
}

function renderAgents(page) {
  $("agents-count").textContent = page.total > page.items.length ? `${page.items.length} of ${page.total}` : `${page.total}`;
  syncRows($("agents"), page.items, (a) => a.id, (a) => {
    const active = a.status === "running" || a.status === "starting";
    const action = active
      ? `<button class="small danger" data-action="kill" type="button">Kill</button>`
      : `<button class="small secondary" data-action="retry" type="button">Retry</button>`;
    return [
      [`<code>${esc(a.id)}</code>`],
      [esc(a.agent_type)],
      [badge(a.status)],
      [a.task_id ? `<code>${esc(a.task_id)}</code>` : `<span class="muted">–</span>`],
      [cost(a.cost_usd), "num"],
      [agentDuration(a), "num"],
      [a.num_turns ?? "–", "num"],
      [action, "num"],
    ];
  }, (row, a) => {
    row.dataset.agentId = a.id;
    row.dataset.status = a.status;
    row.classList.toggle("selected", followed?.id === a.id);
  });
}

function renderTasks(page, agents, events) {
  $("tasks-count").textContent = String(page.total);
  const lastAgent = new Map();
  for (const a of agents) if (a.task_id && !lastAgent.has(a.task_id)) lastAgent.set(a.task_id, a);
  const lastEvent = new Map();
  for (const e of events) if (e.task_id && !lastEvent.has(e.task_id)) lastEvent.set(e.task_id, e);
  syncRows($("tasks"), page.items, (t) => t.id, (t) => {
    const agent = lastAgent.get(t.id);
    const step = t.workflow_step || (agent ? agent.agent_type : "");
    const stage = step ? `${esc(step)}${agent ? ` <span class="muted">(${esc(agent.status)})</span>` : ""}` : "–";
    const event = lastEvent.get(t.id);
    return [
      [`<a href="#/tasks/${esc(encodeURIComponent(t.id))}" class="task-link"><code>${esc(t.id)}</code></a>`],
      [esc(clip(t.title, 60)), "wrap"],
      [badge(t.status)],
      [stage],
      [event ? `${esc(event.type)} <span class="muted">${esc(event.status)}</span>` : "–"],
      [webUrl(t.pr_url) ? `<a href="${esc(t.pr_url)}" target="_blank" rel="noopener noreferrer">#${esc(t.pr_number)}</a>` : "–"],
      [taskActions(t), "num actions"],
    ];
  }, (row, t) => {
    row.dataset.taskId = t.id;
    row.dataset.status = t.status;
    row.dataset.stage = t.workflow_step || lastAgent.get(t.id)?.agent_type || "";
  });
}

// The buttons a task's status allows: cancel while queued, approve / reject at a gate, delete once idle.
function taskActions(t) {
  if (t.status === "queued") return `<button class="small danger" data-action="cancel" type="button">Cancel</button>`;
  if (t.status === "awaiting_approval") {
    return `<button class="small" data-action="approve" type="button">Approve</button> ` +
      `<button class="small danger" data-action="reject" type="button">Reject…</button>`;
  }
  if (t.status === "pending" || t.status === "completed" || t.status === "failed") {
    return `<button class="small danger" data-action="delete" type="button">Delete</button>`;
  }
  return "";
}

function renderQueue(q) {
  const s = q.settings;
  const state = $("queue-state");
  state.textContent = s.paused ? "paused" : "running";
  state.className = `badge s-${s.paused ? "paused" : "live"}`;
  state.dataset.paused = String(s.paused);
  $("queue-pause").disabled = s.paused;
  $("queue-resume").disabled = !s.paused;
  $("pause-reason").hidden = !q.pause_reason;
  $("pause-reason").textContent = q.pause_reason ? `Paused: ${q.pause_reason}` : "";
  const input = $("max-concurrent");
  if (document.activeElement !== input && !input.dataset.edited) input.value = s.max_concurrent;
  $("stop-on-failure").checked = s.stop_on_failure;
  syncRows($("queue"), q.items, (i) => i.id, (i) => [
    [String(i.position), "num"],
    [i.title ? `<span title="${esc(i.task_id)}">${esc(clip(i.title, 48))}</span>` : `<code>${esc(i.task_id)}</code>`, "wrap"],
    [badge(i.status)],
    [i.agent_id ? `<code class="link" data-agent="${esc(i.agent_id)}">${esc(i.agent_id)}</code>` : "–"],
    [duration((i.started_at ? ms(i.started_at) : Date.now()) - ms(i.queued_at)), "num"],
  ]);
}

function renderStats(stats, q) {
  $("stat-running").textContent = stats.by_status.running ?? 0;
  $("stat-queued").textContent = q.queued;
  $("stat-total").textContent = stats.total;
  $("stat-success").textContent = stats.success_rate == null ? "–" : `${Math.round(stats.success_rate * 100)}%`;
  $("stat-cost").textContent = cost(stats.total_cost_usd);
  $("stat-tokens").textContent = `${count(stats.total_input_tokens)} / ${count(stats.total_output_tokens)}`;
}

function setConn(state, text) {
  const conn = $("conn");
  conn.dataset.state = state;
  conn.textContent = text;
}

let flashTimer = 0;
function flash(text, isError = false) {
  const box = $("flash");
  box.textContent = text;
  box.className = isError ? "flash error" : "flash";
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (box.hidden = true), 4000);
}

async function refresh() {
  try {
    const [queue, agents, tasks, events, stats] = await Promise.all([
      api("/api/queue"),
      api("/api/agents?limit=100"),
      api("/api/tasks?limit=100"),
      api("/api/events?limit=200"),
      api("/api/agents/analytics"),
    ]);
    latest = { agents: agents.items, tasks: tasks.items };
    renderQueue(queue);
    renderAgents(agents);
    renderTasks(tasks, agents.items, events.items);
    renderStats(stats, queue);
    if (!window.liveFeed) setConn("live", `live · ${new Date().toLocaleTimeString()}`);
    return true;
  } catch (err) {
    if (!window.liveFeed) setConn("offline", `offline: ${err.message}`);
    return err; // live.js says it
  }
}

async function poll() {
  for (;;) {
    await refresh();
    await sleep(POLL_MS);
  }
}

// ---------- the live log ----------
async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let carry = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      let text = carry + value;
      carry = text.endsWith("\r") ? "\r" : "";
      if (carry) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = { event: "message", id: null, data: [] };
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") event.data.push(val);
          else if (field === "event") event.event = val;
          else if (field === "id") event.id = val;
        }
        if (event.data.length) yield { ...event, data: event.data.join("\n") };
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function summarize(input) {
  if (!input || typeof input !== "object") return String(input ?? "");
  for (const key of ["command", "file_path", "path", "pattern", "url", "query", "description", "prompt"]) {
    if (typeof input[key] === "string") return input[key];
  }
  return JSON.stringify(input);
}

function resultText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((c) => (c && c.type === "text" ? c.text : `[${c?.type}]`)).join(" ");
  return JSON.stringify(content ?? "");
}

// One stored line → [[class, text], ...]: stream-json made readable, stderr apart, other text as it is.
function readable(line) {
  if (line.stream === "stderr") return [["stderr", line.content]];
  let msg;
  try {
    msg = JSON.parse(line.content);
  } catch {
    return [["text", line.content]];
  }
  if (!msg || typeof msg !== "object") return [["text", line.content]];
  const blocks = Array.isArray(msg.message?.content) ? msg.message.content : [];
  switch (msg.type) {
    case "system":
      return msg.subtype === "init"
        ? [["meta", `⚙ session started · model ${msg.model ?? "?"} · ${msg.tools?.length ?? 0} tools`]]
        : [["meta", `⚙ ${msg.subtype ?? "system"}`]];
    case "assistant":
      return blocks.flatMap((b) =>
        b.type === "text" ? [["text", b.text]]
          : b.type === "tool_use" ? [["tool", `▶ ${b.name}: ${clip(summarize(b.input), 200)}`]]
          : b.type === "thinking" ? [["meta", `… ${clip(b.thinking ?? "", 200)}`]]
          : []);
    case "user":
      return blocks.filter((b) => b.type === "tool_result").map((b) =>
        [b.is_error ? "error" : "result", `◀ ${b.is_error ? "error" : "result"}: ${clip(resultText(b.content).trim(), 240)}`]);
    case "result": {
      const facts = [`${msg.num_turns ?? "?"} turns`, cost(msg.total_cost_usd), duration(msg.duration_ms)];
      const kind = msg.is_error ? "final error" : "final";
      return [[kind, `■ ${msg.subtype ?? "result"} (${facts.join(", ")})${msg.result ? `: ${msg.result}` : ""}`]];
    }
    default:
      return [];
  }
}

function appendLines(log, line, parts) {
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
  const time = line.timestamp ? new Date(line.timestamp).toLocaleTimeString([], { hour12: false }) : "";
  for (const [kind, text] of parts) {
    const div = document.createElement("div");
    div.className = `line ${kind}`;
    div.dataset.id = line.id ?? "";
    div.dataset.stream = line.stream ?? "";
    const t = document.createElement("time");
    t.textContent = time;
    const span = document.createElement("span");
    span.textContent = text;
    div.append(t, span);
    log.append(div);
  }
  while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
  if (stick) log.scrollTop = log.scrollHeight;
}

function showLogStatus(status) {
  const el = $("log-status");
  el.hidden = !status;
  el.className = `badge s-${status}`;
  el.textContent = status;
  el.dataset.status = status;
}

async function follow(id, signal) {
  const log = $("log");
  let last = 0;
  for (;;) {
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (last) headers["Last-Event-ID"] = String(last);
      const res = await fetch(`/api/agents/${encodeURIComponent(id)}/logs?after=${last}`, { headers, signal });
      if (res.status === 401) {
        await renewToken(headers.Authorization);
        continue;
      }
      if (res.status === 404) {
        appendLines(log, { stream: "end" }, [["end", `— no agent ${id} —`]]);
        return;
      }
      if (!res.ok) throw new Error(`${res.status}`);
      log.dataset.state = "live";
      for await (const ev of sseEvents(res.body)) {
        if (ev.event === "log") {
          const line = JSON.parse(ev.data);
          if (line.id <= last) continue;
          last = line.id;
          appendLines(log, line, readable(line));
        } else if (ev.event === "end") {
          const agent = JSON.parse(ev.data);
          showLogStatus(agent.status);
          const why = agent.error ? `: ${agent.error}` : "";
          appendLines(log, { stream: "end" }, [["end", `— agent ${agent.status}${why} —`]]);
          log.dataset.state = "ended";
          return;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    if (signal.aborted) return;
    log.dataset.state = "reconnecting";
    await sleep(1000);
  }
}

function openLog(id) {
  if (followed?.id === id) return;
  followed?.abort.abort();
  followed = { id, abort: new AbortController() };
  const log = $("log");
  log.replaceChildren();
  log.dataset.agentId = id;
  $("log-agent").textContent = id;
  const agent = latest.agents.find((a) => a.id === id);
  showLogStatus(agent ? agent.status : "");
  for (const row of $("agents").tBodies[0].rows) row.classList.toggle("selected", row.dataset.key === id);
  follow(id, followed.abort.signal);
}

// ---------- actions ----------
async function act(label, fn) {
  try {
    const result = await fn();
    flash(label(result));
  } catch (err) {
    flash(err.message, true);
  }
  refresh();
}

// ---------- new task ----------
const FIELD_ERRORS = () => [...$("task-form").querySelectorAll(".field-error")];

// "loc: message; loc: message" (the API's 422 detail) → [[field, message], ...]; the field is the
// error box it belongs in ("" for the form as a whole).
function fieldErrors(detail) {
  const known = FIELD_ERRORS().map((p) => p.dataset.field).filter(Boolean);
  return detail.split("; ").map((part) => {
    const m = /^([A-Za-z_][\w.]*): ([\s\S]*)$/.exec(part);
    if (!m) return ["", part];
    let loc = m[1].replace(/\.\d+$/, "").replace(/^repos$/, "repo");
    if (loc === "budget") loc = "budget.usd";
    return known.includes(loc) ? [loc, m[2]] : ["", part];
  });
}

function showFormErrors(pairs) {
  const boxes = FIELD_ERRORS();
  for (const box of boxes) {
    const texts = pairs.filter(([f]) => f === box.dataset.field).map(([, t]) => t);
    box.textContent = texts.join("; ");
    box.hidden = texts.length === 0;
    const input = $("task-form").querySelector(`[aria-describedby~="${box.id}"]`);
    if (input) input.setAttribute("aria-invalid", String(texts.length > 0));
  }
  const first = boxes.find((b) => !b.hidden && b.dataset.field);
  const input = first && $("task-form").querySelector(`[aria-describedby~="${first.id}"]`);
  if (input) input.focus();
}

function numberOrNull(id) {
  const raw = $(id).value.trim();
  return raw === "" ? null : Number(raw);
}

function newTaskBody() {
  const body = { title: $("nt-title").value.trim() };
  const description = $("nt-description").value.trim();
  if (description) body.description = description;
  const repo = $("nt-repo").value.trim();
  if (repo) body.repo = repo;
  const priority = numberOrNull("nt-priority");
  body.priority = priority ?? 0;
  const picked = [...$("nt-deps").selectedOptions].map((o) => o.value);
  const typed = $("nt-deps-ids").value.split(/[\s,]+/).filter(Boolean);
  const deps = [...new Set([...picked, ...typed])];
  if (deps.length) body.depends_on = deps;
  const budget = {};
  for (const [key, id] of [["usd", "nt-budget-usd"], ["turns", "nt-budget-turns"], ["wall_seconds", "nt-budget-wall"]]) {
    const value = numberOrNull(id);
    if (value !== null) budget[key] = value;
  }
  if (Object.keys(budget).length) body.budget = budget;
  return body;
}

function openNewTask() {
  const form = $("task-form");
  form.reset();
  showFormErrors([]);
  const deps = $("nt-deps");
  deps.replaceChildren(...latest.tasks.map((t) => new Option(`${t.id} · ${clip(t.title, 50)}`, t.id)));
  deps.hidden = latest.tasks.length === 0;
  $("task-dialog").showModal();
  $("nt-title").focus();
}

// Creates the task, then queues it when asked; a task whose queueing is refused is deleted again, so
// an error leaves nothing behind.
async function submitNewTask(ev) {
  ev.preventDefault();
  const button = $("nt-submit");
  if (button.disabled) return;
  button.disabled = true;
  showFormErrors([]);
  try {
    let task;
    try {
      task = await api("/api/tasks", { method: "POST", body: newTaskBody() });
    } catch (err) {
      showFormErrors(fieldErrors(err.message));
      return;
    }
    if ($("nt-queue").checked) {
      try {
        await api(`/api/queue/add/${encodeURIComponent(task.id)}`, { method: "POST" });
      } catch (err) {
        const pairs = fieldErrors(err.message);
        try {
          await api(`/api/tasks/${encodeURIComponent(task.id)}`, { method: "DELETE" });
        } catch (undo) {
          pairs.push(["", `task ${task.id} was created but not queued, and could not be removed: ${undo.message}`]);
        }
        showFormErrors(pairs);
        return;
      }
    }
    $("task-dialog").close();
    flash($("nt-queue").checked ? `Queued ${task.id}` : `Created ${task.id}`);
    refresh();
  } finally {
    button.disabled = false;
  }
}

// ---------- a task's actions ----------
let rejecting = null; // the id of the task the reject dialog is for

function openReject(id) {
  rejecting = id;
  $("reject-form").reset();
  $("reject-task").textContent = id;
  $("reject-error").hidden = true;
  $("reject-dialog").showModal();
  $("reject-reason").focus();
}

async function submitReject(ev) {
  ev.preventDefault();
  const reason = $("reject-reason").value.trim();
  const error = $("reject-error");
  try {
    await api(`/api/tasks/${encodeURIComponent(rejecting)}/reject`, { method: "POST", body: { reason } });
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    $("reject-reason").focus();
    return;
  }
  $("reject-dialog").close();
  flash(`Rejected ${rejecting}`);
  refresh();
}

function onTaskAction(ev) {
  const button = ev.target.closest("button[data-action]");
  const row = ev.target.closest("tr");
  if (!button || !row) return;
  const id = row.dataset.key;
  const action = button.dataset.action;
  const path = `/api/tasks/${encodeURIComponent(id)}`;
  if (action === "reject") return openReject(id);
  if ((action === "cancel" || action === "delete") && !button.classList.contains("armed")) {
    const label = button.textContent;
    button.classList.add("armed");
    button.textContent = "Sure?";
    setTimeout(() => { button.classList.remove("armed"); button.textContent = label; }, 4000);
    return;
  }
  if (action === "cancel") {
    act(() => `Cancelled ${id}: back to pending`, () => api(`/api/queue/${encodeURIComponent(id)}`, { method: "DELETE" }));
  } else if (action === "delete") {
    act(() => `Deleted ${id}`, () => api(path, { method: "DELETE" }));
  } else if (action === "approve") {
    act(() => `Approved ${id}`, () => api(`${path}/approve`, { method: "POST" }));
  }
}

const setSetting = (key, value) => api("/api/queue/settings", { method: "POST", body: { key, value } });

function wire() {
  $("agents").tBodies[0].addEventListener("click", (ev) => {
    const row = ev.target.closest("tr");
    if (!row) return;
    const button = ev.target.closest("button");
    const id = row.dataset.key;
    if (!button) return openLog(id);
    if (button.dataset.action === "kill" && !button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = "Sure?";
      setTimeout(() => { button.classList.remove("armed"); button.textContent = "Kill"; }, 4000);
      return;
    }
    const action = button.dataset.action;
    act((a) => (action === "kill" ? `Killed ${a.id}` : `Retrying as ${a.id}`), async () => {
      const agent = await api(`/api/agents/${encodeURIComponent(id)}/${action}`, { method: "POST" });
      if (action === "retry") openLog(agent.id);
      return agent;
    });
  });
  $("queue").tBodies[0].addEventListener("click", (ev) => {
    const id = ev.target.closest("[data-agent]")?.dataset.agent;
    if (id) openLog(id);
  });
  $("queue-pause").onclick = () => act(() => "Queue paused", () => setSetting("paused", true));
  $("queue-resume").onclick = () => act(() => "Queue resumed", () => setSetting("paused", false));
  $("max-concurrent").oninput = (ev) => (ev.target.dataset.edited = "1");
  $("max-concurrent-save").onclick = () => {
    const input = $("max-concurrent");
    delete input.dataset.edited;
    act((s) => `Max concurrent: ${s.max_concurrent}`, () => setSetting("max_concurrent", Number(input.value)));
  };
  $("max-concurrent").onkeydown = (ev) => {
    if (ev.key === "Enter") $("max-concurrent-save").click();
  };
  $("stop-on-failure").onchange = (ev) =>
    act((s) => `Stop on failure: ${s.stop_on_failure ? "on" : "off"}`, () => setSetting("stop_on_failure", ev.target.checked));
  $("tasks").tBodies[0].addEventListener("click", onTaskAction);
  $("new-task").onclick = openNewTask;
  $("task-form").onsubmit = submitNewTask;
  $("nt-cancel").onclick = () => $("task-dialog").close();
  $("reject-form").onsubmit = submitReject;
  $("reject-cancel").onclick = () => $("reject-dialog").close();
  $("token-forget").hidden = !token;
  $("token-forget").onclick = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  };
  $("token-dialog").addEventListener("cancel", (ev) => ev.preventDefault());
}

async function showHealth() {
  try {
    const h = await api("/api/health");
    $("health").textContent = `v${h.version} · ${h.instance_id} · ${h.runtime}`;
  } catch {
    $("health").textContent = "";
  }
}

async function start() {
  wire();
  if (!token) await renewToken(); // before the first call: the health check's details need the token
  showHealth();
  if (window.liveFeed) window.liveFeed.start(); // live.js: follows /api/changes, re-reads on a change
  else poll();
}

start();
