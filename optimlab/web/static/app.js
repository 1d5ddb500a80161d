// The playground page: holds the scene, keeps the URL in sync, asks the API, draws and animates.
// document.body.dataset.state tells tests (and styles) where a run is: idle, running, animating, done, error.

import { PALETTE, formatSpec, hashToScene, parseSpec, sceneToHash } from "./scene.js";
import { PRESETS, presetById } from "./presets.js";
import { element, hyperparameterFields, optimizerCard } from "./controls.js";
import { addTrajectories, animate, clickToData, drawLandscape, drawLossAxes, formatNumber, moveStart } from "./plots.js";

const MAX_OPTIMIZERS = 8;
const $ = (id) => document.getElementById(id);
const app = { landscapes: [], optimizers: [], schedules: [], surface: null, scene: null, runId: 0, completed: 0, result: null };
// Animation length in ms; a test (or a curious user) may set window.optimlabAnimationMs before load.
app.animationMs = Number.isFinite(window.optimlabAnimationMs) ? window.optimlabAnimationMs : 2500;
window.optimlab = app; // for the browser tests and curious users

function setState(state, message = "") {
  document.body.dataset.state = state;
  $("status").textContent = message;
  $("status").className = `status ${state}`;
  $("run").disabled = state === "running";
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ message: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.message || `${response.status} ${response.statusText}`);
  return body;
}

// ---- the scene <-> the controls ---------------------------------------------------------------

function landscapeInfo(spec) {
  return app.landscapes.find((entry) => entry.name === parseSpec(spec).name) || null;
}

function sceneOptimizers() {
  return app.scene.optimizers;
}

function editedOptimizers() {
  return sceneOptimizers().map((opt) => ({ ...opt, spec: formatSpec(opt.name, opt.hyperparameters) }));
}

function syncURL() {
  const { name, hyperparameters } = app.scene.scheduleParts;
  const scene = { ...app.scene, schedule: formatSpec(name, hyperparameters), optimizers: editedOptimizers() };
  const hash = sceneToHash(scene);
  if (location.hash.slice(1) !== hash) history.replaceState(null, "", `#${hash}`);
  app.lastHash = hash;
}

function edited() {
  app.scene.preset = null;
  $("preset").value = "";
  showCaption();
  syncURL();
  scheduleLive();
}

// ---- live mode: every edit recomputes (debounced; one request in flight, the latest edit wins) ----

const LIVE_DEBOUNCE_MS = 60;

function liveOn() {
  return $("live").checked;
}

function scheduleLive() {
  if (!liveOn() || !app.surface) return;
  clearTimeout(app.liveTimer);
  app.liveTimer = setTimeout(() => {
    if (app.liveInFlight) { app.livePending = true; return; }
    runLive();
  }, LIVE_DEBOUNCE_MS);
}

async function runLive() {
  app.liveInFlight = true;
  app.livePending = false;
  try {
    await run({ animated: false });
  } finally {
    app.liveInFlight = false;
    if (app.livePending) runLive();
  }
}

function showCaption() {
  const preset = app.scene.preset ? presetById(app.scene.preset) : null;
  const info = landscapeInfo(app.scene.landscape);
  $("caption-title").textContent = preset ? preset.title : (info ? `${app.scene.landscape}: f = ${info.formula}` : app.scene.landscape);
  $("caption-text").textContent = preset ? preset.caption : (info ? info.description : "");
}

function renderOptimizers() {
  const list = $("optimizers");
  list.replaceChildren();
  sceneOptimizers().forEach((opt, index) => {
    list.append(optimizerCard(opt, app.optimizers, {
      removable: sceneOptimizers().length > 1,
      onChange: edited,
      onRemove: () => { sceneOptimizers().splice(index, 1); renderOptimizers(); edited(); },
      onRename: (name) => { opt.name = name; opt.hyperparameters = {}; renderOptimizers(); edited(); },
    }));
  });
  $("add-optimizer").disabled = sceneOptimizers().length >= MAX_OPTIMIZERS;
}

function renderSchedule() {
  const { name, hyperparameters } = app.scene.scheduleParts;
  $("schedule").value = name;
  const info = app.schedules.find((entry) => entry.name === name);
  $("schedule-fields").replaceChildren(info ? hyperparameterFields(info, hyperparameters, edited) : "");
  $("schedule-description").textContent = info ? info.description : "";
}

function renderStart() {
  const start = currentStart();
  const oneD = landscapeInfo(app.scene.landscape)?.dim === 1;
  $("start-x").value = formatNumber(start[0], 4);
  $("start-y").value = oneD ? "" : formatNumber(start[1], 4);
  $("start-y").disabled = oneD;
  $("start-y-label").classList.toggle("muted", oneD);
}

function currentStart() {
  return app.scene.start || landscapeInfo(app.scene.landscape)?.start || [0, 0];
}

/** Put a whole scene (from a preset or a link) into the controls and redraw the landscape. */
async function applyScene(scene) {
  const optimizers = scene.optimizers.map((opt, index) => {
    const { name, hyperparameters } = parseSpec(opt.spec);
    return { name, hyperparameters, color: opt.color || PALETTE[index % PALETTE.length] };
  });
  app.scene = { ...scene, optimizers, scheduleParts: parseSpec(scene.schedule || "constant") };
  $("preset").value = scene.preset || "";
  $("landscape").value = parseSpec(scene.landscape).name;
  $("landscape-options").value = scene.landscape.includes(":") ? scene.landscape.split(":").slice(1).join(":") : "";
  $("steps").value = scene.steps;
  $("noise").value = scene.noise;
  $("seed").value = scene.seed;
  renderOptimizers();
  renderSchedule();
  showCaption();
  syncURL();
  await loadSurface();
}

async function loadSurface({ live = false } = {}) {
  const spec = app.scene.landscape;
  try {
    const surface = await getJSON(`/api/surface?landscape=${encodeURIComponent(spec)}`);
    if (spec !== app.scene.landscape) return;
    app.surface = surface;
    if (app.scene.start && app.scene.start.length !== surface.dim) app.scene.start = null;
    renderStart();
    drawLandscape($("contour"), surface, currentStart());
    clearResults();
    if (live) scheduleLive();
  } catch (error) {
    setState("error", error.message);
  }
}

function clearResults() {
  app.result = null;
  $("outcomes").replaceChildren();
  $("results-summary").textContent = liveOn() ? "Computing…" : "Press Run to compute the trajectories.";
  drawLossAxes($("loss"), app.surface, { traces: [], colors: [], steps: app.scene.steps });
}

// ---- running --------------------------------------------------------------------------------

function buildRequest() {
  const { name, hyperparameters } = app.scene.scheduleParts;
  return {
    landscape: app.scene.landscape,
    start: app.scene.start,
    steps: app.scene.steps,
    noise: app.scene.noise,
    seed: app.scene.seed,
    schedule: name === "constant" ? null : { name, hyperparameters },
    optimizers: editedOptimizers().map((opt) => ({ name: opt.name, hyperparameters: opt.hyperparameters, label: opt.spec })),
  };
}

async function run({ animated = true } = {}) {
  const runId = ++app.runId;
  const colors = sceneOptimizers().map((opt) => opt.color);
  if (animated) setState("running", "Computing…");
  const sent = performance.now();
  let result;
  try {
    result = await getJSON("/api/trace", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(buildRequest()) });
  } catch (error) {
    if (runId === app.runId) {
      app.completed += 1;
      setState("error", error.message);
    }
    return;
  }
  if (runId !== app.runId || !app.surface) return;
  const roundTrip = performance.now() - sent;
  result.colors = colors;
  app.result = result;
  addTrajectories($("contour"), app.surface, result);
  drawLossAxes($("loss"), app.surface, result);
  if (animated) {
    $("outcomes").replaceChildren();
    setState("animating", "Animating…");
  }
  const finished = await animate($("contour"), $("loss"), app.surface, result,
    { duration: animated ? app.animationMs : 0, shouldStop: () => runId !== app.runId });
  if (!finished || runId !== app.runId) return;
  renderOutcomes(result);
  app.completed += 1;
  app.lastRoundTripMs = roundTrip;
  const note = result.truncated ? ` — the time budget of ${result.limits.max_seconds} s cut some runs short` : "";
  const how = animated ? "Computed" : "Live: computed";
  setState("done", `${how} ${result.traces.length} trajectories in ${formatNumber(result.elapsed_seconds * 1000, 3)} ms ` +
    `(round trip ${formatNumber(roundTrip, 3)} ms)${note}.`);
  $("status").classList.toggle("warn", result.truncated);
}

function lastStepLength(trace) {
  const n = trace.x.length;
  if (n < 2) return null;
  const [a, b] = [trace.x[n - 2], trace.x[n - 1]];
  if (a.some((v) => v === null) || b.some((v) => v === null)) return null;
  return Math.hypot(...a.map((v, i) => b[i] - v));
}

function renderOutcomes(result) {
  const rows = result.traces.map((trace, index) => {
    const last = trace.x.length - 1;
    const outcomeClass = trace.outcome.split(" ")[0];
    return element("tr", { "data-outcome": trace.outcome }, [
      element("td", {}, [element("span", { class: "swatch", style: `background:${result.colors[index]}` })]),
      element("td", { class: "mono", text: trace.label }),
      element("td", {}, [element("span", { class: `badge ${outcomeClass}`, text: trace.outcome_text })]),
      element("td", { class: "num", text: String(trace.steps_run) }),
      element("td", { class: "num", text: formatNumber(trace.f[last], 4) }),
      element("td", { class: "num", text: `(${trace.x[last].map((v) => formatNumber(v, 4)).join(", ")})` }),
      element("td", { class: "num", text: formatNumber(trace.grad_norm[last], 3) }),
      element("td", { class: "num", text: formatNumber(lastStepLength(trace), 3) }),
      element("td", { class: "num", text: formatNumber(trace.seconds * 1000, 3) }),
    ]);
  });
  $("outcomes").replaceChildren(...rows);
  const schedule = result.schedule ? `, schedule ${result.schedule}` : "";
  const noise = result.noise ? `, gradient noise σ = ${result.noise}` : "";
  $("results-summary").textContent = `${result.landscape} from (${result.start.map((v) => formatNumber(v, 4)).join(", ")}), ` +
    `${result.steps} steps${schedule}${noise}.`;
}

// ---- wiring ---------------------------------------------------------------------------------

function readNumber(id, { integer = false, min = -Infinity, max = Infinity } = {}) {
  const input = $(id);
  const value = Number(input.value);
  const ok = input.value.trim() !== "" && Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value));
  input.classList.toggle("invalid", !ok);
  return ok ? value : input.value; // an invalid value goes to the server as typed and comes back as a 422
}

function wire() {
  $("preset").addEventListener("change", async () => {
    const preset = presetById($("preset").value);
    if (!preset) return;
    await applyScene({ ...preset.scene, preset: preset.id });
    run();
  });
  const landscapeChanged = () => {
    const options = $("landscape-options").value.trim();
    app.scene.landscape = options ? `${$("landscape").value}:${options}` : $("landscape").value;
    app.scene.start = null;
    app.surface = null; // no live run on the old landscape's plot; the new surface starts one
    edited();
    loadSurface({ live: true });
  };
  $("landscape").addEventListener("change", () => { $("landscape-options").value = ""; landscapeChanged(); });
  $("landscape-options").addEventListener("change", landscapeChanged);
  for (const id of ["start-x", "start-y"]) {
    $(id).addEventListener("change", () => {
      const start = [...currentStart()];
      start[id === "start-x" ? 0 : 1] = readNumber(id);
      if (start.every(Number.isFinite)) { app.scene.start = start; moveStart($("contour"), app.surface, start); }
      edited();
    });
  }
  $("reset-start").addEventListener("click", () => { app.scene.start = null; renderStart(); moveStart($("contour"), app.surface, currentStart()); edited(); });
  $("steps").addEventListener("change", () => { app.scene.steps = readNumber("steps", { integer: true, min: 1 }); edited(); });
  $("noise").addEventListener("change", () => { app.scene.noise = readNumber("noise", { min: 0 }); edited(); });
  $("seed").addEventListener("change", () => { app.scene.seed = readNumber("seed", { integer: true, min: 0 }); edited(); });
  $("schedule").addEventListener("change", () => { app.scene.scheduleParts = { name: $("schedule").value, hyperparameters: {} }; renderSchedule(); edited(); });
  $("add-optimizer").addEventListener("click", () => {
    const used = new Set(sceneOptimizers().map((opt) => opt.color));
    const color = PALETTE.find((c) => !used.has(c)) || PALETTE[sceneOptimizers().length % PALETTE.length];
    sceneOptimizers().push({ name: "adam", hyperparameters: { lr: 0.1 }, color });
    renderOptimizers();
    edited();
  });
  $("run").addEventListener("click", () => run());
  $("copy-link").addEventListener("click", async () => {
    syncURL();
    try { await navigator.clipboard.writeText(location.href); $("copy-link").textContent = "Link copied"; }
    catch { $("copy-link").textContent = "Link is in the address bar"; }
    setTimeout(() => { $("copy-link").textContent = "Copy link"; }, 1800);
  });
  const placeStart = (mouseEvent) => {
    const [x, y] = clickToData($("contour"), mouseEvent);
    app.scene.start = app.surface.dim === 1 ? [Number(x.toPrecision(4))] : [Number(x.toPrecision(4)), Number(y.toPrecision(4))];
    renderStart();
    moveStart($("contour"), app.surface, app.scene.start);
    edited();
  };
  $("contour").on("plotly_click", (event) => {
    if (!app.surface || !event.event) return;
    placeStart(event.event);
  });
  // Drag the start point: with live mode on, the trajectories follow the pointer.
  const insidePlot = (mouseEvent) => {
    const layout = $("contour")._fullLayout;
    const rect = $("contour").getBoundingClientRect();
    const px = mouseEvent.clientX - rect.left - layout.xaxis._offset;
    const py = mouseEvent.clientY - rect.top - layout.yaxis._offset;
    return px >= 0 && py >= 0 && px <= layout.xaxis._length && py <= layout.yaxis._length;
  };
  // Capture phase, and moves on the window: plotly's drag layer stops the events' propagation and
  // covers the page while a button is down.
  $("contour").addEventListener("pointerdown", (event) => {
    if (event.button === 0 && app.surface && insidePlot(event)) app.dragging = true;
  }, true);
  window.addEventListener("pointermove", (event) => {
    if (app.dragging && app.surface && insidePlot(event)) placeStart(event);
  }, true);
  window.addEventListener("pointerup", () => { app.dragging = false; }, true);
  $("live").addEventListener("change", () => { if (liveOn()) scheduleLive(); });
  window.addEventListener("hashchange", async () => {
    if (location.hash.slice(1) === app.lastHash) return;
    await loadFromHash();
  });
}

async function loadFromHash() {
  let scene = null;
  try { scene = hashToScene(location.hash); } catch (error) { setState("error", error.message); }
  const preset = presetById(new URLSearchParams(location.hash.slice(1)).get("preset"));
  if (!scene) scene = { ...(preset || PRESETS[0]).scene, preset: (preset || PRESETS[0]).id };
  await applyScene(scene);
  await run();
}

async function main() {
  setState("running", "Loading…");
  [app.landscapes, app.optimizers, app.schedules] = await Promise.all(
    ["/api/landscapes", "/api/optimizers", "/api/schedules"].map((url) => getJSON(url)));
  $("landscape").replaceChildren(...app.landscapes.map((entry) =>
    element("option", { value: entry.name, text: `${entry.name} (${entry.dim}-D)` })));
  $("schedule").replaceChildren(...app.schedules.map((entry) => element("option", { value: entry.name, text: entry.name })));
  $("preset").replaceChildren(element("option", { value: "", text: "Custom scene" }),
    ...PRESETS.map((preset) => element("option", { value: preset.id, text: preset.title })));
  // The plot element must exist as a plotly graph before its click handler can be attached.
  Plotly.newPlot($("contour"), [], {}, { displaylogo: false });
  wire();
  await loadFromHash();
}

main().catch((error) => setState("error", error.message));
