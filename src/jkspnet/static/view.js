// Zoom and pan, for large photos: the photo's layers (.view) are scaled and moved inside the
// frame; the pins and the before/after divider stay in the frame's own space, placed from the
// zoom, so they keep their size and the divider follows the pointer. A zoom is (z, tx, ty): the
// photo z times the frame, its top-left corner at (tx, ty) percent of the frame.
"use strict";

import { clamp } from "./common.js";
import { placeMarks } from "./marks.js";

export const MAX_ZOOM = 16;
const STEP = 1.5;

// Where a photo fraction (0..1) shows, in percent of the frame.
export const shownAt = (card, fx, fy) => {
  const { z, tx, ty } = card.zoom;
  return [tx + z * fx * 100, ty + z * fy * 100];
};

export function applyView(card) {
  const { z, tx, ty } = card.zoom;
  card.view.style.transform = z === 1 ? "" : `translate(${tx}%, ${ty}%) scale(${z})`;
  // the original shows left of the divider: its clip, in the photo's own (zoomed) space
  const split = Number(card.split.value);
  card.compare.style.setProperty("--split-view", `${clamp((split - tx) / z, 0, 100)}%`);
  card.zoomLevel.textContent = `${Math.round(z * 100)}%`;
  card.zoomOut.disabled = z <= 1;
  card.zoomIn.disabled = z >= MAX_ZOOM;
  card.zoomFit.disabled = z === 1;
  card.el.classList.toggle("zoomed", z > 1);
  placeMarks(card);
}

// Zoom to z about a point of the frame (percent), which stays where it is.
export function zoomTo(card, z, cx = 50, cy = 50) {
  const old = card.zoom;
  const next = clamp(z, 1, MAX_ZOOM);
  const tx = cx - ((cx - old.tx) * next) / old.z;
  const ty = cy - ((cy - old.ty) * next) / old.z;
  card.zoom = { z: next, tx, ty };
  panBy(card, 0, 0);
}

// Move the zoomed photo by (dx, dy) percent of the frame, never past its edges.
export function panBy(card, dx, dy) {
  const { z, tx, ty } = card.zoom;
  const least = 100 - 100 * z;
  card.zoom = { z, tx: clamp(tx + dx, least, 0), ty: clamp(ty + dy, least, 0) };
  applyView(card);
}

function framePercent(card, clientX, clientY) {
  const box = card.compare.getBoundingClientRect();
  return [((clientX - box.left) / box.width) * 100, ((clientY - box.top) / box.height) * 100];
}

// In Point mode, a drag on the zoomed photo (not on a pin) pans it; the click that ends it puts
// no point.
function dragToPan(card, event) {
  const box = card.compare.getBoundingClientRect();
  const start = [event.clientX, event.clientY];
  let last = start;
  card.panned = false;
  const move = (e) => {
    if (!card.panned && Math.hypot(e.clientX - start[0], e.clientY - start[1]) < 4) return;
    if (!card.panned) card.compare.setPointerCapture(event.pointerId);
    card.panned = true;
    card.el.classList.add("panning");
    panBy(card, ((e.clientX - last[0]) / box.width) * 100, ((e.clientY - last[1]) / box.height) * 100);
    last = [e.clientX, e.clientY];
  };
  const up = () => {
    card.compare.removeEventListener("pointermove", move);
    card.compare.removeEventListener("pointerup", up);
    card.compare.removeEventListener("pointercancel", up);
    card.el.classList.remove("panning");
  };
  card.compare.addEventListener("pointermove", move);
  card.compare.addEventListener("pointerup", up);
  card.compare.addEventListener("pointercancel", up);
}

export function wireView(card) {
  card.zoom = { z: 1, tx: 0, ty: 0 };
  card.zoomIn.addEventListener("click", () => zoomTo(card, card.zoom.z * STEP));
  card.zoomOut.addEventListener("click", () => zoomTo(card, card.zoom.z / STEP));
  card.zoomFit.addEventListener("click", () => zoomTo(card, 1));
  // Ctrl + wheel (a trackpad's pinch) zooms about the pointer; the wheel pans a zoomed photo
  card.compare.addEventListener(
    "wheel",
    (event) => {
      if (event.ctrlKey || event.metaKey) {
        event.preventDefault();
        const [cx, cy] = framePercent(card, event.clientX, event.clientY);
        zoomTo(card, card.zoom.z * Math.exp(-event.deltaY / 300), cx, cy);
      } else if (card.zoom.z > 1) {
        event.preventDefault();
        const box = card.compare.getBoundingClientRect();
        panBy(card, (-event.deltaX / box.width) * 100, (-event.deltaY / box.height) * 100);
      }
    },
    { passive: false },
  );
  card.compare.addEventListener("pointerdown", (event) => {
    card.panned = false;
    const onMark = event.target.closest("button, .divider");
    if (card.zoom.z > 1 && card.mode === "point" && event.button === 0 && !onMark && !card.picking) {
      dragToPan(card, event);
    }
  });
  card.compare.addEventListener("keydown", (event) => {
    if (event.target !== card.compare || event.ctrlKey || event.metaKey) return;
    if (event.key === "+" || event.key === "=") zoomTo(card, card.zoom.z * STEP);
    else if (event.key === "-") zoomTo(card, card.zoom.z / STEP);
    else if (event.key === "0") zoomTo(card, 1);
    else return;
    event.preventDefault();
  });
}
