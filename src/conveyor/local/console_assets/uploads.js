// Uploads: the image form (POST /console/api/uploads, presigned and stored by the
// server), its line following the image to a verdict, and the recent images from
// /console/api/images with their variants, formats and a way to their trace.

import { api, el, relayed, state } from "./common.js";
import { traceButton } from "./traces.js";

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

export function renderImages(rows) {
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
          row.width ? ` · ${row.width}×${row.height}` : "", " ", traceButton(row.image_id)),
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

export function wireUploadForm(onSent) {
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
    onSent();
  });
}
