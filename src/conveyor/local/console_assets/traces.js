// Traces: one order's or upload's trace drawn as a waterfall. Each hop is a bar placed
// where it ran in the whole trace, under the hop that caused it; a message's wait in its
// queue is drawn before the record that took it, and a retry is marked with its attempt.
// From /console/api/trace/<order id | upload id | trace id>.
import { api, el } from "./common.js";

const TICKS = 4;

export function traceButton(reference) {
  const button = el("button", { type: "button", class: "trace-link", "data-trace-ref": reference, text: "trace" });
  button.addEventListener("click", () => showTrace(reference));
  return button;
}

export function wireTraceForm() {
  const form = document.getElementById("trace-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const reference = String(new FormData(form).get("reference") || "").trim();
    if (reference) showTrace(reference);
  });
}

export async function showTrace(reference) {
  const root = document.getElementById("trace");
  document.getElementById("trace-form").elements.reference.value = reference;
  root.replaceChildren(el("p", { class: "muted", text: `Loading the trace of ${reference}…` }));
  root.scrollIntoView({ block: "nearest" });
  try {
    drawTrace(root, await api(`trace/${encodeURIComponent(reference)}`));
  } catch (error) {
    root.replaceChildren(el("p", { class: "result bad", text: error.message }));
  }
}

function share(ms, total) {
  return `${Math.min(100, Math.max(0, (ms / total) * 100)).toFixed(3)}%`;
}

// A bar from `start` for `length` ms; positions go through the CSSOM, which the page's
// content security policy allows where it refuses style attributes.
function bar(className, start, length, total, title) {
  const node = el("div", { class: className, title });
  node.style.left = share(start, total);
  node.style.width = `max(2px, ${share(length, total)})`;
  return node;
}

function said(hop) {
  const parts = [`${hop.duration_ms.toFixed(1)} ms`];
  if (hop.waited_ms !== null) parts.push(`waited ${hop.waited_ms.toFixed(0)} ms in the queue`);
  if (hop.attempt !== null) parts.push(`attempt ${hop.attempt}`);
  if (hop.outcome) parts.push(hop.outcome);
  return parts.join(" · ");
}

function drawTrace(root, trace) {
  const total = Math.max(trace.duration_ms, 0.001);
  const axis = el("div", { class: "axis" });
  for (let i = 0; i <= TICKS; i += 1) {
    const tick = el("span", { class: "tick", text: `${((total * i) / TICKS).toFixed(0)} ms` });
    tick.style.left = `${(100 * i) / TICKS}%`;
    axis.append(tick);
  }
  const rows = trace.hops.map((hop) => {
    const track = el("div", { class: "track" });
    if (hop.waited_ms !== null) {
      const from = Math.max(0, hop.start_ms - hop.waited_ms);
      track.append(bar("wait", from, hop.start_ms - from, total, `waited ${hop.waited_ms.toFixed(0)} ms in ${hop.name.replace(/ process$/, "")}`));
    }
    const outcome = hop.error ? "failed" : hop.outcome || hop.kind;
    track.append(bar(`span ${outcome}`, hop.start_ms, hop.duration_ms, total, `${hop.name}: ${said(hop)}`));
    const label = el(
      "div",
      { class: "hop" },
      el("span", { class: "name", text: hop.name }),
      el("span", { class: "service", text: hop.service }),
      hop.attempt !== null && hop.attempt > 1 ? el("span", { class: "retry", text: `retry ${hop.attempt - 1}` }) : null,
    );
    label.style.paddingLeft = `${hop.depth * 14}px`;
    return el(
      "div",
      { class: `row kind-${hop.kind}`, "data-span": hop.span_id, "data-depth": hop.depth, "data-outcome": hop.outcome || "" },
      label,
      track,
      el("div", { class: "said muted", text: said(hop) }),
    );
  });
  const retries = trace.retries ? ` · ${trace.retries} ${trace.retries === 1 ? "retry" : "retries"}` : "";
  root.replaceChildren(
    el("p", { "data-trace-id": trace.trace_id },
      el("span", { class: "mono", text: trace.trace_id }),
      ` · ${total.toFixed(0)} ms through ${trace.services.join(", ")}${retries}`),
    el("div", { class: "waterfall", "data-trace-id": trace.trace_id },
      el("div", { class: "row header" }, el("div", { class: "hop muted", text: "hop" }), axis, el("div", {})),
      ...rows),
  );
}
