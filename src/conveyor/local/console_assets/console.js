// The Conveyor local console: polls /console/api/* and draws what the stack holds.
// Plain DOM code, no build step. Everything from the server goes in as text, never as
// markup: customer ids and file names are user input.
"use strict";

const API = "/console/api/";
const FAST_MS = 1000;
const SLOW_MS = 2000;

const state = {
  phase: "connecting",
  actions: false,
  pipelines: null,
  redriven: {}, // queue -> the last redrive's result line
  listed: {}, // queue -> the messages the last explicit listing found
  upload: null, // the last upload from the form, followed until it is processed or failed
};

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

class ApiError extends Error {
  constructor(status, payload) {
    super((payload && payload.reason) || `HTTP ${status}`);
    this.status = status;
    this.payload = payload || {};
  }
}

async function api(path, options = {}) {
  const response = await fetch(API + path, { cache: "no-store", ...options });
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch (_) {
    payload = { reason: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

// The order and upload helpers relay the pipeline's answer as {status, answer}.
function relayed(reply) {
  if (reply.status >= 400) throw new ApiError(reply.status, reply.answer);
  return reply.answer;
}

function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

function clock(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

// -- status banner ------------------------------------------------------------------

function showPhase(phase, detail, problems) {
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

// -- pipelines diagram --------------------------------------------------------------

function renderPipelines(pipelines) {
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

function drawEdges() {
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

function updateNodes(overview) {
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

// -- metrics ------------------------------------------------------------------------

function renderMetrics(series) {
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

// -- orders, images, dead letters ---------------------------------------------------

function renderOrders(rows) {
  const body = document.querySelector("#orders tbody");
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No orders billed yet." })));
    return;
  }
  body.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        { "data-order-id": row.order_id },
        el("td", {}, el("span", { class: "mono", text: row.order_id })),
        el("td", { text: row.customer_id }),
        el("td", { class: "num", text: `${row.total} ${row.currency}` }),
        el("td", {}, el("span", { class: `status ${row.status}`, text: row.status })),
        el("td", { text: clock(row.billed_at) }),
        el(
          "td",
          {},
          el("span", { class: "mono", text: row.archive_key }),
          row.archived ? null : el("span", { class: "muted", text: " (not yet)" }),
        ),
      ),
    ),
  );
}

// The canary's last run, check by check, and how the runs before it went.
function renderCanary(canary) {
  const box = document.getElementById("canary");
  if (!canary.enabled) {
    box.replaceChildren(el("p", { class: "muted", text: "Not running: start the stack with conveyor up --canary." }));
    return;
  }
  const [last, ...earlier] = canary.runs;
  if (!last) {
    box.replaceChildren(el("p", { class: "muted", text: "The first run is under way…" }));
    return;
  }
  const summary = last.summary;
  const verdict = last.run.error ? "error" : summary.fail ? "fail" : "pass";
  const said = last.run.error
    ? last.run.error
    : `${summary.pass} passed, ${summary.fail} failed, ${summary.skip} skipped in ${last.seconds} s`;
  box.replaceChildren(
    el(
      "p",
      { "data-canary-run": last.run.id || "" },
      el("span", { class: `status ${verdict}`, text: verdict }),
      ` ${clock(last.started_at)} · ${said} · every ${canary.every_s} s`,
    ),
    el(
      "table",
      { id: "canary-checks" },
      el("thead", {}, el("tr", {}, el("th", { text: "check" }), el("th", { text: "result" }), el("th", { text: "what it saw" }))),
      el(
        "tbody",
        {},
        ...last.checks.map((check) =>
          el(
            "tr",
            { "data-check": check.name },
            el("td", {}, el("span", { class: "mono", text: check.name })),
            el("td", {}, el("span", { class: `status ${check.outcome}`, text: check.outcome })),
            el("td", { text: check.detail }),
          ),
        ),
      ),
    ),
    ...(earlier.length
      ? [el("p", { class: "muted", text: `earlier runs: ${earlier.map((r) => (r.summary.fail || r.run.error ? "✗" : "✓")).join(" ")}` })]
      : []),
  );
}

// The upload form's line follows its image to the pipeline's verdict.
function followUpload(rows) {
  const upload = state.upload;
  const row = upload && rows.find((r) => r.image_id === upload.id);
  if (!row || (row.status !== "processed" && row.status !== "failed")) return;
  const out = document.getElementById("upload-result");
  out.dataset.status = row.status;
  if (row.status === "processed") {
    out.className = "result ok";
    out.textContent = `${upload.name} processed as ${upload.id}: ${Object.keys(row.variants).join(", ")}`;
  } else {
    out.className = "result bad";
    out.textContent = `${upload.name} failed: ${row.reason}`;
  }
  state.upload = null;
}

function renderImages(rows) {
  followUpload(rows);
  const root = document.getElementById("images");
  if (!rows.length) {
    root.replaceChildren(el("p", { class: "muted", text: "No images yet." }));
    return;
  }
  root.replaceChildren(
    ...rows.map((row) => {
      const labels = Object.keys(row.variants);
      const thumb = labels.length ? row.variants[labels[labels.length - 1]] : null;
      const picture = thumb
        ? el("img", { src: thumb.url, alt: `${row.filename} thumbnail`, width: 150, height: 150 })
        : el("div", {
            class: "placeholder",
            text: row.status === "failed" ? `rejected: ${row.reason}` : "processing…",
          });
      return el(
        "div",
        { class: "card", "data-image-id": row.image_id, "data-status": row.status },
        picture,
        el("div", { class: "name", text: row.filename || row.image_id }),
        el("div", {}, el("span", { class: `status ${row.status}`, text: row.status }),
          row.width ? ` · ${row.width}×${row.height}` : ""),
        el(
          "div",
          { class: "links" },
          ...labels.map((label) => el("a", { href: row.variants[label].url, target: "_blank", rel: "noopener", text: label })),
        ),
        labels.length ? el("div", { class: "formats muted", text: formatsSaid(row.variants[labels[0]].formats) }) : null,
      );
    }),
  );
}

// "png 120.3 KB · avif 9.8 KB · webp 12.1 KB": each format a variant is stored in; its
// one URL serves the best of them the browser accepts.
function formatsSaid(formats) {
  return (formats || [])
    .map((f) => `${String(f.type || "?").replace("image/", "")} ${(f.bytes / 1000).toFixed(1)} KB`)
    .join(" · ");
}

const LISTING_NOTE =
  "Listing receives each message once, which raises its receive count by one; the counts shown are from before. Refreshing this page receives nothing.";

function lettersTable(messages) {
  if (!messages.length) return el("p", { class: "muted", text: "No messages were visible to list." });
  const heads = ["Message", "Receives", "Sent", "What", "Why it failed"];
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      { class: "letters" },
      el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { text: h })))),
      el(
        "tbody",
        {},
        ...messages.map((m) =>
          el(
            "tr",
            { "data-message-id": m.message_id },
            el("td", {}, el("span", { class: "mono", text: m.message_id })),
            el("td", { class: "num", text: m.receive_count }),
            el("td", { text: clock(m.sent_at) }),
            el("td", { text: m.subject }),
            el("td", { text: m.reason }),
          ),
        ),
      ),
    ),
  );
}

function renderDeadLetters(queues) {
  const root = document.getElementById("dead-letters");
  root.replaceChildren(
    ...queues.map((queue) => {
      if (queue.depth === 0) delete state.listed[queue.queue];
      const action = (label, cls, handler) => {
        const button = el("button", {
          type: "button",
          class: cls,
          "data-queue": queue.queue,
          disabled: !state.actions || queue.depth === 0,
          title: cls === "list" ? LISTING_NOTE : null,
          text: label,
        });
        button.addEventListener("click", () => handler(queue.queue, button));
        return button;
      };
      const heading = el(
        "header",
        {},
        el("strong", { class: queue.depth ? "alert" : "", text: queue.dlq }),
        el("span", { class: "muted", text: `${queue.depth} message${queue.depth === 1 ? "" : "s"}` }),
        action("List messages", "list", listLetters),
        action(`Redrive to ${queue.queue}`, "redrive", redrive),
        el("span", {
          class: `result ${state.redriven[queue.queue]?.ok ? "ok" : "bad"}`,
          id: `redrive-${queue.queue}`,
          text: state.redriven[queue.queue]?.text || "",
        }),
      );
      const listed = state.listed[queue.queue];
      const body = listed
        ? [el("p", { class: "muted note", text: LISTING_NOTE }), lettersTable(listed)]
        : [];
      return el("div", { class: "dlq", "data-dlq": queue.dlq }, heading, ...body);
    }),
  );
}

async function listLetters(queue, button) {
  button.disabled = true;
  try {
    state.listed[queue] = (await postJson("dead-letters", { queue })).messages;
  } catch (error) {
    state.redriven[queue] = { ok: false, text: `listing failed: ${error.message}` };
  }
  await refreshSlow();
}

async function redrive(queue, button) {
  button.disabled = true;
  // Kept in state: the list is redrawn on every refresh.
  try {
    const moved = await postJson("redrive", { queue });
    const again = moved.failed_again ? `; ${moved.failed_again} failed again` : "";
    state.redriven[queue] = { ok: true, text: `moved ${moved.moved} back to ${queue}${again}` };
  } catch (error) {
    state.redriven[queue] = { ok: false, text: `redrive failed: ${error.message}` };
  }
  delete state.listed[queue];
  await refreshSlow();
}

// -- forms --------------------------------------------------------------------------

function wireForms() {
  const orderForm = document.getElementById("order-form");
  orderForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(orderForm);
    const out = document.getElementById("order-result");
    out.className = "result";
    out.textContent = "sending…";
    try {
      const answer = relayed(await postJson("orders", {
        customer_id: data.get("customer_id"),
        currency: data.get("currency"),
        items: [
          { sku: data.get("sku"), quantity: Number(data.get("quantity")), unit_price: String(data.get("unit_price")) },
        ],
      }));
      out.className = "result ok";
      out.textContent = `accepted order ${answer.order_id}`;
      out.dataset.orderId = answer.order_id;
    } catch (error) {
      const fields = (error.payload.fields || []).map((f) => `${f.field}: ${f.message}`).join("; ");
      out.className = "result bad";
      out.textContent = `refused (${error.status}): ${error.message}${fields ? ` — ${fields}` : ""}`;
    }
    refreshSlow();
  });

  const uploadForm = document.getElementById("upload-form");
  uploadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = uploadForm.elements.file.files[0];
    const out = document.getElementById("upload-result");
    if (!file) return;
    out.className = "result";
    out.textContent = `uploading ${file.name} (${Math.ceil(file.size / 1024)} KiB)…`;
    try {
      const answer = relayed(await api("uploads", {
        method: "POST",
        headers: { "Content-Type": file.type || "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
        body: file,
      }));
      out.className = "result";
      out.textContent = `${file.name} uploaded as ${answer.upload_id}; processing… (request id ${answer.request_id})`;
      out.dataset.uploadId = answer.upload_id;
      out.dataset.status = "processing";
      state.upload = { id: answer.upload_id, name: file.name };
    } catch (error) {
      out.className = "result bad";
      out.textContent = `refused (${error.status}): ${error.message}`;
    }
    refreshSlow();
  });
}

// Why the forms are off, said where their results go; cleared when they come back.
const NOTICES = {
  remote: "Sending is available only when the stack listens on 127.0.0.1.",
  stopped: "Sending resumes when the local stack is running.",
};

function enableActions(running, allowed) {
  const on = running && allowed;
  for (const button of document.querySelectorAll("form button")) button.disabled = !on;
  const notice = on ? null : allowed || !running ? NOTICES.stopped : NOTICES.remote;
  for (const id of ["order-result", "upload-result"]) {
    const out = document.getElementById(id);
    const showingNotice = Object.values(NOTICES).includes(out.textContent);
    if (notice && (!out.textContent || showingNotice)) {
      out.className = "result";
      out.textContent = notice;
    } else if (!notice && showingNotice) {
      out.textContent = "";
    }
  }
}

// -- polling ------------------------------------------------------------------------

async function refreshFast() {
  try {
    const overview = await api("overview");
    state.phase = overview.phase;
    state.actions = overview.actions;
    enableActions(overview.phase === "running", overview.actions);
    showPhase(overview.phase, overview.detail, overview.problems);
    if (overview.phase === "running" && !state.pipelines) {
      state.pipelines = await api("pipelines");
      renderPipelines(state.pipelines);
    }
    updateNodes(overview);
    renderMetrics(overview.metrics);
  } catch (error) {
    // A stopping stack answers 503 "stopped"; no answer at all is "down". (A foreign
    // Host never gets this far: the page itself is refused with the address to use.)
    const stopped = error instanceof ApiError && error.payload.error === "stopped";
    state.phase = stopped ? "stopped" : "down";
    enableActions(false, state.actions);
    showPhase(state.phase, error.message, []);
  }
}

async function refreshSlow() {
  if (state.phase !== "running") return;
  const parts = [
    ["orders", renderOrders],
    ["images", renderImages],
    ["dead-letters", renderDeadLetters],
    ["canary", renderCanary],
  ];
  await Promise.all(
    parts.map(async ([path, render]) => {
      try {
        render(await api(path));
      } catch (error) {
        if (error instanceof ApiError) showPhase(state.phase, "", [`${path}: ${error.message}`]);
      }
    }),
  );
}

function every(ms, task) {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await task();
    } finally {
      running = false;
    }
  };
  tick();
  return setInterval(tick, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  wireForms();
  every(FAST_MS, refreshFast);
  every(SLOW_MS, refreshSlow);
  window.addEventListener("resize", drawEdges);
});
