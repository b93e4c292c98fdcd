// Shared by the page's modules: limits, small helpers, and the one way the page asks the server.
"use strict";

export const RENDER_DELAY_MS = 250; // wait this long after the last change before re-rendering
export const SAMPLE_SIDE = 1024; // the longest side of the canvases that sample colours and draw maps
export const OFFLINE = "Cannot reach the JKSPNet server: is jkspnet serve still running?";

// Saturation 0..100 maps to the model's temperature 1.8 (paler than the plain mean) .. 0.2
// (vivid), 50 to T = 1 exactly: the bundled weights' own T sits mid-slider, either way open.
export const toTemperature = (s) => Math.round((1.8 - 1.6 * (s / 100)) * 1000) / 1000;
export const toSaturation = (t) => Math.round(Math.min(100, Math.max(0, ((1.8 - t) / 1.6) * 100)));
export const clamp = (v, low, high) => Math.min(high, Math.max(low, v));
export const hex = (r, g, b) => "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");

export class Failure extends Error {
  constructor(message, retry) {
    super(message);
    this.retry = retry; // true: trying again may work (server gone, busy, or broken)
  }
}

// POST a form; the response on success, else a Failure with the server's one-line message.
export async function post(url, form, signal) {
  let response;
  try {
    response = await fetch(url, { method: "POST", body: form, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Failure(OFFLINE, true); // not the browser's "Failed to fetch"
  }
  if (response.ok) return response;
  let message = `the server answered ${response.status}`;
  try {
    message = (await response.json()).error || message;
  } catch (_) {
    /* not JSON: keep the status line */
  }
  const failure = new Failure(message, response.status === 503 || response.status >= 500);
  failure.status = response.status;
  throw failure;
}

export function showError(card, error, retry) {
  card.message.textContent = error.message;
  card.retryButton.hidden = !error.retry;
  card.retry = retry;
  card.error.hidden = false;
}

// A canvas of at most SAMPLE_SIDE pixels a side with the photo's proportions.
export function smallCanvas(width, height) {
  const scale = Math.min(1, SAMPLE_SIDE / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  return { canvas, scale };
}

// An image drawn on such a canvas, to read its colours back.
export function samplerOf(image, width, height) {
  const { canvas, scale } = smallCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  return { context, scale, width, height };
}

// The colour of pixel (x, y) (the image's own pixels) as #rrggbb.
export function colorAt(sampler, x, y) {
  const { context, scale } = sampler;
  const column = clamp(Math.floor(x * scale), 0, context.canvas.width - 1);
  const row = clamp(Math.floor(y * scale), 0, context.canvas.height - 1);
  const [r, g, b] = context.getImageData(column, row, 1, 1).data;
  return hex(r, g, b);
}

// Save a blob as a file named `name`, as a link's download does.
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
