// The dashboard follows GET /api/changes (SSE over fetch, so the token travels in a header) and re-reads
// what it shows when something changed, instead of polling. Loaded before app.js; uses its helpers
// (refresh, authHeaders, renewToken, sseEvents, setConn, sleep) only once app.js has run.
"use strict";

window.liveFeed = (() => {
  const FALLBACK_MS = 30000; // a slow re-read all the same, should a change ever slip past
  const RETRY_MS = [500, 1000, 2000, 5000, 10000];
  const COALESCE_MS = 150; // changes that come together cost one re-read
  let cursor = null; // the id of the last message: a reconnect resumes after it
  let stream = "connecting"; // connecting | live | reconnecting
  let lastOk = true;
  let running = null; // the re-read in flight
  let again = false; // something changed while it ran
  let scheduled = 0;
  const listeners = []; // (reason) => void: other parts of the page that re-read too (the charts)
  const watchers = new Set(); // (change | null) => void: each change as it comes; null: anything may have

  function show(error) {
    const conn = document.getElementById("conn");
    if (stream === "live" && lastOk) setConn("live", `live · ${new Date().toLocaleTimeString()}`);
    else if (stream === "live") setConn("offline", `offline: ${error ?? "?"}`);
    else if (stream === "reconnecting") setConn("reconnecting", "reconnecting…");
    conn.title = cursor ? `last change ${cursor}` : "";
  }

  async function reread(reason) {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const result = await refresh(); // true, or the error it met
        lastOk = result === true;
        show(lastOk ? null : result?.message);
        for (const fn of listeners) {
          try {
            fn(reason);
          } catch {
            // a listener's trouble is its own
          }
        }
      } while (again);
    })().finally(() => (running = null));
    return running;
  }

  function soon(reason) {
    if (scheduled) return;
    scheduled = setTimeout(() => {
      scheduled = 0;
      reread(reason);
    }, COALESCE_MS);
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch {
      return null;
    }
  }

  function tell(change) {
    for (const fn of [...watchers]) {
      try {
        fn(change);
      } catch {
        // a watcher's trouble is its own
      }
    }
  }

  async function follow() {
    let attempt = 0;
    for (;;) {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (cursor) headers["Last-Event-ID"] = cursor;
      try {
        const res = await fetch("/api/changes", { headers, cache: "no-store" });
        if (res.status === 401) {
          await renewToken(headers.Authorization);
          continue;
        }
        if (!res.ok) throw new Error(`${res.status}`);
        let first = true;
        for await (const ev of sseEvents(res.body)) {
          if (ev.id) cursor = ev.id;
          if (first) {
            // (re)connected: re-read everything once, whatever the first message says
            first = false;
            attempt = 0;
            stream = "live";
            soon("connected");
            tell(null);
          } else if (ev.event === "change" || ev.event === "reset") {
            soon(ev.event);
            tell(ev.event === "change" ? parse(ev.data) : null);
          }
        }
      } catch {
        // the stream broke: say so, then come back after it
      }
      stream = "reconnecting";
      show();
      await sleep(RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]);
    }
  }

  return {
    start() {
      show();
      follow();
      setInterval(() => reread("fallback"), FALLBACK_MS);
    },
    onReread(fn) {
      listeners.push(fn);
    },
    // each change as it comes ({kind, id, status, task_id}; null after a reset or a reconnect); returns
    // the function that stops it
    onChange(fn) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
    get state() {
      return stream;
    },
  };
})();
