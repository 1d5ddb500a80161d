// Edge of stability, live: POST /api/live/eos and draw each NDJSON line as it arrives.
// document.body.dataset.state: idle, running, done, error (the browser tests wait on it).

import { formatNumber } from "./plots.js";

const $ = (id) => document.getElementById(id);
const FONT = { family: "Inter, system-ui, sans-serif", size: 13, color: "#243b53" };
const view = { rows: [], start: null, controller: null };
window.optimlabEos = view;

function setState(state, message) {
  document.body.dataset.state = state;
  $("status").textContent = message;
  $("status").className = `status ${state}`;
}

function tracked(row) {
  return view.start && view.start.compared === "preconditioned" ? row.preconditioned_sharpness : row.sharpness;
}

function draw() {
  const steps = view.rows.map((row) => row.step);
  const compared = view.start ? view.start.compared : "sharpness";
  const traces = [
    { x: steps, y: view.rows.map((row) => row.sharpness), name: "sharpness λ_max(H)", mode: "lines+markers",
      line: { color: "#2e86de", width: 2.5 }, meta: "sharpness" },
    { x: steps, y: view.rows.map((row) => row.threshold), name: `threshold ${view.start ? view.start.threshold_formula : ""}`,
      mode: "lines", line: { color: "#e4572e", dash: "dash", width: 2 }, meta: "threshold" },
  ];
  if (compared === "preconditioned") {
    traces.push({ x: steps, y: view.rows.map((row) => row.preconditioned_sharpness), name: "preconditioned sharpness",
      mode: "lines+markers", line: { color: "#17a673", width: 2.5 }, meta: "preconditioned" });
  }
  Plotly.react($("sharpness"), traces, {
    font: FONT, margin: { l: 56, r: 12, t: 36, b: 80 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fbfbf8",
    title: { text: "sharpness vs its stability threshold", font: { size: 14 }, x: 0.02, xanchor: "left" },
    xaxis: { title: { text: "step" }, range: [0, view.start ? view.start.steps : 1], gridcolor: "#e4e7eb" },
    yaxis: { title: { text: "eigenvalue" }, type: "log", gridcolor: "#e4e7eb" },
    legend: { orientation: "h", x: 0, y: -0.17, yanchor: "top" },
  }, { displaylogo: false, responsive: true });
  Plotly.react($("loss"), [{ x: steps, y: view.rows.map((row) => row.loss), name: "training loss", mode: "lines+markers",
    line: { color: "#8e44ad", width: 2.5 }, meta: "loss" }], {
    font: FONT, margin: { l: 56, r: 12, t: 36, b: 80 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fbfbf8",
    title: { text: "full-batch training loss", font: { size: 14 }, x: 0.02, xanchor: "left" },
    xaxis: { title: { text: "step" }, range: [0, view.start ? view.start.steps : 1], gridcolor: "#e4e7eb" },
    yaxis: { title: { text: "loss" }, type: "log", gridcolor: "#e4e7eb" }, showlegend: true,
    legend: { orientation: "h", x: 0, y: -0.17, yanchor: "top" },
  }, { displaylogo: false, responsive: true });
  const last = view.rows[view.rows.length - 1];
  $("latest").replaceChildren();
  if (!last) return;
  const tr = document.createElement("tr");
  const ratio = tracked(last) !== null && last.threshold ? tracked(last) / last.threshold : null;
  for (const value of [String(last.step), formatNumber(last.loss, 4), formatNumber(last.sharpness, 4),
    formatNumber(last.preconditioned_sharpness, 4), formatNumber(last.threshold, 4), formatNumber(ratio, 3)]) {
    const td = document.createElement("td");
    td.className = "num";
    td.textContent = value;
    tr.append(td);
  }
  $("latest").append(tr);
}

function request() {
  const optimizer = $("optimizer").value;
  const body = { optimizer, lr: Number($("lr").value), task: $("task").value,
    steps: Number($("steps").value), every: Number($("every").value) };
  if (optimizer === "momentum") body.momentum = Number($("beta").value);
  if (optimizer === "adam") body.beta1 = Number($("beta").value);
  return body;
}

async function train() {
  if (view.controller) view.controller.abort();
  const controller = new AbortController();
  view.controller = controller;
  view.rows = [];
  view.start = null;
  draw();
  setState("running", "Starting…");
  try {
    const response = await fetch("/api/live/eos", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request()), signal: controller.signal });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.message || `${response.status} ${response.statusText}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines) if (line.trim()) receive(JSON.parse(line));
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    setState("error", error.message);
  }
}

function receive(message) {
  if (message.type === "start") {
    view.start = message;
    setState("running", `Training ${message.optimizer} on ${message.task}: threshold ${message.threshold_formula} = ${formatNumber(message.threshold, 4)}`);
  } else if (message.type === "step") {
    view.rows.push(message);
    draw();
    $("status").textContent = `Training ${view.start.optimizer}: step ${message.step} of ${view.start.steps}`;
  } else if (message.type === "end") {
    view.end = message;
    const stopped = message.stopped ? ` (stopped: ${message.stopped})` : "";
    setState("done", `Trained ${message.steps} steps in ${formatNumber(message.seconds, 3)} s${stopped}.`);
  } else if (message.type === "error") {
    setState("error", message.message);
  }
}

function wire() {
  const relabel = () => {
    const optimizer = $("optimizer").value;
    $("beta-field").style.visibility = optimizer === "gd" ? "hidden" : "visible";
    $("beta-name").textContent = optimizer === "adam" ? "β₁" : "momentum";
    if (optimizer === "adam" && Number($("lr").value) > 0.1) $("lr").value = "0.01";
    if (optimizer !== "adam" && Number($("lr").value) < 0.05) $("lr").value = "0.5";
  };
  $("optimizer").addEventListener("change", relabel);
  $("start").addEventListener("click", train);
  const params = new URLSearchParams(location.hash.slice(1));
  for (const key of ["optimizer", "lr", "task", "steps", "every", "beta"]) if (params.has(key)) $(key).value = params.get(key);
  relabel();
  if (params.has("lr")) $("lr").value = params.get("lr");
}

wire();
draw();
train();
