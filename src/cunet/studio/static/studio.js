// cunet studio: the page. State is the hints document that `cunet colorize --hints` reads; every change
// asks the server for a new preview (it computes the newest, `studio/schedule.py`), and no answer older
// than the one on screen is shown. Each photo's hints are kept in the browser under the file's digest.
"use strict";

const $ = (id) => document.getElementById(id);
const photo = { id: null, width: 0, height: 0, name: "photo", digest: "" };
let hints = { points: [], strokes: [], saturation: null, histogram: null, globalLabel: "" };
let shown = [];  // per point, what the server says it will show: {asked, lightness, shown, moved}
let selected = -1;
const undoStack = [];
const redoStack = [];
let latest = 0;    // ticket of the newest preview asked for
let onScreen = 0;  // ticket of the preview on screen
let retries = 0;   // newest previews superseded in a row (asked again, at most 3 times)
let pending = 0;
let previewUrl = null;
// What the frame shows: the region of the photo around (cx, cy) at `zoom` (1: the whole photo), rendered
// by the server at the frame's size in device pixels; `display` is the frame's size in CSS pixels.
const view = { zoom: 1, cx: 0, cy: 0, display: { width: 0, height: 0 } };
const MAX_VIEW_PIXELS = 4096000;

function region() {
  const width = photo.width / view.zoom, height = photo.height / view.zoom;
  const cx = Math.min(photo.width - width / 2, Math.max(width / 2, view.cx));
  const cy = Math.min(photo.height - height / 2, Math.max(height / 2, view.cy));
  Object.assign(view, { cx, cy });
  return { x0: cx - width / 2, y0: cy - height / 2, width, height };
}

// The view's query: its region in photo pixels and its size in device pixels (capped as the server caps it).
function viewQuery() {
  const r = region();
  const ratio = window.devicePixelRatio || 1;
  let width = Math.max(1, Math.round(view.display.width * ratio)), height = Math.max(1, Math.round(view.display.height * ratio));
  const shrink = Math.min(1, Math.sqrt(MAX_VIEW_PIXELS / (width * height)), 4096 / Math.max(width, height));
  width = Math.max(1, Math.floor(width * shrink));
  height = Math.max(1, Math.floor(height * shrink));
  const round = (v) => Math.round(v * 1000) / 1000;
  return `x0=${round(r.x0)}&y0=${round(r.y0)}&x1=${round(r.x0 + r.width)}&y1=${round(r.y0 + r.height)}` +
         `&width=${width}&height=${height}`;
}

// Fit the frame to the stage with the photo's proportions (on a phone: the width, at most 60 % of the height).
function layoutFrame() {
  if (photo.id === null) return;
  const stage = $("stage");
  const phone = window.innerWidth <= 700;
  const availableWidth = Math.max(50, stage.clientWidth - 24);
  const availableHeight = Math.max(50, phone ? window.innerHeight * 0.6 : window.innerHeight - 150);
  const scale = Math.min(availableWidth / photo.width, availableHeight / photo.height);
  view.display = { width: Math.round(photo.width * scale), height: Math.round(photo.height * scale) };
  $("frame").style.width = `${view.display.width}px`;
  $("frame").style.height = `${view.display.height}px`;
}

let viewTimer = null;
// The view changed (zoom, pan, a new frame size): show it soon, the newest only.
function viewChanged(delay = 60) {
  $("zoom-value").textContent = `${Math.round(view.zoom * 100)} %`;
  render();
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => {
    $("original").src = `/api/photos/${photo.id}/gray?${viewQuery()}`;
    refresh();
  }, delay);
}

function maxZoom() {
  return Math.max(1, (4 * photo.width) / Math.max(1, view.display.width));  // one photo pixel: 4 screen pixels
}

// Zoom by `factor` keeping the photo pixel `anchor` where it is on screen (the centre by default).
function zoomBy(factor, anchor = null) {
  if (photo.id === null) return;
  const before = region();
  const zoom = Math.min(maxZoom(), Math.max(1, view.zoom * factor));
  const at = anchor || { x: before.x0 + before.width / 2, y: before.y0 + before.height / 2 };
  const keep = view.zoom / zoom;
  const x0 = at.x - (at.x - before.x0) * keep, y0 = at.y - (at.y - before.y0) * keep;
  Object.assign(view, { zoom, cx: x0 + (photo.width / zoom) / 2, cy: y0 + (photo.height / zoom) / 2 });
  viewChanged();
}

function zoomFit() {
  Object.assign(view, { zoom: 1, cx: photo.width / 2, cy: photo.height / 2 });
  viewChanged();
}

// Pan by a move of (dx, dy) CSS pixels on screen.
function panBy(dx, dy) {
  const r = region();
  view.cx -= (dx / view.display.width) * r.width;
  view.cy -= (dy / view.display.height) * r.height;
  viewChanged();
}

// A status line; an error goes to the banner at the top, where it stays until dismissed (Escape, its
// button) or, for a failed preview, until a preview succeeds.
let previewFailed = false;
function status(text, isError = false, fromPreview = false) {
  if (isError) {
    $("error-text").textContent = text;
    $("error-banner").hidden = false;
    $("announce").textContent = text;
    previewFailed = fromPreview;
    return;
  }
  $("status").textContent = text;
}

function clearError() {
  $("error-banner").hidden = true;
}

// The original uncovered from the left up to `value` % of the width, the divider on the photo at the edge.
function showCompare(value) {
  $("original").style.clipPath = `inset(0 ${100 - value}% 0 0)`;
  $("divider").style.left = `${value}%`;
}

function busy(delta) {
  const was = pending > 0;
  pending += delta;
  $("busy").hidden = pending <= 0;
  if (was !== pending > 0) $("announce").textContent = pending > 0 ? "working…" : "preview updated";
}

// The server's per-launch token, from this page's own HTML: requests that change state carry it.
const TOKEN = document.querySelector('meta[name="cunet-token"]')?.content || "";

function withToken(options) {
  return { ...options, headers: { ...(options.headers || {}), "X-Cunet-Token": TOKEN } };
}

// One request, its answer read to the end ("json" or "blob"): the busy indicator covers both.
async function api(path, options = {}, read = "json") {
  busy(1);
  try {
    const response = await fetch(path, withToken(options));
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      throw Object.assign(new Error(message), { status: response.status });
    }
    if (read === "image") return { blob: await response.blob(), headers: response.headers };
    return read === "blob" ? await response.blob() : await response.json();
  } finally {
    busy(-1);
  }
}

function hintsDocument() {
  const withStrength = (item, hint) => (hint.strength === undefined ? item : { ...item, strength: hint.strength });
  const doc = { points: hints.points.map((p) => withStrength(
    p.color ? { x: p.x, y: p.y, color: p.color, size: p.size } : { x: p.x, y: p.y, a: p.a, b: p.b, size: p.size }, p)) };
  if (hints.strokes.length) {
    doc.strokes = hints.strokes.map((s) => withStrength(
      s.color ? { points: s.points, color: s.color, width: s.width } : { points: s.points, a: s.a, b: s.b, width: s.width }, s));
  }
  if (hints.saturation !== null) doc.saturation = hints.saturation;
  if (hints.histogram !== null) doc.histogram = hints.histogram;
  return doc;
}

function snapshot() {
  return JSON.stringify({ ...hints, selected });
}

function restore(text) {
  const state = JSON.parse(text);
  selected = state.selected;
  delete state.selected;
  hints = state;
  shown = [];
  syncControls();
  render();
  refresh();
}

// Record the state before a change, so that Undo returns to it.
function remember() {
  shown = [];  // the points change: what they show is known again after the next preview
  undoStack.push(snapshot());
  if (undoStack.length > 200) undoStack.shift();
  redoStack.length = 0;
  updateButtons();
}

function undo() {
  if (!undoStack.length) return;
  redoStack.push(snapshot());
  restore(undoStack.pop());
  updateButtons();
}

function redo() {
  if (!redoStack.length) return;
  undoStack.push(snapshot());
  restore(redoStack.pop());
  updateButtons();
}

function updateButtons() {
  const open = photo.id !== null;
  $("undo").disabled = !undoStack.length;
  $("redo").disabled = !redoStack.length;
  for (const id of ["download", "save-hints", "show-variants", "load-hints", "reference"]) $(id).disabled = !open;
  $("delete-point").disabled = selected < 0;
  $("deselect").disabled = selected < 0;
  $("clear-global").disabled = hints.histogram === null;
  $("global-label").textContent = hints.globalLabel || "";
}

function syncControls() {
  $("saturation-on").checked = hints.saturation !== null;
  $("saturation").disabled = hints.saturation === null;
  if (hints.saturation !== null) $("saturation").value = Math.round(hints.saturation * 100);
  $("saturation-value").textContent = hints.saturation === null ? "off" : `${Math.round(hints.saturation * 100)} %`;
  if (selected >= 0 && hints.points[selected]) {
    $("color").value = hints.points[selected].color;
    $("size").value = hints.points[selected].size;
    $("size-value").textContent = hints.points[selected].size;
  }
  showShownColor();
  for (const button of document.querySelectorAll(".variants button")) {
    button.classList.toggle("chosen", hints.globalLabel === button.dataset.label);
    button.setAttribute("aria-pressed", String(hints.globalLabel === button.dataset.label));
  }
  updateButtons();
}

// Ask for a new preview. Every change sends one; the server computes one per photo at a time, keeps
// only the newest waiting and answers a replaced one 409 ("superseded"). Answers are shown as they
// come, so a drag shows intermediate previews, but never one older than what is on screen.
async function refresh() {
  if (photo.id === null) return;
  keepHints();
  const ticket = ++latest;
  const photoId = photo.id;
  busy(1);  // held until the answer is decoded on screen, not only fetched
  try {
    // The order the server keeps (requests travel on several connections and may arrive out of order):
    // the send time in microseconds, so that it grows across reloads too.
    const seq = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const { blob, headers } = await api(`/api/photos/${photoId}/colorize?${viewQuery()}&seq=${seq}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(hintsDocument()),
    }, "image");
    if (ticket <= onScreen || photo.id !== photoId) return;
    const url = URL.createObjectURL(blob);
    const preview = $("preview");
    const decoded = new Image();
    decoded.src = url;
    try { await decoded.decode(); } catch (error) { URL.revokeObjectURL(url); if (ticket !== latest) return; throw error; }
    if (ticket <= onScreen || photo.id !== photoId) { URL.revokeObjectURL(url); return; }
    onScreen = ticket;
    retries = 0;
    if (ticket === latest) {
      try { shown = JSON.parse(headers.get("X-Point-Colors") || "[]"); } catch (e) { shown = []; }
    }
    render();
    showShownColor();
    preview.src = url;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = url;
    await preview.decode().catch(() => {});  // decoded once already: this is the paint of the same bytes
    if (onScreen !== ticket) return;
    // The ticket says "this answer is on screen": set once the image is decoded, not when its URL is.
    preview.dataset.ticket = ticket;
    if (ticket === latest) {
      if (previewFailed) clearError();
      status(`${photo.name}: ${photo.width}×${photo.height}, ${hints.points.length} point(s), ` +
             `${hints.strokes.length} stroke(s)`);
    }
  } catch (error) {
    if (error.status === 409 && ticket === latest && photo.id === photoId && retries < 3) {
      retries += 1;  // the newest was superseded (another tab on this photo): ask again, it must be shown
      setTimeout(refresh, 100 * retries);
    } else if (error.status !== 409 && ticket === latest) {
      status(error.message, true, true);
      shown = [];
      render();
      showShownColor();
    }
  } finally {
    busy(-1);
  }
}

function render() {
  const svg = $("points");
  const r = photo.id === null ? { x0: 0, y0: 0, width: photo.width || 1, height: photo.height || 1 } : region();
  svg.setAttribute("viewBox", `${r.x0} ${r.y0} ${r.width} ${r.height}`);
  const radius = Math.max(r.width, r.height) / 90;
  svg.replaceChildren();
  hints.strokes.forEach((s) => {
    const vertices = s.points.map(([x, y]) => `${x + 0.5},${y + 0.5}`).join(" ");
    for (const [kind, width] of [["halo", s.width + 2 * radius / 3], ["stroke", s.width]]) {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", vertices);
      if (kind === "stroke") line.setAttribute("stroke", s.color || "#808080");
      line.setAttribute("stroke-width", width);
      line.setAttribute("class", kind);
      svg.appendChild(line);
    }
  });
  hints.points.forEach((p, i) => {
    const circle = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    circle.setAttribute("cx", p.x + 0.5);
    circle.setAttribute("cy", p.y + 0.5);
    circle.setAttribute("r", radius * (0.7 + p.size / 6));
    // The colour the point will produce (its pick fitted to the gamut at its lightness), once the server said.
    const will = shown[i] && shown[i].shown;
    circle.setAttribute("fill", will || p.color || "#808080");
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = will ? `picked ${shown[i].asked}, shows as ${will} at L* ${Math.round(shown[i].lightness)}`
                             : (p.color || "");
    circle.appendChild(title);
    circle.dataset.index = i;
    if (i === selected) circle.classList.add("selected");
    svg.appendChild(circle);
  });
  updateButtons();
}

// Where on the photo (its pixels, continuous) a screen position falls: the anchor a zoom keeps in place.
function photoPoint(event) {
  const box = $("points").getBoundingClientRect();
  const r = region();
  return { x: r.x0 + ((event.clientX - box.left) / box.width) * r.width,
           y: r.y0 + ((event.clientY - box.top) / box.height) * r.height };
}

function photoPixel(event) {
  const at = photoPoint(event);
  const x = Math.floor(at.x), y = Math.floor(at.y);
  return { x: Math.min(photo.width - 1, Math.max(0, x)), y: Math.min(photo.height - 1, Math.max(0, y)) };
}

async function showSuggestions(x, y) {
  try {
    const { source, suggestions } = await api(`/api/photos/${photo.id}/suggest?x=${x}&y=${y}&top=8`);
    $("suggest-source").textContent = source === "model" ? "(from the network)" : "(from the gallery)";
    const box = $("suggestions");
    box.replaceChildren();
    for (const s of suggestions) {
      const swatch = document.createElement("button");
      swatch.className = "swatch";
      swatch.style.background = s.color;
      swatch.title = `${s.color}  p = ${(s.p * 100).toFixed(1)} %`;
      swatch.setAttribute("aria-label", `use ${s.color}, ${Math.round(s.p * 100)} percent likely`);
      swatch.innerHTML = `<span aria-hidden="true">${Math.round(s.p * 100)}%</span>`;
      swatch.addEventListener("click", () => setPointColor(s.color));
      box.appendChild(swatch);
    }
  } catch (error) {
    status(error.message, true);
  }
}

function setPointColor(color) {
  $("color").value = color;
  if (selected < 0) return;
  remember();
  Object.assign(hints.points[selected], { color, a: undefined, b: undefined });
  render();
  refresh();
}

// The colour the selected point will show, beside the picker: a pale spot cannot be crimson.
function showShownColor() {
  const box = $("shown-color");
  const will = selected >= 0 && shown[selected] ? shown[selected] : null;
  box.hidden = !will;
  if (!will) return;
  $("shown-swatch").style.background = will.shown;
  $("shown-text").textContent = will.moved > 10 ? `point shows as ${will.shown} at L* ${Math.round(will.lightness)}`
                                                : `point shows as ${will.shown}`;
}

function tool() {
  return $("tool-brush").checked ? "brush" : "point";
}

// Brush width in photo pixels from the slider (1-9), scaled to the photo: a few pixels of the preview
// (at most the server's limit, MAX_STROKE_WIDTH in cunet.hints).
function brushWidth() {
  return Math.min(256, Math.max(1, Math.round((Number($("size").value) * Math.max(photo.width, photo.height)) / 400)));
}

let drawing = null;
let drag = null;
let panning = null;     // {pointer, x, y}: a middle-button or Space+drag pan in progress
let spaceHeld = false;
const touches = new Map();  // touch pointers on the photo, for a two-finger pinch
let pinch = null;           // {distance, x, y}: the last two-finger state
let touchAdded = false;     // the first finger of a gesture added a point (a pinch takes it back)

function startPinch() {
  const [a, b] = [...touches.values()];
  pinch = { distance: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  if (touchAdded) { undo(); touchAdded = false; }
  drag = null;
  drawing = null;
}

function movePinch() {
  const [a, b] = [...touches.values()];
  const distance = Math.hypot(a.x - b.x, a.y - b.y), x = (a.x + b.x) / 2, y = (a.y + b.y) / 2;
  panBy(x - pinch.x, y - pinch.y);
  const anchor = photoPoint({ clientX: x, clientY: y });
  if (pinch.distance > 0) zoomBy(distance / pinch.distance, anchor);
  pinch = { distance, x, y };
}

function onPointerDown(event) {
  if (photo.id === null) return;
  if (event.pointerType === "touch") {
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (touches.size === 2) { startPinch(); return; }
    if (touches.size > 2) return;
  }
  if (event.button === 1 || (event.button === 0 && spaceHeld)) {  // pan, not a point
    event.preventDefault();
    panning = { pointer: event.pointerId, x: event.clientX, y: event.clientY };
    $("points").setPointerCapture(event.pointerId);
    return;
  }
  if (event.button !== 0 || !event.isPrimary) return;
  const index = event.target.dataset ? event.target.dataset.index : undefined;
  const at = photoPixel(event);
  if (event.altKey) {  // look without touching: the likely colours there, no point added
    showSuggestions(at.x, at.y);
    return;
  }
  if (tool() === "brush") {
    remember();
    drawing = { points: [[at.x, at.y]], color: $("color").value, width: brushWidth() };
    drawing.pointer = event.pointerId;
    hints.strokes.push(drawing);
    $("points").setPointerCapture(event.pointerId);
    render();
    return;
  }
  if (index !== undefined) {
    selected = Number(index);
    drag = { index: selected, moved: false, before: snapshot() };
    $("points").setPointerCapture(event.pointerId);
    syncControls();
  } else {
    remember();
    hints.points.push({ x: at.x, y: at.y, color: $("color").value, size: Number($("size").value) });
    selected = hints.points.length - 1;
    touchAdded = event.pointerType === "touch";
    refresh();
  }
  render();
  showSuggestions(at.x, at.y);
}

function onPointerMove(event) {
  if (touches.has(event.pointerId)) {
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pinch && touches.size === 2) { movePinch(); return; }
  }
  if (panning) {
    if (event.pointerId !== panning.pointer) return;
    panBy(event.clientX - panning.x, event.clientY - panning.y);
    Object.assign(panning, { x: event.clientX, y: event.clientY });
    return;
  }
  if (drawing) {
    if (event.pointerId !== drawing.pointer) return;
    const at = photoPixel(event);
    const [lx, ly] = drawing.points[drawing.points.length - 1];
    if (Math.hypot(at.x - lx, at.y - ly) < Math.max(2, drawing.width / 2)) return;
    if (drawing.points.length < 10000) drawing.points.push([at.x, at.y]);
    render();
    return;
  }
  if (!drag) return;
  const at = photoPixel(event);
  const point = hints.points[drag.index];
  if (point.x === at.x && point.y === at.y) return;
  if (!drag.moved) {
    undoStack.push(drag.before);
    redoStack.length = 0;
    drag.moved = true;
  }
  point.x = at.x;
  point.y = at.y;
  render();
  refresh();
}

function onPointerUp(event) {
  touches.delete(event.pointerId);
  if (touches.size < 2) pinch = null;
  if (!touches.size) touchAdded = false;
  if (panning) {
    if (event.pointerId === panning.pointer) panning = null;
    return;
  }
  if (drawing) {
    if (event.pointerId !== drawing.pointer) return;
    delete drawing.pointer;
    drawing = null;
    refresh();
    return;
  }
  if (!drag) return;
  if (drag.moved) showSuggestions(hints.points[drag.index].x, hints.points[drag.index].y);
  drag = null;
}

function deleteSelected() {
  if (selected < 0) return;
  remember();
  hints.points.splice(selected, 1);
  selected = -1;
  render();
  syncControls();
  refresh();
}

// Escape: nothing selected, so the picker sets the colour of the next point instead of this one's.
function deselect() {
  if (selected < 0) return;
  selected = -1;
  render();
  syncControls();
}

// The keyboard on the focused photo: [ and ] select the previous and next point, arrows move it
// (Shift: 10 px), so that every point can be reached and edited without a mouse.
function onPhotoKey(event) {
  if (photo.id === null || !hints.points.length) return false;
  if (event.key === "[" || event.key === "]") {
    const count = hints.points.length;
    selected = selected < 0 ? (event.key === "]" ? 0 : count - 1) : (selected + (event.key === "]" ? 1 : count - 1)) % count;
    render();
    syncControls();
    const point = hints.points[selected];
    $("announce").textContent = `point ${selected + 1} of ${count} at ${point.x}, ${point.y}`;
    showSuggestions(point.x, point.y);  // the likely colours at the selected point, as a click shows them
    return true;
  }
  const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
  if (!steps || selected < 0) return false;
  const point = hints.points[selected];
  const by = event.shiftKey ? 10 : 1;
  remember();
  point.x = Math.min(photo.width - 1, Math.max(0, point.x + steps[0] * by));
  point.y = Math.min(photo.height - 1, Math.max(0, point.y + steps[1] * by));
  render();
  refresh();
  return true;
}

async function openPhoto(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name || "pasted.png");
  status(`opening ${file.name || "pasted photo"}…`);
  try {
    await useOpenedPhoto(await api("/api/photos", { method: "POST", body: form }), file.name || "pasted");
  } catch (error) {
    status(error.message, true);
  }
}

// A photo opened (the same one again too): everything about the last one goes — hints, selection,
// history, compare position, suggestions, variants, messages — and its own kept hints are offered.
async function useOpenedPhoto(info, name) {
  if (photo.id !== null && photo.id !== info.id) fetch(`/api/photos/${photo.id}`, withToken({ method: "DELETE" }));
  Object.assign(photo, { id: info.id, width: info.width, height: info.height, name: name.replace(/\.[^.]*$/, ""),
                         digest: info.digest || "" });
  sessionStorage.setItem("cunet:photo", info.id);
  hints = { points: [], strokes: [], saturation: null, histogram: null, globalLabel: "" };
  shown = [];
  selected = -1;
  undoStack.length = 0;
  redoStack.length = 0;
  $("variants").replaceChildren();
  $("suggestions").replaceChildren(Object.assign(document.createElement("small"),
    { textContent: "Click the photo (or Alt+click, to look without adding a point) to see likely colours there." }));
  $("suggest-source").textContent = "";
  $("compare").value = 0;
  showCompare(0);
  clearError();
  offerKeptHints();
  $("frame").hidden = false;
  $("stage").classList.remove("empty");
  Object.assign(view, { zoom: 1, cx: info.width / 2, cy: info.height / 2 });
  layoutFrame();
  $("zoom-value").textContent = "100 %";
  $("original").src = `/api/photos/${info.id}/gray?${viewQuery()}`;
  $("stage").classList.remove("empty");
  syncControls();
  render();
  await refresh();
}

async function download() {
  try {
    const blob = await api(`/api/photos/${photo.id}/colorize?full=1`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(hintsDocument()),
    }, "blob");
    saveBlob(blob, `${photo.name}_color.png`);
  } catch (error) {
    status(error.message, true);
  }
}

function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function hintsFromDocument(doc, label) {
  return {
    points: (doc.points || []).map((p) => ({ x: p.x, y: p.y, color: p.color, a: p.a, b: p.b, size: p.size || 3,
                                             strength: p.strength })),
    strokes: (doc.strokes || []).map((s) => ({ points: s.points, color: s.color, a: s.a, b: s.b, width: s.width || 5,
                                               strength: s.strength })),
    saturation: doc.saturation ?? null, histogram: doc.histogram ?? null,
    globalLabel: doc.histogram ? label : "",
  };
}

// Use a hints document only once the server has checked it whole against this photo: a bad one
// (a point outside, a bad colour, too many points) changes nothing and the banner says why.
async function adoptHints(doc, label) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("hints must be a JSON object");
  const { reference, ...rest } = doc;
  if (reference !== undefined) throw new Error("the studio opens no file paths: use Reference photo… instead");
  await api(`/api/photos/${photo.id}/check-hints`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(rest),
  });
  remember();
  hints = hintsFromDocument(rest, label);
  selected = -1;
  syncControls();
  render();
  refresh();
}

async function loadHints(file) {
  try {
    let doc;
    try { doc = JSON.parse(await file.text()); } catch (error) { throw new Error("not a hints file (not valid JSON)"); }
    await adoptHints(doc, `histogram from ${file.name}`);
  } catch (error) {
    status(`${file.name}: ${error.message}; nothing was changed`, true);
  }
}

// Each photo's hints are kept in this browser under the file's digest, and offered back when the
// photo is opened again (after a reload too).
function keptKey() {
  return photo.digest ? `cunet:hints:${photo.digest}` : null;
}

function keepHints() {
  const key = keptKey();
  if (!key) return;
  const doc = hintsDocument();
  const empty = !doc.points.length && !doc.strokes && doc.saturation === undefined && doc.histogram === undefined;
  if (empty && !$("restore-banner").hidden) return;  // the kept hints are on offer: not replaced by nothing yet
  try {
    if (!empty) localStorage.setItem(key, JSON.stringify(doc));
    else localStorage.removeItem(key);
  } catch (error) { /* storage full or off: keeping hints is a convenience */ }
}

function offerKeptHints() {
  $("restore-banner").hidden = true;
  const key = keptKey();
  let doc = null;
  try { doc = key && JSON.parse(localStorage.getItem(key) || "null"); } catch (error) { doc = null; }
  if (!doc || typeof doc !== "object") return;
  const points = (doc.points || []).length, strokes = (doc.strokes || []).length;
  const parts = [points && `${points} point(s)`, strokes && `${strokes} stroke(s)`,
                 doc.saturation != null && "a saturation", doc.histogram && "a colour histogram"].filter(Boolean);
  if (!parts.length) return;
  $("restore-text").textContent = `This photo has hints from before: ${parts.join(", ")}.`;
  $("restore-banner").hidden = false;
  $("restore-yes").onclick = async () => {
    $("restore-banner").hidden = true;
    try { await adoptHints(doc, "histogram from before"); } catch (error) { status(`kept hints: ${error.message}`, true); }
  };
  $("restore-no").onclick = () => { $("restore-banner").hidden = true; };
}

// Variants with the user's own points, strokes and saturation: a thumbnail shows what choosing it gives.
async function showVariants() {
  try {
    const { histogram, ...own } = hintsDocument();
    const { variants } = await api(`/api/photos/${photo.id}/variants?k=4`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(own),
    });
    const box = $("variants");
    box.replaceChildren();
    variants.forEach((v, i) => {
      const button = document.createElement("button");
      const img = document.createElement("img");
      img.src = v.thumbnail;
      img.alt = `variant ${i + 1}`;
      button.appendChild(img);
      button.dataset.label = `variant ${i + 1} (gallery photo ${v.id})`;
      button.title = `Use the colours of variant ${i + 1}`;
      button.addEventListener("click", () => {
        remember();
        hints.histogram = v.histogram;
        hints.globalLabel = button.dataset.label;
        syncControls();
        refresh();
      });
      box.appendChild(button);
    });
    syncControls();
  } catch (error) {
    status(error.message, true);
  }
}

async function useReference(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const { histogram } = await api("/api/histogram", { method: "POST", body: form });
    remember();
    hints.histogram = histogram;
    hints.globalLabel = `colours of ${file.name}`;
    syncControls();
    refresh();
  } catch (error) {
    status(error.message, true);
  }
}

function wire() {
  $("open-photo").addEventListener("click", () => $("file-input").click());
  $("load-hints").addEventListener("click", () => $("hints-input").click());
  $("reference").addEventListener("click", () => $("reference-input").click());
  $("error-close").addEventListener("click", clearError);
  $("deselect").addEventListener("click", deselect);
  // value reset: opening the same file again is a change too
  $("file-input").addEventListener("change", (e) => { openPhoto(e.target.files[0]); e.target.value = ""; });
  $("hints-input").addEventListener("change", (e) => { if (e.target.files[0]) loadHints(e.target.files[0]); e.target.value = ""; });
  $("reference-input").addEventListener("change", (e) => { useReference(e.target.files[0]); e.target.value = ""; });
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("download").addEventListener("click", download);
  $("save-hints").addEventListener("click", () => saveBlob(
    new Blob([JSON.stringify(hintsDocument(), null, 2)], { type: "application/json" }), `${photo.name}_hints.json`));
  $("delete-point").addEventListener("click", deleteSelected);
  $("show-variants").addEventListener("click", showVariants);
  $("clear-global").addEventListener("click", () => {
    remember();
    hints.histogram = null;
    hints.globalLabel = "";
    syncControls();
    refresh();
  });
  $("color").addEventListener("change", (e) => setPointColor(e.target.value));
  $("size").addEventListener("input", (e) => { $("size-value").textContent = e.target.value; });
  $("size").addEventListener("change", (e) => {
    if (selected < 0) return;
    remember();
    hints.points[selected].size = Number(e.target.value);
    render();
    refresh();
  });
  $("saturation-on").addEventListener("change", (e) => {
    remember();
    hints.saturation = e.target.checked ? Number($("saturation").value) / 100 : null;
    syncControls();
    refresh();
  });
  $("saturation").addEventListener("pointerdown", () => remember());
  $("saturation").addEventListener("input", (e) => {
    hints.saturation = Number(e.target.value) / 100;
    $("saturation-value").textContent = `${e.target.value} %`;
    refresh();
  });
  $("compare").addEventListener("input", (e) => showCompare(Number(e.target.value)));
  // The divider on the photo: drag its handle to uncover the original from the left.
  const handle = document.querySelector("#divider .handle");
  handle.addEventListener("pointerdown", (e) => { handle.setPointerCapture(e.pointerId); e.stopPropagation(); });
  handle.addEventListener("pointermove", (e) => {
    if (!handle.hasPointerCapture(e.pointerId)) return;
    const box = $("frame").getBoundingClientRect();
    const value = Math.round(Math.min(100, Math.max(0, ((e.clientX - box.left) / box.width) * 100)));
    $("compare").value = value;
    showCompare(value);
  });
  const svg = $("points");
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("mousedown", (e) => { if (e.button === 1) e.preventDefault(); });  // no autoscroll: it pans
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", onPointerUp);  // an interrupted stroke ends where it was
  svg.addEventListener("keydown", (e) => { if (onPhotoKey(e)) e.preventDefault(); });
  svg.addEventListener("wheel", (e) => {
    if (photo.id === null) return;
    e.preventDefault();
    zoomBy(Math.exp(-e.deltaY * 0.0015), photoPoint(e));
  }, { passive: false });
  $("zoom-in").addEventListener("click", () => zoomBy(1.5));
  $("zoom-out").addEventListener("click", () => zoomBy(1 / 1.5));
  $("zoom-fit").addEventListener("click", zoomFit);
  window.addEventListener("resize", () => { if (photo.id !== null) { layoutFrame(); viewChanged(150); } });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "range") return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); }
    else if (mod && e.key.toLowerCase() === "y") { e.preventDefault(); redo(); }
    else if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); deleteSelected(); }
    else if (e.key === "Escape") { deselect(); clearError(); }
    else if (!mod && (e.key === "+" || e.key === "=")) { e.preventDefault(); zoomBy(1.5); }
    else if (!mod && e.key === "-") { e.preventDefault(); zoomBy(1 / 1.5); }
    else if (!mod && e.key === "0") { e.preventDefault(); zoomFit(); }
    else if (e.key === " " && e.target === $("points")) { e.preventDefault(); spaceHeld = true; }
    else if (!mod && e.key.toLowerCase() === "o" && !e.repeat && photo.id !== null) {
      $("original").style.clipPath = "inset(0 0 0 0)";  // hold O: the original, whole
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.key === " ") spaceHeld = false;
    if (e.key.toLowerCase() === "o") showCompare(Number($("compare").value));
  });
  const stage = $("stage");
  stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("dragging"); });
  stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
  stage.addEventListener("drop", (e) => {
    e.preventDefault();
    stage.classList.remove("dragging");
    openPhoto(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith("image/"));
    if (item) openPhoto(item.getAsFile());
  });
}

async function start() {
  wire();
  updateButtons();
  // After a reload the photo is opened again if the server still holds it (and its kept hints offered).
  const asked = new URLSearchParams(location.search).get("photo");
  const preloaded = asked || sessionStorage.getItem("cunet:photo");
  if (preloaded) {
    try {
      const info = await api(`/api/photos/${encodeURIComponent(preloaded)}`);
      await useOpenedPhoto(info, info.name || "photo");
    } catch (error) {
      if (asked) status(error.message, true);
      else sessionStorage.removeItem("cunet:photo");  // the server let it go (restarted, or memory): start afresh
    }
  }
}

start();
