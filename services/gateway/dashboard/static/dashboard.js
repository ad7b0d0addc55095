// The bridge dashboard: joins as an ephemeral client of type "dashboard" (the
// hub removes it when this page's stream ends), follows the default channels
// live (Server-Sent Events, else long-poll), and reads the operator routes
// once a second. No framework, no build step, no CDN.
"use strict";

(function () {
  const CHANNELS = ["jobs", "system", "photos", "sessions"];
  const SSE_TYPES = [
    "connection_established", "jobs_snapshot", "system_snapshot", "job_created", "job_started", "job_progress",
    "job_completed", "job_failed", "photo_imported", "photo_analyzed", "session_created", "system_status",
    "resource_warning", "messages_dropped",
  ];
  const REFRESH_MS = 1000;
  const HISTORY = 90; // chart points (seconds)
  const HISTORY_ROWS = 50; // finished jobs listed, newest first
  const FINISHED = ["completed", "failed"];

  const state = {
    token: null, clientId: null, secret: null, lastSeq: 0, transport: "connecting",
    jobs: new Map(), system: null, warning: null, samples: [], prev: null, jobsRoute: true, commandsRoute: true,
    staleSeconds: 120,
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------ token
  function loadToken() {
    const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem("bridge-token", decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname);
    }
    state.token = sessionStorage.getItem("bridge-token");
  }

  function askToken() {
    const form = $("token-form");
    if (!form.hidden) return;
    form.hidden = false;
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("bridge-token", $("token").value);
      state.token = $("token").value;
      form.hidden = true;
    });
  }

  // ------------------------------------------------------------- HTTP
  async function api(method, path, body, timeoutMs) {
    const headers = { "Accept": "application/json" };
    if (state.token) headers["Authorization"] = "Bearer " + state.token;
    if (state.secret) headers["X-Client-Secret"] = state.secret;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeoutMs || 10000);
    try {
      const resp = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctrl.signal,
        cache: "no-store",
      });
      let json = null;
      try { json = await resp.json(); } catch (e) { json = null; }
      if (resp.status === 401) askToken();
      return { status: resp.status, json: json || {} };
    } finally {
      clearTimeout(timer);
    }
  }

  function showError(text) {
    const el = $("error");
    el.hidden = !text;
    el.textContent = text || "";
  }

  // ---------------------------------------------------------- session
  async function join() {
    // Ephemeral: the hub removes this session when its stream ends (the tab closed), so a closed
    // tab leaves no client behind with a filling queue.
    const r = await api("POST", "/ws/handshake", { client_type: "dashboard", protocol_version: "1.0", ephemeral: true });
    if (r.status !== 200) throw new Error(r.json.error || ("handshake failed: HTTP " + r.status));
    state.clientId = r.json.client_id;
    document.documentElement.dataset.clientId = state.clientId;
    state.secret = r.json.client_secret || null;
    state.lastSeq = 0;
    await send({ type: "register", client_type: "dashboard", client_name: "Bridge dashboard" });
    await send({ type: "subscribe", channels: CHANNELS });
  }

  function send(message) {
    return api("POST", "/ws/send", { client_id: state.clientId, message });
  }

  function listen() {
    if (window.EventSource && !state.noSse) {
      listenSse();
    } else {
      listenPoll();
    }
  }

  function listenSse() {
    let url = "/ws/events?client_id=" + encodeURIComponent(state.clientId);
    if (state.secret) url += "&client_secret=" + encodeURIComponent(state.secret);
    if (state.lastSeq) url += "&last_event_id=" + state.lastSeq;
    const source = new EventSource(url);
    let opened = false;
    source.onopen = () => { opened = true; setTransport("sse"); };
    SSE_TYPES.forEach((type) => source.addEventListener(type, (ev) => {
      try { receive(JSON.parse(ev.data), type); } catch (e) { /* a malformed event is skipped */ }
    }));
    const end = () => { source.close(); restart(); };
    source.addEventListener("superseded", end);
    source.addEventListener("closed", end);
    source.onerror = () => {
      if (!opened) { // no SSE route on this gateway: long-poll instead
        source.close();
        state.noSse = true;
        listenPoll();
      } else if (source.readyState === EventSource.CLOSED) {
        restart();
      }
      // otherwise the browser reconnects by itself with Last-Event-ID
    };
  }

  async function listenPoll() {
    setTransport("long-poll");
    for (;;) {
      let r;
      try {
        r = await api("GET", "/ws/poll?client_id=" + encodeURIComponent(state.clientId) + "&wait=20&ack=" + state.lastSeq,
          undefined, 35000);
      } catch (e) {
        await pause(1000);
        continue;
      }
      if (r.status === 404 || r.json.closed) { restart(); return; }
      if (r.status !== 200) { await pause(1000); continue; }
      (r.json.messages || []).forEach((m) => receive(m, m.type));
      if (r.json.superseded) { restart(); return; }
    }
  }

  let restarting = false;
  async function restart() {
    if (restarting) return;
    restarting = true;
    setTransport("reconnecting");
    for (;;) {
      try {
        await join();
        break;
      } catch (e) {
        await pause(2000);
      }
    }
    restarting = false;
    listen();
  }

  function pause(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  function setTransport(name) {
    state.transport = name;
    const el = $("live");
    el.textContent = "live: " + name;
    el.className = "pill " + (name === "sse" || name === "long-poll" ? "ok" : "unknown");
  }

  // ---------------------------------------------------------- messages
  function receive(message, type) {
    if (typeof message.seq === "number" && message.seq > state.lastSeq) state.lastSeq = message.seq;
    type = message.type || type;
    if (type && type.startsWith("job_")) {
      updateJob(message, type);
    } else if (type === "jobs_snapshot" && Array.isArray(message.jobs)) {
      message.jobs.forEach((job) => mergeJob(job, false));
    } else if (type === "system_status") {
      state.system = message.status || message;
    } else if (type === "system_snapshot" && message.status) {
      state.system = message.status.status || message.status;
    } else if (type === "resource_warning") {
      state.warning = message;
    }
    renderJobs();
    renderSystemMessage();
  }

  const JOB_STATUS = {
    job_created: "created", job_started: "started", job_progress: "running", job_completed: "completed",
    job_failed: "failed",
  };

  function updateJob(message, type) {
    if (message.job_id === undefined) return;
    const job = { job_id: message.job_id, status: JOB_STATUS[type] || type, stalled: false, idle_seconds: 0 };
    ["progress", "stage", "message", "error", "name", "job_type"].forEach((k) => {
      if (message[k] !== undefined) job[k] = message[k];
    });
    if (type === "job_completed") job.progress = 100;
    mergeJob(job, true);
  }

  // A job as the page keeps it: the hub's state plus when its last event was, by this page's clock.
  let arrivals = 0; // each merge is stamped with the next number: the order jobs last reported in
  function mergeJob(job, live) {
    const key = String(job.job_id);
    const old = state.jobs.get(key) || {};
    if (FINISHED.includes(old.status) && !FINISHED.includes(job.status)) return; // a late event never reopens it
    const now = Date.now();
    const lastEventAt = typeof job.idle_seconds === "number" ? now - job.idle_seconds * 1000 : (old.lastEventAt || now);
    const arrival = ++arrivals;
    const merged = Object.assign({}, old, job, { lastEventAt, arrival, firstArrival: old.firstArrival || arrival });
    if (live) merged.liveAt = now;
    state.jobs.set(key, merged);
  }

  // The hub's job table (/ws/jobs) replaces the page's, except for live events newer than the request.
  // The listing comes oldest first, so each job merged is stamped as later than the one before.
  function replaceJobs(listing, askedAt) {
    const before = state.jobs;
    const newer = (job) => job && job.liveAt && job.liveAt >= askedAt;
    state.jobs = new Map();
    listing.forEach((job) => {
      const key = String(job.job_id);
      const old = before.get(key);
      if (newer(old)) return;
      if (old) state.jobs.set(key, old); // what the page knows of it (its place among the active) carries over
      mergeJob(job, false);
    });
    Array.from(before.values()).filter(newer).sort((a, b) => a.arrival - b.arrival).forEach((job) => {
      job.arrival = ++arrivals; // told live since the request: newer than anything listed
      state.jobs.set(String(job.job_id), job);
    });
  }

  // The order of the last events as the hub saw them (never two page clocks compared).
  function newestFirst(a, b) {
    return b.arrival - a.arrival;
  }

  // Bounded when there is no /ws/jobs to read (an older gateway): finished jobs past the history go.
  function boundJobs() {
    const finished = Array.from(state.jobs.values()).filter((j) => FINISHED.includes(j.status));
    finished.sort(newestFirst);
    finished.slice(HISTORY_ROWS).forEach((j) => state.jobs.delete(String(j.job_id)));
  }

  // ------------------------------------------------------------ text
  // Whatever shape a backend gave a field (text, number, {message}, {code, message}, nested,
  // a list), the words a person can read; never "[object Object]".
  function text(value, depth) {
    depth = depth || 0;
    if (value === undefined || value === null || value === "") return "";
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    if (depth > 5) return "…";
    if (Array.isArray(value)) return value.map((v) => text(v, depth + 1)).filter(Boolean).join("; ");
    if (typeof value === "object") {
      const inner = ["message", "error", "detail", "details", "reason", "description", "msg", "text"];
      let words = "";
      for (const k of inner) {
        if (value[k] !== undefined && value[k] !== null) { words = text(value[k], depth + 1); if (words) break; }
      }
      const code = ["code", "type", "name", "status"].map((k) => value[k])
        .find((v) => typeof v === "string" || typeof v === "number");
      if (words) return code !== undefined && String(code) !== words ? code + ": " + words : words;
      if (code !== undefined) return String(code);
      try { return JSON.stringify(value); } catch (e) { return "(unreadable)"; }
    }
    return String(value);
  }

  // ------------------------------------------------------------ render
  function cell(row, value, cls) {
    const td = document.createElement("td");
    const words = text(value);
    td.textContent = words === "" ? "—" : words;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function count(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return "now";
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function duration(seconds) {
    if (typeof seconds !== "number") return "—";
    if (seconds < 10) return seconds.toFixed(1) + " s";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    return Math.floor(s / 3600) + " h" + (s % 3600 >= 60 ? " " + Math.floor((s % 3600) / 60) + " min" : "");
  }

  function uptime(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? h + " h " + m + " min" : m ? m + " min " + (s % 60) + " s" : s + " s";
  }

  function clientRow(c, live) {
    const tr = document.createElement("tr");
    tr.dataset.clientId = c.id;
    tr.dataset.clientType = c.client_type;
    tr.dataset.live = live ? "true" : "false";
    if (!live) tr.className = "idle";
    if (c.id === state.clientId) tr.classList.add("self");
    cell(tr, c.client_type);
    cell(tr, c.client_name);
    cell(tr, live ? (c.transport || "poll") : "none" + (c.transport ? " (last: " + c.transport + ")" : ""));
    cell(tr, c.queue_depth, "num");
    cell(tr, c.dropped, "num");
    cell(tr, ago(c.idle_seconds));
    cell(tr, c.id, "id").title = c.id;
    return tr;
  }

  function groupRow(words) {
    const tr = document.createElement("tr");
    tr.className = "group";
    const td = document.createElement("td");
    td.colSpan = 7;
    td.textContent = words;
    tr.appendChild(td);
    return tr;
  }

  // Live clients first; sessions without a reader after them, apart (they only fill their queues).
  function renderClients(clients, status) {
    const body = $("clients").querySelector("tbody");
    const live = clients.filter((c) => c.connected);
    const idle = clients.filter((c) => !c.connected);
    body.replaceChildren();
    live.forEach((c) => body.appendChild(clientRow(c, true)));
    if (idle.length) {
      const stale = status && status.stale_seconds ? " (removed after " + duration(status.stale_seconds) + " idle)" : "";
      body.appendChild(groupRow("Without a reader" + stale + ": not polling or streaming now"));
      idle.forEach((c) => body.appendChild(clientRow(c, false)));
    }
    const nLive = status && typeof status.clients_live === "number" ? status.clients_live : live.length;
    const nIdle = status && typeof status.clients_idle === "number" ? status.clients_idle : idle.length;
    $("clients-count").textContent = nLive + " live · " + nIdle + " without a reader";
  }

  // Backends' calls into clients (GET /ws/commands): pending first, then the most recent that ended.
  function commandRow(c) {
    const tr = document.createElement("tr");
    tr.dataset.commandId = c.command_id;
    tr.dataset.state = c.state;
    tr.className = "command-" + c.state;
    cell(tr, c.action);
    cell(tr, c.state);
    cell(tr, c.caller);
    cell(tr, c.client_type + " " + String(c.client_id || "").slice(0, 8)).title = c.client_id;
    cell(tr, duration(c.duration), "num");
    const p = c.progress;
    cell(tr, c.error ? c.error.code + ": " + c.error.message
      : p ? (typeof p.pct === "number" ? Math.round(p.pct) + "% " : "") + (p.text || "") : "");
    cell(tr, c.command_id, "id").title = c.command_id;
    return tr;
  }

  function renderCommands(listing) {
    const body = $("commands").querySelector("tbody");
    const pending = listing.pending || [], recent = (listing.recent || []).slice(0, HISTORY_ROWS);
    body.replaceChildren();
    pending.forEach((c) => body.appendChild(commandRow(c)));
    if (pending.length && recent.length) body.appendChild(groupRow("Ended"));
    recent.forEach((c) => body.appendChild(commandRow(c)));
    $("commands-empty").hidden = pending.length + recent.length > 0;
    $("commands-count").textContent = pending.length + " pending";
  }

  function renderChannels(channels) {
    const body = $("channels").querySelector("tbody");
    body.replaceChildren();
    Object.keys(channels).sort().forEach((name) => {
      const tr = document.createElement("tr");
      tr.dataset.channel = name;
      cell(tr, name);
      cell(tr, channels[name], "num");
      body.appendChild(tr);
    });
  }

  function jobName(job) {
    return text(job.name) || text(job.job_type) || String(job.job_id);
  }

  function activeJob(job, now) {
    const progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
    const idle = Math.max(0, (now - job.lastEventAt) / 1000);
    const div = document.createElement("div");
    div.className = "job " + (job.status || "") + (job.stalled ? " stalled" : "");
    div.dataset.jobId = String(job.job_id);
    div.dataset.stalled = job.stalled ? "true" : "false";
    const label = document.createElement("div");
    label.className = "label";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = jobName(job);
    const id = document.createElement("span");
    id.className = "jid";
    id.textContent = String(job.job_id);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = Math.round(progress) + "%";
    label.append(name);
    if (name.textContent !== id.textContent) label.append(id);
    if (job.stalled) {
      const badge = document.createElement("span");
      badge.className = "badge stalled";
      badge.textContent = "stalled";
      badge.title = "no event for " + duration(state.staleSeconds) + " or more (BRIDGE_JOB_STALE_SECONDS)";
      label.append(badge);
    }
    label.append(pct);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", String(progress));
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = progress + "%";
    bar.appendChild(fill);
    const meta = document.createElement("div");
    meta.className = "meta";
    const stage = document.createElement("span");
    stage.className = "stage";
    stage.textContent = [text(job.stage) || job.status, text(job.message)].filter(Boolean).join(" — ");
    const age = document.createElement("span");
    age.className = "age";
    age.textContent = (job.stalled ? "stalled: no event for " + duration(idle) : "last event " + ago(idle));
    meta.append(stage, age);
    div.append(label, bar, meta);
    return div;
  }

  function historyRow(job, now) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = String(job.job_id);
    tr.dataset.outcome = job.status;
    const name = jobName(job);
    const td = cell(tr, name, "job");
    td.title = name + " (" + job.job_id + ")";
    if (name !== String(job.job_id)) {
      const id = document.createElement("span");
      id.className = "jid";
      id.textContent = String(job.job_id);
      td.appendChild(id);
    }
    cell(tr, job.stage);
    cell(tr, duration(job.duration_seconds), "num");
    cell(tr, job.status, "outcome " + job.status);
    if (job.status === "failed") cell(tr, job.error, "err");
    else cell(tr, "", "muted");
    cell(tr, ago(Math.max(0, (now - job.lastEventAt) / 1000)));
    return tr;
  }

  function renderJobs() {
    if (!state.jobsRoute) boundJobs();
    const now = Date.now();
    const all = Array.from(state.jobs.values());
    const active = all.filter((j) => !FINISHED.includes(j.status));
    const finished = all.filter((j) => FINISHED.includes(j.status)).sort(newestFirst);
    const stalled = active.filter((j) => j.stalled).length;

    const box = $("jobs");
    if (!active.length) {
      box.innerHTML = '<p class="muted empty">No active jobs.</p>';
    } else {
      // Newest job on top, each keeping its place as it reports.
      box.replaceChildren(...active.sort((a, b) => b.firstArrival - a.firstArrival).map((j) => activeJob(j, now)));
    }
    const body = $("job-history").querySelector("tbody");
    body.replaceChildren(...finished.slice(0, HISTORY_ROWS).map((j) => historyRow(j, now)));
    $("history-empty").hidden = finished.length > 0;
    const failed = finished.filter((j) => j.status === "failed").length;
    $("history-count").textContent = finished.length > HISTORY_ROWS
      ? "newest " + HISTORY_ROWS + " of " + finished.length : (finished.length ? finished.length + " (" + failed + " failed)" : "");
    $("jobs-count").textContent = active.length + " active" + (stalled ? " · " + stalled + " stalled" : "") +
      " · " + finished.length + " finished";
  }

  function renderSystemMessage() {
    const s = state.system;
    const pct = (v) => (typeof v === "number" ? v.toFixed(0) + " %" : "—");
    if (s) {
      $("sys-cpu").textContent = pct(s.cpu_percent !== undefined ? s.cpu_percent : s.cpu_usage);
      $("sys-memory").textContent = pct(s.memory_percent !== undefined ? s.memory_percent : s.memory_usage);
      $("sys-disk").textContent = pct(s.disk_percent !== undefined ? s.disk_percent : s.disk_usage);
    }
    const w = $("warning");
    if (state.warning) {
      const recovered = state.warning.level === "ok";
      w.hidden = false;
      w.className = "warning" + (recovered ? " recovered" : "");
      w.textContent = (recovered ? "" : "⚠ ") +
        (text(state.warning.message) || text(state.warning.resource) || "resource warning");
    }
  }

  function renderHealth(health) {
    const el = $("health");
    const status = health ? health.status : "down";
    el.textContent = status;
    el.className = "pill " + status;
    if (!health) return;
    $("sys-gateway").textContent = "up (" + health.gateway.workers + " workers)";
    const hub = health.hub;
    $("sys-hub").textContent = hub.reachable ? "reachable, " + hub.rtt_ms.toFixed(1) + " ms round trip" : "NOT reachable";
    const n = health.notifier;
    $("sys-notifier").textContent = n.last_seen_seconds === null ? "never heard from" : "heard " + ago(n.last_seen_seconds);
  }

  function sample(status) {
    const now = performance.now() / 1000;
    const m = status.messages || {};
    const lat = status.deliver_latency || { count: 0, sum: 0 };
    const cur = { t: now, published: m.published || 0, delivered: m.delivered || 0, count: lat.count, sum: lat.sum };
    const prev = state.prev;
    state.prev = cur;
    if (!prev || cur.t <= prev.t || cur.published < prev.published) return;
    const dt = cur.t - prev.t;
    const dc = cur.count - prev.count;
    state.samples.push({
      rate: (cur.delivered - prev.delivered) / dt,
      latency: dc > 0 ? ((cur.sum - prev.sum) / dc) * 1000 : null,
    });
    if (state.samples.length > HISTORY) state.samples.shift();
    const last = state.samples[state.samples.length - 1];
    $("chart-now").textContent = last.rate.toFixed(1) + " messages/s delivered" +
      (last.latency === null ? "" : ", " + last.latency.toFixed(2) + " ms mean latency");
    drawChart();
  }

  function drawChart() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.documentElement);
    const series = [
      ["rate", style.getPropertyValue("--rate").trim() || "#58a6ff"],
      ["latency", style.getPropertyValue("--latency").trim() || "#f0883e"],
    ];
    const pad = 6, step = (w - 2 * pad) / (HISTORY - 1);
    series.forEach(([key, color], i) => {
      const values = state.samples.map((s) => s[key]);
      const max = Math.max(1, ...values.filter((v) => v !== null));
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      let started = false;
      values.forEach((v, j) => {
        if (v === null) return;
        const x = pad + (HISTORY - values.length + j) * step;
        const y = h - pad - (v / max) * (h - 2 * pad);
        if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
      });
      g.stroke();
      g.fillStyle = color;
      g.font = "11px system-ui, sans-serif";
      g.fillText("max " + max.toFixed(key === "rate" ? 0 : 2) + (key === "rate" ? " /s" : " ms"), pad + 4, 14 + i * 14);
    });
  }

  // ----------------------------------------------------------- refresh
  function renderStatus(s) {
    renderChannels(s.channels || {});
    $("sys-uptime").textContent = uptime(s.uptime_seconds);
    const m = s.messages || {};
    $("sys-messages").textContent = count(m.published) + " published · " + count(m.delivered) + " delivered · " +
      count(m.dropped) + " dropped";
    // Who holds the drops now: live readers apart from sessions nobody reads (docs/OPERATOR.md).
    if (typeof s.dropped_idle === "number") {
      $("sys-dropped").textContent = count(s.dropped_live) + " live · " + count(s.dropped_idle) + " without a reader";
    }
    if (typeof s.job_stale_seconds === "number") state.staleSeconds = s.job_stale_seconds;
    sample(s);
  }

  let refreshing = false;
  async function refresh() {
    if (refreshing) return; // a slow answer: skip a beat rather than pile requests up
    refreshing = true;
    try {
      const askedAt = Date.now();
      const [clients, status, health, jobs, commands] = await Promise.all([
        api("GET", "/ws/clients"), api("GET", "/ws/status"), api("GET", "/ws/health"),
        state.jobsRoute ? api("GET", "/ws/jobs") : Promise.resolve(null),
        state.commandsRoute ? api("GET", "/ws/commands") : Promise.resolve(null),
      ]);
      renderHealth(health.status === 200 || health.status === 503 ? health.json : null);
      const s = status.status === 200 ? status.json.status : null;
      if (s) renderStatus(s);
      if (clients.status === 200) renderClients(clients.json.clients || [], s);
      if (jobs && jobs.status === 404) state.jobsRoute = false;
      else if (jobs && jobs.status === 200) replaceJobs(jobs.json.jobs || [], askedAt);
      renderJobs();
      if (commands && commands.status === 404) state.commandsRoute = false;
      else if (commands && commands.status === 200) renderCommands(commands.json);
      $("commands-panel").hidden = !state.commandsRoute;
      showError(clients.status === 401 ? "This bridge needs its admin token (BRIDGE_ADMIN_TOKEN)." : "");
    } catch (e) {
      renderHealth(null);
      showError("The bridge does not answer: is it still running?");
    } finally {
      refreshing = false;
    }
  }

  async function start() {
    loadToken();
    refresh();
    setInterval(refresh, REFRESH_MS);
    await restart();
  }

  start();
})();
