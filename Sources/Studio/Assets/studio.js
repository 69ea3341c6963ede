"use strict";
/*
 * biggan-fast studio: the one page of `biggan-fast serve`.
 *
 * Explore asks /api/images for a grid, interpolation strips or "same z, other class" rows and
 * places each image as its NDJSON line arrives. Watch polls the run's metrics.jsonl through
 * /api/metrics and draws it as SVG charts next to the run's sample sheets.
 * The HTTP API, the stream format and the element ids the browser tests use are fixed by the
 * studio API (docs/studio-api.md). No framework, no build step, no external resource.
 */

// ---------------------------------------------------------------------------------------------
// Basics

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const CLIENT_ID = randomHex(8);          // once per tab: the server cancels older requests of it
const DEBOUNCE_MS = 150;
const METRICS_EVERY_MS = 2000;
const RUN_EVERY_MS = 10000;
const CATCH_UP_LINES = 1000;              // a metrics answer this long may have more behind it
const SVG_NS = "http://www.w3.org/2000/svg";

/** Hex of `bytes` random bytes; crypto.getRandomValues works without a secure context too. */
function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The URL of `path` (relative, so a server behind a path prefix still works) with `params`
 * and the page's token: the server wants the token on every request, images and downloads too.
 */
function apiUrl(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  if (TOKEN) url.searchParams.set("token", TOKEN);
  return url.pathname + url.search;
}

/** The one-line message of anything thrown. */
function messageOf(err) {
  if (err && typeof err.message === "string" && err.message) return err.message;
  return String(err);
}

/** The error line of a failed response: the API's `{"error"}` body, else the HTTP status. */
async function errorOf(response) {
  let text = "";
  try { text = await response.text(); } catch (_) { /* the body is optional */ }
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
  } catch (_) { /* not JSON: fall through to the status line */ }
  const first = text.trim().split("\n")[0].slice(0, 160);
  return `HTTP ${response.status}${first ? ": " + first : ""}`;
}

/** GET (or `init`) `url` as JSON; throws an Error with a one-line message on any failure. */
async function fetchJson(url, init = {}) {
  const response = await fetch(url, { cache: "no-store", ...init });
  if (!response.ok) throw new Error(await errorOf(response));
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new Error(`malformed JSON from ${url.split("?")[0]}`);
  }
}

const $ = (id) => document.getElementById(id);

/** A new element with attributes, text and children. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

/** A new SVG element with attributes. */
function s(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

const isFiniteNumber = (v) => typeof v === "number" && Number.isFinite(v);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A number in few characters: 0.0123, 1.23, 123.4, 12.3k. */
function formatValue(v) {
  if (!Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100) return v.toFixed(1);
  return Number(v.toPrecision(4)).toString();
}

/** "3 s ago", "2 min ago". */
function ago(ms) {
  const sec = Math.max(0, Math.round(ms / 1000));
  if (sec < 90) return `${sec} s ago`;
  if (sec < 5400) return `${Math.round(sec / 60)} min ago`;
  return `${(sec / 3600).toFixed(1)} h ago`;
}

// ---------------------------------------------------------------------------------------------
// State

const state = {
  info: null,
  names: [],            // class names, `classes` entries
  selected: [],         // selected class indices, in click order (the `classes` parameter)
  seq: 0,
  request: null,        // the latest /api/images request (in flight or finished)
  debounce: 0,
  autoZoom: 0,          // the zoom "auto" chose for the layout shown
  shown: null,          // what #images holds: {spec, rows, columns, count, cells, labels}
  detail: -1,           // index of the image in #detail, -1 when closed
  detailTicket: 0,      // ignores recipe answers of images no longer shown
  recipeMeta: null,     // {index, pairs}: what the recipe adds to #detail-meta
  tab: "explore",
  restoring: false,     // true while controls are set from the URL, so no request per control
};

// ---------------------------------------------------------------------------------------------
// Start

function boot() {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
}

async function start() {
  // A safety net: whatever escapes a handler lands in the status line, not only the console.
  window.addEventListener("unhandledrejection", (event) => showUnexpected(event.reason));
  window.addEventListener("error", (event) => showUnexpected(event.error || event.message));
  wireTabs();
  wireExplore();
  wireDetail();
  wireWatch();
  await loadInfo();
}

function showUnexpected(err) {
  setStatus("error", `unexpected: ${messageOf(err)}`);
}

/** /api/info, then the class list and the first request. */
async function loadInfo() {
  setStatus("running", "loading model info…");
  let info;
  try {
    info = normalizeInfo(await fetchJson(apiUrl("api/info")));
  } catch (err) {
    $("model-info").textContent = "no model";
    setStatus("error", `model info: ${messageOf(err)}`);
    return;
  }
  applyInfo(info);
  restoreFromHash();
  if (state.tab === "watch" && info.watch) showTab("watch");
  requestImages();
}

/** `raw` /api/info with defaults for what is missing; throws when it is unusable. */
function normalizeInfo(raw) {
  if (!raw || typeof raw !== "object") throw new Error("malformed /api/info answer");
  const classes = Number(raw.classes);
  if (!Number.isInteger(classes) || classes < 1) throw new Error("/api/info: no class count");
  const names = Array.from({ length: classes }, (_, k) => {
    const name = Array.isArray(raw.classNames) ? raw.classNames[k] : undefined;
    return typeof name === "string" && name ? name : String(k);
  });
  const positive = (v, fallback) => (Number.isInteger(v) && v > 0 ? v : fallback);
  return {
    ...raw,
    classes,
    classNames: names,
    resolution: positive(raw.resolution, 32),
    maxImages: positive(raw.maxImages, 256),
    maxCount: positive(raw.maxCount, 64),
    imported: raw.imported === true,
    watch: raw.watch === true,
  };
}

/** Shows what `info` says; keeps the selection when the class count is unchanged. */
function applyInfo(info) {
  const old = state.info;
  state.info = info;
  state.names = info.classNames;
  const where = info.source === "checkpoint" || !info.run
    ? `checkpoint ${String(info.checkpoint || "?").split("/").slice(-2).join("/")}`
    : `run ${info.run}`;
  const parts = [where, info.step != null ? `step ${info.step}` : null,
    `${info.resolution}×${info.resolution}`, `${info.classes} classes`, info.precision || null];
  $("model-info").textContent = parts.filter(Boolean).join(" · ");
  $("model-info").title = info.checkpoint ? String(info.checkpoint) : "";
  $("blend-field").hidden = !info.imported;
  $("count").max = String(info.maxCount);
  $("tab-watch").hidden = !info.watch;
  if (!info.watch && state.tab === "watch") showTab("explore");
  if (!old || old.classes !== info.classes || old.classNames.join("\n") !== info.classNames.join("\n")) {
    state.selected = state.selected.filter((k) => k < info.classes);
    if (state.selected.length === 0) state.selected = defaultSelection(info);
    buildClassList();
  }
  if (!old || old.resolution !== info.resolution) applyZoom();
}

/** Every class for small label sets; a few for ImageNet-sized ones (all would pass maxImages). */
function defaultSelection(info) {
  const count = Math.max(1, Number($("count").value) || 4);
  const all = Array.from({ length: info.classes }, (_, k) => k);
  return info.classes * count <= info.maxImages && info.classes <= 16 ? all : all.slice(0, Math.min(4, info.classes));
}

// ---------------------------------------------------------------------------------------------
// Tabs

function wireTabs() {
  $("tab-explore").addEventListener("click", () => showTab("explore"));
  $("tab-watch").addEventListener("click", () => showTab("watch"));
}

function showTab(tab) {
  state.tab = tab;
  for (const name of ["explore", "watch"]) {
    const active = name === tab;
    $(`tab-${name}`).classList.toggle("active", active);
    $(`tab-${name}`).setAttribute("aria-selected", String(active));
    $(name).hidden = !active;
  }
  writeHash();
  if (tab === "watch") startWatching(); else stopWatching();
}

// ---------------------------------------------------------------------------------------------
// Explore: controls

function wireExplore() {
  $("class-search").addEventListener("input", filterClasses);
  $("class-search").addEventListener("keydown", onSearchKey);
  $("class-list").addEventListener("click", onClassClick);
  $("class-all").addEventListener("click", () => {
    state.selected = Array.from({ length: state.names.length }, (_, k) => k);
    markSelection();
    scheduleRequest();
  });
  // The label follows the slider at once; the request waits for the slider to rest.
  $("truncation").addEventListener("input", () => { showTruncation(); scheduleRequest(); });
  $("truncation").addEventListener("change", () => { showTruncation(); scheduleRequest(); });
  $("view").addEventListener("change", () => { showViewFields(); scheduleRequest(); });
  for (const id of ["interp", "mode", "blend", "seed", "count", "latent"]) {
    $(id).addEventListener("change", scheduleRequest);
    if ($(id).tagName === "INPUT") $(id).addEventListener("input", scheduleRequest);
  }
  $("new-seed").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 31));
    requestImages();
  });
  $("zoom").addEventListener("change", () => {
    const shown = state.shown;
    applyZoom(shown ? { columns: shown.columns, labelChars: rowLabelChars({ spec: shown.spec }), gap: shown.spec.view === "interpolate" ? 1 : 4 } : undefined);
    writeHash();
  });
  $("stop").addEventListener("click", stopRequest);
  $("reload").addEventListener("click", reloadModel);
  $("images").addEventListener("click", (event) => {
    const img = event.target.closest("img.sample");
    if (img) openDetail(Number(img.dataset.index));
  });
  showViewFields();
  showTruncation();
}

function showTruncation() {
  $("truncation-value").textContent = $("truncation").value;
}

/** Shows the fields the chosen view uses. */
function showViewFields() {
  const view = $("view").value;
  $("interp-field").hidden = view !== "interpolate";
  $("count-field").hidden = view === "same-z";
  $("latent-field").hidden = view !== "same-z";
  $("count-label").textContent = view === "interpolate" ? "Rows" : "Per class";
}

function buildClassList() {
  const list = $("class-list");
  list.replaceChildren(...state.names.map((name, k) => h("li", {
    class: "class-item", "data-class": k, role: "option", title: `${name} (class ${k})`,
  }, h("span", { class: "name", text: name }), " ", h("span", { class: "index", text: `(${k})` }))));
  filterClasses();
  markSelection();
}

/** Hides the items the search does not match: a name substring or the exact index. */
function filterClasses() {
  const query = $("class-search").value.trim().toLowerCase();
  let shown = 0;
  for (const item of $("class-list").children) {
    const k = item.dataset.class;
    const match = !query || state.names[k].toLowerCase().includes(query) || k === query;
    item.hidden = !match;
    if (match) shown += 1;
  }
  $("class-list").classList.toggle("empty", shown === 0);
}

/** Enter picks the first visible class (Ctrl/⌘/Shift+Enter adds it). */
function onSearchKey(event) {
  if (event.key !== "Enter") return;
  const first = Array.from($("class-list").children).find((item) => !item.hidden);
  if (first) pickClass(Number(first.dataset.class), event.ctrlKey || event.metaKey || event.shiftKey);
}

function onClassClick(event) {
  const item = event.target.closest(".class-item");
  if (!item) return;
  if (event.shiftKey) window.getSelection()?.removeAllRanges();   // shift-click selects text otherwise
  pickClass(Number(item.dataset.class), event.ctrlKey || event.metaKey || event.shiftKey);
}

/** Selects class `k` alone, or adds/removes it (`toggle`); the last class cannot be removed. */
function pickClass(k, toggle) {
  if (!toggle) state.selected = [k];
  else if (!state.selected.includes(k)) state.selected = [...state.selected, k];
  else if (state.selected.length > 1) state.selected = state.selected.filter((c) => c !== k);
  markSelection();
  scheduleRequest();
}

function markSelection() {
  const order = new Map(state.selected.map((k, i) => [k, i + 1]));
  for (const item of $("class-list").children) {
    const position = order.get(Number(item.dataset.class));
    item.classList.toggle("selected", position !== undefined);
    item.setAttribute("aria-selected", String(position !== undefined));
    if (position !== undefined && state.selected.length > 1) item.dataset.order = position;
    else delete item.dataset.order;
  }
  const n = state.selected.length;
  $("class-count").textContent = `${n} of ${state.names.length}`;
}

/**
 * Cell size in CSS pixels: the resolution times a zoom, whole numbers for pixel-exact scaling.
 * "auto" takes the largest zoom (up to about 96 px a cell) at which the layout fits the width;
 * it is chosen when a new layout arrives only, so images never move while they stream in.
 */
function applyZoom(layout) {
  const resolution = state.info ? state.info.resolution : 32;
  let zoom = Number($("zoom").value);
  if (!zoom) {
    if (layout) state.autoZoom = fittingZoom(resolution, layout);
    zoom = state.autoZoom || 1;
  }
  const size = Math.max(8, Math.round(resolution * zoom));
  $("sheet-area").style.setProperty("--cell", `${size}px`);
  $("sheet-area").classList.toggle("smooth", zoom < 1);
}

/** The zoom for `layout` ({columns, labelChars, gap}) in the image area, as if #detail were closed. */
function fittingZoom(resolution, { columns, labelChars, gap = 4 }) {
  const area = $("sheet-area");
  const detail = $("detail");
  const width = area.clientWidth + (detail.hidden ? 0 : detail.offsetWidth) - 40;
  const labels = labelChars ? Math.min(180, 14 + labelChars * 7) : 0;
  const cell = (width - labels - (columns - 1) * gap) / columns;
  const best = resolution <= 40 ? 3 : resolution <= 80 ? 2 : 1;
  const fit = Math.floor(cell / resolution);
  if (fit >= 1) return Math.min(best, fit);
  return resolution >= 256 && cell >= resolution / 2 ? 0.5 : 1;
}

/**
 * The `<spec>` of the controls, or a string saying what is wrong with them. Seeds stay
 * strings: they are UInt64 on the server, beyond what a JavaScript number holds exactly.
 */
function currentSpec() {
  const info = state.info;
  const view = $("view").value;
  const seed = $("seed").value.trim();
  if (!/^\d+$/.test(seed) || BigInt(seed) >= 2n ** 64n) return "the seed must be a whole number ≥ 0";
  const spec = {
    view,
    classes: state.selected.length === info.classes && state.selected.every((k, i) => k === i)
      ? "all" : state.selected.join(","),
    truncation: $("truncation").value,
    mode: $("mode").value,
    seed,
  };
  if (info.imported) spec.blend = $("blend").value;
  let total = state.selected.length;
  if (view === "grid" || view === "interpolate") {
    const count = Number($("count").value);
    if (!Number.isInteger(count) || count < 1) return "the count must be a whole number ≥ 1";
    if (count > info.maxCount) return `the count must be at most ${info.maxCount}`;
    spec.count = count;
    total = view === "grid" ? count * state.selected.length : count * 10;
  }
  if (view === "interpolate") spec.interp = $("interp").value;
  if (view === "same-z") {
    const latent = Number($("latent").value);
    if (!Number.isInteger(latent) || latent < 0) return "the latent must be a whole number ≥ 0";
    spec.latent = latent;
  }
  if (total > info.maxImages) {
    return `${total} images asked for; the server makes at most ${info.maxImages} at once (fewer classes or a lower count)`;
  }
  return spec;
}

function specSummary(spec) {
  const parts = [`t ${spec.truncation} ${spec.mode}`, `seed ${spec.seed}`];
  if (spec.view === "interpolate") parts.unshift(`interpolate ${spec.interp}`);
  if (spec.view === "same-z") parts.push(`latent ${spec.latent}`);
  if (spec.blend) parts.push(`blend ${spec.blend}`);
  return parts.join(" · ");
}

// ---------------------------------------------------------------------------------------------
// Explore: the URL keeps the settings, so a reload or a shared link shows the same images

function writeHash() {
  if (state.restoring || !state.info) return;
  const p = new URLSearchParams();
  if (state.tab !== "explore") p.set("tab", state.tab);
  p.set("view", $("view").value);
  p.set("classes", state.selected.join(","));
  for (const id of ["truncation", "mode", "seed", "count", "interp", "latent", "zoom"]) p.set(id, $(id).value);
  if (state.info.imported) p.set("blend", $("blend").value);
  history.replaceState(null, "", `${location.pathname}${location.search}#${p}`);
}

function restoreFromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.restoring = true;
  try {
    const setIf = (id, ok) => {
      const value = p.get(id);
      if (value !== null && ok(value)) $(id).value = value;
    };
    const option = (id) => (value) => Array.from($(id).options).some((o) => o.value === value);
    const whole = (value) => /^\d+$/.test(value);
    setIf("view", option("view"));
    setIf("interp", option("interp"));
    setIf("mode", option("mode"));
    setIf("blend", option("blend"));
    setIf("zoom", option("zoom"));
    setIf("seed", whole);
    setIf("count", (v) => whole(v) && Number(v) >= 1);
    setIf("latent", whole);
    setIf("truncation", (v) => Number(v) > 0 && Number(v) <= 1);
    const classes = (p.get("classes") || "").split(",").filter(whole).map(Number)
      .filter((k, i, all) => k < state.names.length && all.indexOf(k) === i);
    if (classes.length) state.selected = classes;
    state.tab = p.get("tab") === "watch" ? "watch" : "explore";
  } finally {
    state.restoring = false;
  }
  markSelection();
  showViewFields();
  showTruncation();
  applyZoom();
}

// ---------------------------------------------------------------------------------------------
// Explore: streaming /api/images

/**
 * A request once the controls rest for DEBOUNCE_MS. The status turns "running" at once: the
 * images shown no longer match the controls, and whoever waits for "done" must not see the old one.
 */
function scheduleRequest() {
  clearTimeout(state.debounce);
  state.debounce = setTimeout(requestImages, DEBOUNCE_MS);
  if (state.info) setStatus("running", "updating…");
}

/** `#status` shows one of running | done | cancelled | error, with a short text. */
function setStatus(kind, text) {
  const status = $("status");
  status.dataset.state = kind;
  status.textContent = text;
  status.title = text;
  $("stop").hidden = kind !== "running" || !state.request || state.request.finished;
}

function stopRequest() {
  const req = state.request;
  if (!req || req.finished) return;
  req.finished = true;
  req.controller.abort();
  $("sheet-area").classList.add("halted");
  setStatus("cancelled", `stopped at ${req.placed} / ${req.header ? req.header.count : "?"} images`);
}

/**
 * Starts a request for the controls' spec, aborting the one in flight. The new `seq` also
 * tells the server (same `client`) to stop making images for the older request.
 */
async function requestImages() {
  clearTimeout(state.debounce);
  if (!state.info) return;
  const spec = currentSpec();
  writeHash();
  if (typeof spec === "string") {
    if (state.request && !state.request.finished) { state.request.finished = true; state.request.controller.abort(); }
    setStatus("error", spec);
    return;
  }
  if (state.request && !state.request.finished) state.request.controller.abort();
  $("sheet-area").classList.remove("halted");
  const req = {
    seq: ++state.seq, spec, controller: new AbortController(), header: null,
    placed: 0, received: 0, pending: new Set(), finished: false, ending: false, started: performance.now(),
  };
  state.request = req;
  setStatus("running", "waiting for the first image…");
  $("spec-summary").textContent = specSummary(spec);
  // The images shown stay, dimmed, until their replacements arrive.
  if (state.shown) for (const cell of state.shown.cells) cell.classList.add("stale");
  const url = apiUrl("api/images", { ...spec, client: CLIENT_ID, seq: req.seq });
  try {
    const response = await fetch(url, { signal: req.controller.signal, cache: "no-store" });
    if (!response.ok) throw new Error(await errorOf(response));
    if (response.body && response.body.getReader) {
      await readLines(response.body.getReader(), (line, last) => onImageLine(req, line, last));
    } else {
      // No streaming body (old browser): the same lines, all at once.
      for (const line of (await response.text()).split("\n")) onImageLine(req, line);
    }
    if (!req.finished && !req.ending) finish(req, "error", `the stream ended early, after ${plural(req.received, "image")}`);
  } catch (err) {
    // An abort comes from a newer request or from Stop; they have set the status already.
    if (req.controller.signal.aborted) return;
    const text = err instanceof TypeError ? `cannot reach the server (${messageOf(err)})` : messageOf(err);
    if (!req.finished && !req.ending) finish(req, "error", text);
  }
}

/** Feeds each complete line of the stream to `onLine`, as soon as its newline arrives. */
async function readLines(reader, onLine) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    // Only the new chunk can hold a newline: search from where the old buffer ended.
    let from = buffer.length;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n", from)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      from = 0;
      if (onLine(line) === false) { reader.cancel().catch(() => {}); return; }
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) onLine(buffer, true);
}

/** One NDJSON line of `req` (`last`: the unterminated end of the stream); false stops the stream. */
function onImageLine(req, line, last = false) {
  if (req !== state.request || req.finished) return false;
  if (!line.trim()) return true;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (_) {
    finish(req, "error", last
      ? `the stream broke off after ${plural(req.received, "image")}`
      : `malformed line in the image stream: ${line.slice(0, 60)}`);
    req.controller.abort();
    return false;
  }
  if (!msg || typeof msg !== "object") return true;
  if (typeof msg.error === "string") { finish(req, "error", msg.error); return false; }
  if (msg.cancelled) { finish(req, "cancelled", "cancelled by a newer request"); return false; }
  if (msg.done) { req.ending = true; onDone(req, msg); return false; }
  if (typeof msg.png === "string") { placeImage(req, msg); return true; }
  if (msg.count !== undefined && !req.header) { onHeader(req, msg); return true; }
  return true;   // an unknown kind of line: newer servers may add some
}

function onHeader(req, msg) {
  const count = Number(msg.count), rows = Number(msg.rows), columns = Number(msg.columns);
  if (![count, rows, columns].every((n) => Number.isInteger(n) && n >= 0) || columns < 1 || count > rows * columns) {
    finish(req, "error", "malformed header line in the image stream");
    req.controller.abort();
    return;
  }
  req.header = { count, rows, columns, step: msg.step };
  prepareGrid(req);
  setStatus("running", `0 / ${count} images`);
}

/**
 * Makes #images ready for `req`. When the layout is the one shown, the old images stay
 * (dimmed) and each is swapped for its new one as it arrives: no layout jump while a slider
 * moves. Otherwise cells start as placeholders of the image size.
 */
function prepareGrid(req) {
  const { rows, columns, count } = req.header;
  const old = state.shown;
  const same = old && old.rows === rows && old.columns === columns && old.count === count && old.spec.view === req.spec.view;
  const images = $("images");
  if (!same) {
    applyZoom({ columns, labelChars: rowLabelChars(req), gap: req.spec.view === "interpolate" ? 1 : 4 });
    const cells = Array.from({ length: count }, (_, i) => h("div", { class: "placeholder", "data-index": i }));
    images.replaceChildren(...cells);
    images.style.gridTemplateColumns = `repeat(${columns}, var(--cell))`;
    state.shown = { rows, columns, count, spec: req.spec, cells, labels: new Array(count).fill(null) };
    closeDetail();
  } else {
    state.shown = { ...old, spec: req.spec, labels: new Array(count).fill(null) };
  }
  // Interpolation strips read as one film, so their cells nearly touch.
  $("sheet-area").classList.toggle("strip", req.spec.view === "interpolate");
  buildAxisLabels(req);
}

/** About how many characters the row labels of `req` take (interpolations: two names). */
function rowLabelChars(req) {
  const names = state.selected.map((k) => (state.names[k] || "").length);
  const longest = Math.max(0, ...names);
  if (req.spec.view === "grid") return longest;
  if (req.spec.view === "interpolate") return req.spec.interp === "z" ? longest : 2 * longest + 3;
  return 4 + String(req.spec.latent).length;
}

/** Row labels (class names beside grid rows) and, for same-z, class names over the columns. */
function buildAxisLabels(req) {
  const { rows, columns } = req.header;
  const view = req.spec.view;
  const rowText = (r) => {
    if (view === "grid") return state.names[state.selected[r]] ?? "";
    if (view === "same-z") return `z ${req.spec.latent}`;
    return "";   // interpolation rows: named from their images' labels as they arrive
  };
  const rowLabels = Array.from({ length: rows }, (_, r) => h("div", { class: "row-label", text: rowText(r) }));
  $("row-labels").replaceChildren(...rowLabels);
  const cols = view === "same-z"
    ? Array.from({ length: columns }, (_, c) => h("div", { class: "col-label", text: state.names[state.selected[c]] ?? "", title: state.names[state.selected[c]] }))
    : [];
  $("col-labels").replaceChildren(...cols);
  $("col-labels").style.gridTemplateColumns = `repeat(${columns}, var(--cell))`;
}

/** Puts one streamed image in its cell, once decoded (so a swapped image never blinks). */
function placeImage(req, msg) {
  const shown = state.shown;
  const index = Number(msg.index);
  if (!req.header || !Number.isInteger(index) || index < 0 || index >= shown.count) return;
  req.received += 1;
  const label = Number.isInteger(msg.label) ? msg.label : null;
  const columns = req.header.columns;
  const row = Number.isInteger(msg.row) ? msg.row : Math.floor(index / columns);
  const column = Number.isInteger(msg.column) ? msg.column : index % columns;
  const name = label !== null ? (state.names[label] ?? String(label)) : "";
  const img = h("img", {
    class: "sample", "data-index": index, "data-row": row, "data-column": column,
    "data-label": label ?? "", alt: name, title: `${name}${label !== null ? ` (${label})` : ""} · row ${row}, column ${column}`,
    draggable: "false",
  });
  img.src = `data:image/png;base64,${msg.png}`;
  const put = () => {
    req.pending.delete(ready);
    if (req !== state.request || state.shown !== shown) return;
    shown.cells[index].replaceWith(img);
    shown.cells[index] = img;
    shown.labels[index] = label;
    req.placed += 1;
    nameRow(req, row);
    if (index === state.detail) openDetail(index);   // new spec: new links and recipe too
    if (!req.finished && !req.ending) setStatus("running", `${req.placed} / ${req.header.count} images`);
  };
  // A PNG that does not decode still goes in (broken), rather than stalling the count.
  const ready = img.decode().then(put, put);
  req.pending.add(ready);
}

/** Names an interpolation row by the classes of its ends ("disc → ring"). */
function nameRow(req, row) {
  if (req.spec.view !== "interpolate") return;
  const { columns } = req.header;
  const first = state.shown.labels[row * columns];
  const last = state.shown.labels[Math.min(state.shown.count - 1, row * columns + columns - 1)];
  const name = (k) => (k === null || k === undefined ? "…" : state.names[k] ?? String(k));
  const label = $("row-labels").children[row];
  if (label) label.textContent = first === last ? name(first) : `${name(first)} → ${name(last)}`;
}

async function onDone(req, msg) {
  // "done" once every image is in the page: tests (and people) read #images right after.
  await Promise.allSettled(Array.from(req.pending));
  if (req !== state.request || req.finished) return;
  const ms = isFiniteNumber(msg.ms) ? msg.ms : performance.now() - req.started;
  const count = req.header ? req.header.count : req.placed;
  const missing = count > req.placed ? ` (${count - req.placed} missing)` : "";
  finish(req, "done", `${plural(req.placed, "image")} in ${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s${missing}`);
}

function finish(req, kind, text) {
  if (req.finished || req !== state.request) return;
  req.finished = true;
  // Placeholders that will not be filled stop shimmering.
  $("sheet-area").classList.toggle("halted", kind !== "done");
  setStatus(kind, text);
}

async function reloadModel() {
  const button = $("reload");
  button.disabled = true;
  setStatus("running", "loading the newest checkpoint…");
  try {
    applyInfo(normalizeInfo(await fetchJson(apiUrl("api/reload"), { method: "POST" })));
    requestImages();
  } catch (err) {
    setStatus("error", `reload: ${messageOf(err)}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Explore: the detail panel of one image

function wireDetail() {
  $("detail-close").addEventListener("click", closeDetail);
  $("copy-command").addEventListener("click", copyCommand);
  document.addEventListener("keydown", (event) => {
    if (state.detail < 0 || (event.target instanceof Element && event.target.closest("input, select, textarea"))) return;
    if (event.key === "Escape") closeDetail();
    else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      const next = state.detail + (event.key === "ArrowRight" ? 1 : -1);
      if (state.shown && next >= 0 && next < state.shown.count && state.shown.cells[next].tagName === "IMG") {
        openDetail(next);
        event.preventDefault();
      }
    }
  });
}

function closeDetail() {
  state.detail = -1;
  $("detail").hidden = true;
  for (const img of $("images").querySelectorAll("img.active")) img.classList.remove("active");
}

/** Opens #detail on image `index` of #images, with the links of the spec that made it. */
function openDetail(index) {
  const shown = state.shown;
  if (!shown || !(index >= 0 && index < shown.count)) return;
  state.detail = index;
  $("detail").hidden = false;
  for (const img of $("images").querySelectorAll("img.active")) img.classList.remove("active");
  shown.cells[index].classList.add("active");
  const params = { ...shown.spec, image: index };
  $("download-png").href = apiUrl("api/image.png", params);
  $("download-z").href = apiUrl("api/z.npy", params);
  $("download-y").href = apiUrl("api/y.npy", params);
  showDetailImage(index);
  loadRecipe(shown.spec, index);
}

function showDetailImage(index) {
  const cell = state.shown.cells[index];
  const label = state.shown.labels[index];
  if (cell.tagName === "IMG") $("detail-image").src = cell.src;
  else $("detail-image").removeAttribute("src");
  $("detail-title").textContent = label !== null ? `${state.names[label] ?? label} (${label})` : `image ${index}`;
  const spec = state.shown.spec;
  const row = Math.floor(index / state.shown.columns), column = index % state.shown.columns;
  const pairs = [
    ["image", `${index} · row ${row}, column ${column}`],
    ["truncation", `${spec.truncation} (${spec.mode})`],
    ["seed", spec.seed],
  ];
  if (state.recipeMeta && state.recipeMeta.index === index) pairs.push(...state.recipeMeta.pairs);
  setMeta(pairs);
}

function setMeta(pairs) {
  $("detail-meta").replaceChildren(...pairs.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]));
}

/** Fetches /api/recipe for the z summary, the class vector and the command. */
async function loadRecipe(spec, index) {
  const ticket = ++state.detailTicket;
  state.recipeMeta = null;
  $("command").textContent = "…";
  $("z-stats").textContent = "";
  $("z-strip").replaceChildren();
  let recipe;
  try {
    recipe = await fetchJson(apiUrl("api/recipe", { ...spec, image: index }));
    if (!recipe || typeof recipe !== "object") throw new Error("malformed recipe");
  } catch (err) {
    if (ticket === state.detailTicket) $("command").textContent = `recipe unavailable: ${messageOf(err)}`;
    return;
  }
  if (ticket !== state.detailTicket) return;
  $("command").textContent = typeof recipe.command === "string" ? recipe.command : "";
  const z = Array.isArray(recipe.z) ? recipe.z.filter(isFiniteNumber) : [];
  showZ(z);
  const pairs = [["class", describeY(recipe.y, recipe)]];
  if (recipe.step != null) pairs.push(["step", recipe.step]);
  state.recipeMeta = { index, pairs };
  showDetailImage(index);
}

/** `y` as words: "ring (3)" or "0.67 disc + 0.33 ring" for a blended class vector. */
function describeY(y, recipe) {
  if (Number.isInteger(y)) return `${state.names[y] ?? y} (${y})`;
  if (Array.isArray(y)) {
    const parts = y.map((w, k) => [w, k]).filter(([w]) => isFiniteNumber(w) && w > 1e-4).sort((a, b) => b[0] - a[0]);
    return parts.slice(0, 3).map(([w, k]) => `${w.toFixed(2)} ${state.names[k] ?? k}`).join(" + ") || "–";
  }
  return typeof recipe.className === "string" ? recipe.className : "–";
}

/** The z statistics and a strip of its entries (blue negative, red positive). */
function showZ(z) {
  if (!z.length) { $("z-stats").textContent = "not available"; return; }
  const mean = z.reduce((a, b) => a + b, 0) / z.length;
  const std = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / z.length);
  const norm = Math.sqrt(z.reduce((a, b) => a + b * b, 0));
  const maxAbs = z.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  $("z-stats").textContent = `${z.length} dims · ‖z‖ ${norm.toFixed(2)} · mean ${mean.toFixed(2)} · sd ${std.toFixed(2)} · |max| ${maxAbs.toFixed(2)}`;
  const strip = $("z-strip");
  const width = 288, height = 18, cell = width / z.length;
  strip.setAttribute("viewBox", `0 0 ${width} ${height}`);
  strip.setAttribute("preserveAspectRatio", "none");
  const scale = Math.max(2.5, maxAbs);
  strip.replaceChildren(...z.map((v, i) => {
    const t = Math.min(1, Math.abs(v) / scale);
    const color = v >= 0 ? `rgba(200,40,40,${t.toFixed(3)})` : `rgba(30,90,200,${t.toFixed(3)})`;
    return s("rect", { x: (i * cell).toFixed(2), y: 0, width: (cell + 0.05).toFixed(2), height, fill: color });
  }));
}

/** Copies the command; where the clipboard API is missing (plain http off localhost), selects it. */
async function copyCommand() {
  const code = $("command");
  const button = $("copy-command");
  try {
    if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error("no clipboard");
    await navigator.clipboard.writeText(code.textContent);
    button.textContent = "Copied";
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Press Ctrl+C";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1600);
}

// ---------------------------------------------------------------------------------------------
// Watch: data

const TRAIN_KEYS = ["loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake", "d_train_mean",
  "d_heldout_mean", "d_train_accuracy", "d_heldout_accuracy", "images_per_s", "time"];

function emptyMetrics() {
  return {
    offset: 0,
    lines: 0,
    generation: 0,                    // bumped by a reset (a new run in the same folder)
    versions: { train: 0, sv: 0, evals: 0 },   // bumped when that part changed: only its charts redraw
    train: { step: [], ...Object.fromEntries(TRAIN_KEYS.map((k) => [k, []])) },
    sv: new Map(),                    // layer -> {x: [], y: []}
    evals: new Map(),                 // metric -> {x: [], y: []}
    warnings: [],
    updatedAt: 0,
    error: null,
    malformed: 0,                     // lines skipped because they were not JSON objects
  };
}

const watch = {
  metrics: emptyMetrics(),
  run: null,
  sheets: [],
  timers: [],
  metricsBusy: false,
  runBusy: false,
  runError: null,
  drawn: new Map(),                   // chart id -> key of what it shows
  resizeTimer: 0,
  smoothTimer: 0,
};

/** Adds the lines of one /api/metrics answer; a line may be an object or its JSON text. */
function ingest(lines) {
  const m = watch.metrics;
  let bad = 0;
  for (let line of lines) {
    if (typeof line === "string") {
      try { line = JSON.parse(line); } catch (_) { bad += 1; continue; }
    }
    if (!line || typeof line !== "object") { bad += 1; continue; }
    m.lines += 1;
    const step = Number(line.step);
    // A warning without a step is still worth reading; anything else needs its step.
    if (typeof line.warning === "string") m.warnings.push({ step: Number.isFinite(step) ? step : "?", text: line.warning });
    if (!Number.isFinite(step)) continue;
    if (line.singular_values && typeof line.singular_values === "object") {
      m.versions.sv += 1;
      for (const [layer, values] of Object.entries(line.singular_values)) {
        const top = Array.isArray(values) ? values[0] : values;
        if (isFiniteNumber(top)) pushPoint(m.sv, layer, step, top);
      }
    }
    if (line.eval && typeof line.eval === "object") {
      m.versions.evals += 1;
      for (const [name, value] of Object.entries(line.eval)) {
        if (isFiniteNumber(value)) pushPoint(m.evals, name, step, value);
      }
    }
    if (TRAIN_KEYS.some((k) => isFiniteNumber(line[k]) && k !== "time")) {
      m.versions.train += 1;
      m.train.step.push(step);
      for (const k of TRAIN_KEYS) m.train[k].push(isFiniteNumber(line[k]) ? line[k] : NaN);
    }
  }
  return bad;
}

function pushPoint(map, name, x, y) {
  let series = map.get(name);
  if (!series) map.set(name, (series = { x: [], y: [] }));
  series.x.push(x);
  series.y.push(y);
}

// ---------------------------------------------------------------------------------------------
// Watch: polling

function wireWatch() {
  $("sheet-step").addEventListener("input", showSheet);
  $("show-real").addEventListener("change", showSheet);
  // The value follows the slider at once; the (costly, on long runs) redraw waits for it to rest.
  $("smoothing").addEventListener("input", () => {
    $("smoothing-value").textContent = $("smoothing").value;
    clearTimeout(watch.smoothTimer);
    watch.smoothTimer = setTimeout(drawCharts, 120);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.tab === "watch") { pollMetrics(); pollRun(); }
  });
  // Charts are drawn at their pixel width, so a resize redraws them (once it settles).
  const observer = new ResizeObserver(() => {
    clearTimeout(watch.resizeTimer);
    watch.resizeTimer = setTimeout(drawCharts, 120);
  });
  for (const id of ["chart-loss", "chart-d", "chart-gap", "chart-sv", "chart-eval"]) observer.observe($(id));
  showWarnings();
}

/** Polls while the Watch tab is shown (and the browser tab visible); nothing else needs it. */
function startWatching() {
  if (!state.info || !state.info.watch || watch.timers.length) { drawCharts(); return; }
  watch.timers.push(setInterval(() => { if (!document.hidden) pollMetrics(); }, METRICS_EVERY_MS));
  watch.timers.push(setInterval(() => { if (!document.hidden) pollRun(); }, RUN_EVERY_MS));
  watch.timers.push(setInterval(showWatchStatus, 1000));
  pollMetrics();
  pollRun();
  requestAnimationFrame(drawCharts);
}

function stopWatching() {
  for (const timer of watch.timers) clearInterval(timer);
  watch.timers = [];
}

async function pollMetrics() {
  if (watch.metricsBusy) return;
  watch.metricsBusy = true;
  let more = false;
  try {
    const m = watch.metrics;
    const body = await fetchJson(apiUrl("api/metrics", { offset: m.offset }));
    if (!body || typeof body !== "object" || !Array.isArray(body.lines)) throw new Error("malformed /api/metrics answer");
    if (body.reset === true) {
      // The file got shorter: a new run. These lines were read from byte 0.
      watch.metrics = emptyMetrics();
      watch.metrics.generation = m.generation + 1;
    }
    const target = watch.metrics;
    const bad = ingest(body.lines);
    const offset = Number(body.offset);
    if (Number.isFinite(offset) && offset >= 0) target.offset = offset;
    target.updatedAt = Date.now();
    target.malformed += bad;
    target.error = null;
    if (body.lines.length || body.reset === true) {
      drawCharts();
      showWarnings();
      showRunSummary();
    }
    more = body.lines.length >= CATCH_UP_LINES;
  } catch (err) {
    watch.metrics.error = `metrics: ${messageOf(err)}`;
  } finally {
    watch.metricsBusy = false;
  }
  showWatchStatus();
  // A long answer may be one page of a long file: ask again at once instead of in 2 s.
  if (more && watch.timers.length) setTimeout(pollMetrics, 0);
}

async function pollRun() {
  if (watch.runBusy) return;
  watch.runBusy = true;
  try {
    const run = await fetchJson(apiUrl("api/run"));
    if (!run || typeof run !== "object") throw new Error("malformed /api/run answer");
    watch.run = run;
    const sheets = (Array.isArray(run.sheets) ? run.sheets : [])
      .filter((e) => e && typeof e.file === "string" && isFiniteNumber(Number(e.step)))
      .map((e) => ({ step: Number(e.step), file: e.file }))
      .sort((a, b) => a.step - b.step);
    updateSheets(sheets);
    showRunSummary();
    watch.runError = null;
  } catch (err) {
    watch.runError = `run: ${messageOf(err)}`;
  } finally {
    watch.runBusy = false;
  }
  showWatchStatus();
}

function showWatchStatus() {
  const m = watch.metrics;
  const el = $("watch-status");
  const error = m.error || watch.runError;
  let base = m.updatedAt ? `updated ${ago(Date.now() - m.updatedAt)}, ${m.lines} lines` : "waiting for metrics…";
  if (m.malformed) base += ` (${m.malformed} malformed skipped)`;
  el.textContent = error ? `${base} · ${error}` : base;
  el.dataset.state = error ? "error" : m.updatedAt ? "done" : "running";
}

/** One line about the run: name, size, progress, speed, checkpoints. */
function showRunSummary() {
  const run = watch.run || {};
  const config = run.config && typeof run.config === "object" ? run.config : {};
  const model = config.model || {};
  const recipe = config.recipe || {};
  const train = watch.metrics.train;
  const n = train.step.length;
  const lastStep = n ? train.step[n - 1] : null;
  const speed = n ? recentMean(train.images_per_s, 20) : NaN;
  const checkpoints = Array.isArray(run.checkpoints) ? run.checkpoints : [];
  const parts = [
    run.name ? `run ${run.name}` : null,
    model.resolution ? `${model.resolution} px` : null,
    recipe.batch ? `batch ${recipe.batch}` : null,
    lastStep !== null ? `step ${lastStep}${recipe.steps ? ` of ${recipe.steps}` : ""}` : null,
    Number.isFinite(speed) ? `${speed.toFixed(speed < 10 ? 1 : 0)} img/s` : null,
    checkpoints.length ? `${checkpoints.length} checkpoints, newest ${checkpoints[checkpoints.length - 1]}` : null,
  ];
  $("run-summary").textContent = parts.filter(Boolean).join(" · ");
}

function recentMean(values, count) {
  let sum = 0, n = 0;
  for (let i = values.length - 1; i >= 0 && n < count; i--) if (Number.isFinite(values[i])) { sum += values[i]; n += 1; }
  return n ? sum / n : NaN;
}

function showWarnings() {
  const warnings = watch.metrics.warnings;
  const list = $("warnings");
  // In file order, like a log; it stays scrolled to the newest unless the reader scrolled up.
  // A runaway run could log thousands: the newest 500 are enough to read.
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 8;
  if (!warnings.length) list.replaceChildren(h("li", { class: "muted", text: "no warnings" }));
  else list.replaceChildren(...warnings.slice(-500).map((w) => h("li", {},
    h("span", { class: "warning-step", text: `step ${w.step}` }), " ", h("span", { text: w.text }))));
  if (atBottom) list.scrollTop = list.scrollHeight;
  $("warning-count").textContent = warnings.length ? String(warnings.length) : "";
}

// ---------------------------------------------------------------------------------------------
// Watch: sample sheets

/** New sheet list; the slider keeps its sheet, or follows the newest while it is at the end. */
function updateSheets(sheets) {
  const slider = $("sheet-step");
  const atEnd = watch.sheets.length === 0 || Number(slider.value) >= watch.sheets.length - 1;
  const current = watch.sheets[Number(slider.value)];
  watch.sheets = sheets;
  slider.max = String(Math.max(0, sheets.length - 1));
  slider.disabled = sheets.length < 2;
  let index = sheets.length - 1;
  if (!atEnd && current) {
    const same = sheets.findIndex((e) => e.file === current.file);
    if (same >= 0) index = same;
  }
  slider.value = String(Math.max(0, index));
  const real = watch.run && typeof watch.run.real === "string" ? watch.run.real : null;
  $("show-real").disabled = !real;
  if (!real) $("show-real").checked = false;
  showSheet();
}

function showSheet() {
  const sheet = watch.sheets[Number($("sheet-step").value)];
  const img = $("sheet");
  $("sheet-empty").hidden = Boolean(sheet);
  img.hidden = !sheet;
  if (sheet) {
    const src = apiUrl(`api/sheet/${encodeURIComponent(sheet.file)}`);
    if (img.getAttribute("src") !== src) img.src = src;
    $("sheet-label").textContent = `step ${sheet.step}`;
    $("sheet-step").setAttribute("aria-valuetext", `step ${sheet.step}`);
  } else {
    $("sheet-label").textContent = "";
  }
  const real = watch.run && typeof watch.run.real === "string" ? watch.run.real : null;
  const showReal = Boolean(real && $("show-real").checked);
  $("real-figure").hidden = !showReal;
  if (showReal) {
    const src = apiUrl(`api/sheet/${encodeURIComponent(real)}`);
    if ($("sheet-real").getAttribute("src") !== src) $("sheet-real").src = src;
  }
}

// ---------------------------------------------------------------------------------------------
// Watch: the five charts

const COLORS = { blue: "#1f5fbf", red: "#c8372d", green: "#2a8a3e", orange: "#d9791a", purple: "#7b4bb3", teal: "#1b8a8a", gray: "#6b7280" };
const PALETTE = [COLORS.blue, COLORS.red, COLORS.green, COLORS.orange, COLORS.purple, COLORS.teal, "#a0522d", "#c2185b"];

/** Redraws the charts whose data, width or smoothing changed (only while Watch is shown). */
function drawCharts() {
  if (state.tab !== "watch" || $("watch").hidden) return;
  const m = watch.metrics;
  const smoothing = Number($("smoothing").value) || 0;
  const train = `${m.versions.train}|${smoothing}`;
  const charts = {
    "chart-loss": [train, () => lossChart(m, smoothing)],
    "chart-d": [train, () => dChart(m, smoothing)],
    "chart-gap": [train, () => gapChart(m, smoothing)],
    "chart-sv": [m.versions.sv, () => svChart(m)],
    "chart-eval": [m.versions.evals, () => evalChart(m)],
  };
  for (const [id, [data, make]] of Object.entries(charts)) {
    const container = $(id);
    const width = container.clientWidth;
    // The run's version too: after a reset the part counters start again from 0.
    const key = `${m.generation}|${data}|${width}`;
    if (watch.drawn.get(id) === key || width === 0) continue;
    watch.drawn.set(id, key);
    try {
      renderChart(container, make());
    } catch (err) {
      // A chart that cannot draw says so in place; the others still draw.
      container.replaceChildren(h("p", { class: "chart-empty", text: `cannot draw: ${messageOf(err)}` }));
    }
  }
}

/** A training series: the EMA of column `key` when smoothing, the raw values faint behind it. */
function trainSeries(m, key, label, color, options = {}) {
  const ys = m.train[key];
  const smoothing = options.smoothing || 0;
  return {
    name: label, color, xs: m.train.step, raw: ys,
    ys: smoothing > 0 ? ema(ys, smoothing) : ys,
    dashed: options.dashed, axis: options.axis,
  };
}

/** Debiased exponential moving average (TensorBoard's); NaN entries stay NaN and are skipped. */
function ema(values, weight) {
  const out = new Float64Array(values.length);
  let last = 0, power = 1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) { out[i] = NaN; continue; }
    last = last * weight + (1 - weight) * v;
    power *= weight;
    out[i] = last / (1 - power);
  }
  return out;
}

function lossChart(m, smoothing) {
  return {
    series: [
      trainSeries(m, "loss_d_real", "loss_d_real", COLORS.blue, { smoothing }),
      trainSeries(m, "loss_d_fake", "loss_d_fake", COLORS.red, { smoothing }),
      trainSeries(m, "loss_g", "loss_g", COLORS.green, { smoothing }),
    ],
    empty: "no training lines yet",
  };
}

function dChart(m, smoothing) {
  return {
    series: [
      trainSeries(m, "d_real", "D(real)", COLORS.blue, { smoothing }),
      trainSeries(m, "d_fake", "D(fake)", COLORS.red, { smoothing }),
    ],
    empty: "no training lines yet",
    zeroLine: true,
  };
}

function gapChart(m, smoothing) {
  const has = (k) => m.train[k].some(Number.isFinite);
  if (!has("d_train_accuracy") && !has("d_heldout_accuracy") && !has("d_train_mean") && !has("d_heldout_mean")) {
    return { series: [], empty: "no held-out data" };
  }
  return {
    series: [
      trainSeries(m, "d_train_accuracy", "train accuracy", COLORS.blue, { smoothing }),
      trainSeries(m, "d_heldout_accuracy", "held-out accuracy", COLORS.orange, { smoothing }),
      trainSeries(m, "d_train_mean", "train mean D (right)", COLORS.blue, { smoothing, dashed: true, axis: "right" }),
      trainSeries(m, "d_heldout_mean", "held-out mean D (right)", COLORS.orange, { smoothing, dashed: true, axis: "right" }),
    ],
    empty: "no held-out data",
  };
}

function svChart(m) {
  // G solid, D dashed; within each network a hue per layer, in the order the layers sort.
  const layers = Array.from(m.sv.keys()).sort();
  const g = layers.filter((name) => !name.startsWith("D"));
  const d = layers.filter((name) => name.startsWith("D"));
  const hue = (i, n) => `hsl(${Math.round((i * 360) / Math.max(1, n)) % 360} 62% 42%)`;
  const series = [
    ...g.map((name, i) => ({ name, color: hue(i, g.length), xs: m.sv.get(name).x, ys: m.sv.get(name).y })),
    ...d.map((name, i) => ({ name, color: hue(i, d.length), xs: m.sv.get(name).x, ys: m.sv.get(name).y, dashed: true })),
  ];
  return {
    series,
    empty: "no singular values logged (train --sv-every N)",
    legendTitle: `${series.length} layers · G solid, D dashed`,
    collapsibleLegend: true,
    nearestOnly: true,
  };
}

function evalChart(m) {
  // Distances (FID, KID, ...) and scores live on different scales: scores get the right axis.
  const names = Array.from(m.evals.keys());
  const isDistance = (name) => /distance|fid|fcd|kid/i.test(name);
  const anyDistance = names.some(isDistance), anyOther = names.some((n) => !isDistance(n));
  return {
    series: names.map((name, i) => ({
      name: anyDistance && anyOther && !isDistance(name) ? `${name} (right)` : name,
      color: PALETTE[i % PALETTE.length],
      xs: m.evals.get(name).x, ys: m.evals.get(name).y,
      axis: anyDistance && anyOther && !isDistance(name) ? "right" : "left",
      dashed: /_std$/.test(name),
    })),
    empty: "no evaluations",
  };
}

// ---------------------------------------------------------------------------------------------
// The chart function: SVG line chart with nice ticks, legend, a right axis, hover readout

let chartIds = 0;

/** Round tick spacing near span / target: 1, 2 or 5 times a power of ten. */
function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const f = raw / magnitude;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

function niceTicks(lo, hi, target) {
  const step = niceStep(hi - lo, target);
  const ticks = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    ticks.push(Number((k * step).toPrecision(12)));
  }
  return { ticks, step };
}

/**
 * A tick label with as many decimals as the tick spacing needs. An axis reaching 10 000 writes
 * all its ticks in k (or M), so "5k, 10k, 15k" rather than "5000, 10k, 15k".
 */
function formatTick(v, step, top = Math.abs(v)) {
  if (v === 0) return "0";
  if (top >= 1e6 && step >= 1e5) return `${Number((v / 1e6).toPrecision(6))}M`;
  if (top >= 1e4 && step >= 1e3) return `${Number((v / 1e3).toPrecision(6))}k`;
  if (top < 1e-3) return v.toExponential(Math.max(0, Math.min(3, Math.round(Math.log10(top / step)))));
  const decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/**
 * The y range of finite values: all of them for short series, else the 0.5–99.5 % quantiles
 * (sampled), so one early spike of a GAN loss does not flatten the rest of the curve.
 */
function valueRange(arrays) {
  let n = 0;
  for (const a of arrays) n += a.length;
  if (n === 0) return null;
  const stride = Math.max(1, Math.floor(n / 20000));
  const sample = [];
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i += 1) {
      const v = a[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (i % stride === 0) sample.push(v);
    }
  }
  if (lo === Infinity) return null;
  if (sample.length >= 400) {
    sample.sort((a, b) => a - b);
    const qlo = sample[Math.floor(sample.length * 0.005)], qhi = sample[Math.ceil(sample.length * 0.995) - 1];
    // Clip only when the tails are far out; a curve that just trends stays whole.
    const span = qhi - qlo;
    if (lo < qlo - span * 0.5) lo = qlo - span * 0.1;
    if (hi > qhi + span * 0.5) hi = qhi + span * 0.1;
  }
  if (lo === hi) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/**
 * One polyline path of `xs`, `ys` decimated to the pixel grid: per pixel column its first,
 * lowest, highest and last point, so a million points draw as about 4 per column and every
 * spike stays visible. NaN values are skipped (the line joins across them).
 */
function decimatedPath(xs, ys, sx, sy) {
  const parts = [];
  let column = null, first = -1, min = -1, max = -1, last = -1;
  const emit = (i) => parts.push(`${sx(xs[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`);
  const flush = () => {
    if (first < 0) return;
    const inside = [min, max].sort((a, b) => a - b).filter((i) => i !== first && i !== last);
    emit(first);
    for (const i of new Set(inside)) emit(i);
    if (last !== first) emit(last);
  };
  const n = Math.min(xs.length, ys.length);
  for (let i = 0; i < n; i++) {
    const y = ys[i];
    if (!Number.isFinite(y) || !Number.isFinite(xs[i])) continue;
    const c = Math.floor(sx(xs[i]));
    if (c !== column) {
      flush();
      column = c; first = min = max = last = i;
    } else {
      if (y < ys[min]) min = i;
      if (y > ys[max]) max = i;
      last = i;
    }
  }
  flush();
  return parts.length ? `M${parts.join("L")}` : "";
}

/** Index of the entry of sorted `xs` nearest to `x` whose `ys` value is finite, or -1. */
function nearestIndex(xs, ys, x) {
  let lo = 0, hi = xs.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1; else hi = mid;
  }
  // lo is the first entry >= x; look both ways for the nearest finite value.
  let best = -1;
  for (let i = lo; i >= 0 && i >= lo - 64; i--) if (Number.isFinite(ys[i])) { best = i; break; }
  for (let i = lo; i < xs.length && i <= lo + 64; i++) {
    if (Number.isFinite(ys[i])) {
      if (best < 0 || Math.abs(xs[i] - x) < Math.abs(xs[best] - x)) best = i;
      break;
    }
  }
  return best;
}

/** The persistent parts of a chart container: legend, svg, tooltip and hidden series. */
function chartParts(container) {
  if (container.chart) return container.chart;
  const legend = h("div", { class: "legend" });
  const svg = s("svg", { class: "chart-svg", role: "img" });
  const tip = h("div", { class: "chart-tip", hidden: true });
  container.replaceChildren(legend, svg, tip);
  const chart = { container, legend, svg, tip, hidden: new Set(), legendKey: "", model: null, id: ++chartIds, lastPointer: null };
  svg.addEventListener("pointermove", (event) => hover(chart, event));
  svg.addEventListener("pointerleave", () => unhover(chart));
  container.chart = chart;
  return chart;
}

/**
 * Draws `config` into `container`: {series: [{name, color, xs, ys, raw?, dashed?, axis?}],
 * empty: text when no series has a point, legendTitle?, collapsibleLegend?, nearestOnly?, zeroLine?}.
 * The SVG is as wide as the container (in CSS pixels), so decimation matches the screen.
 */
function renderChart(container, config) {
  if (!container.chart || !container.contains(container.chart.svg)) container.chart = null;
  const chart = chartParts(container);
  const width = Math.max(200, container.clientWidth), height = 230;
  const all = config.series.filter((se) => se.ys && se.ys.length && Array.prototype.some.call(se.ys, Number.isFinite));
  buildLegend(chart, container, config, all);
  const svg = chart.svg;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const visible = all.filter((se) => !chart.hidden.has(se.name));
  const right = visible.some((se) => se.axis === "right") && visible.some((se) => se.axis !== "right");
  const nodes = [];
  if (!visible.length) {
    chart.model = null;
    const text = all.length ? "all series hidden" : config.empty;
    svg.replaceChildren(s("text", { x: width / 2, y: height / 2, class: "empty", "text-anchor": "middle" }, text));
    svg.setAttribute("aria-label", text);
    return;
  }

  // Domains: x over every visible series; y per axis, over raw values when drawn faint too.
  let x0 = Infinity, x1 = -Infinity;
  for (const se of visible) {
    for (let i = 0; i < se.xs.length; i++) {
      if (!Number.isFinite(se.ys[i])) continue;
      if (se.xs[i] < x0) x0 = se.xs[i];
      if (se.xs[i] > x1) x1 = se.xs[i];
    }
  }
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  // y ticks first: the margins are as wide as their labels (about 6.6 px a character at 11 px).
  const margin = { left: 0, right: 14, top: 10, bottom: 24 };
  const plotH = height - margin.top - margin.bottom;
  const axes = {};
  for (const side of right ? ["left", "right"] : ["left"]) {
    const members = visible.filter((se) => (right ? (se.axis === "right") === (side === "right") : true));
    const range = valueRange(members.flatMap((se) => (se.raw && se.raw !== se.ys ? [se.raw, se.ys] : [se.ys])));
    const [lo, hi] = range || [0, 1];
    const ticks = niceTicks(lo, hi, Math.max(2, Math.floor(plotH / 40)));
    const top = Math.max(...ticks.ticks.map(Math.abs));
    const labels = ticks.ticks.map((v) => formatTick(v, ticks.step, top));
    const room = 12 + 6.6 * Math.max(1, ...labels.map((l) => l.length));
    if (side === "left") margin.left = Math.max(34, room); else margin.right = Math.max(30, room);
    axes[side] = { lo, hi, ticks: ticks.ticks, labels, sy: (v) => margin.top + plotH - ((v - lo) / (hi - lo)) * plotH };
  }
  const plotW = width - margin.left - margin.right;
  const sx = (v) => margin.left + ((v - x0) / (x1 - x0)) * plotW;

  // Grid and ticks.
  const xt = niceTicks(x0, x1, Math.max(2, Math.floor(plotW / 90)));
  const xTop = Math.max(...xt.ticks.map(Math.abs));
  for (const t of xt.ticks) {
    const x = sx(t).toFixed(1);
    nodes.push(s("line", { x1: x, x2: x, y1: margin.top, y2: margin.top + plotH, class: "grid" }));
    nodes.push(s("text", { x, y: height - 6, class: "tick", "text-anchor": "middle" }, formatTick(t, xt.step, xTop)));
  }
  for (const [side, axis] of Object.entries(axes)) {
    axis.ticks.forEach((t, k) => {
      const y = axis.sy(t).toFixed(1);
      if (side === "left") nodes.push(s("line", { x1: margin.left, x2: margin.left + plotW, y1: y, y2: y, class: t === 0 && config.zeroLine ? "grid zero" : "grid" }));
      nodes.push(s("text", {
        x: side === "left" ? margin.left - 6 : margin.left + plotW + 6, y, dy: "0.32em", class: "tick",
        "text-anchor": side === "left" ? "end" : "start",
      }, axis.labels[k]));
    });
  }
  nodes.push(s("rect", { x: margin.left, y: margin.top, width: plotW, height: plotH, class: "frame" }));
  // The x axis is named in the corner under the y labels, unless a tick label sits there.
  if (!xt.ticks.length || sx(xt.ticks[0]) > margin.left + 24) {
    nodes.push(s("text", { x: margin.left - 6, y: height - 6, class: "axis-name", "text-anchor": "end" }, "step"));
  }

  // Series, clipped to the plot: raw faint first, then the lines, then markers of short series.
  const clip = `clip-${chart.id}`;
  nodes.push(s("clipPath", { id: clip }));
  nodes[nodes.length - 1].append(s("rect", { x: margin.left, y: margin.top, width: plotW, height: plotH }));
  const lines = s("g", { "clip-path": `url(#${clip})` });
  for (const se of visible) {
    const sy = axes[right && se.axis === "right" ? "right" : "left"].sy;
    if (se.raw && se.raw !== se.ys) {
      lines.append(s("path", { d: decimatedPath(se.xs, se.raw, sx, sy), class: "series-raw", stroke: se.color }));
    }
  }
  for (const se of visible) {
    const sy = axes[right && se.axis === "right" ? "right" : "left"].sy;
    lines.append(s("path", {
      d: decimatedPath(se.xs, se.ys, sx, sy), class: "series", stroke: se.color,
      "stroke-dasharray": se.dashed ? "5 3" : null, "data-series": se.name,
    }));
    // Markers show where the few points of a short series are (evaluations), not on crowded charts.
    let finite = 0;
    for (let i = 0; i < se.ys.length && finite <= 40; i++) if (Number.isFinite(se.ys[i])) finite += 1;
    if (finite <= 40 && visible.length <= 8) {
      for (let i = 0; i < se.ys.length; i++) {
        if (Number.isFinite(se.ys[i])) lines.append(s("circle", { cx: sx(se.xs[i]).toFixed(1), cy: sy(se.ys[i]).toFixed(1), r: 2.5, fill: se.color, class: "marker" }));
      }
    }
  }
  nodes.push(lines);
  const hoverLayer = s("g", { class: "hover" });
  nodes.push(hoverLayer);
  svg.replaceChildren(...nodes);
  svg.setAttribute("aria-label", `${visible.map((se) => se.name).join(", ")} over step`);
  chart.model = { visible, axes, right, sx, x0, x1, margin, plotW, plotH, width, hoverLayer, nearestOnly: config.nearestOnly };
  if (chart.lastPointer) hover(chart, chart.lastPointer);
}

/** The legend: one toggle button per series (hidden ones struck through); rebuilt on new names. */
function buildLegend(chart, container, config, series) {
  const key = series.map((se) => `${se.name}|${se.color}|${se.dashed ? 1 : 0}`).join(";");
  if (key === chart.legendKey) {
    for (const button of chart.legend.querySelectorAll(".legend-item")) button.classList.toggle("off", chart.hidden.has(button.dataset.series));
    return;
  }
  chart.legendKey = key;
  const items = series.map((se) => {
    const swatch = s("svg", { width: 22, height: 10, "aria-hidden": "true" });
    swatch.append(s("line", { x1: 1, x2: 21, y1: 5, y2: 5, stroke: se.color, "stroke-width": 2.2, "stroke-dasharray": se.dashed ? "4 2.5" : null }));
    const button = h("button", { type: "button", class: "legend-item", "data-series": se.name, title: `${se.name}: click to hide or show` }, swatch, h("span", { text: se.name }));
    button.classList.toggle("off", chart.hidden.has(se.name));
    button.addEventListener("click", () => {
      if (chart.hidden.has(se.name)) chart.hidden.delete(se.name); else chart.hidden.add(se.name);
      watch.drawn.delete(container.id);
      drawCharts();
    });
    return button;
  });
  if (config.collapsibleLegend && series.length) {
    const wasOpen = chart.legend.querySelector("details")?.open === true;
    const details = h("details", { class: "legend-details", open: wasOpen },
      h("summary", { text: config.legendTitle || `${series.length} series` }), h("div", { class: "legend-items" }, ...items));
    chart.legend.replaceChildren(details);
  } else {
    chart.legend.replaceChildren(...items);
  }
}

/** The readout at the pointer: every series at the nearest step, or only the nearest point. */
function hover(chart, event) {
  chart.lastPointer = { clientX: event.clientX, clientY: event.clientY };
  const model = chart.model;
  if (!model) return;
  const box = chart.svg.getBoundingClientRect();
  if (!box.width) return;
  const px = ((event.clientX - box.left) / box.width) * model.width;
  const py = ((event.clientY - box.top) / box.height) * Number(chart.svg.getAttribute("height"));
  const { margin, plotW, plotH } = model;
  if (px < margin.left - 4 || px > margin.left + plotW + 4 || py < margin.top - 4 || py > margin.top + plotH + 4) {
    unhover(chart);
    return;
  }
  const x = model.x0 + ((px - margin.left) / plotW) * (model.x1 - model.x0);
  const found = [];
  for (const se of model.visible) {
    const i = nearestIndex(se.xs, se.ys, x);
    if (i < 0) continue;
    const sy = model.axes[model.right && se.axis === "right" ? "right" : "left"].sy;
    found.push({ se, i, px: model.sx(se.xs[i]), py: sy(se.ys[i]) });
  }
  if (!found.length) { unhover(chart); return; }
  // The step whose point is nearest the pointer horizontally anchors the readout.
  let anchor = found.reduce((a, b) => (Math.abs(b.px - px) < Math.abs(a.px - px) ? b : a));
  let shown = found;
  if (model.nearestOnly || found.length > 8) {
    anchor = found.reduce((a, b) => (Math.hypot(b.px - px, b.py - py) < Math.hypot(a.px - px, a.py - py) ? b : a));
    shown = [anchor];
  }
  const step = anchor.se.xs[anchor.i];
  const layer = model.hoverLayer;
  layer.replaceChildren(s("line", { x1: anchor.px, x2: anchor.px, y1: margin.top, y2: margin.top + plotH, class: "crosshair" }));
  for (const f of shown) layer.append(s("circle", { cx: f.px, cy: f.py, r: 3.5, fill: f.se.color, class: "hover-dot" }));
  for (const path of chart.svg.querySelectorAll("path.series")) {
    path.classList.toggle("dim", shown.length === 1 && model.visible.length > 1 && path.dataset.series !== anchor.se.name);
  }
  const rows = shown.map((f) => {
    const raw = f.se.raw && f.se.raw !== f.se.ys ? f.se.raw[f.i] : undefined;
    const at = f.se.xs[f.i] !== step ? ` @${f.se.xs[f.i]}` : "";
    return h("div", { class: "tip-row" },
      h("span", { class: "tip-swatch", style: `background:${f.se.color}` }),
      h("span", { class: "tip-name", text: f.se.name }),
      h("span", { class: "tip-value", text: `${formatValue(f.se.ys[f.i])}${raw !== undefined && Number.isFinite(raw) ? ` (raw ${formatValue(raw)})` : ""}${at}` }));
  });
  const tip = chart.tip;
  tip.replaceChildren(h("div", { class: "tip-step", text: `step ${step}` }), ...rows);
  tip.hidden = false;
  // Beside the pointer, on whichever side has room.
  const scale = box.width / model.width;
  const outer = chart.container.getBoundingClientRect();
  const svgLeft = box.left - outer.left, svgTop = box.top - outer.top;
  const left = svgLeft + anchor.px * scale;
  const tipWidth = tip.offsetWidth;
  tip.style.left = `${left + 14 + tipWidth > svgLeft + box.width ? Math.max(0, left - 14 - tipWidth) : left + 14}px`;
  tip.style.top = `${svgTop + margin.top * scale + 4}px`;
}

function unhover(chart) {
  chart.lastPointer = null;
  chart.tip.hidden = true;
  if (chart.model) chart.model.hoverLayer.replaceChildren();
  for (const path of chart.svg.querySelectorAll("path.series.dim")) path.classList.remove("dim");
}

boot();
