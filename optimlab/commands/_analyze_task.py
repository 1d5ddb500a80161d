"""`optimlab analyze TASK`: the curvature of a network's loss at init and after training.

    optimlab analyze digits-mlp --opt gd:lr=0.5 --epochs 20
    optimlab analyze digits-mlp:depth=3 --opt gd:lr=1 --epochs 100 --track sharpness:every=2 --out out/
    optimlab analyze digits-cnn --opt adam:lr=1e-3 --epochs 5 --examples 500 --json

Trains the task with the optimizer (gd means the full batch), measures the sharpness during training
(``--track sharpness:every=N``) against the optimizer's stability threshold, and at init and at the end
prints the top-k Hessian eigenvalues (Lanczos), lambda_min, |lambda_min|/lambda_max, the trace
(Hutchinson, 95% interval) and the share of the spectrum below -0.01 lambda_max (SLQ); draws the
sharpness curve and the spectral densities into ``--out``. The landscapes' ``analyze`` verb registers these options
(:func:`add_arguments`) and calls :func:`run` when the name is not a landscape.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from ..spec import parse_spec

if TYPE_CHECKING:  # torch and the analysis modules load when the verb runs, not for --help
    from ..analysis.curvature import CurvatureSummary

DEFAULT_OPTIMIZER = "gd:lr=0.5"
MEASUREMENTS = 40  # sharpness measurements over a run when --track gives no `every`


def _add(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """Add an option unless the parser already has it (the landscape verb defines --json itself)."""
    if flag not in parser._option_string_actions:  # noqa: SLF001 (argparse has no public lookup)
        parser.add_argument(flag, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the task analysis (added to `optimlab analyze`)."""
    group = parser.add_argument_group("training tasks (curvature of the loss Hessian)")
    _add(group, "--opt", default=DEFAULT_OPTIMIZER,
         help=f"optimizer spec (default {DEFAULT_OPTIMIZER}; gd = full batch)")
    _add(group, "--epochs", type=float, default=None, help="epochs to train (default: the task's)")
    _add(group, "--batch-size", default=None, help="N or 'full' (default: full for gd, else the task's)")
    _add(group, "--schedule", default=None,
         help="learning-rate schedule spec, e.g. step:every=10,factor=0.5 (the threshold follows the lr)")
    _add(group, "--seed", type=int, default=0, help="seed of the split, the init, the order and the estimators")
    _add(group, "--limit", type=int, default=None, help="train on the first N training examples only")
    _add(group, "--track", default=None,
         help=f"sharpness tracking spec, e.g. sharpness:every=50,iterations=20 (default: ~{MEASUREMENTS} measurements)")
    _add(group, "--examples", type=int, default=None,
         help="curvature on the first N training examples (default: the whole training set)")
    _add(group, "--mode", choices=("train", "eval"), default="train", help="model mode for the Hessian (default train)")
    _add(group, "--top-k", type=int, default=5, help="number of top eigenvalues (default 5)")
    _add(group, "--iterations", type=int, default=None, help="Lanczos steps (default max(30, 4k))")
    _add(group, "--trace-samples", type=int, default=50, help="Hutchinson samples (default 50)")
    _add(group, "--density-runs", type=int, default=3, help="SLQ runs for the spectral density (0: none)")
    _add(group, "--density-iterations", type=int, default=60, help="Lanczos steps per SLQ run (default 60)")
    _add(group, "--chunk-size", type=int, default=2048, help="examples per forward pass in Hessian products")
    _add(group, "--out", default=None, help="folder for the figures and the JSON (default optimlab-out/analyze-NAME)")
    _add(group, "--json", action="store_true", help="print JSON instead of tables")


class EndpointCurvature:
    """Training callback: the curvature summary of the initial model (epoch 0) and of the final one."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.summaries: dict[str, CurvatureSummary | None] = {}
        self.steps: dict[str, int] = {}
        self.parameters = 0

    def __call__(self, event: str, state: Any) -> None:
        if event == "epoch_end" and state.step == 0 and "init" not in self.summaries:
            self.measure("init", state)
        elif event == "train_end":
            self.measure("end", state)

    def measure(self, label: str, state: Any) -> None:
        import torch

        from ..analysis.curvature import HessianOperator, summarize_curvature
        from ..analysis.sharpness import training_data

        self.steps[label] = int(state.step)
        self.parameters = sum(p.numel() for p in state.model.parameters())
        if not all(torch.isfinite(p).all() for p in state.model.parameters()):
            self.summaries[label] = None  # a diverged model has no curvature to measure
            return
        s = self.settings
        inputs, targets = training_data(state.task, s["examples"])
        op = HessianOperator(state.model, state.task.loss_fn, inputs, targets, mode=s["mode"],
                             max_examples=s["examples"], chunk_size=s["chunk_size"],
                             penalty=getattr(state.task, "penalty", None),
                             of=getattr(state.task, "num_train", None))  # the inputs may be the first N only
        self.summaries[label] = summarize_curvature(
            op, k=s["top_k"], iterations=s["iterations"], trace_samples=s["trace_samples"],
            density_runs=s["density_runs"], density_iterations=s["density_iterations"], seed=s["seed"])


def _check(args: argparse.Namespace) -> None:
    for name in ("top_k", "trace_samples", "chunk_size"):
        if getattr(args, name) < 1 + (name == "trace_samples"):
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)} is too small")
    for name in ("examples", "limit", "iterations"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} {value} must be a positive integer")
    if args.density_runs < 0:
        raise ValueError(f"--density-runs {args.density_runs} must be >= 0")


def _check_task_name(name: str) -> None:
    """`analyze` takes a landscape or a task: an unknown name is reported as either."""
    from ..landscapes import LANDSCAPES
    from ..tasks import TASKS

    base = parse_spec(name, "task name").name
    if base not in TASKS:
        raise ValueError(f"unknown landscape or task {base!r}; landscapes: {', '.join(LANDSCAPES)}; "
                         f"tasks: {', '.join(TASKS)}")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"mode": args.mode, "examples": args.examples, "chunk_size": args.chunk_size, "top_k": args.top_k,
            "iterations": args.iterations, "trace_samples": args.trace_samples, "density_runs": args.density_runs,
            "density_iterations": args.density_iterations, "seed": args.seed}


def _track_spec(args: argparse.Namespace, total_steps: int) -> str:
    spec = parse_spec(args.track or "sharpness", "track spec")
    kwargs = {"every": max(1, total_steps // MEASUREMENTS), "mode": args.mode, "chunk_size": args.chunk_size,
              **({"examples": args.examples} if args.examples else {}), **spec.kwargs}
    return str(type(spec)(spec.name, kwargs))


def run(args: argparse.Namespace) -> int:
    from ..analysis.sharpness import tracker_from_spec
    from ..engine.training import train
    from ..tasks import get_task, load_task_reference

    from ..outputs import check_output_dir

    _check(args)
    function = getattr(args, "task_function", None)
    if not function:
        _check_task_name(args.name)
    out = check_output_dir(args.out or default_out(args.name or function.rpartition(":")[2]), "--out")  # before training
    if function:
        if args.limit is not None:
            raise ValueError("--limit applies to built-in tasks; with --task, set it in your task function")
        task = load_task_reference(function)
    else:
        task = get_task(args.name, seed=args.seed, limit=args.limit)
    optimizer_name = parse_spec(args.opt, "optimizer spec").name
    batch_size = args.batch_size or ("full" if optimizer_name == "gd" else None)
    size = task.num_train if batch_size == "full" else int(batch_size or task.default_batch_size)
    epochs = task.default_epochs if args.epochs is None else args.epochs
    total_steps = math.ceil(epochs * math.ceil(task.num_train / min(size, task.num_train)))
    tracker = tracker_from_spec(_track_spec(args, total_steps))
    endpoints = EndpointCurvature(_settings(args))
    trace = train(args.opt, task, epochs=epochs, batch_size=batch_size, seed=args.seed,
                  schedule=getattr(args, "schedule", None), callbacks=[tracker, endpoints])
    result = build_result(args, task, trace, endpoints)
    result["figures"] = draw_figures(trace, endpoints, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "analysis.json").write_text(json.dumps(result))
    if args.json:
        print(json.dumps(result))
    else:
        print(format_report(result))
    return 0


def default_out(name: str) -> Path:
    """optimlab-out/analyze-NAME with the spec's punctuation made file-safe."""
    return Path("optimlab-out") / ("analyze-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name))


def build_result(args: argparse.Namespace, task: Any, trace: Any, endpoints: EndpointCurvature) -> dict[str, Any]:
    from ..analysis.sharpness import sharpness_overview

    last = trace.epochs[-1] if trace.epochs else {}
    return {
        "task": task.name, "optimizer": args.opt, "seed": args.seed, "num_train": task.num_train,
        "parameters": endpoints.parameters,
        "batch_size": trace.meta.get("batch_size"), "steps": trace.meta.get("steps"), "outcome": trace.outcome_text,
        "final_train_loss": last.get("train_loss"), "final_train_metric": last.get("train_metric"),
        "metric": trace.meta.get("metric"), "settings": _settings(args),
        "curvature": {label: (summary.to_dict() if summary else None)
                      for label, summary in endpoints.summaries.items()},
        "curvature_steps": endpoints.steps, "sharpness": sharpness_overview(trace), "trace": trace.to_dict(),
    }


def draw_figures(trace: Any, endpoints: EndpointCurvature, out: Path) -> list[str]:
    from ..report.curvature import plot_sharpness, plot_spectral_density

    figures = []
    if any(row.get("sharpness") is not None for row in trace.steps):
        figures.append(str(plot_sharpness(trace, out / "sharpness.png")))
    densities = {f"{'at init' if label == 'init' else 'after training'} (step {endpoints.steps[label]})":
                 summary.density.to_dict()
                 for label, summary in endpoints.summaries.items() if summary and summary.density}
    if densities:
        figures.append(str(plot_spectral_density(densities, out / "spectral_density.png")))
    return figures


def _number(value: Any, digits: str = ".4g") -> str:
    return "-" if value is None else format(value, digits)


def _interval(c: dict[str, Any]) -> str:
    trace = c["trace"]
    return f"{trace['estimate']:.4g} ± {trace['interval'][1] - trace['estimate']:.2g}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


CURVATURE_ROWS = [
    ("top eigenvalues", lambda c: ", ".join(f"{v:.4g}" for v in c["top"]["eigenvalues"])),
    ("lambda_max", lambda c: f"{c['lambda_max']:.5g}"),
    ("lambda_min", lambda c: f"{c['lambda_min']:.4g}"),
    ("|lambda_min| / lambda_max", lambda c: f"{c['negative_ratio']:.3g}"),
    ("trace (95% interval)", _interval),
    ("spectrum below -0.01 lambda_max", lambda c: _percent(c["negative_mass"])),
]


def format_report(result: dict[str, Any]) -> str:
    settings, curvature = result["settings"], result["curvature"]
    lines = [
        f"{result['task']}: {result['num_train']} training examples, {result['parameters']:,} parameters; "
        f"{result['optimizer']}, batch {result['batch_size']}, {result['steps']} steps: {result['outcome']}, "
        f"train loss {_number(result['final_train_loss'])}, {result['metric']} {_number(result['final_train_metric'])}",
    ]
    summary = next((c for c in curvature.values() if c), None)
    if summary:
        lines.append(f"Hessian of the training objective on the {summary['operator']['data']}, mode "
                     f"{summary['operator']['mode']}; Lanczos {summary['top']['iterations']} steps, "
                     f"Hutchinson {settings['trace_samples']} samples, seed {settings['seed']}")
    titles = [f"{'at init' if key == 'init' else 'after training'} (step {result['curvature_steps'][key]})"
              for key in curvature]
    lines.append((f"{'':<34}" + "".join(f"{title:<40}" for title in titles)).rstrip())
    for label, cell in CURVATURE_ROWS:
        cells = "".join(f"{(cell(c) if c else 'diverged'):<40}" for c in curvature.values())
        lines.append(f"{label:<34}{cells}".rstrip())
    lines += _sharpness_lines(result["sharpness"])
    lines.append("figures: " + ", ".join(result["figures"]))
    return "\n".join(lines)


def _sharpness_lines(s: dict[str, Any]) -> list[str]:
    if not s.get("measurements"):
        return []
    crossing = f"step {s['first_crossing']}" if s["first_crossing"] is not None else "never"
    if s.get("near_threshold_after") is not None:
        crossing += f" (later measurements within 10% of it: {100 * s['near_threshold_after']:.0f}%)"
    cost = s.get("cost_vs_training")
    return [
        f"{s['quantity'].replace('_', ' ')}: initial {s['initial']:.4g}, max {s['max']:.4g} "
        f"(step {s['max_step']}), final {s['final']:.4g} (step {s['final_step']}), mean over the second half "
        f"{s['mean_second_half']:.4g}; threshold {s.get('formula', '')} = {_number(s['threshold'])}; "
        f"reaches it: {crossing}",
        f"tracking: {s['measurements']} measurements every {s.get('every')} steps, {s['seconds']:.2f} s = "
        f"{_number(100 * cost if cost else None, '.0f')}% of the training time ({s['training_seconds']:.2f} s)",
    ]
