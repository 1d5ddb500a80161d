// Drawing with plotly (served by the app from the installed plotly package): the landscape as a
// contour (2-D) or a curve (1-D) with its critical points, the trajectories over it, and f per step.
/* global Plotly */

const FONT = { family: "Inter, 'Segoe UI', system-ui, -apple-system, sans-serif", size: 13, color: "#1f2933" };
// Low values dark, high values light: the minima sit in the dark pools, trajectories stay readable.
const COLORSCALE = [[0, "#16324f"], [0.2, "#2f5d7c"], [0.45, "#6f9fb8"], [0.7, "#b9d3df"], [1, "#f4f6f1"]];
const POINT_STYLE = {
  "global minimum": { symbol: "star", color: "#ffd166", size: 17, name: "global minimum" },
  minimum: { symbol: "star-diamond", color: "#ff9f1c", size: 13, name: "local minimum" },
  degenerate: { symbol: "diamond-open", color: "#ffffff", size: 11, name: "degenerate critical point" },
  maximum: { symbol: "triangle-up", color: "#ffffff", size: 12, name: "maximum" },
  saddle: { symbol: "x", color: "#ff4d6d", size: 13, name: "saddle" },
};
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

function styleOf(kind) {
  return POINT_STYLE[kind] || { symbol: "circle-open", color: "#ffffff", size: 10, name: kind };
}

export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) return value.toExponential(digits - 1).replace("e+", "e");
  return String(Number(value.toPrecision(digits)));
}

/** Powers of ten from 10^a to 10^b, thinned to at most `most` of them. */
function decades(a, b, most = 7) {
  const ks = [];
  for (let k = Math.ceil(a); k <= Math.floor(b); k += 1) ks.push(k);
  const stride = Math.max(1, Math.ceil(ks.length / most));
  return ks.filter((_, i) => i % stride === 0);
}

/**
 * Contour levels evenly spaced on a log scale; a monotone map of f, so every contour is still a
 * level set of f. Bounded below: z = log10(f − base + δ) (base = f* or the grid's minimum).
 * Taking both signs with no known minimum (a saddle): z = sign(f)·log10(1 + |f|/δ).
 * Colour-bar ticks are labelled with f itself at round values.
 */
function logLevels(z, fStar) {
  const flat = z.flat().filter((v) => v !== null && Number.isFinite(v));
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const delta = Math.max((hi - lo) * 1e-4, 1e-12);
  let transform;
  let ticks;
  if (fStar === null && lo < 0 && hi > 0) {
    transform = (v) => Math.sign(v) * Math.log10(1 + Math.abs(v) / delta);
    const top = Math.log10(Math.max(-lo, hi));
    const mags = decades(Math.log10(delta) + 1, top, 3).map((k) => 10 ** k);
    ticks = [...mags.filter((m) => m <= -lo).map((m) => -m).reverse(), 0, ...mags.filter((m) => m <= hi)];
  } else {
    const base = fStar === null ? lo : Math.min(fStar, lo);
    transform = (v) => Math.log10(v - base + delta);
    ticks = decades(Math.log10(delta), Math.log10(hi - base)).map((k) => base + 10 ** k);
  }
  const map = (v) => (v === null ? null : transform(v));
  return { z: z.map((row) => row.map(map)), tickvals: ticks.map(transform), ticktext: ticks.map((t) => formatNumber(t, 2)) };
}

function criticalPointTraces(surface, oneD) {
  const groups = new Map();
  for (const point of surface.critical_points) {
    const style = styleOf(point.kind);
    if (!groups.has(style.name)) groups.set(style.name, { style, xs: [], ys: [], text: [] });
    const group = groups.get(style.name);
    group.xs.push(point.x[0]);
    group.ys.push(oneD ? point.f : point.x[1]);
    group.text.push(`${point.kind} at (${point.x.map((v) => formatNumber(v)).join(", ")}), f = ${formatNumber(point.f)}`);
  }
  return [...groups.values()].map(({ style, xs, ys, text }) => ({
    type: "scatter", mode: "markers", x: xs, y: ys, text, hoverinfo: "text", name: style.name,
    legendgroup: "critical", meta: "critical",
    marker: { symbol: style.symbol, color: style.color, size: style.size, line: { color: "#1f2933", width: 1.2 } },
  }));
}

function startTrace(start, oneD, surface) {
  const y = oneD ? valueOn1D(surface, start[0]) : start[1];
  return {
    type: "scatter", mode: "markers", x: [start[0]], y: [y], name: "start", meta: "start", hoverinfo: "name",
    marker: { symbol: "circle", size: 11, color: "#ffffff", line: { color: "#1f2933", width: 2 } },
  };
}

/** f at x on a 1-D landscape, by linear interpolation of the sampled curve (for the start marker). */
export function valueOn1D(surface, x) {
  const xs = surface.x;
  const i = Math.max(0, Math.min(xs.length - 2, Math.floor(((x - xs[0]) / (xs[xs.length - 1] - xs[0])) * (xs.length - 1))));
  const t = (x - xs[i]) / (xs[i + 1] - xs[i]);
  return surface.z[i] + t * (surface.z[i + 1] - surface.z[i]);
}

function paddedRange(values) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  const [lo, hi] = [Math.min(...finite), Math.max(...finite)];
  const pad = 0.08 * (hi - lo || 1);
  return [lo - pad, hi + pad];
}

/** Draw the landscape (no trajectories yet). Returns the number of background traces. */
export function drawLandscape(element, surface, start) {
  const oneD = surface.dim === 1;
  const traces = [];
  if (oneD) {
    traces.push({ type: "scatter", mode: "lines", x: surface.x, y: surface.z, name: "f(x)", meta: "surface",
      line: { color: "#52606d", width: 2.5 }, hovertemplate: "x = %{x:.3f}<br>f = %{y:.4g}<extra></extra>" });
  } else {
    const levels = logLevels(surface.z, surface.f_star);
    traces.push({
      type: "contour", x: surface.x, y: surface.y, z: levels.z, meta: "surface", name: "f", showlegend: false,
      colorscale: COLORSCALE, ncontours: 28, hoverinfo: "skip",
      contours: { coloring: "heatmap", showlines: true },
      line: { color: "rgba(255,255,255,0.35)", width: 0.8, smoothing: 1 },
      colorbar: { title: { text: "f (log levels)", side: "right" }, tickvals: levels.tickvals, ticktext: levels.ticktext,
        thickness: 12, len: 0.9, outlinewidth: 0, tickfont: { size: 11 } },
    });
  }
  traces.push(...criticalPointTraces(surface, oneD));
  traces.push(startTrace(start, oneD, surface));
  const [xRange, yRange] = [surface.domain[0], oneD ? null : surface.domain[1]];
  const layout = {
    font: FONT, margin: { l: 56, r: 12, t: 36, b: 80 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: oneD ? "#fbfbf8" : "#16324f",
    title: { text: `${surface.spec}:  f = ${surface.formula}`, font: { size: 14 }, x: 0.02, xanchor: "left" },
    xaxis: { title: { text: oneD ? "x" : "x₁" }, range: xRange, zeroline: false, gridcolor: "#e4e7eb" },
    yaxis: oneD ? { title: { text: "f(x)" }, zeroline: false, gridcolor: "#e4e7eb", range: paddedRange(surface.z) }
      : { title: { text: "x₂" }, range: yRange, zeroline: false, scaleanchor: undefined },
    legend: { orientation: "h", x: 0, y: -0.17, yanchor: "top", font: { size: 12 } },
    // dragmode false: a drag on the plot moves the start point (app.js), it does not zoom.
    hovermode: "closest", dragmode: false, uirevision: surface.spec, showlegend: true,
  };
  Plotly.react(element, traces, layout, CONFIG);
  return traces.length;
}

/** Move the start marker without redrawing the landscape. */
export function moveStart(element, surface, start) {
  const index = element.data.findIndex((trace) => trace.meta === "start");
  if (index < 0) return;
  const y = surface.dim === 1 ? valueOn1D(surface, start[0]) : start[1];
  Plotly.restyle(element, { x: [[start[0]]], y: [[y]] }, [index]);
}

/** Data coordinates of a click on the plot area (plotly's axes convert pixels to data). */
export function clickToData(element, mouseEvent) {
  const layout = element._fullLayout;
  const rect = element.getBoundingClientRect();
  const px = mouseEvent.clientX - rect.left - layout.xaxis._offset;
  const py = mouseEvent.clientY - rect.top - layout.yaxis._offset;
  return [layout.xaxis.p2d(px), layout.yaxis.p2d(py)];
}

function pathCoordinates(trace, oneD, upTo) {
  const xs = [];
  const ys = [];
  for (let i = 0; i <= upTo && i < trace.x.length; i += 1) {
    xs.push(trace.x[i][0]);
    ys.push(oneD ? trace.f[i] : trace.x[i][1]);
  }
  return [xs, ys];
}

/** The gap to the best known minimum (log axis) or f itself when none is known. */
function lossSeries(trace, fStar, upTo) {
  const steps = [];
  const values = [];
  for (let i = 0; i <= upTo && i < trace.f.length; i += 1) {
    const f = trace.f[i];
    steps.push(i);
    values.push(f === null ? null : fStar === null ? f : Math.max(f - fStar, 1e-16));
  }
  return [steps, values];
}

/** How many powers of ten the plotted gaps f − f* span (0 when nothing is plotted). */
function lossDecades(result, fStar) {
  if (fStar === null) return 0;
  const gaps = result.traces.flatMap((trace) => lossSeries(trace, fStar, trace.f.length)[1]).filter((v) => v !== null && v > 0);
  return gaps.length ? Math.log10(Math.max(...gaps)) - Math.log10(Math.min(...gaps)) : 0;
}

export function drawLossAxes(element, surface, result) {
  const fStar = surface.f_star;
  const decadesSpanned = lossDecades(result, fStar);
  const traces = result.traces.map((trace, index) => ({
    type: "scatter", mode: "lines", x: [], y: [], name: trace.label, meta: `loss-${index}`,
    line: { color: result.colors[index], width: 2.5 },
    hovertemplate: `${trace.label}<br>step %{x}<br>%{y:.4g}<extra></extra>`,
  }));
  const layout = {
    font: FONT, margin: { l: 64, r: 12, t: 36, b: 80 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fbfbf8",
    title: { text: fStar === null ? "f per step (linear: f is unbounded below)" : "f − f* per step (log scale)", font: { size: 14 }, x: 0.02, xanchor: "left" },
    xaxis: { title: { text: "step" }, gridcolor: "#e4e7eb", zeroline: false, range: [0, Math.max(1, result.steps)] },
    yaxis: { title: { text: fStar === null ? "f(x)" : `f(x) − f*  (f* = ${formatNumber(fStar)})` },
      type: fStar === null ? "linear" : "log", gridcolor: "#e4e7eb", exponentformat: "power",
      // Unbounded below: show the values f takes on the plotted domain; runs that escape leave the chart.
      range: fStar === null ? paddedRange(surface.z.flat()) : undefined,
      dtick: fStar !== null && decadesSpanned > 2 ? Math.ceil(decadesSpanned / 8) : undefined },
    legend: { orientation: "h", x: 0, y: -0.17, yanchor: "top", font: { size: 12 } }, hovermode: "closest", showlegend: true,
  };
  Plotly.react(element, traces, layout, CONFIG);
}

/** Add one path trace and one head marker per optimizer to the landscape plot. */
export function addTrajectories(element, surface, result) {
  const isRun = (trace) => /^(path|head)/.test(String(trace.meta || ""));
  const background = element.data.filter((trace) => !isRun(trace));
  const [surfaceTraces, markers] = [background.filter((t) => t.meta === "surface"), background.filter((t) => t.meta !== "surface")];
  const paths = result.traces.map((trace, index) => {
    const color = result.colors[index];
    return { type: "scatter", mode: "lines+markers", x: [], y: [], name: trace.label, meta: `path-${index}`, showlegend: false,
      line: { color, width: 2.5 }, marker: { color, size: 5, line: { color: "#ffffff", width: 0.6 } },
      hovertemplate: `${trace.label}<br>(%{x:.3f}, %{y:.3f})<extra></extra>` };
  });
  const heads = result.traces.map((trace, index) => ({ type: "scatter", mode: "markers", x: [], y: [], showlegend: false,
    meta: `head-${index}`, hoverinfo: "skip", marker: { color: result.colors[index], size: 13, line: { color: "#ffffff", width: 2 } } }));
  // Critical points and the start stay on top of the paths, so a run that ends on a minimum still shows its star.
  Plotly.react(element, [...surfaceTraces, ...paths, ...heads, ...markers], element.layout, CONFIG);
}

/**
 * Animate every trajectory and loss curve step by step. Resolves when the last frame is drawn;
 * `shouldStop()` ends it early (a new run started). `duration` 0 draws the last frame at once.
 */
export function animate(contour, loss, surface, result, { duration = 2500, shouldStop = () => false } = {}) {
  const oneD = surface.dim === 1;
  const longest = Math.max(...result.traces.map((trace) => trace.x.length - 1), 0);
  const frames = Math.max(1, Math.min(longest, Math.round(duration / 30)));
  const pathIndices = result.traces.map((_, i) => contour.data.findIndex((trace) => trace.meta === `path-${i}`));
  const headIndices = result.traces.map((_, i) => contour.data.findIndex((trace) => trace.meta === `head-${i}`));
  const lossIndices = result.traces.map((_, i) => i);
  const began = performance.now();
  return new Promise((resolve) => {
    const draw = (frame) => {
      const upTo = Math.round((frame / frames) * longest);
      const paths = result.traces.map((trace) => pathCoordinates(trace, oneD, upTo));
      const heads = paths.map(([xs, ys]) => [xs.slice(-1), ys.slice(-1)]);
      Plotly.restyle(contour, { x: [...paths.map((p) => p[0]), ...heads.map((h) => h[0])],
        y: [...paths.map((p) => p[1]), ...heads.map((h) => h[1])] }, [...pathIndices, ...headIndices]);
      const series = result.traces.map((trace) => lossSeries(trace, surface.f_star, upTo));
      Plotly.restyle(loss, { x: series.map((s) => s[0]), y: series.map((s) => s[1]) }, lossIndices);
    };
    if (duration <= 0) {  // live mode: the whole run at once, no frames
      draw(frames);
      return resolve(true);
    }
    const tick = (now) => {
      if (shouldStop()) return resolve(false);
      const frame = Math.min(frames, Math.floor(((now - began) / duration) * frames));
      draw(frame);
      if (frame >= frames) return resolve(true);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
