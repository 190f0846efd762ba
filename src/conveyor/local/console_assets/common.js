// What every view of the console shares: the DOM builder, the console API client, the
// shared state, and the one way a view asks for a refresh. Everything from the server
// goes into the page as text, never as markup: customer ids and file names are user input.

export const API = "/console/api/";
export const FAST_MS = 1000;
export const SLOW_MS = 2000;

export const state = {
  phase: "connecting",
  actions: false,
  pipelines: null,
  redriven: {}, // queue -> the last redrive's result line
  listed: {}, // queue -> the messages the last explicit listing found
  upload: null, // the last upload from the form, followed until it is processed or failed
};

export function el(tag, attributes = {}, ...children) {
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

export class ApiError extends Error {
  constructor(status, payload) {
    super((payload && payload.reason) || `HTTP ${status}`);
    this.status = status;
    this.payload = payload || {};
  }
}

export async function api(path, options = {}) {
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
export function relayed(reply) {
  if (reply.status >= 400) throw new ApiError(reply.status, reply.answer);
  return reply.answer;
}

export function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

export function clock(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

let refresher = async () => {};

// The entry module registers its refresh of the slower views; a view that changed
// something (a form sent, a redrive) asks for it without importing the entry module.
export function onRefresh(task) {
  refresher = task;
}

export function refresh() {
  return refresher();
}
