// The dashboard's charts: plain SVG drawn here from GET /api/stats (no chart library, so no build step
// and nothing but this origin's scripts). Re-read after the lists are (live.js), at most every 5 s.
// Every text from the service is set with textContent. Keyboard: each chart takes focus; the arrow
// keys walk its bars and the line under it says the figure.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const MIN_GAP_MS = 5000;
  const HEIGHT = 150;
  const PAD = { top: 10, right: 8, bottom: 22, left: 44 };
  let data = null;
  let lastRead = 0;
  let timer = 0;
  let inFlight = false;

  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const svgEl = (tag, attrs = {}, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const usd = (v) => `$${v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(v ? 4 : 0)}`;
  const hourLabel = (iso) => `${new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false })}`;
  const dayLabel = (iso) => new Date(iso).toLocaleDateString([], { month: "short", day: "numeric", timeZone: "UTC" });
  const pct = (v) => (v == null ? "–" : `${Math.round(v * 100)}%`);
  const secs = (msv) => (msv == null ? "–" : typeof duration === "function" ? duration(msv) : `${(msv / 1000).toFixed(1)} s`);

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v) ?? v;
  }

  // A chart in a figure: title, the SVG, a readout for the focused bar, and the same figures as a table.
  function figure(id, caption) {
    const fig = el("figure", { class: "chart", id });
    fig.append(el("figcaption", {}, caption));
    const svg = svgEl("svg", { tabindex: 0, role: "group", "aria-describedby": `${id}-readout` });
    const readout = el("p", { class: "readout", id: `${id}-readout`, "aria-live": "polite" });
    const details = el("details");
    details.append(el("summary", {}, "As a table"));
    fig.append(svg, readout, details);
    return fig;
  }

  function table(headers, rows) {
    const t = el("table", { class: "chart-table" });
    const head = t.createTHead().insertRow();
    headers.forEach((h, i) => head.append(el("th", i ? { class: "num" } : {}, h)));
    const body = t.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      r.forEach((v, i) => tr.append(el("td", i ? { class: "num" } : {}, String(v))));
    }
    return t;
  }

  // Bars (one series) or lines (several) over labelled slots; `say(i)` is the figure of slot i in words.
  function draw(fig, { series, labels, format, say, summary, tickEvery, whole = false }) {
    const svg = fig.querySelector("svg");
    const width = Math.max(260, Math.floor(fig.clientWidth || 480));
    svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", HEIGHT);
    svg.replaceChildren(svgEl("title", {}, summary));
    svg.dataset.summary = summary;
    const n = labels.length;
    const plotW = width - PAD.left - PAD.right;
    const bars = series.length === 1;
    const padTop = bars ? PAD.top : PAD.top + 16; // room for the legend above the lines
    const plotH = HEIGHT - padTop - PAD.bottom;
    let top = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
    if (whole && top > 1 && top % 2) top += 1; // the middle line on a whole number
    const x = (i) => PAD.left + (plotW * i) / n;
    const y = (v) => padTop + plotH - (plotH * v) / top;
    for (const f of [0, 0.5, 1]) {
      const yy = y(top * f);
      svg.append(svgEl("line", { x1: PAD.left, x2: width - PAD.right, y1: yy, y2: yy, class: "grid" }));
      svg.append(svgEl("text", { x: PAD.left - 6, y: yy + 4, class: "tick", "text-anchor": "end" }, format(top * f)));
    }
    labels.forEach((label, i) => {
      if (i % tickEvery === 0) {
        svg.append(svgEl("text", { x: x(i) + plotW / n / 2, y: HEIGHT - 6, class: "tick", "text-anchor": "middle" }, label));
      }
    });
    series.forEach((s, k) => {
      if (bars) {
        s.values.forEach((v, i) => {
          const h = Math.max(0, padTop + plotH - y(v));
          svg.append(svgEl("rect", { x: x(i) + 1, y: y(v), width: Math.max(1, plotW / n - 2), height: h, class: `bar c${k}`, "data-i": i }));
        });
      } else {
        const pts = s.values.map((v, i) => `${x(i) + plotW / n / 2},${y(v)}`).join(" ");
        svg.append(svgEl("polyline", { points: pts, class: `line c${k}` }));
      }
    });
    if (!bars) {
      const legend = svgEl("g", { class: "legend" });
      series.forEach((s, k) => {
        const lx = PAD.left + 8 + k * 120;
        legend.append(svgEl("rect", { x: lx, y: 2, width: 10, height: 10, class: `bar c${k}` }));
        legend.append(svgEl("text", { x: lx + 14, y: 11, class: "tick" }, s.name));
      });
      svg.append(legend);
    }
    const marker = svgEl("rect", { class: "focus-mark", y: padTop, height: plotH, width: plotW / n, x: -999 });
    svg.append(marker);
    const readout = fig.querySelector(".readout");
    let at = Number(svg.dataset.at ?? n - 1);
    if (!(at >= 0 && at < n)) at = n - 1;
    const show = (i) => {
      at = i;
      svg.dataset.at = String(i);
      marker.setAttribute("x", x(i));
      readout.textContent = say(i);
    };
    svg.onfocus = () => show(at);
    svg.onblur = () => marker.setAttribute("x", -999);
    svg.onkeydown = (ev) => {
      const step = { ArrowLeft: -1, ArrowRight: 1, Home: -n, End: n }[ev.key];
      if (step === undefined) return;
      ev.preventDefault();
      show(Math.min(n - 1, Math.max(0, at + step)));
    };
    svg.onpointermove = (ev) => {
      const box = svg.getBoundingClientRect();
      const i = Math.floor(((ev.clientX - box.left) * (width / box.width) - PAD.left) / (plotW / n));
      if (i >= 0 && i < n) show(i);
    };
    if (!readout.textContent) readout.textContent = summary;
    else if (document.activeElement === svg) show(at);
    else readout.textContent = summary;
  }

  function drawTypes(fig, types) {
    const svg = fig.querySelector("svg");
    const width = Math.max(260, Math.floor(fig.clientWidth || 480));
    const rowH = 26;
    const height = Math.max(40, types.length * rowH + 8);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const words = types.map((t) => `${t.agent_type}: ${pct(t.success_rate)} of ${t.ended} ended completed, mean ${secs(t.mean_duration_ms)}`);
    const summary = types.length ? words.join("; ") : "No agent ended in the last 24 hours";
    svg.replaceChildren(svgEl("title", {}, summary));
    svg.dataset.summary = summary;
    const labelW = Math.min(110, width * 0.3);
    const barW = width - labelW - 8;
    types.forEach((t, i) => {
      const yy = 4 + i * rowH;
      svg.append(svgEl("text", { x: 0, y: yy + 15, class: "tick type" }, t.agent_type));
      svg.append(svgEl("rect", { x: labelW, y: yy + 3, width: barW, height: 16, class: "track" }));
      svg.append(svgEl("rect", { x: labelW, y: yy + 3, width: barW * (t.success_rate ?? 0), height: 16, class: "bar c0" }));
      svg.append(svgEl("text", { x: labelW + 6, y: yy + 15, class: "tick on-bar" }, `${pct(t.success_rate)} · ${t.completed}/${t.ended} · ${secs(t.mean_duration_ms)}`));
    });
    if (!types.length) svg.append(svgEl("text", { x: 0, y: 24, class: "tick" }, "No agent ended in the last 24 hours."));
    const readout = fig.querySelector(".readout");
    let at = 0;
    svg.onfocus = () => (readout.textContent = words[at] ?? summary);
    svg.onblur = () => (readout.textContent = "");
    svg.onkeydown = (ev) => {
      const step = { ArrowUp: -1, ArrowDown: 1, ArrowLeft: -1, ArrowRight: 1 }[ev.key];
      if (step === undefined || !types.length) return;
      ev.preventDefault();
      at = Math.min(types.length - 1, Math.max(0, at + step));
      readout.textContent = words[at];
    };
    if (document.activeElement !== svg) readout.textContent = types.length ? "" : summary; // the bars say it
  }

  function render() {
    const root = document.getElementById("charts");
    if (!root || !data) return;
    if (!root.childElementCount) {
      root.append(
        figure("chart-spend-hour", "Spend per hour (24 h)"),
        figure("chart-spend-day", "Spend per day (14 days)"),
        figure("chart-load", "Agents running and queue depth (24 h, peak per hour)"),
        figure("chart-types", "Success rate and mean duration by agent type (24 h)"),
      );
    }
    root.hidden = false;
    const hours = data.hours;
    const hourLabels = hours.map((h) => hourLabel(h.start));
    const spendH = hours.map((h) => h.spend_usd);
    const totalH = spendH.reduce((a, b) => a + b, 0);
    draw(document.getElementById("chart-spend-hour"), {
      series: [{ name: "spend", values: spendH }],
      labels: hourLabels,
      format: usd,
      tickEvery: 6,
      summary: `Spend in the last 24 hours: ${usd(totalH)}`,
      say: (i) => `${hourLabels[i]}: ${usd(spendH[i])}`,
    });
    const days = data.days;
    const dayLabels = days.map((d) => dayLabel(d.start));
    const spendD = days.map((d) => d.spend_usd);
    draw(document.getElementById("chart-spend-day"), {
      series: [{ name: "spend", values: spendD }],
      labels: dayLabels,
      format: usd,
      tickEvery: 4,
      summary: `Spend in the last ${days.length} days: ${usd(spendD.reduce((a, b) => a + b, 0))}`,
      say: (i) => `${dayLabels[i]}: ${usd(spendD[i])}`,
    });
    const running = hours.map((h) => h.agents_running);
    const depth = hours.map((h) => h.queue_depth);
    const whole = (v) => String(Math.round(v));
    draw(document.getElementById("chart-load"), {
      series: [{ name: "agents running", values: running }, { name: "queue depth", values: depth }],
      labels: hourLabels,
      format: whole,
      whole: true,
      tickEvery: 6,
      summary: `Peak agents running ${Math.max(0, ...running)}, peak queue depth ${Math.max(0, ...depth)} in the last 24 hours`,
      say: (i) => `${hourLabels[i]}: up to ${running[i]} running, up to ${depth[i]} queued`,
    });
    drawTypes(document.getElementById("chart-types"), data.by_type);
    const tables = [
      ["chart-spend-hour", ["Hour", "Spend"], hours.map((h, i) => [hourLabels[i], usd(h.spend_usd)])],
      ["chart-spend-day", ["Day", "Spend"], days.map((d, i) => [dayLabels[i], usd(d.spend_usd)])],
      ["chart-load", ["Hour", "Running", "Queued"], hours.map((h, i) => [hourLabels[i], h.agents_running, h.queue_depth])],
      ["chart-types", ["Type", "Ended", "Completed", "Success", "Mean"],
        data.by_type.map((t) => [t.agent_type, t.ended, t.completed, pct(t.success_rate), secs(t.mean_duration_ms)])],
    ];
    for (const [id, headers, rows] of tables) {
      const details = document.querySelector(`#${id} details`);
      details.querySelector("table")?.remove();
      details.append(table(headers, rows));
    }
  }

  async function read() {
    if (inFlight) return;
    inFlight = true;
    lastRead = Date.now();
    try {
      data = await api("/api/stats?hours=24&days=14");
      render();
    } catch {
      // the lists say when the service cannot be reached
    } finally {
      inFlight = false;
    }
  }

  // after each re-read of the lists: at once if the last read is old enough, else at the 5 s mark
  function wanted() {
    if (timer) return;
    const wait = Math.max(0, lastRead + MIN_GAP_MS - Date.now());
    timer = setTimeout(() => {
      timer = 0;
      read();
    }, wait);
  }

  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(render, 150);
  });
  if (window.liveFeed) window.liveFeed.onReread(wanted);
})();
