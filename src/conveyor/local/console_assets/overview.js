// The overview: the stack's phase banner, the pipelines diagram with each function's
// and queue's live numbers, and the metrics cards. Draws from /console/api/overview
// (every second) and /console/api/pipelines (once).

import { FAST_MS, el } from "./common.js";

export function showPhase(phase, detail, problems) {
  const pill = document.getElementById("phase");
  pill.textContent = phase;
  pill.className = `pill ${phase}`;
  const banner = document.getElementById("banner");
  let message = "";
  let bad = false;
  if (phase === "down") {
    message = `The console cannot reach the local stack (${detail}): it is not running at this address. Start it with \`conveyor up\`; this page retries every ${FAST_MS / 1000} s.`;
    bad = true;
  } else if (phase === "starting") {
    message = `The local stack is starting${detail ? `: ${detail}` : ""}. This page fills in when it is ready.`;
  } else if (phase === "stopping" || phase === "stopped") {
    message = `The local stack ${phase === "stopping" ? "is stopping" : "has stopped"}. Start it again with \`conveyor up\`; this page reconnects by itself.`;
    bad = true;
  } else if (problems.length) {
    message = problems.join(" · ");
    bad = true;
  }
  banner.hidden = !message;
  banner.textContent = message;
  banner.className = bad ? "banner bad" : "banner";
  document.getElementById("updated").textContent =
    phase === "running" || phase === "starting" ? `updated ${new Date().toLocaleTimeString()}` : "";
}

export function renderPipelines(pipelines) {
  const root = document.getElementById("pipelines");
  root.replaceChildren();
  for (const pipeline of pipelines) {
    const lanes = el("div", { class: "lanes" });
    const columns = Math.max(...pipeline.nodes.map((n) => n.column)) + 1;
    const laneNodes = [];
    for (let i = 0; i < columns; i += 1) {
      const lane = el("div", { class: "lane" });
      laneNodes.push(lane);
      lanes.append(lane);
    }
    for (const node of pipeline.nodes) {
      laneNodes[node.column].append(
        el(
          "div",
          {
            class: `node kind-${node.kind}`,
            id: `node-${node.id}`,
            "data-kind": node.kind,
            "data-name": node.name,
            "data-column": node.column,
          },
          el("div", { class: "label", text: node.label }),
          el("div", { class: "stats" }),
        ),
      );
    }
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "edges");
    svg.setAttribute("aria-hidden", "true");
    lanes.prepend(svg);
    const section = el("div", { class: "pipeline" }, el("h3", { text: pipeline.title }), lanes);
    section.dataset.edges = JSON.stringify(pipeline.edges);
    root.append(section);
  }
  drawEdges();
}

export function drawEdges() {
  for (const section of document.querySelectorAll(".pipeline")) {
    const lanes = section.querySelector(".lanes");
    const svg = lanes.querySelector("svg.edges");
    const origin = lanes.getBoundingClientRect();
    svg.setAttribute("width", String(lanes.scrollWidth));
    svg.setAttribute("height", String(lanes.scrollHeight));
    svg.replaceChildren();
    for (const edge of JSON.parse(section.dataset.edges)) {
      const from = document.getElementById(`node-${edge.source}`);
      const to = document.getElementById(`node-${edge.target}`);
      if (!from || !to) continue;
      const a = from.getBoundingClientRect();
      const b = to.getBoundingClientRect();
      const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      let d;
      if (Number(to.dataset.column) > Number(from.dataset.column)) {
        if (b.left > a.right) {
          const x1 = a.right - origin.left;
          const y1 = a.top + a.height / 2 - origin.top;
          const x2 = b.left - origin.left;
          const y2 = b.top + b.height / 2 - origin.top;
          const bend = (x2 - x1) / 2;
          d = `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
        } else {
          // Narrow windows stack the columns: edges run downwards.
          const x1 = a.left + a.width / 2 - origin.left;
          const y1 = a.bottom - origin.top;
          const x2 = b.left + b.width / 2 - origin.left;
          const y2 = b.top - origin.top;
          const bend = (y2 - y1) / 2;
          d = `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`;
        }
        path.setAttribute("class", edge.dead_letter ? "dead" : "");
      } else {
        // An edge back to an earlier column (images write into the bucket they came from).
        const x1 = a.left + a.width / 2 - origin.left;
        const y1 = a.bottom - origin.top;
        const x2 = b.left + b.width / 2 - origin.left;
        const y2 = b.bottom - origin.top;
        const low = Math.max(y1, y2) + 18;
        d = `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2}`;
        path.setAttribute("class", "back");
      }
      path.setAttribute("d", d);
      svg.append(path);
    }
  }
}

function setStats(id, text, classes = {}) {
  const node = document.getElementById(`node-${id}`);
  if (!node) return;
  node.querySelector(".stats").textContent = text;
  for (const [name, on] of Object.entries(classes)) node.classList.toggle(name, on);
}

export function updateNodes(overview) {
  for (const [name, fn] of Object.entries(overview.functions)) {
    const last = fn.invocations ? ` · last ${fn.last_duration_ms} ms` : "";
    setStats(`fn_${name.replaceAll("-", "_")}`, `${fn.invocations} inv · ${fn.errors} err${last}`, {
      erring: fn.errors > 0,
    });
  }
  for (const [name, depth] of Object.entries(overview.queues)) {
    const id = `queue_${name.replaceAll("-", "_")}`;
    if (name.endsWith("-dlq")) {
      const count = depth.visible + depth.in_flight;
      setStats(id, `${count} dead letter${count === 1 ? "" : "s"}`, { alert: count > 0 });
    } else {
      setStats(id, `${depth.visible} visible · ${depth.in_flight} in flight`);
    }
  }
}

export function renderMetrics(series) {
  const root = document.getElementById("metrics");
  if (!series.length) {
    root.replaceChildren(el("p", { class: "muted", text: "No metrics yet." }));
    return;
  }
  const byName = new Map();
  for (const s of series) {
    if (!byName.has(s.name)) byName.set(s.name, []);
    byName.get(s.name).push(s);
  }
  const cards = [];
  for (const [name, all] of byName) {
    const unit = all[0].unit;
    let value;
    let detail = null;
    if (unit === "Milliseconds") {
      const samples = all.reduce((n, s) => n + s.samples, 0);
      const sum = all.reduce((n, s) => n + s.sum, 0);
      const max = Math.max(...all.map((s) => s.max));
      value = `${(sum / samples).toFixed(0)} ms`;
      detail = el("ul", {}, el("li", { text: `${samples} samples, max ${max.toFixed(0)} ms` }));
    } else {
      value = String(all.reduce((n, s) => n + s.sum, 0));
      const reasons = all.filter((s) => s.dimensions.reason);
      if (reasons.length) {
        detail = el(
          "ul",
          {},
          ...reasons.map((s) => el("li", { text: `${s.dimensions.reason}: ${s.sum}` })),
        );
      }
    }
    cards.push(
      el(
        "div",
        { class: "metric", "data-metric": name },
        el("div", { class: "value", text: value }),
        el("div", { class: "name", text: name }),
        detail,
      ),
    );
  }
  root.replaceChildren(el("div", { class: "metrics" }, ...cards));
}
