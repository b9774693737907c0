/**
 * The admin port's live picture of the mesh (GET /mesh): one self-contained
 * page (no scripts or styles from elsewhere) that draws the graph of
 * /mesh/graph and redraws it from /mesh/events (server-sent events) as the
 * mesh changes. Every text it shows goes through textContent: node ids and
 * NACK messages come from proxies and are never markup.
 */
export const MESH_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>smc mesh</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; display: flex; color: #222; }
  main { flex: 1; }
  aside { width: 360px; padding: 12px; border-left: 1px solid #ddd; overflow: auto; height: 100vh; box-sizing: border-box; }
  h1 { font-size: 16px; margin: 12px; }
  h2 { font-size: 14px; margin: 16px 0 6px; }
  ul { padding-left: 18px; margin: 0; }
  li { margin: 3px 0; }
  #status { margin: 0 12px; color: #666; font-size: 12px; }
  .node circle { stroke: #333; stroke-width: 1.5; }
  .node[data-state="SYNCED"] circle { fill: #8fd19e; }
  .node[data-state="STALE"] circle { fill: #ffe08a; }
  .node[data-state="NACK"] circle { fill: #f5a3a3; }
  .node[data-state="NONE"] circle { fill: #e6e6e6; }
  .node text { font-size: 12px; }
  .edge line { stroke: #5b7fb5; stroke-width: 1.5; }
  .edge text { font-size: 11px; fill: #35527a; }
  .proxy[data-state="NACK"] { color: #a40000; }
  .note { color: #666; }
</style>
</head>
<body>
<main>
  <h1>smc mesh</h1>
  <p id="status" data-version="">connecting…</p>
  <svg id="graph" width="900" height="720" viewBox="0 0 900 720" role="img" aria-label="who may call whom">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5b7fb5"/></marker></defs>
    <g id="edges"></g><g id="nodes"></g>
  </svg>
</main>
<aside>
  <p class="note">Green: every proxy of the identity acknowledged its configuration; yellow: sent, not yet acknowledged; red: a proxy rejected it (NACK); grey: no proxy connected.</p>
  <h2>Traffic splits</h2><ul id="splits"></ul>
  <h2>Routes (Gateway API)</h2><ul id="routes"></ul>
  <h2>Not in force</h2><ul id="programmed"></ul>
  <h2>Proxies</h2><ul id="proxies"></ul>
  <h2>Who may call whom</h2><ul id="grants"></ul>
</aside>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const el = (name, attrs, text) => {
  const e = name.startsWith("svg:") ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};
const RANK = { NACK: 3, STALE: 2, "NOT SENT": 1, SYNCED: 0 };
function nodeState(identity) {
  if (identity.proxies.length === 0) return "NONE";
  return identity.proxies.reduce((worst, p) => (RANK[p.state] > RANK[worst] ? p.state : worst), "SYNCED");
}
function grantText(g) {
  const ports = g.ports === "all" ? "every port" : "port " + g.ports.join(", ");
  return g.protocol === "tcp" ? ports + ": TCP" : ports + ": " + g.routes.join(", ");
}
function draw(graph, version) {
  const nodes = document.getElementById("nodes"), edges = document.getElementById("edges");
  nodes.replaceChildren(); edges.replaceChildren();
  const n = graph.identities.length, cx = 450, cy = 360, r = n > 1 ? 280 : 0;
  const at = new Map();
  graph.identities.forEach((id, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    at.set(id.id, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) });
  });
  for (const e of graph.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    if (!a || !b) continue;
    const g = el("svg:g", { class: "edge", "data-from": e.from, "data-to": e.to });
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1, k = 26 / len;
    g.append(el("svg:line", { x1: a.x + dx * k, y1: a.y + dy * k, x2: b.x - dx * k, y2: b.y - dy * k, "marker-end": "url(#arrow)" }));
    const label = e.grants.map(grantText).join("; ");
    g.append(el("svg:text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, "text-anchor": "middle" }, label.length > 80 ? label.slice(0, 77) + "…" : label));
    g.append(el("svg:title", {}, e.from + " → " + e.to + "\\n" + e.grants.map((x) => x.policy + " (" + grantText(x) + ")").join("\\n")));
    edges.append(g);
  }
  for (const id of graph.identities) {
    const p = at.get(id.id), state = nodeState(id);
    const g = el("svg:g", { class: "node", "data-id": id.id, "data-state": state });
    g.append(el("svg:circle", { cx: p.x, cy: p.y, r: 22 }));
    g.append(el("svg:text", { x: p.x, y: p.y + 38, "text-anchor": "middle" }, id.id));
    g.append(el("svg:title", {}, id.id + "\\n" + (id.workloads.join("\\n") || "no workloads") + "\\n" + state));
    nodes.append(g);
  }
  const splits = document.getElementById("splits");
  splits.replaceChildren(...(graph.splits.length ? graph.splits.map((s) =>
    el("li", { class: "split", "data-name": s.name }, s.service + " (" + s.name + "): " + s.backends.map((b) => b.service + " " + b.percent + "%").join(", "))) : [el("li", { class: "note" }, "none")]));
  const routes = document.getElementById("routes");
  routes.replaceChildren(...(graph.routes.length ? graph.routes.map((r) =>
    el("li", { class: "route", "data-name": r.name }, r.service + (r.port ? ":" + r.port : "") + " (" + r.name + ", " + (r.callers === "all" ? "every caller" : "callers in " + r.callers) + "): " + (r.backends.join(", ") || "no backend"))) : [el("li", { class: "note" }, "none")]));
  // Policy objects some connected proxy has not taken (Pending), refused (Rejected), or that no proxy carries.
  const programmed = document.getElementById("programmed");
  const notInForce = (graph.programmed || []).filter((o) => o.programmed.status !== "True");
  programmed.replaceChildren(...(notInForce.length ? notInForce.map((o) =>
    el("li", { class: "policy", "data-object": o.object, "data-reason": o.programmed.reason }, o.object + ": " + o.programmed.reason + " — " + o.programmed.message))
    : [el("li", { class: "note" }, (graph.programmed || []).length ? "every policy object is programmed on every connected proxy it shapes" : "no policy object")]));
  const proxies = document.getElementById("proxies");
  const all = graph.identities.flatMap((i) => i.proxies.map((p) => ({ ...p, identity: i.id })));
  proxies.replaceChildren(...(all.length ? all.map((p) =>
    el("li", { class: "proxy", "data-node": p.nodeId, "data-state": p.state }, p.nodeId + ": " + p.state + (p.nack ? " — " + p.nack : "")))
    : [el("li", { class: "note" }, "no proxy connected")]));
  const grants = document.getElementById("grants");
  grants.replaceChildren(...(graph.permissive ? [el("li", { class: "note" }, "permissive mode: every identity of the mesh may call every other")] : graph.edges.flatMap((e) =>
    e.grants.map((g) => el("li", { class: "grant", "data-from": e.from, "data-to": e.to }, e.from + " → " + e.to + ": " + grantText(g) + " (" + g.policy + ")")))));
  const status = document.getElementById("status");
  status.dataset.version = version;
  status.textContent = "updated " + new Date().toLocaleTimeString() + " · " + graph.identities.length + " identities, " + graph.edges.length + " caller/callee pairs";
}
let version = 0;
function show(text) { version++; draw(JSON.parse(text), String(version)); }
fetch("/mesh/graph").then((r) => r.text()).then(show).catch(() => undefined);
const events = new EventSource("/mesh/events");
events.onmessage = (m) => show(m.data);
events.onerror = () => { document.getElementById("status").textContent = "disconnected from the controller; retrying…"; };
</script>
</body>
</html>
`;
