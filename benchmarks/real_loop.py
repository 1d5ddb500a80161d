"""The optimizer step in the loop users write: zero_grad(), backward, step().

Unlike `step_throughput.py` (gradients pinned in place between steps), every iteration here is

    opt.zero_grad()                  # torch's default set_to_none=True (--zero-grad zeros: False)
    loss(params).backward()          # fresh gradient tensors (or accumulated into the buffer)
    opt.step()

for four implementations side by side: torch foreach (torch's default), torch fused=True,
optimlab default (fused=None) and optimlab fused=True. Each round runs one iteration of each,
in a rotating order, so a noisy machine slows all four alike; the table gives the median ms of
step() alone and of the whole iteration, and the median over rounds of each one's ratio to
torch fused=True measured in the same round. Each implementation is built several times
(`--replicas`, and afresh in each of `--blocks`), and the rounds use the builds in turn: where its
buffers land in physical memory moves a kernel's speed by up to 20% on a VM.

    PYTHONPATH=$PWD python benchmarks/real_loop.py --rounds 18 --replicas 2 --blocks 3 \
        --out benchmarks/results/real_loop-<machine>-cpu.json
    PYTHONPATH=$PWD python benchmarks/real_loop.py --device cuda --replicas 1 --out $OUT/real_loop-cuda.json
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

import optimlab.optim as oo
from optimlab.optim import flat
from optimlab.throughput import machine_description, synchronize

ALGORITHMS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "adam": (oo.Adam, torch.optim.Adam, dict(lr=1e-3)),
    "adamw": (oo.AdamW, torch.optim.AdamW, dict(lr=1e-3)),
    "sgd-momentum": (oo.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9)),
}
# column -> (uses optimlab, extra constructor kwargs)
IMPLEMENTATIONS: dict[str, tuple[bool, dict[str, Any]]] = {
    "torch foreach": (False, {"foreach": True}),
    "torch fused": (False, {"fused": True}),
    "optimlab default": (True, {}),
    "optimlab fused": (True, {"fused": True}),
}
# --ablation, on the big layout: optimlab on the other side of the size rule (flat.BIG_NUMEL), to check it:
# "all in place" when the rule gathers the layout's tensors, "all gathered" when it leaves them in place
ABLATION: dict[str, tuple[bool, dict[str, Any]]] = {
    "optimlab default, all in place": (True, {}),
    "optimlab fused, all in place": (True, {"fused": True}),
    "optimlab default, all gathered": (True, {}),
    "optimlab fused, all gathered": (True, {"fused": True}),
}


def ablation_names(layout: tuple[int, int]) -> list[str]:
    """The two ablation columns for `layout`: each path on the other side of its size rule
    (flat.BIG_NUMEL for the eager default, flat.COMPILED_BIG_NUMEL for fused=True)."""
    names = []
    for path, threshold in (("optimlab default", flat.BIG_NUMEL), ("optimlab fused", flat.COMPILED_BIG_NUMEL)):
        names.append(f"{path}, {'all gathered' if layout[1] >= threshold else 'all in place'}")
    return names


REFERENCE = "torch fused"


def default_layouts(device: torch.device) -> dict[str, tuple[int, int]]:
    """name -> (number of tensors, elements per tensor), as in step_throughput.py."""
    big = (480, 1_812_500) if device.type == "cuda" else (24, 1_000_000)
    return {"many-small": (10_000, 2_500), "big": big}


class Setup:
    """One implementation's parameters, inputs and optimizer, and its timed iteration."""

    def __init__(self, algorithm: str, implementation: str, layout: tuple[int, int], device: torch.device,
                 zero_grad_to_none: bool, accumulate: int) -> None:
        ours, extra = {**IMPLEMENTATIONS, **ABLATION}[implementation]
        optimlab_class, torch_class, kwargs = ALGORITHMS[algorithm]
        gen = torch.Generator(device=device).manual_seed(0)
        n_tensors, size = layout
        self.params = [torch.nn.Parameter(torch.randn(size, device=device, generator=gen)) for _ in range(n_tensors)]
        self.inputs = [torch.randn(size, device=device, generator=gen) * 1e-3 for _ in range(accumulate)]
        thresholds = flat.BIG_NUMEL, flat.COMPILED_BIG_NUMEL
        forced = {"all in place": 1, "all gathered": 1 << 62}.get(implementation.split(", ")[-1])
        if forced is not None:
            flat.BIG_NUMEL = flat.COMPILED_BIG_NUMEL = forced
        try:
            self.optimizer = (optimlab_class if ours else torch_class)(self.params, **kwargs, **extra)
        finally:
            flat.BIG_NUMEL, flat.COMPILED_BIG_NUMEL = thresholds
        self.device, self.to_none, self.accumulate = device, zero_grad_to_none, accumulate
        self.last_loss: torch.Tensor | None = None

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """sum_i <p_i, x>: backward writes one fresh gradient tensor per parameter."""
        return torch.stack([torch.dot(param, x) for param in self.params]).sum()

    def iteration(self) -> tuple[float, float]:
        """Seconds of (the whole iteration, step() alone)."""
        synchronize(self.device)
        begin = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=self.to_none)
        for x in self.inputs:
            # `loss = ...` as users write it: the previous iteration's graph is freed here, and the loss stays
            # alive through step(). (Freeing a graph makes the next large allocation slow, glibc consolidating
            # the freed chunks: in the user's loop, that is this iteration's forward or backward, not step().)
            self.last_loss = self.loss(x)
            self.last_loss.backward()
        synchronize(self.device)
        before_step = time.perf_counter()
        self.optimizer.step()
        synchronize(self.device)
        end = time.perf_counter()
        return end - begin, end - before_step


def measure(algorithm: str, layout: tuple[int, int], device: torch.device, rounds: int, warmup: int,
            zero_grad_to_none: bool, accumulate: int, progress: Callable[[str], None],
            names: list[str], replicas: int = 1, blocks: int = 1) -> dict[str, Any]:
    """Interleaved rounds of the implementations `names` on one (algorithm, layout).

    Where a buffer lands in physical memory changes how fast it streams (on the 2-core VM, the same
    torch kernel on five sets of 24 x 1M tensors allocated one after the other: 8.5 to 9.0 ms; up to
    20% apart in another run), so one build per implementation would favour whoever happened to get
    the fast pages. The rounds are split into `blocks`; each block builds every implementation
    `replicas` times afresh (builds interleaved across implementations) and its round k runs
    replica k mod `replicas` of each: `replicas * blocks` placements per implementation.
    """
    whole: dict[str, list[float]] = {name: [] for name in names}
    step: dict[str, list[float]] = {name: [] for name in names}
    per_block = -(-rounds // blocks)
    for block in range(blocks):
        setups = _build(algorithm, layout, device, warmup, zero_grad_to_none, accumulate, progress, names, replicas,
                        block)
        for round_index in range(block * per_block, min(rounds, (block + 1) * per_block)):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:  # rotate who goes first: no one always gets a cold cache
                total, alone = setups[name][round_index % replicas].iteration()
                whole[name].append(total)
                step[name].append(alone)
        del setups
        gc.collect()
    cells = {}
    for name in names:
        cells[name] = {
            "step_ms": 1e3 * statistics.median(step[name]),
            "iteration_ms": 1e3 * statistics.median(whole[name]),
            # per round, side by side: > 1 means faster than torch fused=True
            "step_speedup_vs_torch_fused": statistics.median(
                ref / own for ref, own in zip(step[REFERENCE], step[name])),
            "iteration_speedup_vs_torch_fused": statistics.median(
                ref / own for ref, own in zip(whole[REFERENCE], whole[name])),
        }
    cells["optimlab default"]["step_speedup_vs_torch_foreach"] = statistics.median(
        ref / own for ref, own in zip(step["torch foreach"], step["optimlab default"]))
    return cells


def _build(algorithm: str, layout: tuple[int, int], device: torch.device, warmup: int, zero_grad_to_none: bool,
           accumulate: int, progress: Callable[[str], None], names: list[str], replicas: int,
           block: int) -> dict[str, list[Setup]]:
    """`replicas` fresh, warmed-up builds of each implementation, interleaved."""
    setups: dict[str, list[Setup]] = {name: [] for name in names}
    for replica in range(replicas):
        shift = (replica + block) % len(names)
        for name in names[shift:] + names[:shift]:
            began = time.perf_counter()
            setup = Setup(algorithm, name, layout, device, zero_grad_to_none, accumulate)
            for _ in range(warmup):  # the first steps create state and, for optimlab fused, compile
                setup.iteration()
            setups[name].append(setup)
            progress(f"  {name} #{block * replicas + replica + 1}: built and warmed up in "
                     f"{time.perf_counter() - began:.1f} s")
    return setups


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    layouts = default_layouts(device)
    if args.small:
        layouts["many-small"] = tuple(int(v) for v in args.small.split("x"))
    if args.big:
        layouts["big"] = tuple(int(v) for v in args.big.split("x"))
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    rows = []
    for layout_name in args.layouts.split(","):
        for algorithm in args.algorithms.split(","):
            progress(f"{layout_name} {layouts[layout_name]} {algorithm}")
            # the ablation on "big" only: 10,000 in-place tensors are known slow (a rule call each)
            ablate = args.ablation and layout_name == "big"
            names = list(IMPLEMENTATIONS) + (ablation_names(layouts[layout_name]) if ablate else [])
            cells = measure(algorithm, layouts[layout_name], device, args.rounds, args.warmup,
                            args.zero_grad == "none", args.accumulate, progress, names, args.replicas, args.blocks)
            rows.append({"layout": layout_name, "tensors": layouts[layout_name][0],
                         "params_per_tensor": layouts[layout_name][1], "algorithm": algorithm, "cells": cells})
            progress(format_row(rows[-1]))
    return {**machine_description(device), "loop": {
        "zero_grad": f"set_to_none={args.zero_grad == 'none'}", "backward_calls_per_step": args.accumulate,
        "rounds": args.rounds, "replicas": args.replicas, "blocks": args.blocks, "warmup_iterations": args.warmup,
        "in_place_from_numel": flat.BIG_NUMEL,
        "compiled_in_place_from_numel": flat.COMPILED_BIG_NUMEL,
        "loss": "sum_i <p_i, x>: one fresh gradient tensor per parameter per backward",
        "loss_lifetime": "loss = f(); loss.backward(); step(): alive through step(), freed by the next forward",
    }, "load_average": _load_average(), "rows": rows}


def _load_average() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def format_row(row: dict[str, Any]) -> str:
    head = f"{row['layout']:<10} {row['algorithm']:<13}"
    parts = []
    for name, cell in row["cells"].items():
        parts.append(f"{name}: step {cell['step_ms']:.1f} ms ({cell['step_speedup_vs_torch_fused']:.2f}x), "
                     f"iter {cell['iteration_ms']:.1f} ms ({cell['iteration_speedup_vs_torch_fused']:.2f}x)")
    return head + " | ".join(parts)


def format_table(result: dict[str, Any]) -> str:
    names = list(IMPLEMENTATIONS) + [n for n in ABLATION if any(n in row["cells"] for row in result["rows"])]
    lines = [
        f"device: {result['device']} ({result['cpu_model']}, {result['cpu_threads']} threads), "
        f"torch {result['torch']}, "
        f"load average {result['load_average']}; loop: zero_grad({result['loop']['zero_grad']}), "
        f"{result['loop']['backward_calls_per_step']} backward per step, {result['loop']['rounds']} rounds "
        f"over {result['loop'].get('replicas', 1) * result['loop'].get('blocks', 1)} builds of each",
        "median ms of step() [speedup vs torch fused=True, same round]; then of the whole iteration",
        "| layout | algorithm | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for what in ("step", "iteration"):
        for row in result["rows"]:
            cells = [f"{row['cells'][n][f'{what}_ms']:.1f} ({row['cells'][n][f'{what}_speedup_vs_torch_fused']:.2f}x)"
                     if n in row["cells"] else "-" for n in names]
            lines.append(f"| {row['layout']} | {row['algorithm']} {what} | " + " | ".join(cells) + " |")
    lines.append("optimlab default vs torch foreach, step(): " + ", ".join(
        f"{r['layout']} {r['algorithm']} {r['cells']['optimlab default']['step_speedup_vs_torch_foreach']:.2f}x"
        for r in result["rows"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layouts", default="many-small,big", help="comma list of many-small, big")
    parser.add_argument("--small", default=None, metavar="NxS", help="many-small layout, default 10000x2500")
    parser.add_argument("--big", default=None, metavar="NxS", help="big layout, default 24x1000000 (CPU)")
    parser.add_argument("--algorithms", default="adam,adamw,sgd-momentum")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timed rounds per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per implementation")
    parser.add_argument("--replicas", type=int, default=3,
                        help="independent builds of each implementation, used in turn (averages where their "
                             "buffers land in memory)")
    parser.add_argument("--blocks", type=int, default=1,
                        help="split the rounds into this many blocks, each with fresh builds (more placements)")
    parser.add_argument("--zero-grad", choices=["none", "zeros"], default="none",
                        help="none: zero_grad() (torch's default); zeros: zero_grad(set_to_none=False)")
    parser.add_argument("--accumulate", type=int, default=1, help="backward calls per step")
    parser.add_argument("--ablation", action="store_true",
                        help="on the big layout, also time optimlab on the other side of the size rule "
                             "(checks flat.BIG_NUMEL)")
    parser.add_argument("--out", default=None, help="write the JSON result here")
    args = parser.parse_args()
    if min(args.replicas, args.rounds, args.blocks) < 1 or args.blocks > args.rounds:
        parser.error("--replicas, --rounds and --blocks must be at least 1, and --blocks at most --rounds")
    for name in args.layouts.split(","):
        if name not in ("many-small", "big"):
            parser.error(f"--layouts: {name!r} unknown (allowed: many-small, big)")
    for name in args.algorithms.split(","):
        if name not in ALGORITHMS:
            parser.error(f"--algorithms: {name!r} unknown (allowed: {', '.join(ALGORITHMS)})")
    result = run(args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
