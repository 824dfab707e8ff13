// The live dashboard: reads the service's event stream (/v1/events) and draws it. No library,
// no external resource; text is set with textContent only, so nothing a swarm reports (agent
// ids, finding summaries) is ever parsed as HTML.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WINDOW_S = 120; // the charts show the last two minutes
  const RETRY_MS = 2000;
  const $ = (id) => document.getElementById(id);

  let token = null; // kept in this page's memory only, sent in a header, never in a URL
  let source = null;
  let retry = null;
  let lastFrameAt = 0;
  let frames = 0;
  const points = []; // {t, completed_per_s, failed_per_s, sojourn_ms}
  const rows = new Map(); // agent id -> its table row's cells

  // -- formatting ----------------------------------------------------------------------------
  const dash = "–";
  function num(value, digits = 0) {
    if (value === null || value === undefined) return dash;
    return Number(value).toLocaleString("en-US", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  }
  function ms(value) {
    if (value === null || value === undefined) return dash;
    return value < 10 ? num(value, 2) : value < 100 ? num(value, 1) : num(value, 0);
  }
  function pct(value) {
    return value === null || value === undefined ? dash : num(value * 100, 0) + "%";
  }
  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }

  // -- connection ----------------------------------------------------------------------------
  function setStatus(state, text) {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = text;
  }

  function retryLater(why) {
    setStatus("down", why + ", retrying…");
    clearTimeout(retry);
    retry = setTimeout(connect, RETRY_MS);
  }

  function showLogin(message) {
    setStatus("down", "token needed");
    $("login").hidden = false;
    $("login-error").textContent = message;
    $("token").focus();
  }

  // A ticket cookie (HttpOnly, SameSite=Strict, one stream, one minute) lets EventSource,
  // which cannot send headers, open the stream; the token goes only in this POST's header.
  async function connect() {
    clearTimeout(retry);
    if (source) source.close();
    source = null;
    setStatus("connecting", "connecting…");
    let reply;
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      reply = await fetch("/v1/events/session", {
        method: "POST",
        headers,
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      retryLater("service unreachable");
      return;
    }
    if (reply.status === 401) {
      showLogin(token ? "The service does not know this token." : "");
      return;
    }
    if (reply.status === 403) {
      showLogin("This token may not read the swarm (it needs read, submit or admin).");
      return;
    }
    if (!reply.ok) {
      retryLater("session refused (" + reply.status + ")");
      return;
    }
    $("login").hidden = true;
    const stream = new EventSource("/v1/events");
    source = stream;
    stream.addEventListener("open", () => setStatus("live", "live"));
    stream.addEventListener("history", (event) => {
      points.length = 0;
      for (const point of JSON.parse(event.data)) points.push(point);
    });
    stream.addEventListener("frame", (event) => render(JSON.parse(event.data)));
    stream.addEventListener("bye", (event) => {
      stream.close();
      if (JSON.parse(event.data).reason === "shutdown") retryLater("service stopped");
      else connect();
    });
    stream.addEventListener("error", () => {
      if (source !== stream) return;
      stream.close(); // its ticket is spent: a new session, not EventSource's own retry
      retryLater("disconnected");
    });
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim() || null;
    $("token").value = "";
    connect();
  });

  // -- rendering -----------------------------------------------------------------------------
  function render(frame) {
    frames += 1;
    lastFrameAt = Date.now();
    document.body.dataset.frames = String(frames);
    $("live").hidden = false;
    setText("strategy", frame.strategy);
    const totals = frame.totals;
    setText("completed", num(totals.completed));
    setText("failed", num(totals.failed));
    setText("open", num(totals.open));
    setText("retries", num(totals.retries));
    setText("moves", num(totals.steals) + " · " + num(totals.migrations));
    const recent = frame.window;
    setText("throughput", num(recent.completed_per_s, 1));
    const latency = recent.sojourn_ms;
    setText(
      "latency",
      latency ? [ms(latency.p50), ms(latency.p95), ms(latency.p99)].join(" · ") : dash,
    );
    const tokens = frame.tokens;
    setText(
      "tokens",
      tokens ? num(tokens.input_tokens) + " · " + num(tokens.output_tokens) : "none reported",
    );
    const last = points[points.length - 1];
    if (!last || frame.time > last.t) points.push({ t: frame.time, ...recent });
    while (points.length && points[0].t < frame.time - WINDOW_S) points.shift();
    drawCharts(frame.time);
    renderAgents(frame.agents);
    renderFindings(frame.findings);
    renderInternals(frame);
    renderModels(tokens);
  }

  function cell(row, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function bar(td, kind) {
    const outer = document.createElement("span");
    outer.className = "bar " + kind;
    const fill = document.createElement("span");
    outer.appendChild(fill);
    const count = document.createElement("span");
    count.className = "count";
    td.append(outer, count);
    return { outer, fill, count };
  }

  function renderAgents(agents) {
    const body = $("agents").tBodies[0];
    const seen = new Set();
    const deepest = Math.max(1, ...agents.map((a) => a.queued));
    for (const agent of agents) {
      seen.add(agent.id);
      let r = rows.get(agent.id);
      if (!r) {
        const tr = document.createElement("tr");
        tr.dataset.agent = agent.id;
        r = { tr, id: cell(tr, "id"), breaker: document.createElement("span") };
        cell(tr, "breaker").appendChild(r.breaker);
        r.load = bar(cell(tr, "load"), "load");
        r.queue = bar(cell(tr, "queue"), "queue");
        r.completed = cell(tr, "num completed");
        r.failed = cell(tr, "num failed");
        r.speed = cell(tr, "num speed");
        r.errors = cell(tr, "num errors");
        r.tokens = cell(tr, "num tokens");
        r.id.textContent = agent.id;
        rows.set(agent.id, r);
        body.appendChild(tr);
      }
      r.tr.classList.toggle("draining", agent.draining);
      r.breaker.className = "badge " + agent.breaker;
      r.breaker.textContent = agent.breaker.replace("_", "-");
      const load = agent.capacity ? agent.in_flight / agent.capacity : 0;
      r.load.fill.style.width = Math.min(100, load * 100) + "%";
      r.load.outer.classList.toggle("full", agent.in_flight >= agent.capacity);
      r.load.count.textContent = agent.in_flight + " / " + agent.capacity;
      r.queue.fill.style.width = Math.min(100, (agent.queued / deepest) * 100) + "%";
      r.queue.count.textContent = String(agent.queued);
      r.completed.textContent = num(agent.completed);
      r.failed.textContent = num(agent.failed);
      r.speed.textContent = num(agent.speed, 2);
      r.errors.textContent = pct(agent.error_rate);
      r.tokens.textContent = agent.tokens === null ? dash : num(agent.tokens);
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    }
    setText("agent-count", agents.length + " registered");
  }

  function renderFindings(findings) {
    const list = $("findings");
    list.replaceChildren(
      ...findings.map((f) => {
        const item = document.createElement("li");
        item.dataset.kind = f.kind;
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = f.kind + (f.subject ? " · " + f.subject : "");
        const severity = document.createElement("span");
        severity.className = "severity";
        severity.textContent = "severity " + num(f.severity, 2);
        const summary = document.createElement("div");
        summary.textContent = f.summary;
        const suggestion = document.createElement("span");
        suggestion.className = "suggestion";
        suggestion.textContent = f.suggestion;
        item.append(kind, severity, summary, suggestion);
        return item;
      }),
    );
    $("no-findings").hidden = findings.length > 0;
  }

  function timer(figures, none) {
    if (!figures) return none;
    const parts = [
      "p50 " + ms(figures.p50_ms) + " ms",
      "p99 " + ms(figures.p99_ms) + " ms",
      pct(figures.busy_share) + " of the time",
      num(figures.samples) + " calls",
    ];
    return parts.join(" · ");
  }

  function renderInternals(frame) {
    setText("decision", timer(frame.timing.decision, "not measured yet"));
    setText("flush", timer(frame.timing.flush, "none (the memory store writes nothing)"));
    setText(
      "queues",
      num(frame.queues.shared) + " in the shared queue · " + num(frame.queues.agents) + " at agents",
    );
    const run = frame.run;
    setText(
      "run",
      num(run.throughput_per_s, 1) +
        " tasks/s · sojourn p99 " +
        ms(run.sojourn_ms.p99) +
        " ms · utilization " +
        pct(run.utilization),
    );
  }

  function renderModels(tokens) {
    const table = $("models");
    $("no-tokens").hidden = tokens !== null;
    table.hidden = tokens === null;
    if (tokens === null) return;
    table.tBodies[0].replaceChildren(
      ...Object.entries(tokens.per_model).map(([model, row]) => {
        const tr = document.createElement("tr");
        cell(tr).textContent = model;
        cell(tr, "num").textContent = num(row.input_tokens);
        cell(tr, "num").textContent = num(row.output_tokens);
        cell(tr, "num").textContent = row.cost === null ? dash : num(row.cost, 4);
        return tr;
      }),
    );
  }

  // -- charts: SVG polylines over the last WINDOW_S seconds ----------------------------------
  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
    return 10 * power;
  }

  function svg(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
  }

  function drawChart(id, now, series) {
    const width = 600, height = 180, left = 48, right = 8, top = 8, bottom = 20;
    const values = series.flatMap((s) => points.map(s.value).filter((v) => v !== null));
    const ceiling = niceCeiling(Math.max(0, ...values));
    const x = (t) => left + ((t - (now - WINDOW_S)) / WINDOW_S) * (width - left - right);
    const y = (v) => top + (1 - v / ceiling) * (height - top - bottom);
    const nodes = [];
    for (let i = 0; i <= 4; i += 1) {
      const v = (ceiling * i) / 4;
      nodes.push(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
      const label = svg("text", { class: "axis", x: left - 6, y: y(v) + 4, "text-anchor": "end" });
      label.textContent = num(v, Number.isInteger(v) ? 0 : v >= 10 ? 1 : 2);
      nodes.push(label);
    }
    const ticks = [
      [now - WINDOW_S, "−2 min", "start"],
      [now - WINDOW_S / 2, "−1 min", "middle"],
      [now, "now", "end"],
    ];
    for (const [t, text, anchor] of ticks) {
      const label = svg("text", { class: "axis", x: x(t), y: height - 4, "text-anchor": anchor });
      label.textContent = text;
      nodes.push(label);
    }
    for (const s of series) {
      let path = "";
      let pen = "M";
      for (const point of points) {
        const v = s.value(point);
        if (v === null || v === undefined) {
          pen = "M"; // a gap where the figure is unknown
          continue;
        }
        path += pen + x(point.t).toFixed(1) + "," + y(v).toFixed(1);
        pen = "L";
      }
      nodes.push(svg("path", { class: "series " + s.className, d: path || "M0,0" }));
    }
    $(id).replaceChildren(...nodes);
  }

  function drawCharts(now) {
    drawChart("chart-throughput", now, [
      { className: "s0", value: (p) => p.completed_per_s },
      { className: "s3", value: (p) => p.failed_per_s },
    ]);
    const quantile = (key) => (p) => (p.sojourn_ms ? p.sojourn_ms[key] : null);
    drawChart("chart-latency", now, [
      { className: "s0", value: quantile("p50") },
      { className: "s1", value: quantile("p95") },
      { className: "s2", value: quantile("p99") },
    ]);
  }

  setInterval(() => {
    if (lastFrameAt) setText("age", "updated " + num((Date.now() - lastFrameAt) / 1000, 1) + " s ago");
  }, 500);

  connect();
})();
