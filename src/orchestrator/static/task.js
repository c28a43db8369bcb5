// The task page (#/tasks/<id>): the task's facts, its PR as the service knows it, what its agents cost,
// its events, its timeline (agents as bars on a time axis, drawn as plain SVG) and its branch's diff
// (diff.js). Uses app.js's helpers ($, api, cost, count, duration, webUrl). Everything the task, its agents
// or GitHub wrote is set as text, never as markup.
"use strict";

const TASK_POLL_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
const STEP_NAMES = { starter: "plan", coding: "code", reviewer: "review", deployer: "deploy", verifier: "verify", auditor: "audit" };
const WAIT_NAMES = { checks: "checks", mergeable: "mergeable", "approval:merge": "merge gate", "approval:deploy": "deploy gate" };

let taskView = null; // the open page: { id, detail, timeline, head (branch@commit the diff shows), diffPage }

function svg(name, attrs = {}) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function el(name, className, text) {
  const node = document.createElement(name);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const setText = (id, text) => ($(id).textContent = text == null || text === "" ? "–" : String(text));
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "");

function stepName(agent) {
  const name = STEP_NAMES[agent.agent_type] || agent.agent_type;
  if (agent.round <= 1) return name;
  return agent.agent_type === "coding" ? `fix-up ${agent.round - 1}` : `${name} ${agent.round}`;
}

// ---------- the PR as the service knows it (its events and the task's wait) ----------
function prState(task) {
  const last = (...types) => [...task.events].reverse().find((e) => types.includes(e.type));
  const checks = last("pr.checks.passed", "pr.checks.failed");
  let checksText = "–";
  if (task.waiting_for === "checks") checksText = "pending";
  else if (checks?.type === "pr.checks.failed") {
    const failing = Array.isArray(checks.payload?.failing) ? checks.payload.failing.map(String) : [];
    checksText = `failed${failing.length ? `: ${failing.join(", ")}` : ""}`;
  } else if (checks) checksText = checks.payload?.checks === "none" ? "none to wait for" : "passed";
  const review = last("pr.changes.requested", "pr.ready", "pr.merged", "pr.closed");
  const reviewers = task.agents.filter((a) => a.agent_type === "reviewer");
  let reviewText = reviewers.length ? `${reviewers.length} review${reviewers.length > 1 ? "s" : ""}` : "–";
  if (review?.type === "pr.changes.requested") reviewText = "people asked for changes";
  else if (review || task.waiting_for === "mergeable" || task.waiting_for === "approval:merge") reviewText = "approved";
  if (task.review_rounds) reviewText += ` (${task.review_rounds} fix-up round${task.review_rounds > 1 ? "s" : ""})`;
  const closed = last("pr.merged", "pr.closed");
  let mergeText = "–";
  if (closed) mergeText = closed.type === "pr.merged" || closed.payload?.merged ? "merged" : "closed";
  else if (task.waiting_for === "mergeable") mergeText = "waiting until GitHub can merge it";
  else if (task.waiting_for === "approval:merge") mergeText = "waiting for a person's approval";
  else if (last("pr.ready")) mergeText = "ready";
  return { checksText, reviewText, mergeText };
}

function renderHead(task, line) {
  $("tp-id").textContent = task.id;
  const status = $("tp-status");
  status.textContent = task.status.replace("_", " ");
  status.className = `badge s-${task.status}`;
  status.dataset.status = task.status;
  $("tp-title").textContent = task.title;
  const open = line.waits.find((w) => !w.end);
  setText("tp-waiting", task.waiting_for ? `${task.waiting_for}${open ? ` since ${clock(open.start)}` : ""}` : "nothing");
  setText("tp-stage", task.workflow_step);
  setText("tp-repo", task.repo);
  setText("tp-branch", task.branch);
  const pr = $("tp-pr");
  const shown = JSON.stringify([task.pr_url, task.pr_number, task.head_sha]);
  if (pr.dataset.shown === shown) return renderFacts(task, line); // the link stays, and the focus on it
  pr.dataset.shown = shown;
  pr.replaceChildren();
  if (webUrl(task.pr_url)) {
    const a = el("a", "", `#${task.pr_number ?? "?"}`);
    a.href = task.pr_url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    pr.append(a);
    if (task.head_sha) pr.append(" ", el("code", "muted", String(task.head_sha).slice(0, 12)));
  } else pr.textContent = task.pr_number ? `#${task.pr_number}` : "–";
  renderFacts(task, line);
}

function renderFacts(task, line) {
  const { checksText, reviewText, mergeText } = prState(task);
  setText("tp-checks", checksText);
  setText("tp-review", reviewText);
  setText("tp-merge", mergeText);
  $("tp-error").hidden = !task.error;
  $("tp-error").textContent = task.error || "";
  setText("tp-cost", cost(line.cost_usd));
  setText("tp-tokens", `${count(line.input_tokens)} / ${count(line.output_tokens)}`);
  setText("tp-agents", line.agents.length);
  const done = task.status === "completed" || task.status === "failed";
  const end = done ? Date.parse(task.updated_at) : Date.parse(line.now);
  setText("tp-elapsed", duration(end - Date.parse(task.created_at)));
}

function renderEvents(events) {
  const body = $("tp-events").tBodies[0];
  const rows = [...events].reverse().map((e) => {
    const tr = el("tr");
    tr.dataset.type = e.type;
    const detail = e.error || e.payload?.reason || e.payload?.summary || (e.payload?.waited_for ? `after waiting for ${e.payload.waited_for}` : "");
    tr.append(el("td", "", clock(e.created_at)), el("td", "mono", e.type), el("td", "", e.status), el("td", "wrap", String(detail)));
    return tr;
  });
  body.replaceChildren(...rows);
  $("tp-events-count").textContent = String(events.length);
  $("tp-events-empty").hidden = events.length > 0;
}

// ---------- the timeline ----------
function timeTicks(t0, t1, n) {
  const span = t1 - t0;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].map((s) => s * 1000);
  const step = steps.find((s) => span / s <= n) || steps[steps.length - 1];
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return ticks;
}

function describe(agent) {
  const parts = [`${stepName(agent)} (${agent.agent_type} agent ${agent.id})`, agent.status];
  parts.push(`${clock(agent.start)}–${agent.end ? clock(agent.end) : "now"}`);
  parts.push(duration((agent.end ? Date.parse(agent.end) : Date.now()) - Date.parse(agent.start)));
  if (agent.cost_usd != null) parts.push(cost(agent.cost_usd));
  if (agent.input_tokens != null) parts.push(`${count(agent.input_tokens)} in / ${count(agent.output_tokens ?? 0)} out tokens`);
  if (agent.end_reason) parts.push(`ended: ${agent.end_reason}`);
  if (agent.flags.length) parts.push(`flags: ${agent.flags.join(", ")}`);
  if (agent.error) parts.push(agent.error);
  return parts.join(" · ");
}

function describeWait(wait) {
  const name = WAIT_NAMES[wait.kind] || wait.kind;
  const span = duration((wait.end ? Date.parse(wait.end) : Date.now()) - Date.parse(wait.start));
  return `waiting: ${name} · ${clock(wait.start)}–${wait.end ? clock(wait.end) : "now"} · ${span}${wait.outcome ? ` · ended by ${wait.outcome}` : ""}`;
}

function bar(g, { x, y, w, h, cls, title, label, data }) {
  const group = svg("g", { class: `bar ${cls}`, tabindex: 0, role: "img", "aria-label": title });
  Object.assign(group.dataset, data);
  const t = svg("title");
  t.textContent = title;
  group.append(t, svg("rect", { x, y, width: Math.max(w, 3), height: h, rx: 3 }));
  if (label && w > label.length * 6.5 + 8) {
    const text = svg("text", { x: x + 5, y: y + h / 2 + 4, class: "bar-label" });
    text.textContent = label;
    group.append(text);
  }
  const show = () => ($("tp-bar-detail").textContent = title);
  group.addEventListener("focus", show);
  group.addEventListener("click", show);
  g.append(group);
  return group;
}

function drawTimeline(line) {
  const box = $("tp-timeline");
  const width = Math.max(box.clientWidth, 300);
  const labelW = width < 520 ? 64 : 104;
  const rowH = 26;
  const top = 22;
  const rows = [...line.agents.map((a) => ({ kind: "agent", item: a })), ...(line.waits.length ? [{ kind: "waits" }] : [])];
  const height = top + Math.max(rows.length, 1) * rowH + 8;
  const now = Date.parse(line.now);
  const starts = [Date.parse(line.created_at), ...line.agents.map((a) => Date.parse(a.start)), ...line.waits.map((w) => Date.parse(w.start))];
  const ends = [...line.agents.map((a) => (a.end ? Date.parse(a.end) : now)), ...line.waits.map((w) => (w.end ? Date.parse(w.end) : now))];
  const t0 = Math.min(...starts);
  const t1 = Math.max(t0 + 1000, ...ends);
  const plotW = width - labelW - 12;
  const xOf = (t) => labelW + ((t - t0) / (t1 - t0)) * plotW;
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "timeline-svg", role: "group", "aria-label": `Timeline of ${line.agents.length} agents` });
  const axis = svg("g", { class: "axis" });
  for (const t of timeTicks(t0, t1, width < 520 ? 3 : 7)) {
    const x = xOf(t);
    axis.append(svg("line", { x1: x, x2: x, y1: top - 4, y2: height - 4 }));
    const label = svg("text", { x, y: 12, "text-anchor": "middle" });
    label.textContent = clock(new Date(t).toISOString());
    axis.append(label);
  }
  chart.append(axis);
  const bars = svg("g", { class: "bars" });
  rows.forEach((row, i) => {
    const y = top + i * rowH + 4;
    const name = svg("text", { x: 4, y: y + 13, class: "row-label" });
    name.textContent = row.kind === "agent" ? stepName(row.item) : "waits";
    bars.append(name);
    if (row.kind === "agent") {
      const a = row.item;
      const x = xOf(Date.parse(a.start));
      const w = xOf(a.end ? Date.parse(a.end) : now) - x;
      const flagged = a.flags.length > 0;
      const cls = `t-${a.agent_type} s-${a.status}${a.end ? "" : " open"}${flagged ? " flagged" : ""}`;
      const group = bar(bars, { x, y, w, h: rowH - 8, cls, title: describe(a), label: a.status === "completed" ? "" : a.status, data: { key: `agent:${a.id}`, agentId: a.id, agentType: a.agent_type, status: a.status, flags: a.flags.join(" ") } });
      if (flagged) {
        // the flags' names right of the bar, or inside its end, where they fit; else the mark alone (the
        // bar's title names them)
        const words = `⚑ ${a.flags.join(", ")}`;
        const need = words.length * 6.2;
        const right = x + Math.max(w, 3) + 3;
        const outside = right + need <= width;
        const inside = !outside && w > need + 70;
        const at = outside ? { x: right, class: "flag-mark" }
          : inside ? { x: x + w - 5, "text-anchor": "end", class: "flag-mark inside" }
          : { x: Math.min(right, width - 12), class: "flag-mark" };
        const mark = svg("text", { ...at, y: y + 13 });
        mark.textContent = outside || inside ? words : "⚑";
        group.append(mark);
      }
    } else {
      for (const [n, wt] of line.waits.entries()) {
        const x = xOf(Date.parse(wt.start));
        const w = xOf(wt.end ? Date.parse(wt.end) : now) - x;
        bar(bars, { x, y, w, h: rowH - 8, cls: `wait${wt.end ? "" : " open"}`, title: describeWait(wt), label: WAIT_NAMES[wt.kind] || wt.kind, data: { key: `wait:${n}`, wait: wt.kind } });
      }
    }
  });
  chart.append(bars);
  const focused = document.activeElement?.closest?.("#tp-timeline g.bar")?.dataset.key;
  box.replaceChildren(chart);
  if (!line.agents.length) box.append(el("p", "empty", "No agents yet."));
  if (focused) box.querySelector(`g.bar[data-key="${CSS.escape(focused)}"]`)?.focus(); // a redraw keeps the focus
}

// Drawn again only when something in it changed or still runs (an open bar grows with the clock).
function timelineChanged(before, line) {
  if (!before || line.agents.some((a) => !a.end) || line.waits.some((w) => !w.end)) return true;
  return JSON.stringify({ ...before, now: 0 }) !== JSON.stringify({ ...line, now: 0 });
}

function drawLegend() {
  const legend = $("tp-legend");
  if (legend.childElementCount) return;
  for (const [type, name] of Object.entries(STEP_NAMES)) {
    const li = el("li", `t-${type}`, name);
    legend.append(li);
  }
  legend.append(el("li", "wait", "waiting"), el("li", "failed", "failed / flagged"));
}

// ---------- the page ----------
async function loadTask(view) {
  const id = view.id;
  const [detail, line] = await Promise.all([
    api(`/api/tasks/${encodeURIComponent(id)}`),
    api(`/api/tasks/${encodeURIComponent(id)}/timeline`),
  ]);
  if (taskView !== view) return;
  const redraw = timelineChanged(view.timeline, line);
  view.detail = detail;
  view.timeline = line;
  renderHead(detail, line);
  renderEvents(detail.events);
  if (redraw) drawTimeline(line);
  const head = `${detail.branch || ""}@${detail.head_sha || ""}`;
  if (head !== taskView.head) {
    taskView.head = head;
    loadDiff(id, 1);
  }
}

async function pollTask(view) {
  const id = view.id;
  while (taskView === view) {
    try {
      await loadTask(view);
      if (taskView === view) $("task-page").dataset.state = "loaded";
    } catch (err) {
      if (taskView !== view) return;
      if (err.status === 404) {
        $("tp-title").textContent = `No task ${id}`;
        $("task-page").dataset.state = "missing";
        return;
      }
    }
    await taskNews(view.id);
  }
}

// Until a change of this task (its row, agents, queue item or events) comes on live.js's stream, or 30 s
// pass; without live.js, TASK_POLL_MS.
function taskNews(id) {
  if (!window.liveFeed) return sleep(TASK_POLL_MS);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop();
      resolve();
    };
    const timer = setTimeout(done, 30000);
    const stop = window.liveFeed.onChange((c) => {
      if (!c || c.id === id || c.task_id === id) done();
    });
  });
}

function openTaskPage(id) {
  if (taskView?.id === id) return;
  taskView = { id, detail: null, timeline: null, head: null, diffPage: 1 };
  document.body.classList.add("task-open");
  const page = $("task-page");
  page.hidden = false;
  page.dataset.taskId = id;
  page.dataset.state = "loading";
  delete $("tp-pr").dataset.shown;
  for (const idName of ["tp-title", "tp-id"]) $(idName).textContent = idName === "tp-id" ? id : "";
  $("tp-timeline").replaceChildren();
  $("tp-events").tBodies[0].replaceChildren();
  $("tp-diff").replaceChildren();
  $("tp-bar-detail").textContent = "Focus or click a bar for its details.";
  drawLegend();
  window.scrollTo(0, 0);
  pollTask(taskView);
  $("tp-back").focus();
}

function closeTaskPage() {
  taskView = null;
  document.body.classList.remove("task-open");
  $("task-page").hidden = true;
}

// A task id as the API makes them (no "." or ".." a URL would resolve): anything else is no task page.
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;

function route() {
  const m = /^#\/tasks\/([^/?#]+)$/.exec(location.hash);
  let id = null;
  try {
    id = m ? decodeURIComponent(m[1]) : null;
  } catch {
    id = null; // a malformed escape
  }
  if (id && TASK_ID.test(id)) openTaskPage(id);
  else closeTaskPage();
}

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => {
  if (taskView?.timeline) drawTimeline(taskView.timeline);
});
route();
