// JKSPNet's page: a small editor. Each photo goes to /api/colorize with its hints (colour points
// and brush strokes, marks.js) and reference photo; the result re-renders (debounced) after every
// change (render.js). The uncertainty map comes from /api/uncertainty. Hints are kept in the
// photo's own pixels (as displayed, after its EXIF orientation), whatever the scale on screen.
"use strict";

import { OFFLINE, clamp, post, saveBlob, showError, smallCanvas, toSaturation } from "./common.js";
import {
  clearMarks,
  loadHints,
  paint,
  placePoint,
  redo,
  removeMark,
  resize,
  saveHints,
  showSize,
  undo,
  updateCount,
} from "./marks.js";
import {
  closePicker,
  makeSwatches,
  moveAmongSwatches,
  openPicker,
  pickFromReference,
  pickFromResult,
  rove,
  setColor,
  startEyedropper,
  stopEyedropper,
} from "./picker.js";
import {
  downloadFull,
  fullResult,
  onResult,
  render,
  schedule,
  setPhotoSize,
  toPhoto,
} from "./render.js";
import { applyView, wireView } from "./view.js";
import { zipOf } from "./zip.js";

const drop = document.getElementById("drop");
const fileInput = document.getElementById("file");
const saturation = document.getElementById("saturation");
const saturationValue = document.getElementById("saturation-value");
const results = document.getElementById("results");
const template = document.getElementById("card-template");
const clearAll = document.getElementById("clear-all");
const help = document.getElementById("help");
const serverStatus = document.getElementById("server-status");
const downloadAll = document.getElementById("download-all");
const zipNote = document.getElementById("zip-note");
const cards = [];
const namesSeen = new Map();

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
  const { canvas } = smallCanvas(card.width, card.height);
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

// ---------------------------------------------------------------------------- the photo
// Point or Brush: what a click or a drag on the photo does.
function setMode(card, mode) {
  card.mode = mode;
  card.el.dataset.mode = mode;
  card.pointTool.setAttribute("aria-pressed", String(mode === "point"));
  card.brushTool.setAttribute("aria-pressed", String(mode === "brush"));
  updateCount(card);
}

// The before/after divider is dragged on the photo itself, as the slider below it moves it.
function setSplit(card, percent) {
  card.split.value = String(percent);
  card.compare.style.setProperty("--split", `${card.split.value}%`);
  applyView(card);
}

// A drag moves it; a click on it without a drag still puts a point there.
function dragDivider(card, event) {
  if (event.button !== 0) return;
  event.preventDefault();
  event.stopPropagation(); // no brush stroke
  const divider = card.divider;
  divider.setPointerCapture(event.pointerId);
  const start = event.clientX;
  card.dividerMoved = false;
  const follow = (e) => {
    if (!card.dividerMoved && Math.abs(e.clientX - start) < 3) return;
    card.dividerMoved = true;
    const box = card.compare.getBoundingClientRect();
    setSplit(card, clamp(Math.round(((e.clientX - box.left) / box.width) * 200) / 2, 0, 100));
  };
  const up = () => {
    divider.removeEventListener("pointermove", follow);
    divider.removeEventListener("pointerup", up);
    divider.removeEventListener("pointercancel", up);
  };
  divider.addEventListener("pointermove", follow);
  divider.addEventListener("pointerup", up);
  divider.addEventListener("pointercancel", up);
}

function wirePhoto(card, find) {
  card.split.addEventListener("input", () => setSplit(card, card.split.value));
  card.divider.addEventListener("pointerdown", (event) => dragDivider(card, event));
  card.divider.addEventListener("click", (event) => {
    if (card.dividerMoved) event.stopPropagation();
  });
  card.compare.addEventListener("pointerdown", (event) => {
    const ready = card.width && !card.unusable && !card.picking;
    if (ready && card.mode === "brush" && event.button === 0 && !event.target.closest("button")) {
      paint(card, event);
    }
  });
  card.compare.addEventListener("click", (event) => {
    if (event.target.closest("button") || !card.width || card.unusable) return;
    if (card.panned) card.panned = false; // the end of a pan, not a click
    else if (card.picking) pickFromResult(card, event.clientX, event.clientY);
    else if (card.mode === "point") placePoint(card, ...toPhoto(card, event.clientX, event.clientY), false);
  });
  card.compare.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && card.picking) {
      stopEyedropper(card); // the eyedropper given up: back to the picker
      openPicker(card, true);
    } else if (event.key === "Escape") {
      closePicker(card);
    }
    const own = event.target === card.compare && (event.key === "Enter" || event.key === " ");
    if (!own || !card.width || card.unusable) return;
    event.preventDefault(); // a point in the middle: pick its colour, Escape, arrows move it
    placePoint(card, Math.floor(card.width / 2), Math.floor(card.height / 2), true);
  });
  find(".tool-point").addEventListener("click", () => setMode(card, "point"));
  find(".tool-brush").addEventListener("click", () => setMode(card, "brush"));
  card.size.addEventListener("input", () => resize(card));
  card.undo.addEventListener("click", () => undo(card));
  card.redo.addEventListener("click", () => redo(card));
  card.saveHints.addEventListener("click", () => saveHints(card));
  const hintsFile = find(".load-hints");
  hintsFile.addEventListener("change", () => {
    if (hintsFile.files.length && card.width) loadHints(card, hintsFile.files[0]);
    hintsFile.value = "";
  });
}

function wirePicker(card, find) {
  makeSwatches(card);
  card.color.addEventListener("input", () => setColor(card, card.color.value, "custom"));
  find(".close-picker").addEventListener("click", () => closePicker(card));
  card.eyedropper.addEventListener("click", () => startEyedropper(card));
  card.picker.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePicker(card);
    moveAmongSwatches(card, event);
  });
  card.picker.addEventListener("focusin", (event) => {
    if (event.target.classList.contains("swatch")) rove(card, event.target);
  });
  find(".delete-point").addEventListener("click", () => {
    if (card.selected) removeMark(card, card.selected);
  });
  card.clearPoints.addEventListener("click", () => clearMarks(card));
  card.referenceThumb.addEventListener("click", (event) => pickFromReference(card, event));
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
  downloadAll.hidden = cards.length === 0;
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
    marks: [],
    selected: null,
    mode: "point",
    history: { past: [], future: [], key: null },
    editedAt: 0,
    picking: false,
    reference: null,
    after: find(".after"),
    before: find(".before"),
    compare: find(".compare"),
    view: find(".view"),
    svg: find(".marks"),
    pins: find(".pins"),
    divider: find(".divider"),
    split: find(".split"),
    map: find(".uncertainty-map"),
    legend: find(".legend"),
    download: find(".download"),
    error: find(".error"),
    message: find(".error .message"),
    retryButton: find(".error .retry"),
    note: find(".note"),
    color: find(".color"),
    picker: find(".picker"),
    eyedropper: find(".eyedropper"),
    swatches: find(".swatches:not(.suggested)"),
    suggested: find(".suggested"),
    suggestedFor: null,
    pointCount: find(".point-count"),
    clearPoints: find(".clear-points"),
    pointTool: find(".tool-point"),
    brushTool: find(".tool-brush"),
    size: find(".size"),
    sizeValue: find(".size-value"),
    undo: find(".undo"),
    redo: find(".redo"),
    saveHints: find(".save-hints"),
    showUncertainty: find(".show-uncertainty"),
    zoomIn: find(".zoom-in"),
    zoomOut: find(".zoom-out"),
    zoomFit: find(".zoom-fit"),
    zoomLevel: find(".zoom-level"),
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
    if (card.download.getAttribute("aria-disabled") !== "true") {
      if (card.resultIsPreview) {
        event.preventDefault(); // what is shown is a preview: the download is the full size
        downloadFull(card);
      }
      return;
    }
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

  wirePhoto(card, find);
  wirePicker(card, find);
  wireView(card);
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

  setMode(card, "point");
  showSize(card);
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

// Download all: every result in one zip, named as each photo's Download names it. Clicked while
// photos re-render, it waits for them (as a photo's Download does).
let zipWanted = false;

async function saveZip() {
  if (cards.some((card) => card.timer || card.controller)) {
    zipWanted = true;
    zipNote.textContent = "The zip starts as soon as every new result is ready.";
    zipNote.hidden = false;
    return;
  }
  zipWanted = false;
  zipNote.hidden = true;
  const shown = [...results.children].map((el) => cards.find((card) => card.el === el));
  const named = new Map();
  for (const card of shown.filter((c) => c && c.el.dataset.state === "ready")) {
    const name = card.download.download;
    let unique = name;
    for (let n = 2; named.has(unique); n++) unique = name.replace(/\.png$/, `-${n}.png`);
    named.set(unique, card);
  }
  if (!named.size) return;
  zipNote.textContent = "Preparing the zip…";
  zipNote.hidden = false;
  try {
    const files = [];
    for (const [name, card] of named) files.push({ name, blob: await fullResult(card) });
    saveBlob(await zipOf(files), "jkspnet-colour.zip");
    zipNote.hidden = true;
  } catch (error) {
    zipNote.textContent = `No zip: ${error.message}`;
  }
}

downloadAll.addEventListener("click", saveZip);
document.addEventListener("jkspnet:state", () => {
  if (zipWanted && !cards.some((card) => card.timer || card.controller)) saveZip();
});

// Ctrl+Z undoes the last change to the photo in focus (else the one last edited), Ctrl+Shift+Z
// and Ctrl+Y redo it.
document.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key !== "z" && key !== "y") return;
  const inside = cards.find((card) => card.el.contains(document.activeElement));
  const card = inside || [...cards].sort((a, b) => b.editedAt - a.editedAt)[0];
  if (!card) return;
  event.preventDefault();
  if (key === "y" || event.shiftKey) redo(card);
  else undo(card);
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
