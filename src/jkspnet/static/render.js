// A photo's result: /api/colorize with its hints and reference, re-rendered (debounced) after
// every change, and the Download link that never saves a stale result.
"use strict";

import { RENDER_DELAY_MS, clamp, colorAt, post, samplerOf, showError, toTemperature } from "./common.js";
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

function renderForm(card) {
  const form = new FormData();
  const saturation = document.getElementById("saturation");
  form.append("image", card.file, card.file.name);
  form.append("temperature", String(toTemperature(Number(saturation.value))));
  if (card.marks.length) form.append("hints", JSON.stringify(hintsOf(card)));
  if (card.reference) {
    form.append("reference", card.reference, card.reference.name);
    form.append("reference_strength", card.strength.value);
  }
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
    const response = await post("/api/colorize", renderForm(card), controller.signal);
    const note = response.headers.get("X-JKSPNet-Note");
    const blob = await response.blob();
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
  setPhotoSize(card, card.after.naturalWidth, card.after.naturalHeight);
  card.sampler = samplerOf(card.after, card.width, card.height);
}
