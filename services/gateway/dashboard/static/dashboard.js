// The bridge dashboard: joins as a client of type "dashboard", follows the
// default channels live (Server-Sent Events, else long-poll), and reads the
// operator routes once a second. No framework, no build step, no CDN.
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
  const FINISHED_KEEP_MS = 60000;

  const state = {
    token: null, clientId: null, secret: null, lastSeq: 0, transport: "connecting",
    jobs: new Map(), system: null, warning: null, samples: [], prev: null, jobsRoute: true,
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
    const r = await api("POST", "/ws/handshake", { client_type: "dashboard", protocol_version: "1.0" });
    if (r.status !== 200) throw new Error(r.json.error || ("handshake failed: HTTP " + r.status));
    state.clientId = r.json.client_id;
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
      message.jobs.forEach((job) => mergeJob(job));
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
    const job = { job_id: message.job_id, status: JOB_STATUS[type] || type };
    ["progress", "stage", "message", "error", "name"].forEach((k) => { if (message[k] !== undefined) job[k] = message[k]; });
    if (type === "job_completed") job.progress = 100;
    mergeJob(job);
  }

  function mergeJob(job) {
    const key = String(job.job_id);
    const old = state.jobs.get(key) || {};
    if ((old.status === "completed" || old.status === "failed") && job.status === "running") return;
    const merged = Object.assign({}, old, job, { seen: Date.now() });
    state.jobs.set(key, merged);
  }

  // ------------------------------------------------------------ render
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "—" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return "now";
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function uptime(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? h + " h " + m + " min" : m ? m + " min " + (s % 60) + " s" : s + " s";
  }

  function renderClients(clients) {
    const body = $("clients").querySelector("tbody");
    body.replaceChildren();
    clients.forEach((c) => {
      const tr = document.createElement("tr");
      tr.dataset.clientId = c.id;
      tr.dataset.clientType = c.client_type;
      cell(tr, c.client_type);
      cell(tr, c.client_name);
      cell(tr, c.transport || "poll");
      cell(tr, c.queue_depth, "num");
      cell(tr, c.dropped, "num");
      cell(tr, ago(c.idle_seconds));
      cell(tr, c.id, "id");
      body.appendChild(tr);
    });
    $("clients-count").textContent = clients.length + " connected";
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

  function renderJobs() {
    const box = $("jobs");
    const now = Date.now();
    const jobs = Array.from(state.jobs.values()).filter((j) =>
      !((j.status === "completed" || j.status === "failed") && now - j.seen > FINISHED_KEEP_MS));
    if (!jobs.length) {
      box.innerHTML = '<p class="muted empty">No jobs yet.</p>';
      return;
    }
    box.replaceChildren();
    jobs.forEach((job) => {
      const progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
      const div = document.createElement("div");
      div.className = "job " + (job.status || "");
      div.dataset.jobId = String(job.job_id);
      const label = document.createElement("div");
      label.className = "label";
      const name = document.createElement("span");
      name.textContent = (job.name || job.job_id) + " — " + (job.status || "") + " " + Math.round(progress) + "%";
      const stage = document.createElement("span");
      stage.className = "stage";
      stage.textContent = job.error || job.message || job.stage || "";
      label.append(name, stage);
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
      div.append(label, bar);
      box.appendChild(div);
    });
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
      w.hidden = false;
      w.textContent = "⚠ " + (state.warning.message || state.warning.resource || "resource warning");
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
  async function refresh() {
    try {
      const [clients, status, health] = await Promise.all([
        api("GET", "/ws/clients"), api("GET", "/ws/status"), api("GET", "/ws/health"),
      ]);
      renderHealth(health.status === 200 || health.status === 503 ? health.json : null);
      if (clients.status === 200) renderClients(clients.json.clients || []);
      if (status.status === 200) {
        const s = status.json.status;
        renderChannels(s.channels || {});
        $("sys-uptime").textContent = uptime(s.uptime_seconds);
        const m = s.messages || {};
        $("sys-messages").textContent = (m.published || 0) + " published, " + (m.delivered || 0) + " delivered, " +
          (m.dropped || 0) + " dropped";
        sample(s);
      }
      if (state.jobsRoute) {
        const jobs = await api("GET", "/ws/jobs");
        if (jobs.status === 404) state.jobsRoute = false;
        else if (jobs.status === 200) (jobs.json.jobs || []).forEach((job) => mergeJob(job));
        renderJobs();
      }
      showError(clients.status === 401 ? "This bridge needs its admin token (BRIDGE_ADMIN_TOKEN)." : "");
    } catch (e) {
      renderHealth(null);
      showError("The bridge does not answer — is `lrbridge run` still running?");
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
