// JKSPNet's page: send photos to /api/colorize, show before/after, re-render on saturation.
"use strict";

const drop = document.getElementById("drop");
const fileInput = document.getElementById("file");
const saturation = document.getElementById("saturation");
const saturationValue = document.getElementById("saturation-value");
const results = document.getElementById("results");
const template = document.getElementById("card-template");
const cards = [];

// Saturation 0..100 maps to the model's temperature 1.0 (plain mean) .. 0.2 (vivid).
const toTemperature = (s) => Math.round((1.0 - 0.8 * (s / 100)) * 1000) / 1000;
const toSaturation = (t) => Math.round(Math.min(100, Math.max(0, ((1.0 - t) / 0.8) * 100)));

async function render(card) {
  if (card.controller) card.controller.abort();
  const controller = new AbortController();
  card.controller = controller;
  card.el.classList.add("busy");
  card.error.hidden = true;
  card.note.hidden = true;
  const form = new FormData();
  form.append("image", card.file, card.file.name);
  form.append("temperature", String(toTemperature(Number(saturation.value))));
  try {
    const response = await fetch("/api/colorize", {
      method: "POST",
      body: form,
      signal: controller.signal,
    });
    if (!response.ok) {
      let message = `the server answered ${response.status}`;
      try {
        message = (await response.json()).error || message;
      } catch (_) {
        /* not JSON: keep the status line */
      }
      card.unusable = [400, 413, 415].includes(response.status);
      card.el.classList.toggle("failed", card.unusable);
      throw new Error(message);
    }
    const note = response.headers.get("X-JKSPNet-Note");
    card.note.textContent = note || "";
    card.note.hidden = !note;
    const blob = await response.blob();
    if (card.resultUrl) URL.revokeObjectURL(card.resultUrl);
    card.resultUrl = URL.createObjectURL(blob);
    card.after.src = card.resultUrl;
    card.download.href = card.resultUrl;
    card.download.hidden = false;
    card.el.classList.add("has-result");
    card.renders += 1;
    card.el.dataset.renders = String(card.renders);
  } catch (error) {
    if (error.name === "AbortError") return;
    card.error.textContent = error.message;
    card.error.hidden = false;
  } finally {
    if (card.controller === controller) {
      card.controller = null;
      card.el.classList.remove("busy");
    }
  }
}

function addPhoto(file) {
  const el = template.content.firstElementChild.cloneNode(true);
  const card = {
    el,
    file,
    renders: 0,
    controller: null,
    resultUrl: null,
    after: el.querySelector(".after"),
    before: el.querySelector(".before"),
    download: el.querySelector(".download"),
    error: el.querySelector(".error"),
    note: el.querySelector(".note"),
  };
  el.querySelector(".name").textContent = file.name;
  card.download.download = file.name.replace(/\.[^.]*$/, "") + "-colour.png";
  card.before.addEventListener("error", () => card.before.removeAttribute("src"));
  card.before.src = URL.createObjectURL(file);
  const compare = el.querySelector(".compare");
  el.querySelector(".split").addEventListener("input", (event) => {
    compare.style.setProperty("--split", `${event.target.value}%`);
  });
  results.prepend(el);
  cards.push(card);
  render(card);
}

function addFiles(files) {
  for (const file of files) addPhoto(file);
}

fileInput.addEventListener("change", () => {
  addFiles(fileInput.files);
  fileInput.value = "";
});
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  addFiles(event.dataTransfer.files);
});

let debounce = null;
saturation.addEventListener("input", () => {
  saturationValue.textContent = saturation.value;
  clearTimeout(debounce);
  debounce = setTimeout(() => cards.filter((c) => !c.unusable).forEach(render), 300);
});

fetch("/api/health")
  .then((response) => response.json())
  .then((health) => {
    saturation.value = String(toSaturation(health.temperature));
    saturationValue.textContent = saturation.value;
    const sha = health.weights_sha256 ? `, weights ${health.weights_sha256.slice(0, 12)}` : "";
    document.getElementById("model").textContent = `${health.model} on ${health.device}${sha}`;
  })
  .catch(() => {});
