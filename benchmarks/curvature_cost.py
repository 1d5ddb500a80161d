"""Cost of one Lanczos top-5 (30 Hessian-vector products) next to the cost of one training epoch.

    PYTHONPATH=. python benchmarks/curvature_cost.py [--examples 1000] [--json benchmarks/curvature_cost.json]

Models: the digits CNN of optimlab.tasks (when present, else a small CNN on sklearn's digits) and a
~10M-parameter MLP (784-2048-2048-2048-10 on synthetic 28x28 inputs). For each: seconds of one epoch
of minibatch SGD (batch 128) over the curvature data, seconds of one top-5 Lanczos on the same data
(one chunk), their ratio, and the peak resident memory added by each (CPU: VmHWM after resetting it;
CUDA: max_memory_allocated). Timings on a shared machine are noisy; the ratio is measured side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from optimlab.analysis.curvature import HessianOperator, top_eigenvalues


def digits_cnn_problem(examples: int) -> tuple[str, nn.Module, torch.Tensor, torch.Tensor]:
    try:
        from optimlab.tasks import get_task

        task = get_task("digits-cnn", seed=0)
        torch.manual_seed(0)
        model = task.make_model()
        from optimlab.analysis.sharpness import training_data

        x, y = training_data(task)
        return "digits-cnn (optimlab.tasks)", model, x[:examples], y[:examples]
    except (ImportError, ValueError, AttributeError):
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)[:examples]
        y = torch.tensor(digits.target)[:examples]
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
        return "digits-cnn (stand-in: sklearn digits, 2 conv layers)", model, x, y


def big_mlp_problem(examples: int) -> tuple[str, nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                          nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))
    x = torch.randn(examples, 1, 28, 28)
    y = torch.randint(0, 10, (examples,))
    return "MLP 784-2048-2048-2048-10 (synthetic 28x28)", model, x, y


class PeakMemory:
    """Peak memory added inside the block: CUDA max_memory_allocated, or CPU VmHWM (reset first)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.megabytes = device, float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM) of this process
            self.base = _status_kb("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        peak = torch.cuda.max_memory_allocated() if self.device.type == "cuda" else _status_kb("VmHWM") * 1024
        self.megabytes = (peak - self.base) / 2**20


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def one_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one epoch of SGD."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(x), batch_size):
        optimizer.zero_grad()
        F.cross_entropy(model(x[i:i + batch_size]), y[i:i + batch_size]).backward()
        optimizer.step()
    _sync(x.device)
    return time.perf_counter() - started, time.process_time() - cpu_started


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> dict:
    model, x, y = model.to(device), x.to(device), y.to(device)
    params = sum(p.numel() for p in model.parameters())
    one_epoch(model, x[:256], y[:256])  # warm-up
    with PeakMemory(device) as epoch_memory:
        epoch_seconds, epoch_cpu = one_epoch(model, x, y)
    for p in model.parameters():
        p.grad = None
    op = HessianOperator(model, F.cross_entropy, x, y, mode="eval")
    with PeakMemory(device) as lanczos_memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = top_eigenvalues(op, k=5)
        _sync(device)
        lanczos_seconds, lanczos_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    row = {
        "model": name, "parameters": params, "examples": len(x), "device": str(device),
        "epoch_seconds": epoch_seconds, "epoch_cpu_seconds": epoch_cpu, "epoch_peak_mb": epoch_memory.megabytes,
        "lanczos_top5_seconds": lanczos_seconds, "lanczos_cpu_seconds": lanczos_cpu, "lanczos_products": result.products,
        "lanczos_peak_mb": lanczos_memory.megabytes, "lanczos_over_epoch": lanczos_seconds / epoch_seconds,
        "lanczos_over_epoch_cpu": lanczos_cpu / epoch_cpu,
        "top5": result.eigenvalues, "error_bounds": result.error_bounds,
    }
    print(f"{name}: {params:,} parameters, {len(x)} examples on {device}\n"
          f"  one epoch (SGD, batch 128): {epoch_seconds:.2f} s wall, {epoch_cpu:.2f} s CPU, "
          f"peak +{epoch_memory.megabytes:.0f} MB\n"
          f"  Lanczos top-5 ({result.products} HVPs, one chunk): {lanczos_seconds:.2f} s wall, {lanczos_cpu:.2f} s CPU, "
          f"peak +{lanczos_memory.megabytes:.0f} MB = {row['lanczos_over_epoch']:.1f} epochs (wall), "
          f"{row['lanczos_over_epoch_cpu']:.1f} (CPU)\n"
          f"  top-5: {', '.join(f'{v:.4g}' for v in result.eigenvalues)}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=("cnn", "mlp"), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    if args.only in (None, "cnn"):
        rows.append(measure(*digits_cnn_problem(args.examples), device))
    if args.only in (None, "mlp"):
        rows.append(measure(*big_mlp_problem(args.examples), device))
    report = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
