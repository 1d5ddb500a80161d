// Stored runs: list them (GET /api/runs), pick some, draw their curves side by side
// (GET /api/runs/curves), link to their HTML report (GET /api/runs/report).

import { PALETTE } from "./scene.js";
import { formatNumber } from "./plots.js";

const $ = (id) => document.getElementById(id);
const FONT = { family: "Inter, system-ui, sans-serif", size: 13, color: "#243b53" };
const MAX_PICKED = 8;
const view = { runs: [], picked: [], curves: [] };
window.optimlabRuns = view;

function setState(state, message) {
  document.body.dataset.state = state;
  $("status").textContent = message;
  $("status").className = `status ${state}`;
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${response.status} ${response.statusText}`);
  return body;
}

function layout(title, ytitle, type) {
  return { font: FONT, margin: { l: 64, r: 12, t: 36, b: 80 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fbfbf8",
    title: { text: title, font: { size: 14 }, x: 0.02, xanchor: "left" }, xaxis: { title: { text: "step" }, gridcolor: "#e4e7eb" },
    yaxis: { title: { text: ytitle }, type, gridcolor: "#e4e7eb", exponentformat: "power" },
    legend: { orientation: "h", x: 0, y: -0.17, yanchor: "top" }, showlegend: true };
}

function draw() {
  const colour = (i) => PALETTE[i % PALETTE.length];
  Plotly.react($("train-loss"), view.curves.map((run, i) => ({ x: run.steps, y: run.loss, name: run.label, mode: "lines",
    line: { color: colour(i), width: 2 }, meta: `loss-${run.id}` })), layout("training loss per step", "loss", "log"),
    { displaylogo: false, responsive: true });
  const metric = view.curves.length ? view.curves[0].metric : "metric";
  Plotly.react($("val-metric"), view.curves.map((run, i) => ({ x: run.epoch_steps, y: run.val_metric, name: run.label,
    mode: "lines+markers", line: { color: colour(i), width: 2 }, meta: `metric-${run.id}` })),
    layout(`validation ${metric} per epoch`, metric, "linear"), { displaylogo: false, responsive: true });
  const summaries = new Map(view.runs.map((run) => [run.id, run]));
  $("picked").replaceChildren(...view.curves.map((run, i) => {
    const summary = summaries.get(run.id) || {};
    const tr = document.createElement("tr");
    tr.dataset.run = run.id;
    const cells = [run.label, run.task, run.outcome, String(summary.steps ?? ""), formatNumber(summary.final_train_loss, 4),
      formatNumber(summary.best_val_metric, 4)];
    cells.forEach((text, j) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (j >= 3) td.className = "num";
      if (j === 0) td.style.color = colour(i);
      tr.append(td);
    });
    return tr;
  }));
  const link = $("report-link");
  link.classList.toggle("disabled", !view.picked.length);
  link.href = view.picked.length ? `/api/runs/report?ids=${view.picked.join(",")}` : "#";
}

async function pickedChanged() {
  location.hash = view.picked.length ? `ids=${view.picked.join(",")}` : "";
  if (!view.picked.length) { view.curves = []; draw(); setState("done", "Pick runs on the left."); return; }
  setState("running", "Loading curves…");
  try {
    const body = await getJSON(`/api/runs/curves?ids=${view.picked.join(",")}`);
    view.curves = body.runs;
    draw();
    setState("done", `${view.curves.length} run(s) from ${body.store}.`);
  } catch (error) {
    setState("error", error.message);
  }
}

function renderList() {
  const list = $("run-list");
  list.replaceChildren(...view.runs.slice().reverse().map((run) => {
    const label = document.createElement("label");
    label.className = "run-item";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = run.id;
    box.checked = view.picked.includes(run.id);
    box.addEventListener("change", () => {
      if (box.checked && view.picked.length >= MAX_PICKED) { box.checked = false; return; }
      view.picked = box.checked ? [...view.picked, run.id] : view.picked.filter((id) => id !== run.id);
      pickedChanged();
    });
    const text = document.createElement("span");
    text.textContent = `#${run.id} ${run.optimizer} · ${run.task} · ${run.outcome}`;
    label.append(box, text);
    return label;
  }));
}

async function main() {
  setState("running", "Loading the store…");
  const body = await getJSON("/api/runs");
  view.runs = body.runs;
  $("store-location").textContent = body.store ? `Runs stored in ${body.store}, side by side` :
    "No results store here: set $OPTIMLAB_DB (runs are saved by optimlab compare/sweep with --db)";
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("ids");
  const known = new Set(view.runs.map((run) => run.id));
  view.picked = fromHash ? fromHash.split(",").map(Number).filter((id) => known.has(id)).slice(0, MAX_PICKED)
    : view.runs.slice(-3).map((run) => run.id);
  renderList();
  await pickedChanged();
}

main().catch((error) => setState("error", error.message));
