// The canary panel: its last run check by check and how earlier runs went, from
// /console/api/canary.

import { clock, el } from "./common.js";

// The canary's last run, check by check, and how the runs before it went.
export function renderCanary(canary) {
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
