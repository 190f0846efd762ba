// The Conveyor local console's entry module: wires the forms, polls the console API and
// hands each answer to the view that draws it. Plain ES modules, no build step.

import { ApiError, FAST_MS, SLOW_MS, api, onRefresh, state } from "./common.js";
import { renderCanary } from "./canary.js";
import { renderDeadLetters } from "./dead_letters.js";
import { renderOrders, wireOrderForm } from "./orders.js";
import { drawEdges, renderMetrics, renderPipelines, showPhase, updateNodes } from "./overview.js";
import { wireTraceForm } from "./traces.js";
import { renderImages, wireUploadForm } from "./uploads.js";

// Why the forms are off, said where their results go; cleared when they come back.
const NOTICES = {
  remote: "Sending is available only when the stack listens on 127.0.0.1.",
  stopped: "Sending resumes when the local stack is running.",
};

function enableActions(running, allowed) {
  const on = running && allowed;
  for (const button of document.querySelectorAll("#order-form button, #upload-form button")) button.disabled = !on;
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
  onRefresh(refreshSlow);
  wireOrderForm(refreshSlow);
  wireUploadForm(refreshSlow);
  wireTraceForm();
  every(FAST_MS, refreshFast);
  every(SLOW_MS, refreshSlow);
  window.addEventListener("resize", drawEdges);
});
