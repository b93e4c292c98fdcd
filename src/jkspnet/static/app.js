// JKSPNet's page: a small editor. Each photo goes to /api/colorize with its colour points (hints)
// and reference photo; the result re-renders (debounced) after every change. The uncertainty map
// comes from /api/uncertainty. Points are kept in the photo's own pixels (as displayed, after its
// EXIF orientation), whatever the scale on screen.
"use strict";

const drop = document.getElementById("drop");
const fileInput = document.getElementById("file");
const saturation = document.getElementById("saturation");
const saturationValue = document.getElementById("saturation-value");
const results = document.getElementById("results");
const template = document.getElementById("card-template");
const clearAll = document.getElementById("clear-all");
const help = document.getElementById("help");
const serverStatus = document.getElementById("server-status");
const cards = [];
const namesSeen = new Map();

const RENDER_DELAY_MS = 250; // wait this long after the last change before re-rendering
const SAMPLE_SIDE = 1024; // the longest side of the canvases that sample colours and draw maps
const OFFLINE = "Cannot reach the JKSPNet server: is jkspnet serve still running?";
// Quick colours for a point; "Other colour" opens the browser's own picker. Grey says "no colour".
const SWATCHES = [
  ["sky blue", "#7ea6d8"],
  ["deep blue", "#2f4f8f"],
  ["foliage green", "#4f7a3a"],
  ["grass green", "#7fa347"],
  ["water teal", "#3f8a8a"],
  ["purple", "#6a4a8a"],
  ["brick red", "#9a4a32"],
  ["red", "#b52a2a"],
  ["orange", "#d9822b"],
  ["yellow", "#e2c044"],
  ["skin, light", "#e0b594"],
  ["skin, dark", "#8d5a3c"],
  ["wood brown", "#7a5230"],
  ["sand", "#d6c49a"],
  ["olive", "#77773a"],
  ["pink", "#d98aa0"],
  ["stone", "#a59b8c"],
  ["grey (no colour)", "#808080"],
];

// Saturation 0..100 maps to the model's temperature 1.0 (plain mean) .. 0.2 (vivid).
const toTemperature = (s) => Math.round((1.0 - 0.8 * (s / 100)) * 1000) / 1000;
const toSaturation = (t) => Math.round(Math.min(100, Math.max(0, ((1.0 - t) / 0.8) * 100)));
const clamp = (v, low, high) => Math.min(high, Math.max(low, v));
const hex = (r, g, b) => "#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("");

// ------------------------------------------------------------------------------ requests
class Failure extends Error {
  constructor(message, retry) {
    super(message);
    this.retry = retry; // true: trying again may work (server gone, busy, or broken)
  }
}

// POST a form; the response on success, else a Failure with the server's one-line message.
async function post(url, form, signal) {
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

function showError(card, error, retry) {
  card.message.textContent = error.message;
  card.retryButton.hidden = !error.retry;
  card.retry = retry;
  card.error.hidden = false;
}

// ------------------------------------------------------------------------------- rendering
function updateDownload(card) {
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
}

// Something changed: the result is stale now, and re-renders once changes stop for a moment.
function schedule(card, delay = RENDER_DELAY_MS) {
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
  form.append("image", card.file, card.file.name);
  form.append("temperature", String(toTemperature(Number(saturation.value))));
  if (card.points.length) {
    const hints = card.points.map((p) => ({ x: p.x, y: p.y, color: p.color }));
    form.append("hints", JSON.stringify(hints));
  }
  if (card.reference) {
    form.append("reference", card.reference, card.reference.name);
    form.append("reference_strength", card.strength.value);
  }
  return form;
}

async function render(card) {
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
    card.renderedVersion = version;
    card.after.src = card.resultUrl;
    card.el.classList.add("has-result");
    card.renders += 1;
    card.el.dataset.renders = String(card.renders);
    if (card.scrollOnResult) {
      card.scrollOnResult = false; // the first of the photos just added: show it, whole
      card.el.scrollIntoView({ block: "start" });
    }
    serverStatus.hidden = true; // it answers again
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
function setPhotoSize(card, width, height) {
  if (!width || !height) return;
  card.width = width;
  card.height = height;
  card.compare.style.setProperty("--aspect", String(width / height));
  card.points.forEach((point) => placePin(card, point));
}

// A point on screen to the photo's own pixel coordinates (x right, y down, pixel i covering
// [i, i + 1)), to a tenth of a pixel, whatever the scale the photo is shown at.
function toPhoto(card, clientX, clientY) {
  const box = card.compare.getBoundingClientRect();
  const at = (offset, side, size) => clamp(Math.round((offset / side) * size * 10) / 10, 0, size - 0.1);
  return [
    at(clientX - box.left, box.width, card.width),
    at(clientY - box.top, box.height, card.height),
  ];
}

// The result's colour at a pixel: a new point starts from what the network guessed there.
function sampleColor(card, x, y) {
  if (!card.sampler) return null;
  const { context, scale } = card.sampler;
  const [r, g, b] = context.getImageData(Math.floor(x * scale), Math.floor(y * scale), 1, 1).data;
  return hex(r, g, b);
}

function smallCanvas(card) {
  const scale = Math.min(1, SAMPLE_SIDE / Math.max(card.width, card.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(card.width * scale));
  canvas.height = Math.max(1, Math.round(card.height * scale));
  return { canvas, scale };
}

function onResult(card) {
  setPhotoSize(card, card.after.naturalWidth, card.after.naturalHeight);
  const { canvas, scale } = smallCanvas(card);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(card.after, 0, 0, canvas.width, canvas.height);
  card.sampler = { context, scale };
}

// ------------------------------------------------------------------------------- points
function placePin(card, point) {
  if (!card.width) return;
  point.pin.style.left = `${(point.x / card.width) * 100}%`;
  point.pin.style.top = `${(point.y / card.height) * 100}%`;
  point.pin.style.setProperty("--pin", point.color);
  point.pin.setAttribute(
    "aria-label",
    `Colour point at ${point.x}, ${point.y}, ${point.color}: arrows move it, Delete removes it`,
  );
}

function selectPoint(card, point) {
  card.selected = point;
  for (const other of card.points) other.pin.classList.toggle("selected", other === point);
  if (point) {
    card.color.value = point.color;
    for (const swatch of card.picker.querySelectorAll(".swatch")) {
      swatch.setAttribute("aria-pressed", String(swatch.dataset.color === point.color));
    }
  } else {
    card.picker.hidden = true;
  }
}

function setColor(card, color) {
  if (!card.selected) return;
  card.selected.color = color;
  placePin(card, card.selected);
  selectPoint(card, card.selected);
  schedule(card);
}

function updatePointCount(card) {
  const count = card.points.length;
  card.pointCount.textContent =
    count === 0 ? "Click the photo to add a colour point" : `${count} colour point${count > 1 ? "s" : ""}`;
  card.clearPoints.hidden = count === 0;
}

// The picker beside the selected point, inside the card, below it (above near the bottom).
function openPicker(card, focus = false) {
  const point = card.selected;
  if (!point) return;
  const picker = card.picker;
  picker.hidden = false;
  loadSuggestions(card, point);
  const stage = card.compare.parentElement.getBoundingClientRect();
  const pin = point.pin.getBoundingClientRect();
  const x = pin.left + pin.width / 2 - stage.left;
  const y = pin.top + pin.height / 2 - stage.top;
  const left = clamp(x - picker.offsetWidth / 2, 0, Math.max(0, stage.width - picker.offsetWidth));
  const below = y + 18 + picker.offsetHeight <= stage.height;
  picker.style.left = `${left}px`;
  picker.style.top = `${below ? y + 18 : Math.max(0, y - 18 - picker.offsetHeight)}px`;
  if (focus) picker.querySelector(".swatch").focus();
}

function closePicker(card) {
  card.picker.hidden = true;
  if (card.selected) card.selected.pin.focus();
}

function makeSwatch(card, name, color) {
  const swatch = document.createElement("button");
  swatch.type = "button";
  swatch.className = "swatch";
  swatch.title = name;
  swatch.dataset.color = color;
  swatch.setAttribute("aria-label", name);
  swatch.style.setProperty("--swatch", color);
  swatch.tabIndex = -1; // one Tab stop for them all (see rove)
  swatch.addEventListener("click", () => setColor(card, color));
  return swatch;
}

function makeSwatches(card) {
  for (const [name, color] of SWATCHES) card.swatches.append(makeSwatch(card, name, color));
  card.swatches.firstElementChild.tabIndex = 0;
}

// The swatches are one Tab stop: the arrows move among them (Up and Down by a row of six).
function rove(card, current) {
  for (const swatch of card.picker.querySelectorAll(".swatch")) {
    swatch.tabIndex = swatch === current ? 0 : -1;
  }
}

function moveAmongSwatches(card, event) {
  const steps = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -6, ArrowDown: 6 };
  if (!event.target.classList.contains("swatch")) return;
  const all = [...card.picker.querySelectorAll(".swatch")];
  const here = all.indexOf(event.target);
  let next;
  if (event.key in steps) next = clamp(here + steps[event.key], 0, all.length - 1);
  else if (event.key === "Home") next = 0;
  else if (event.key === "End") next = all.length - 1;
  else return;
  event.preventDefault();
  all[next].focus();
}

// The picker's first row: the colours the network finds likely at the point (/api/suggest),
// each with its probability. Asked again only when the point has moved.
async function loadSuggestions(card, point) {
  const where = `${point.x},${point.y}`;
  if (card.suggestedFor === where) return;
  card.suggestedFor = where;
  const row = card.suggested;
  row.replaceChildren();
  row.dataset.state = "loading";
  const form = new FormData();
  form.append("image", card.file, card.file.name);
  form.append("x", String(point.x));
  form.append("y", String(point.y));
  try {
    const answer = await (await post("/api/suggest", form)).json();
    if (card.suggestedFor !== where) return; // the point moved meanwhile
    for (const { color, probability } of answer.suggestions) {
      const percent = Math.round(probability * 100);
      const swatch = makeSwatch(card, `likely here: ${color}, ${percent} %`, color);
      swatch.classList.add("suggestion");
      swatch.setAttribute("aria-pressed", String(card.selected && card.selected.color === color));
      const share = document.createElement("span");
      share.className = "share";
      share.textContent = `${percent}%`;
      swatch.append(share);
      row.append(swatch);
    }
    row.dataset.state = "ready";
    if (!card.picker.hidden && card.selected === point) openPicker(card);
  } catch (error) {
    if (card.suggestedFor === where) {
      row.dataset.state = "failed";
      card.suggestedFor = null;
    }
  }
}

function movePin(card, point, clientX, clientY) {
  [point.x, point.y] = toPhoto(card, clientX, clientY);
  placePin(card, point);
}

function addPoint(card, x, y, color) {
  const pin = document.createElement("button");
  pin.type = "button";
  pin.className = "pin";
  const point = { x, y, color, pin };
  pin.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    selectPoint(card, point);
    pin.focus();
    pin.setPointerCapture(event.pointerId);
    const start = [event.clientX, event.clientY];
    let moved = false;
    const move = (e) => {
      if (!moved && Math.hypot(e.clientX - start[0], e.clientY - start[1]) < 3) return;
      moved = true;
      card.picker.hidden = true;
      pin.classList.add("dragging");
      movePin(card, point, e.clientX, e.clientY);
    };
    const up = () => {
      pin.removeEventListener("pointermove", move);
      pin.removeEventListener("pointerup", up);
      pin.removeEventListener("pointercancel", up);
      pin.classList.remove("dragging");
      if (moved) schedule(card);
      openPicker(card);
    };
    pin.addEventListener("pointermove", move);
    pin.addEventListener("pointerup", up);
    pin.addEventListener("pointercancel", up);
  });
  pin.addEventListener("click", (event) => event.stopPropagation());
  pin.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    removePoint(card, point);
  });
  pin.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 10 : 1;
    const moves = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    if (event.key === "Delete" || event.key === "Backspace") {
      const index = card.points.indexOf(point);
      removePoint(card, point);
      // focus stays on the photo: on the next point, else on the photo itself
      const next = card.points[Math.min(index, card.points.length - 1)];
      (next ? next.pin : card.compare).focus();
    } else if (event.key === "Enter" || event.key === " ") {
      selectPoint(card, point);
      openPicker(card, true);
    } else if (moves[event.key]) {
      const [dx, dy] = moves[event.key];
      const unit = Math.max(1, Math.round(Math.max(card.width, card.height) / 200));
      point.x = clamp(point.x + dx * unit, 0, card.width - 0.1);
      point.y = clamp(point.y + dy * unit, 0, card.height - 0.1);
      placePin(card, point);
      if (!card.picker.hidden) openPicker(card);
      schedule(card);
    } else {
      return;
    }
    event.preventDefault();
  });
  card.points.push(point);
  card.pins.append(pin);
  placePin(card, point);
  updatePointCount(card);
  return point;
}

function removePoint(card, point) {
  const index = card.points.indexOf(point);
  if (index < 0) return;
  card.points.splice(index, 1);
  point.pin.remove();
  if (card.selected === point) selectPoint(card, null);
  updatePointCount(card);
  schedule(card);
}

// ---------------------------------------------------------------------------- uncertainty
async function showUncertainty(card) {
  const visible = card.showUncertainty.checked;
  card.map.hidden = !visible || !card.mapDrawn;
  card.legend.hidden = !visible;
  if (!visible || card.mapDrawn || card.mapLoading) return;
  card.mapLoading = true;
  card.error.hidden = true;
  try {
    const form = new FormData();
    form.append("image", card.file, card.file.name);
    const response = await post("/api/uncertainty", form);
    const bitmap = await createImageBitmap(await response.blob());
    setPhotoSize(card, card.width || bitmap.width, card.height || bitmap.height);
    drawMap(card, bitmap);
    card.mapDrawn = true;
    card.map.hidden = !card.showUncertainty.checked;
  } catch (error) {
    showError(card, error, () => showUncertainty(card));
  } finally {
    card.mapLoading = false;
  }
}

// The grey map (255: guessing) as a pink veil over the most uncertain part only (the fifth of
// the photo where the network is least sure), so the colours elsewhere stay visible; the
// opacity control sets how strongly it covers them.
const MAP_SHARE = 0.2;

function drawMap(card, bitmap) {
  const { canvas } = smallCanvas(card);
  card.map.width = canvas.width;
  card.map.height = canvas.height;
  const context = card.map.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  const data = image.data;
  const counts = new Array(256).fill(0);
  let high = 0;
  for (let i = 0; i < data.length; i += 4) {
    counts[data[i]] += 1;
    high = Math.max(high, data[i]);
  }
  // the level above which MAP_SHARE of the pixels lie
  let threshold = 255;
  for (let seen = 0; threshold > 0 && seen + counts[threshold] <= MAP_SHARE * (data.length / 4); ) {
    seen += counts[threshold];
    threshold -= 1;
  }
  const span = Math.max(high - threshold, 1);
  for (let i = 0; i < data.length; i += 4) {
    const level = data[i] > threshold ? (data[i] - threshold) / span : 0;
    data[i] = 255;
    data[i + 1] = 0;
    data[i + 2] = 150;
    data[i + 3] = level > 0 ? Math.round(120 + 135 * level) : 0; // the least sure most strongly
  }
  context.putImageData(image, 0, 0);
}

// ------------------------------------------------------------------------------ reference
function setReference(card, file) {
  if (card.referenceUrl) URL.revokeObjectURL(card.referenceUrl);
  if (file) card.strength.value = "1"; // a new reference starts at full strength, never at 0
  card.reference = file;
  card.referenceUrl = file ? URL.createObjectURL(file) : null;
  card.referenceThumb.src = card.referenceUrl || "";
  card.referenceThumb.alt = file ? `Reference: ${file.name}` : "";
  card.referenceSet.hidden = !file;
  card.referenceDrop.hidden = Boolean(file);
  schedule(card, 0);
}

function acceptDrops(target, onFiles) {
  for (const name of ["dragenter", "dragover"]) {
    target.addEventListener(name, (event) => {
      event.preventDefault();
      target.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    target.addEventListener(name, () => target.classList.remove("over"));
  }
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    event.stopPropagation();
    if (event.dataTransfer.files.length) onFiles(event.dataTransfer.files);
  });
}

// ---------------------------------------------------------------------------------- cards
function uniqueName(name) {
  const seen = (namesSeen.get(name) || 0) + 1;
  namesSeen.set(name, seen);
  return seen === 1 ? name : `${name} (${seen})`;
}

function removeCard(card) {
  clearTimeout(card.timer);
  if (card.controller) card.controller.abort();
  for (const url of [card.resultUrl, card.beforeUrl, card.referenceUrl]) {
    if (url) URL.revokeObjectURL(url);
  }
  card.el.remove();
  cards.splice(cards.indexOf(card), 1);
  updatePage();
}

function updatePage() {
  clearAll.hidden = cards.length === 0;
  help.hidden = cards.length === 0;
}

function addPhoto(file, after = null) {
  const el = template.content.firstElementChild.cloneNode(true);
  const find = (selector) => el.querySelector(selector);
  const card = {
    el,
    file,
    renders: 0,
    version: 0,
    renderedVersion: -1,
    timer: null,
    controller: null,
    resultUrl: null,
    width: 0,
    height: 0,
    points: [],
    selected: null,
    reference: null,
    after: find(".after"),
    before: find(".before"),
    compare: find(".compare"),
    pins: find(".pins"),
    map: find(".uncertainty-map"),
    legend: find(".legend"),
    download: find(".download"),
    error: find(".error"),
    message: find(".error .message"),
    retryButton: find(".error .retry"),
    note: find(".note"),
    color: find(".color"),
    picker: find(".picker"),
    swatches: find(".swatches:not(.suggested)"),
    suggested: find(".suggested"),
    suggestedFor: null,
    pointCount: find(".point-count"),
    clearPoints: find(".clear-points"),
    showUncertainty: find(".show-uncertainty"),
    strength: find(".reference-strength"),
    referenceSet: find(".reference-set"),
    referenceDrop: find(".reference-drop"),
    referenceThumb: find(".reference-thumb"),
  };
  const name = uniqueName(file.name);
  find(".name").textContent = name;
  find(".name").title = name;
  el.setAttribute("aria-label", name);
  card.before.alt = `Original: ${name}`;
  card.after.alt = `Colorized: ${name}`;
  find(".remove").setAttribute("aria-label", `Remove ${name}`);
  card.download.download = file.name.replace(/\.[^.]*$/, "") + "-colour.png";
  card.download.addEventListener("click", (event) => {
    if (card.download.getAttribute("aria-disabled") !== "true") return;
    event.preventDefault();
    if (card.unusable || (!card.timer && !card.controller)) return;
    // a click during a re-render is kept: the download starts with the new result
    card.pendingDownload = true;
    card.note.textContent = "The download starts as soon as the new result is ready.";
    card.note.hidden = false;
  });

  card.before.addEventListener("error", () => card.before.removeAttribute("src"));
  card.before.addEventListener("load", () => {
    if (!card.width) setPhotoSize(card, card.before.naturalWidth, card.before.naturalHeight);
  });
  card.after.addEventListener("load", () => onResult(card));
  card.beforeUrl = URL.createObjectURL(file);
  card.before.src = card.beforeUrl;

  find(".split").addEventListener("input", (event) => {
    card.compare.style.setProperty("--split", `${event.target.value}%`);
  });
  const placePoint = (x, y, focus) => {
    const point = addPoint(card, x, y, sampleColor(card, x, y) || card.color.value);
    selectPoint(card, point);
    openPicker(card, focus);
    schedule(card);
  };
  card.compare.addEventListener("click", (event) => {
    if (event.target.closest(".pin") || !card.width || card.unusable) return;
    placePoint(...toPhoto(card, event.clientX, event.clientY), false);
  });
  card.compare.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePicker(card);
    const own = event.target === card.compare && (event.key === "Enter" || event.key === " ");
    if (!own || !card.width || card.unusable) return;
    event.preventDefault(); // a point in the middle: pick its colour, Escape, arrows move it
    placePoint(Math.floor(card.width / 2), Math.floor(card.height / 2), true);
  });
  makeSwatches(card);
  card.color.addEventListener("input", () => setColor(card, card.color.value));
  find(".close-picker").addEventListener("click", () => closePicker(card));
  card.picker.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePicker(card);
    moveAmongSwatches(card, event);
  });
  card.picker.addEventListener("focusin", (event) => {
    if (event.target.classList.contains("swatch")) rove(card, event.target);
  });
  find(".delete-point").addEventListener("click", () => {
    if (card.selected) removePoint(card, card.selected);
  });
  card.clearPoints.addEventListener("click", () => {
    for (const point of card.points) point.pin.remove();
    card.points = [];
    selectPoint(card, null);
    updatePointCount(card);
    schedule(card, 0);
  });
  card.showUncertainty.addEventListener("change", () => showUncertainty(card));
  const mapOpacity = find(".map-opacity");
  mapOpacity.addEventListener("input", () => {
    card.map.style.opacity = String(Number(mapOpacity.value) / 100);
  });
  const referenceFile = find(".reference-file");
  referenceFile.addEventListener("change", () => {
    if (referenceFile.files.length) setReference(card, referenceFile.files[0]);
    referenceFile.value = "";
  });
  acceptDrops(card.referenceDrop, (files) => setReference(card, files[0]));
  find(".remove-reference").addEventListener("click", () => setReference(card, null));
  card.strength.addEventListener("input", () => schedule(card));
  find(".remove").addEventListener("click", () => removeCard(card));
  card.retryButton.addEventListener("click", () => card.retry && card.retry());

  updatePointCount(card);
  if (after) after.el.after(el); // photos chosen together keep their order, the first on top
  else results.prepend(el);
  cards.push(card);
  updatePage();
  render(card);
  return card;
}

function addFiles(files) {
  let previous = null;
  for (const file of files) {
    const first = previous === null;
    previous = addPhoto(file, previous);
    previous.scrollOnResult = first; // the batch's first photo is shown once its result is in
  }
}

fileInput.addEventListener("change", () => {
  addFiles(fileInput.files);
  fileInput.value = "";
});
acceptDrops(drop, addFiles);
clearAll.addEventListener("click", () => [...cards].forEach(removeCard));

saturation.addEventListener("input", () => {
  saturationValue.textContent = saturation.value;
  for (const card of cards) schedule(card, 300);
});

// ---------------------------------------------------------------------------- the server
function checkHealth() {
  fetch("/api/health")
    .then((response) => response.json())
    .then((health) => {
      serverStatus.hidden = true;
      saturation.value = String(toSaturation(health.temperature));
      saturationValue.textContent = saturation.value;
      const sha = health.weights_sha256 ? `, weights ${health.weights_sha256.slice(0, 12)}` : "";
      document.getElementById("model").textContent = `${health.model} on ${health.device}${sha}`;
    })
    .catch(() => {
      serverStatus.querySelector(".message").textContent = OFFLINE;
      serverStatus.hidden = false;
    });
}
serverStatus.querySelector(".retry").addEventListener("click", checkHealth);
checkHealth();
