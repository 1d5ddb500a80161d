// Loss-landscape slice: POST /api/live/slice, draw the grid as a contour and each optimizer's projected path.
// document.body.dataset.state: idle, running, done, error (the browser tests wait on it).

import { formatNumber } from "./plots.js";

const $ = (id) => document.getElementById(id);
const FONT = { family: "Inter, system-ui, sans-serif", size: 13, color: "#243b53" };
const COLORS = ["#e4572e", "#2e86de", "#17a673"];
const view = { answer: null, controller: null };
window.optimlabSlice = view;

function setState(state, message) {
  document.body.dataset.state = state;
  $("status").textContent = message;
  $("status").className = `status ${state}`;
}

function request() {
  const optimizers = [];
  for (const row of document.querySelectorAll("#optimizers .opt-row")) {
    const optimizer = row.querySelector("[data-field=optimizer]").value;
    if (optimizer) optimizers.push({ optimizer, lr: Number(row.querySelector("[data-field=lr]").value) });
  }
  const body = { optimizers, task: $("task").value, steps: Number($("steps").value), every: Number($("every").value),
    resolution: Number($("resolution").value) };
  if ($("span").value.trim()) body.span = Number($("span").value);
  return body;
}

function draw(answer) {
  const traces = [{
    type: "contour", x: answer.alphas, y: answer.betas, z: answer.losses, meta: "slice", ncontours: 30,
    colorscale: "Viridis", colorbar: { title: { text: "loss" }, thickness: 14 }, contours: { coloring: "heatmap" },
    hovertemplate: "α %{x:.3g}<br>β %{y:.3g}<br>loss %{z:.4g}<extra></extra>",
  }];
  answer.runs.forEach((run, index) => {
    if (!run.alpha.length) return;
    const last = run.alpha.length - 1;
    traces.push({
      x: run.alpha, y: run.beta, mode: "lines+markers", name: run.optimizer, meta: `path:${index}`,
      line: { color: COLORS[index], width: 2.5 },
      marker: { color: COLORS[index], size: run.alpha.map((_, i) => (i === 0 || i === last ? 13 : 6)),
        symbol: run.alpha.map((_, i) => (i === 0 ? "circle-open" : i === last ? "star" : "circle")),
        line: { color: "#fff", width: 1 } },
      text: run.steps.map((step) => `step ${step}`),
      hovertemplate: "%{text}<br>α %{x:.3g}, β %{y:.3g}<extra>" + run.optimizer + "</extra>",
    });
  });
  Plotly.react($("slice"), traces, {
    font: FONT, margin: { l: 60, r: 12, t: 36, b: 90 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fbfbf8",
    title: { text: `${answer.task}: L(θ* + α d₁ + β d₂)`, font: { size: 14 }, x: 0.02, xanchor: "left" },
    xaxis: { title: { text: "α (d₁)" }, range: [answer.alphas[0], answer.alphas[answer.alphas.length - 1]],
      zeroline: false },
    yaxis: { title: { text: "β (d₂)" }, range: [answer.betas[0], answer.betas[answer.betas.length - 1]],
      zeroline: false },
    legend: { orientation: "h", x: 0, y: -0.14, yanchor: "top" },
  }, { displaylogo: false, responsive: true });
  $("finals").replaceChildren();
  for (const run of answer.runs) {
    const tr = document.createElement("tr");
    const last = run.alpha.length - 1;
    const end = last >= 0 ? `(${formatNumber(run.alpha[last], 3)}, ${formatNumber(run.beta[last], 3)})` : "–";
    const steps = run.steps.length ? String(run.steps[run.steps.length - 1]) : "0";
    const cells = [[run.optimizer, ""], [steps, "num"], [formatNumber(run.final_loss, 4), "num"], [end, "num"],
      [run.outcome + (run.stopped ? ` (${run.stopped})` : ""), ""]];
    for (const [text, className] of cells) {
      const td = document.createElement("td");
      td.className = className;
      td.textContent = text;
      tr.append(td);
    }
    $("finals").append(tr);
  }
}

async function run() {
  if (view.controller) view.controller.abort();
  const controller = new AbortController();
  view.controller = controller;
  setState("running", "Training, then slicing…");
  try {
    const response = await fetch("/api/live/slice", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request()), signal: controller.signal });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.message || `${response.status} ${response.statusText}`);
    view.answer = answer;
    draw(answer);
    const stopped = answer.stopped ? ` (stopped: ${answer.stopped})` : "";
    setState("done", `Trained ${answer.runs.length} optimizer(s) and sliced a ${answer.alphas.length}² grid ` +
      `(span ±${formatNumber(answer.span, 3)}) in ${formatNumber(answer.seconds, 3)} s${stopped}.`);
  } catch (error) {
    if (controller.signal.aborted) return;
    setState("error", error.message);
  }
}

function wire() {
  $("start").addEventListener("click", run);
  const params = new URLSearchParams(location.hash.slice(1));
  for (const key of ["task", "steps", "every", "resolution", "span"]) if (params.has(key)) $(key).value = params.get(key);
  const rows = document.querySelectorAll("#optimizers .opt-row");
  if (params.has("optimizers")) {  // e.g. optimizers=gd:0.5,adam:0.01
    const chosen = params.get("optimizers").split(",").map((item) => item.split(":"));
    rows.forEach((row, index) => {
      const [optimizer, lr] = chosen[index] || ["", ""];
      row.querySelector("[data-field=optimizer]").value = optimizer;
      if (lr) row.querySelector("[data-field=lr]").value = lr;
    });
  }
}

wire();
run();
