// Dead letters: each DLQ's depth from /console/api/dead-letters, the messages an
// explicit listing found (POST /console/api/dead-letters) and redrive (POST
// /console/api/redrive).

import { clock, el, postJson, refresh, state } from "./common.js";

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

export function renderDeadLetters(queues) {
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
  await refresh();
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
  await refresh();
}
