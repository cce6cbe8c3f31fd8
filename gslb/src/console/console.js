// The status page: polls this node's /v1/status and /v1/console and
// redraws. Everything from the network is inserted as text, never as HTML.
// The admin token lives only in the `token` variable (and its password
// field): never in the page source, a cookie or storage.
"use strict";

const POLL_MS = 1500;
let token = "";
// The previous /v1/console sample, for rates over the polling interval.
let previous = null;
let explainPrefilled = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function replaceRows(tbody, rows, empty, columns) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: columns, class: "dim" }, empty))]));
}

function ago(ms) {
  if (!(ms >= 0)) return "—";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s ago";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
  return Math.floor(s / 86400) + " d ago";
}

function time(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function fixed(value, digits) {
  return value === null || value === undefined || !isFinite(value) ? "—" : value.toFixed(digits);
}

function percent(part, whole) {
  return whole > 0 ? (100 * part / whole).toFixed(1) + " %" : "—";
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

// ---- regions ----

function regionReason(region) {
  if (region.override) {
    return "operator " + region.override + (region.override_reason ? ": " + region.override_reason : "");
  }
  const votes = region.vantage || [];
  const down = votes.filter((v) => v.state === "down").map((v) => v.node);
  if (region.verdict === "down") return "probes say down" + (down.length ? " (" + down.join(", ") + ")" : "");
  return "probes say up";
}

function vote(v) {
  const detail = v.last && v.last.detail ? v.last.detail : "";
  const cls = v.state === "up" ? "good" : v.state === "down" ? "bad" : "warn";
  return el("div", { title: detail },
    v.node + ": ", el("span", { class: cls }, v.state), v.fresh === false ? el("span", { class: "dim" }, " (stale)") : null);
}

// Rows are kept across polls and only their cells redrawn, so the action
// buttons (and keyboard focus on them) survive every update.
function drawRegions(status, now) {
  const tbody = document.querySelector("#regions tbody");
  const regions = status.regions || [];
  const rows = regions.map((region) => {
    let row = [...tbody.rows].find((r) => r.dataset.region === region.name);
    if (!row) {
      row = el("tr", { "data-region": region.name },
        el("th", { scope: "row" }, region.name),
        el("td", { class: "state" }), el("td", { class: "reason" }), el("td", { class: "since" }),
        el("td", { class: "votes" }),
        el("td", {},
          el("button", { type: "button", class: "drain", "aria-label": "Drain " + region.name, onclick: () => act(region.name, "drain") }, "Drain"),
          el("button", { type: "button", class: "recover", "aria-label": "Recover " + region.name, onclick: () => act(region.name, "recover") }, "Recover")));
    }
    const inService = region.in_service === true;
    row.dataset.state = inService ? "in" : "out";
    const cell = (name) => row.querySelector("td." + name);
    cell("state").className = "state " + (inService ? "good" : "bad");
    cell("state").textContent = inService ? "in service" : "out of service";
    cell("reason").textContent = regionReason(region);
    cell("since").textContent = region.since_ms ? ago(now - region.since_ms) : "—";
    cell("votes").replaceChildren(...(region.vantage || []).map(vote));
    return row;
  });
  // Appending rows already in place moves nothing; focus stays put.
  for (const row of [...tbody.rows]) if (!rows.includes(row)) row.remove();
  rows.forEach((row, i) => { if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null); });
  if (!regions.length) tbody.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "dim" }, "no regions")));
}

async function act(region, action) {
  const result = document.getElementById("action-result");
  const what = action === "drain"
    ? "Drain " + region + "? DNS stops answering with it until it is recovered."
    : "Recover " + region + "? DNS answers with it again once its probes say up.";
  if (!window.confirm(what)) {
    result.textContent = action + " " + region + ": cancelled";
    return;
  }
  const path = "/v1/regions/" + encodeURIComponent(region) + (action === "drain" ? "/fail" : "/recover");
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const body = action === "drain" ? JSON.stringify({ mode: "drain", reason: "drained from the status page" }) : "";
  result.className = "";
  result.textContent = action + " " + region + "…";
  try {
    const response = await fetch(path, { method: "POST", headers, body });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      result.className = "good";
      result.textContent = (action === "drain" ? "drained " : "recovered ") + region +
        (answer.warning ? " (warning: " + answer.warning + ")" : "");
    } else {
      result.className = "bad";
      const why = response.status === 401 || response.status === 403
        ? "refused (" + response.status + "): the admin token is missing or wrong"
        : "failed (" + response.status + ")";
      result.textContent = action + " " + region + " " + why + (answer.error ? " — " + answer.error : "");
    }
  } catch (error) {
    result.className = "bad";
    result.textContent = action + " " + region + " failed: " + error.message;
  }
  poll();
}

// ---- DNS answers ----

function drawContinents(consoleView) {
  document.getElementById("dns-name").textContent = consoleView.name ? "for " + consoleView.name : "(no geo name)";
  const rows = (consoleView.continents || []).map((c) => el("tr", { "data-continent": c.continent },
    el("th", { scope: "row" }, c.continent),
    el("td", {}, c.place + " ", el("code", {}, c.client)),
    el("td", { class: "answer-region" }, c.regions.length ? c.regions.join(", ") : (c.error ? "—" : "no answer")),
    el("td", {}, c.error ? el("span", { class: "bad" }, c.error) : c.answers.map((a) => el("div", {}, el("code", {}, a)))),
    el("td", {}, c.rule || "")));
  replaceRows(document.querySelector("#continents tbody"), rows, "no geo names in the topology", 5);
  if (!explainPrefilled && consoleView.name) {
    document.getElementById("explain-name").value = consoleView.name;
    explainPrefilled = true;
  }
}

async function explain(event) {
  event.preventDefault();
  const out = document.getElementById("explain-out");
  const query = new URLSearchParams({
    name: document.getElementById("explain-name").value.trim(),
    client: document.getElementById("explain-client").value.trim(),
    type: document.getElementById("explain-type").value,
  });
  out.hidden = false;
  try {
    const response = await fetch("/v1/explain?" + query, { cache: "no-store" });
    const answer = await response.json();
    out.textContent = response.ok ? answer.text : "error: " + answer.error;
  } catch (error) {
    out.textContent = "error: " + error.message;
  }
}

// ---- edge nodes ----

// The q-quantile of the requests between two cumulative histograms: the
// upper bound of the first bucket that reaches it (a null bound is +Inf).
function quantile(now, before, q) {
  // Without an earlier sample there is no interval to speak of.
  if (!now || !now.length || !before || before.length !== now.length) return null;
  const delta = now.map(([le, count], i) => [le, count - before[i][1]]);
  const total = delta[delta.length - 1][1];
  if (!(total > 0)) return null;
  for (const [le, count] of delta) {
    if (count >= q * total) return le === null ? Infinity : le;
  }
  return Infinity;
}

function latency(seconds) {
  if (seconds === null) return "—";
  if (seconds === Infinity) return "> max bucket";
  return "≤ " + (seconds * 1000 >= 1 ? (seconds * 1000).toFixed(0) : (seconds * 1000).toFixed(2)) + " ms";
}

function drawEdges(consoleView, before) {
  const dt = before ? (consoleView.now_ms - before.now_ms) / 1000 : 0;
  const old = new Map((before ? before.edges : []).map((e) => [e.name, e]));
  const rate = (now, then) => (dt > 0 && then !== undefined && now >= then ? (now - then) / dt : null);
  const edgeRows = [];
  const serverRows = [];
  const certs = new Map();
  for (const edge of consoleView.edges || []) {
    const m = edge.metrics;
    const p = old.get(edge.name) && old.get(edge.name).metrics;
    if (edge.unreachable) {
      edgeRows.push(el("tr", { "data-node": edge.name, "data-state": "unreachable" },
        el("th", { scope: "row" }, edge.name), el("td", {}, edge.kind.toUpperCase()), el("td", {}, edge.region),
        el("td", { colspan: 7 }, el("span", { class: "bad" }, "unreachable"), el("span", { class: "dim" }, " — " + edge.unreachable))));
      continue;
    }
    const requests = p ? m.requests_total - p.requests_total : 0;
    const errors = p ? m.requests_5xx_total - p.requests_5xx_total : 0;
    const l7 = edge.kind === "l7";
    const status = edge.status || {};
    let state = el("span", { class: "good" }, "up");
    if (l7 && status.draining) state = el("span", { class: "warn" }, "draining");
    else if (l7 && status.healthy === false) state = el("span", { class: "bad" }, "unhealthy");
    edgeRows.push(el("tr", { "data-node": edge.name, "data-state": "reachable" },
      el("th", { scope: "row" }, edge.name), el("td", {}, edge.kind.toUpperCase()), el("td", {}, edge.region),
      el("td", {}, state),
      el("td", { class: "num" }, fixed(m.open_connections, 0)),
      el("td", { class: "num" }, fixed(rate(m.connections_total, p && p.connections_total), 1)),
      el("td", { class: "num" }, l7 ? fixed(rate(m.requests_total, p && p.requests_total), 1) : "n/a"),
      el("td", { class: "num" }, l7 ? percent(errors, requests) : "n/a"),
      el("td", { class: "num" }, l7 ? latency(quantile(m.latency_buckets, p && p.latency_buckets, 0.5)) : "n/a"),
      el("td", { class: "num" }, l7 ? latency(quantile(m.latency_buckets, p && p.latency_buckets, 0.99)) : "n/a")));
    if (!l7) continue;
    const counted = new Map((m.servers || []).map((s) => [s.pool + " " + s.server, s]));
    const counted_before = new Map(((p && p.servers) || []).map((s) => [s.pool + " " + s.server, s]));
    for (const pool of status.pools || []) {
      for (const server of pool.servers || []) {
        const key = pool.name + " " + server.addr;
        const c = counted.get(key);
        const cb = counted_before.get(key);
        const done = c && cb ? c.responses_total - cb.responses_total : 0;
        const failed = c && cb ? c.responses_5xx_total - cb.responses_5xx_total : 0;
        const health = server.ejected ? el("span", { class: "warn" }, "ejected")
          : el("span", { class: server.health === "up" ? "good" : "bad" }, server.health);
        serverRows.push(el("tr", {},
          el("th", { scope: "row" }, el("code", {}, server.addr)), el("td", {}, pool.name), el("td", {}, edge.name),
          el("td", {}, health), el("td", { class: "num" }, server.in_flight),
          el("td", { class: "num" }, fixed(c && cb ? rate(c.responses_total, cb.responses_total) : null, 1)),
          el("td", { class: "num" }, percent(failed, done)),
          el("td", { class: "num" }, latency(quantile(c && c.latency_buckets, cb && cb.latency_buckets, 0.5))),
          el("td", { class: "num" }, latency(quantile(c && c.latency_buckets, cb && cb.latency_buckets, 0.99)))));
      }
    }
    for (const cert of m.certificates || []) {
      const known = certs.get(cert.name) || { expires_at: cert.expires_at, nodes: [] };
      known.expires_at = Math.min(known.expires_at, cert.expires_at);
      known.nodes.push(edge.name);
      certs.set(cert.name, known);
    }
  }
  replaceRows(document.querySelector("#edges tbody"), edgeRows, "no L4 or L7 nodes in the topology", 10);
  replaceRows(document.querySelector("#servers tbody"), serverRows, "no backend servers reported", 8);
  const certRows = [...certs].map(([name, c]) => {
    const days = (c.expires_at * 1000 - consoleView.now_ms) / 86400000;
    const cls = days < 7 ? "bad" : days < 30 ? "warn" : "good";
    return el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, time(c.expires_at * 1000)),
      el("td", { class: cls }, days < 0 ? "expired" : Math.floor(days) + " days"), el("td", {}, c.nodes.join(", ")));
  });
  replaceRows(document.querySelector("#certs tbody"), certRows, "no certificates reported by reachable L7 nodes", 4);
}

// ---- changes and configuration ----

function drawChanges(consoleView) {
  const items = (consoleView.changes || []).map((c) => el("li", {},
    time(c.at_ms) + " — " + c.region + " ",
    el("span", { class: c.in_service ? "good" : "bad" }, c.in_service ? "back in service" : "out of service"),
    el("span", { class: "dim" }, " (" + ago(consoleView.now_ms - c.at_ms) + ")")));
  const list = document.getElementById("changes");
  list.replaceChildren(...(items.length ? items : [el("li", { class: "dim" }, "none since this node started")]));
}

function drawConfig(status, consoleView) {
  const config = status.config || {};
  const reload = config.last_reload;
  const pairs = [
    ["Node", status.node + (status.region ? " (" + status.region + ")" : "")],
    ["gslb version", consoleView.build],
    ["Config version", el("code", { title: config.version }, (config.version || "").slice(0, 12))],
    ["Config loaded", config.loaded_at_ms ? time(config.loaded_at_ms) : "—"],
    ["Last reload", reload ? el("span", { class: reload.ok ? "good" : "bad" },
      (reload.ok ? "ok" : "failed: " + (reload.error || "")) + " at " + time(reload.at_ms)) : "none"],
    ["Started", status.started_at_ms ? time(status.started_at_ms) : "—"],
    ["Queries/s", status.queries ? fixed(status.queries.per_second, 1) : "—"],
  ];
  document.getElementById("config").replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

// ---- polling ----

let polling = false;

async function poll() {
  if (polling) return;
  polling = true;
  const banner = document.getElementById("poll-error");
  try {
    const [status, consoleView] = await Promise.all([getJson("/v1/status"), getJson("/v1/console")]);
    document.getElementById("node").textContent = "— " + status.node;
    drawRegions(status, consoleView.now_ms);
    drawContinents(consoleView);
    drawEdges(consoleView, previous);
    drawChanges(consoleView);
    drawConfig(status, consoleView);
    const down = (status.regions || []).filter((r) => !r.in_service).length;
    document.getElementById("summary").textContent = (status.regions || []).length + " regions, " +
      down + " out of service — updated " + time(consoleView.now_ms);
    previous = consoleView;
    banner.hidden = true;
  } catch (error) {
    banner.hidden = false;
    banner.textContent = "This GSLB node is not answering (" + error.message + "); showing the last data.";
  } finally {
    polling = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const field = document.getElementById("token");
  field.addEventListener("input", () => { token = field.value; });
  document.getElementById("explain-form").addEventListener("submit", explain);
  poll();
  setInterval(poll, POLL_MS);
});
