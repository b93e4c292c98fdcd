// A photo's result: /api/colorize with its hints and reference, re-rendered (debounced) after
// every change, and the Download link that never saves a stale result.
"use strict";

import {
  RENDER_DELAY_MS,
  clamp,
  colorAt,
  post,
  samplerOf,
  saveBlob,
  showError,
  toTemperature,
} from "./common.js";
import { hintsOf, placeMarks } from "./marks.js";

export function updateDownload(card) {
  const ready = card.resultUrl && !card.timer && !card.controller;
  const fresh = ready && card.renderedVersion === card.version;
  if (fresh) {
    card.download.href = card.resultUrl;
    card.download.removeAttribute("aria-disabled");
    card.download.title = "";
    if (card.pendingDownload) {
      card.pendingDownload = false;
      card.note.hidden = true;
      card.download.click();
    }
  } else {
    card.download.removeAttribute("href"); // a stale result is never saved
    card.download.setAttribute("aria-disabled", "true");
    card.download.title = card.resultUrl ? "Wait for the new result" : "";
  }
  card.el.dataset.state = fresh ? "ready" : card.unusable ? "failed" : "rendering";
  document.dispatchEvent(new CustomEvent("jkspnet:state"));
}

// Something changed: the result is stale now, and re-renders once changes stop for a moment.
export function schedule(card, delay = RENDER_DELAY_MS) {
  if (card.unusable) return;
  card.version += 1;
  clearTimeout(card.timer);
  card.timer = setTimeout(() => {
    card.timer = null;
    render(card);
  }, delay);
  updateDownload(card);
}

// While editing, the result is a preview as large as the screen shows it (issue 21: a 12 MP
// re-render spent most of its time sending and decoding a 5 MB PNG); Download asks for the full
// size. The photo's own size comes back in a header, so hints stay in its pixels.
export const previewSide = (card) => {
  const frame = card.compare.getBoundingClientRect();
  return Math.max(1024, Math.ceil(Math.max(frame.width, frame.height) * devicePixelRatio));
};

function renderForm(card, full = false) {
  const form = new FormData();
  const saturation = document.getElementById("saturation");
  form.append("image", card.file, card.file.name);
  form.append("temperature", String(toTemperature(Number(saturation.value))));
  if (card.marks.length) form.append("hints", JSON.stringify(hintsOf(card)));
  if (card.reference) {
    form.append("reference", card.reference, card.reference.name);
    form.append("reference_strength", card.strength.value);
  }
  if (!full) form.append("preview", String(previewSide(card)));
  return form;
}

export async function render(card) {
  if (card.controller) card.controller.abort();
  const controller = new AbortController();
  const version = card.version;
  card.controller = controller;
  card.el.classList.add("busy");
  card.error.hidden = true;
  card.note.hidden = true;
  updateDownload(card);
  try {
    const form = renderForm(card);
    const response = await post("/api/colorize", form, controller.signal);
    const note = response.headers.get("X-JKSPNet-Note");
    const size = (response.headers.get("X-JKSPNet-Photo-Size") || "").split("x").map(Number);
    const blob = await response.blob();
    if (size.length === 2 && size.every((v) => v > 0)) card.photoSize = size;
    card.resultIsPreview = card.photoSize
      ? Math.max(...card.photoSize) > Number(form.get("preview"))
      : false;
    card.note.textContent = note || "";
    card.note.hidden = !note;
    if (card.resultUrl) URL.revokeObjectURL(card.resultUrl);
    card.resultUrl = URL.createObjectURL(blob);
    card.result = blob;
    card.renderedVersion = version;
    card.after.src = card.resultUrl;
    card.el.classList.add("has-result");
    card.renders += 1;
    card.el.dataset.renders = String(card.renders);
    if (card.scrollOnResult) {
      card.scrollOnResult = false; // the first of the photos just added: show it, whole
      card.el.scrollIntoView({ block: "start" });
      // and the keyboard goes on from there, unless it is busy elsewhere
      const idle = [document.body, document.getElementById("file")];
      if (idle.includes(document.activeElement)) card.el.focus({ preventScroll: true });
    }
    document.getElementById("server-status").hidden = true; // it answers again
  } catch (error) {
    if (error.name === "AbortError") return;
    // the photo itself cannot be used (not a bad reference, not a passing failure)
    const refused = [400, 413, 415].includes(error.status);
    card.unusable = refused && !card.resultUrl && !card.reference;
    card.el.classList.toggle("failed", card.unusable);
    showError(card, error, () => render(card));
  } finally {
    if (card.controller === controller) {
      card.controller = null;
      card.el.classList.remove("busy");
    }
    updateDownload(card);
  }
}

// ------------------------------------------------------------------------------ geometry
export function setPhotoSize(card, width, height) {
  if (!width || !height) return;
  const first = !card.width;
  card.width = width;
  card.height = height;
  card.compare.style.setProperty("--aspect", String(width / height));
  card.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (first) {
    // sizes in the photo's pixels: up to an eighth of its longest side
    card.size.max = String(Math.max(8, Math.round(Math.max(width, height) / 8)));
  }
  placeMarks(card);
}

// A point on screen to the photo's own pixel coordinates (x right, y down, pixel i covering
// [i, i + 1)), to a tenth of a pixel, whatever the scale and zoom the photo is shown at.
export function toPhoto(card, clientX, clientY) {
  const box = card.view.getBoundingClientRect();
  const at = (offset, side, size) => clamp(Math.round((offset / side) * size * 10) / 10, 0, size - 0.1);
  return [
    at(clientX - box.left, box.width, card.width),
    at(clientY - box.top, box.height, card.height),
  ];
}

// The result's colour at a pixel: a new point starts from what the network guessed there.
export function sampleColor(card, x, y) {
  return card.sampler ? colorAt(card.sampler, x, y) : null;
}

export function onResult(card) {
  const [width, height] = card.photoSize || [card.after.naturalWidth, card.after.naturalHeight];
  setPhotoSize(card, width, height);
  card.sampler = samplerOf(card.after, card.width, card.height);
}

// The full-size result of what is shown (asked once per rendered state).
export async function fullResult(card) {
  if (!card.resultIsPreview) return card.result;
  const version = card.renderedVersion;
  if (card.full && card.full.version === version) return card.full.blob;
  const blob = await (await post("/api/colorize", renderForm(card, true))).blob();
  card.full = { version, blob };
  return blob;
}

export async function downloadFull(card) {
  if (card.fetchingFull) return;
  card.fetchingFull = true;
  card.el.classList.add("busy");
  card.note.textContent = "Preparing the full-size PNG…";
  card.note.hidden = false;
  try {
    saveBlob(await fullResult(card), card.download.download);
    card.note.hidden = true;
  } catch (error) {
    card.note.hidden = true;
    showError(card, error, () => downloadFull(card));
  } finally {
    card.fetchingFull = false;
    if (!card.controller) card.el.classList.remove("busy");
  }
}
