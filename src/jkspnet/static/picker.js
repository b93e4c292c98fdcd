// The colour picker of the selected mark: the network's likely colours at it (/api/suggest),
// quick swatches, any colour, and an eyedropper that takes a colour from the result or the
// reference photo.
"use strict";

import { clamp, colorAt, post, samplerOf } from "./common.js";
import { placeMark, remember, showSize, updateCount } from "./marks.js";
import { previewSide, sampleColor, schedule, toPhoto } from "./render.js";

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

export function selectMark(card, mark) {
  if (card.selected !== mark) card.history.key = null; // a new run of changes
  card.selected = mark;
  for (const other of card.marks) other.pin.classList.toggle("selected", other === mark);
  for (const other of card.marks) other.shape.classList.toggle("selected", other === mark);
  if (mark) {
    card.color.value = mark.color;
    for (const swatch of card.picker.querySelectorAll(".swatch")) {
      swatch.setAttribute("aria-pressed", String(swatch.dataset.color === mark.color));
    }
    card.size.value = String(mark.kind === "stroke" ? mark.width : (mark.radius || 0) * 2);
    showSize(card);
  } else {
    card.picker.hidden = true;
    stopEyedropper(card);
  }
}

export function setColor(card, color, key = null) {
  const mark = card.selected;
  if (!mark || mark.color === color) return;
  remember(card, key === null ? null : `${key}:${mark.id}`);
  mark.color = color;
  placeMark(card, mark);
  selectMark(card, mark);
  schedule(card);
}

// The picker beside the selected mark, inside the card, below it (above near the bottom).
export function openPicker(card, focus = false) {
  const mark = card.selected;
  if (!mark) return;
  const picker = card.picker;
  picker.hidden = false;
  loadSuggestions(card, mark);
  const stage = card.compare.parentElement.getBoundingClientRect();
  const pin = mark.pin.getBoundingClientRect();
  const x = pin.left + pin.width / 2 - stage.left;
  const y = pin.top + pin.height / 2 - stage.top;
  const left = clamp(x - picker.offsetWidth / 2, 0, Math.max(0, stage.width - picker.offsetWidth));
  const below = y + 18 + picker.offsetHeight <= stage.height;
  picker.style.left = `${left}px`;
  picker.style.top = `${below ? y + 18 : Math.max(0, y - 18 - picker.offsetHeight)}px`;
  // on a phone it sits below the photo: bring it in view, the photo staying as far as it can
  if (getComputedStyle(picker).position === "static") picker.scrollIntoView({ block: "nearest" });
  if (focus) picker.querySelector(".swatch").focus({ preventScroll: true });
}

// Done (or Escape): the mark is let go, so Size and the tools start afresh for the next one.
export function closePicker(card, focus = true) {
  const mark = card.selected;
  selectMark(card, null);
  if (focus && mark) mark.pin.focus();
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

export function makeSwatches(card) {
  for (const [name, color] of SWATCHES) card.swatches.append(makeSwatch(card, name, color));
  card.swatches.firstElementChild.tabIndex = 0;
}

// The swatches are one Tab stop: the arrows move among them (Up and Down by a row of six).
export function rove(card, current) {
  for (const swatch of card.picker.querySelectorAll(".swatch")) {
    swatch.tabIndex = swatch === current ? 0 : -1;
  }
}

export function moveAmongSwatches(card, event) {
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

// The picker's first row: the colours the network finds likely at the mark (/api/suggest),
// each with its probability. Asked again only when the mark has moved.
async function loadSuggestions(card, mark) {
  const where = `${mark.x},${mark.y}`;
  if (card.suggestedFor === where) return;
  card.suggestedFor = where;
  const row = card.suggested;
  row.replaceChildren();
  row.dataset.state = "loading";
  const form = new FormData();
  form.append("image", card.file, card.file.name);
  form.append("x", String(mark.x));
  form.append("y", String(mark.y));
  form.append("preview", String(previewSide(card)));
  try {
    const answer = await (await post("/api/suggest", form)).json();
    if (card.suggestedFor !== where) return; // the mark moved meanwhile
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
    if (!card.picker.hidden && card.selected === mark) openPicker(card);
  } catch (error) {
    if (card.suggestedFor === where) {
      row.dataset.state = "failed";
      card.suggestedFor = null;
    }
  }
}

// ----------------------------------------------------------------------------- eyedropper
// The eyedropper hides the picker; the next click on the photo takes the result's colour there,
// one on the reference photo (shown large meanwhile) the reference's; Escape gives up.
export function startEyedropper(card) {
  if (!card.selected) return;
  card.picking = true;
  card.el.classList.add("picking");
  card.eyedropper.setAttribute("aria-pressed", "true");
  card.picker.hidden = true;
  card.compare.focus(); // Escape gives up
  card.pointCount.textContent = card.reference
    ? "Click the result or the reference photo to take its colour (Escape: cancel)"
    : "Click the result to take its colour (Escape: cancel)";
}

export function stopEyedropper(card) {
  if (!card.picking) return;
  card.picking = false;
  card.el.classList.remove("picking");
  card.eyedropper.setAttribute("aria-pressed", "false");
  updateCount(card);
}

function took(card, color) {
  stopEyedropper(card);
  if (color) setColor(card, color);
  openPicker(card);
  if (card.selected) card.selected.pin.focus();
}

export function pickFromResult(card, clientX, clientY) {
  took(card, sampleColor(card, ...toPhoto(card, clientX, clientY)));
}

export function pickFromReference(card, event) {
  const thumb = card.referenceThumb;
  if (!card.picking || !thumb.naturalWidth) return;
  event.preventDefault();
  if (!card.referenceSampler || card.referenceSampler.url !== thumb.src) {
    card.referenceSampler = samplerOf(thumb, thumb.naturalWidth, thumb.naturalHeight);
    card.referenceSampler.url = thumb.src;
  }
  const box = thumb.getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width) * thumb.naturalWidth;
  const y = ((event.clientY - box.top) / box.height) * thumb.naturalHeight;
  took(card, colorAt(card.referenceSampler, x, y));
}
