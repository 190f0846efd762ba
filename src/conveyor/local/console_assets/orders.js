// Orders: the test-order form (POST /console/api/orders, relayed to the stack's API) and
// the recent billed orders from /console/api/orders, each with a way to its trace.

import { clock, el, postJson, relayed } from "./common.js";
import { traceButton } from "./traces.js";

export function renderOrders(rows) {
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
        el("td", {}, el("span", { class: "mono", text: row.order_id }), " ", traceButton(row.order_id)),
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

export function wireOrderForm(onSent) {
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
    onSent();
  });
}
