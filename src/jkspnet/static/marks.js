// The hints a person puts on a photo: colour points and brush strokes ("marks"), their pins,
// dragging and keys, the brush, undo and redo, and the NAME.hints.json file the CLI reads.
//
// A mark is {kind: "point" | "stroke", id, x, y, color, radius, points, width, pin, shape}: a
// point sits at (x, y) with an optional radius (null: the propagation picks a small spot); a
// stroke is a polyline through `points`, `width` wide, and (x, y) is its first point, where its
// pin is. Everything is in the photo's own pixels, as the API and jkspnet.media.hints read them.
"use strict";

import { clamp, saveBlob } from "./common.js";
import { closePicker, openPicker, selectMark } from "./picker.js";
import { sampleColor, schedule, toPhoto } from "./render.js";
import { shownAt } from "./view.js";

const SVG = "http://www.w3.org/2000/svg";
const HISTORY = 200; // undo steps kept per photo
const SIDECAR_SUFFIX = ".hints.json"; // jkspnet.media.hints.SIDECAR_SUFFIX
let nextId = 1;

// ----------------------------------------------------------------------------- the hints
// The marks as the API's JSON: exactly what Hint.to_json and Stroke.to_json write.
export function hintsOf(card) {
  return card.marks.map((mark) => {
    if (mark.kind === "stroke") {
      return { points: mark.points.map(([x, y]) => [x, y]), color: mark.color, width: mark.width };
    }
    const hint = { x: mark.x, y: mark.y, color: mark.color };
    if (mark.radius) hint.radius = mark.radius;
    return hint;
  });
}

// A new brush stroke's width, and a new point's radius, from the Size control (photo pixels; 0 is
// "auto": the propagation's own spot for a point, a fortieth of the photo for a brush).
export function brushWidth(card) {
  const size = Number(card.size.value);
  return size > 0 ? size : Math.max(2, Math.round(Math.max(card.width, card.height) / 40));
}

const pointRadius = (card) => (Number(card.size.value) > 0 ? Number(card.size.value) / 2 : null);

export function showSize(card) {
  const size = Number(card.size.value);
  card.sizeValue.textContent = size > 0 ? `${size} px` : "auto";
}

// ------------------------------------------------------------------------------ drawing
export function placeMark(card, mark) {
  if (!card.width) return;
  const pin = mark.pin;
  const [left, top] = shownAt(card, mark.x / card.width, mark.y / card.height);
  pin.style.left = `${left}%`;
  pin.style.top = `${top}%`;
  pin.style.setProperty("--pin", mark.color);
  const where = `${mark.x}, ${mark.y}, ${mark.color}`;
  const keys = "arrows move it, Delete removes it";
  if (mark.kind === "stroke") {
    mark.shape.setAttribute("points", mark.points.map((p) => p.join(",")).join(" "));
    mark.shape.setAttribute("stroke", mark.color);
    mark.shape.setAttribute("stroke-width", String(mark.width));
    pin.setAttribute("aria-label", `Brush stroke from ${where}, ${mark.width} px wide: ${keys}`);
  } else {
    mark.shape.setAttribute("cx", String(mark.x));
    mark.shape.setAttribute("cy", String(mark.y));
    mark.shape.setAttribute("r", String(mark.radius || 0));
    mark.shape.style.display = mark.radius ? "" : "none";
    pin.setAttribute("aria-label", `Colour point at ${where}: ${keys}`);
  }
}

export function placeMarks(card) {
  for (const mark of card.marks) placeMark(card, mark);
}

export function updateCount(card) {
  const points = card.marks.filter((m) => m.kind === "point").length;
  const strokes = card.marks.length - points;
  const parts = [];
  if (points) parts.push(`${points} colour point${points > 1 ? "s" : ""}`);
  if (strokes) parts.push(`${strokes} brush stroke${strokes > 1 ? "s" : ""}`);
  card.pointCount.textContent = parts.length
    ? parts.join(", ")
    : card.mode === "brush"
      ? "Drag on the photo to paint a colour"
      : "Click the photo to add a colour point";
  card.clearPoints.hidden = card.marks.length === 0;
  card.saveHints.disabled = card.marks.length === 0;
}

// ------------------------------------------------------------------------------- history
// Before each change, the marks as they were; Undo goes back to them, Redo forward again. A `key`
// joins a run of like changes (dragging one colour, nudging one point) into one step.
export function remember(card, key = null) {
  const history = card.history;
  card.editedAt = performance.now();
  if (key !== null && history.key === key) return;
  history.past.push(JSON.stringify(hintsOf(card)));
  if (history.past.length > HISTORY) history.past.shift();
  history.future = [];
  history.key = key;
  updateHistory(card);
}

function updateHistory(card) {
  card.undo.disabled = card.history.past.length === 0;
  card.redo.disabled = card.history.future.length === 0;
}

function step(card, from, to) {
  if (!from.length) return;
  to.push(JSON.stringify(hintsOf(card)));
  const focused = card.pins.contains(document.activeElement);
  restore(card, JSON.parse(from.pop()));
  card.history.key = null;
  card.editedAt = performance.now();
  if (focused) card.compare.focus(); // its pin may be gone
  updateHistory(card);
  schedule(card);
}

export const undo = (card) => step(card, card.history.past, card.history.future);
export const redo = (card) => step(card, card.history.future, card.history.past);

// The marks replaced by these hints (JSON as hintsOf writes it).
function restore(card, hints) {
  for (const mark of card.marks) {
    mark.pin.remove();
    mark.shape.remove();
  }
  card.marks = [];
  selectMark(card, null);
  for (const hint of hints) {
    if (hint.points) addMark(card, { kind: "stroke", ...hint, points: hint.points });
    else addMark(card, { kind: "point", ...hint, radius: hint.radius || null });
  }
  updateCount(card);
}

// ------------------------------------------------------------------------- marks and pins
export function addMark(card, spec) {
  const stroke = spec.kind === "stroke";
  const pin = document.createElement("button");
  pin.type = "button";
  pin.className = stroke ? "handle" : "pin";
  const shape = document.createElementNS(SVG, stroke ? "polyline" : "circle");
  shape.classList.add(stroke ? "stroke" : "spot");
  const mark = { ...spec, id: nextId++, pin, shape };
  if (stroke) [mark.x, mark.y] = mark.points[0];
  pin.addEventListener("pointerdown", (event) => dragMark(card, mark, event));
  pin.addEventListener("click", (event) => event.stopPropagation());
  pin.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    removeMark(card, mark);
  });
  pin.addEventListener("keydown", (event) => markKeys(card, mark, event));
  card.marks.push(mark);
  card.svg.append(shape);
  card.pins.append(pin);
  placeMark(card, mark);
  updateCount(card);
  return mark;
}

// Put a mark's pin at (x, y): a stroke moves whole, and stays inside the photo.
function moveMark(card, mark, x, y) {
  if (mark.kind === "stroke") {
    const xs = mark.points.map((p) => p[0]);
    const ys = mark.points.map((p) => p[1]);
    const dx = clamp(x - mark.x, -Math.min(...xs), card.width - 0.1 - Math.max(...xs));
    const dy = clamp(y - mark.y, -Math.min(...ys), card.height - 0.1 - Math.max(...ys));
    const tenth = (v) => Math.round(v * 10) / 10;
    mark.points = mark.points.map(([px, py]) => [tenth(px + dx), tenth(py + dy)]);
    [mark.x, mark.y] = mark.points[0];
  } else {
    mark.x = clamp(x, 0, card.width - 0.1);
    mark.y = clamp(y, 0, card.height - 0.1);
  }
  placeMark(card, mark);
}

function dragMark(card, mark, event) {
  if (event.button !== 0 || card.picking) return;
  event.preventDefault();
  event.stopPropagation();
  selectMark(card, mark);
  mark.pin.focus();
  mark.pin.setPointerCapture(event.pointerId);
  const start = [event.clientX, event.clientY];
  let moved = false;
  const move = (e) => {
    if (!moved && Math.hypot(e.clientX - start[0], e.clientY - start[1]) < 3) return;
    if (!moved) remember(card);
    moved = true;
    card.picker.hidden = true;
    mark.pin.classList.add("dragging");
    moveMark(card, mark, ...toPhoto(card, e.clientX, e.clientY));
  };
  const up = () => {
    mark.pin.removeEventListener("pointermove", move);
    mark.pin.removeEventListener("pointerup", up);
    mark.pin.removeEventListener("pointercancel", up);
    mark.pin.classList.remove("dragging");
    if (moved) schedule(card);
    openPicker(card);
  };
  mark.pin.addEventListener("pointermove", move);
  mark.pin.addEventListener("pointerup", up);
  mark.pin.addEventListener("pointercancel", up);
}

function markKeys(card, mark, event) {
  const step = event.shiftKey ? 10 : 1;
  const moves = {
    ArrowLeft: [-step, 0],
    ArrowRight: [step, 0],
    ArrowUp: [0, -step],
    ArrowDown: [0, step],
  };
  if (event.key === "Delete" || event.key === "Backspace") {
    const index = card.marks.indexOf(mark);
    removeMark(card, mark);
    // focus stays on the photo: on the next mark, else on the photo itself
    const next = card.marks[Math.min(index, card.marks.length - 1)];
    (next ? next.pin : card.compare).focus();
  } else if (event.key === "Enter" || event.key === " ") {
    selectMark(card, mark);
    openPicker(card, true);
  } else if (moves[event.key] && !event.ctrlKey && !event.metaKey) {
    const [dx, dy] = moves[event.key];
    const unit = Math.max(1, Math.round(Math.max(card.width, card.height) / 200));
    remember(card, `nudge:${mark.id}`);
    moveMark(card, mark, mark.x + dx * unit, mark.y + dy * unit);
    if (!card.picker.hidden) openPicker(card);
    schedule(card);
  } else {
    return;
  }
  event.preventDefault();
}

export function removeMark(card, mark) {
  const index = card.marks.indexOf(mark);
  if (index < 0) return;
  remember(card);
  card.marks.splice(index, 1);
  mark.pin.remove();
  mark.shape.remove();
  if (card.selected === mark) selectMark(card, null);
  updateCount(card);
  schedule(card);
}

export function clearMarks(card) {
  if (!card.marks.length) return;
  remember(card);
  restore(card, []);
  schedule(card, 0);
}

// A click on the photo: a point there, starting from the colour the network gave it.
export function placePoint(card, x, y, focus) {
  remember(card);
  const color = sampleColor(card, x, y) || card.color.value;
  const mark = addMark(card, { kind: "point", x, y, color, radius: pointRadius(card) });
  selectMark(card, mark);
  openPicker(card, focus);
  schedule(card);
}

// ---------------------------------------------------------------------------------- brush
// In brush mode a drag on the photo paints a stroke in the last colour chosen; the picker then
// opens on it, as on a new point.
export function paint(card, event) {
  event.preventDefault();
  closePicker(card, false);
  card.compare.setPointerCapture(event.pointerId);
  const points = [toPhoto(card, event.clientX, event.clientY)];
  let last = [event.clientX, event.clientY];
  const line = document.createElementNS(SVG, "polyline");
  line.classList.add("stroke", "drawing");
  line.setAttribute("stroke", card.color.value);
  line.setAttribute("stroke-width", String(brushWidth(card)));
  card.svg.append(line);
  const move = (e) => {
    if (Math.hypot(e.clientX - last[0], e.clientY - last[1]) < 3) return; // a hand's jitter
    last = [e.clientX, e.clientY];
    points.push(toPhoto(card, e.clientX, e.clientY));
    line.setAttribute("points", points.map((p) => p.join(",")).join(" "));
  };
  const up = () => {
    card.compare.removeEventListener("pointermove", move);
    card.compare.removeEventListener("pointerup", up);
    card.compare.removeEventListener("pointercancel", up);
    line.remove();
    if (points.length < 2) return; // a click paints nothing: a stroke needs two points
    remember(card);
    const width = brushWidth(card);
    const mark = addMark(card, { kind: "stroke", points, color: card.color.value, width });
    selectMark(card, mark);
    openPicker(card);
    schedule(card);
  };
  card.compare.addEventListener("pointermove", move);
  card.compare.addEventListener("pointerup", up);
  card.compare.addEventListener("pointercancel", up);
}

// The Size control changes the selected mark too (one undo step per mark).
export function resize(card) {
  showSize(card);
  const mark = card.selected;
  if (!mark) return;
  remember(card, `size:${mark.id}`);
  if (mark.kind === "stroke") mark.width = brushWidth(card);
  else mark.radius = pointRadius(card);
  placeMark(card, mark);
  schedule(card);
}

// ---------------------------------------------------------------------- NAME.hints.json
// The sidecar's name, as jkspnet.media.hints.sidecar_of gives it: the photo's stem + .hints.json.
export const sidecarName = (name) => name.replace(/(.)\.[^.]*$/, "$1") + SIDECAR_SUFFIX;

export function saveHints(card) {
  const text = JSON.stringify(hintsOf(card), null, 2) + "\n";
  saveBlob(new Blob([text], { type: "application/json" }), sidecarName(card.file.name));
}

export async function loadHints(card, file) {
  let hints;
  try {
    hints = readHints(await file.text(), card.width, card.height);
  } catch (error) {
    card.message.textContent = `${file.name}: ${error.message}`;
    card.retryButton.hidden = true;
    card.error.hidden = false;
    return;
  }
  card.error.hidden = true;
  remember(card);
  restore(card, hints);
  schedule(card, 0);
}

// The hints of a file, checked as jkspnet.media.hints.parse_hints and check_hints check them (so a
// bad file is one line here, not a refused render): a list of points and strokes, or
// {"hints": [...]}, every point inside the photo.
export function readHints(text, width, height) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (_) {
    throw new Error("hints are not valid JSON");
  }
  if (data && !Array.isArray(data) && Array.isArray(data.hints)) data = data.hints;
  if (!Array.isArray(data)) {
    throw new Error('hints must be a JSON list of {"x": ..., "y": ..., "color": "#rrggbb"} objects');
  }
  const number = (v) => typeof v === "number" && Number.isFinite(v);
  const outside = (x, y) => !(x >= 0 && x < width && y >= 0 && y < height);
  const size = `the photo (${width}x${height})`;
  return data.map((item, index) => {
    const where = `hint ${index + 1}`;
    if (!item || typeof item !== "object" || Array.isArray(item)) {
      throw new Error(`${where}: must be an object with x, y and color`);
    }
    const stroke = "points" in item;
    const known = stroke ? ["points", "color", "width"] : ["x", "y", "color", "radius"];
    const unknown = Object.keys(item).filter((key) => !known.includes(key));
    if (unknown.length) throw new Error(`${where}: unknown key(s) ${unknown.join(", ")}`);
    const color = readColor(item.color, where);
    if (stroke) {
      const points = item.points;
      if (!Array.isArray(points) || points.length < 2) {
        throw new Error(`${where}: a stroke needs a list of at least 2 [x, y] points`);
      }
      for (const [n, p] of points.entries()) {
        if (!Array.isArray(p) || p.length !== 2 || !number(p[0]) || !number(p[1])) {
          throw new Error(`${where}: stroke point ${n + 1} must be [x, y] numbers`);
        }
        if (outside(...p)) throw new Error(`${where}: point ${n + 1} is outside ${size}`);
      }
      if (!number(item.width) || item.width <= 0) {
        throw new Error(`${where}: stroke width must be a number above 0`);
      }
      return { points: points.map(([x, y]) => [x, y]), color, width: item.width };
    }
    if (!number(item.x) || !number(item.y)) throw new Error(`${where}: x and y must be numbers`);
    if (outside(item.x, item.y)) {
      throw new Error(`${where} at (${item.x}, ${item.y}) is outside ${size}`);
    }
    const radius = item.radius ?? null;
    if (radius !== null && (!number(radius) || radius <= 0)) {
      throw new Error(`${where}: 'radius' must be a number above 0`);
    }
    return radius ? { x: item.x, y: item.y, color, radius } : { x: item.x, y: item.y, color };
  });
}

function readColor(text, where) {
  const digits = typeof text === "string" ? text.trim().replace(/^#/, "") : "";
  if (/^[0-9a-f]{3}$/i.test(digits)) return "#" + [...digits.toLowerCase()].map((c) => c + c).join("");
  if (/^[0-9a-f]{6}$/i.test(digits)) return "#" + digits.toLowerCase();
  throw new Error(`${where}: cannot read colour ${JSON.stringify(text)} (use #rrggbb)`);
}
