"""MNIST-1D with the paper's settings: each model trained with Adam (lr 1e-2, batch 100, 6,000
steps, seed 0) on the 4,000 training examples; test accuracy on the 1,000 test examples next to
the one Greydanus & Kobak (2020) report. Writes benchmarks/results/mnist1d_paper.json.

    python benchmarks/mnist1d_paper.py [logistic mlp cnn gru]
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from optimlab.engine.training import train
from optimlab.tasks import get_task
from optimlab.tasks.mnist1d import MNIST1D_MODELS, PAPER_TEST_ACCURACY

OUT = Path(__file__).resolve().parent / "results" / "mnist1d_paper.json"


def run(model: str) -> dict:
    task = get_task(f"mnist1d-{model}")
    held_out: dict = {}

    def on_end(event: str, state) -> None:  # noqa: ANN001 (the engine's callback signature)
        if event == "train_end":
            held_out["loss"], held_out["accuracy"] = task.evaluate(state.model, "test")

    started = time.perf_counter()
    trace = train("adam:lr=0.01", task, seed=0, callbacks=[on_end])
    return {"test_accuracy": held_out["accuracy"], "paper_test_accuracy": PAPER_TEST_ACCURACY[model],
            "test_loss": held_out["loss"], "final_train_accuracy": trace.epochs[-1]["train_metric"],
            "steps": trace.meta["steps"], "train_seconds": trace.meta["train_seconds"],
            "wall_seconds": time.perf_counter() - started}


def main() -> None:
    models = sys.argv[1:] or list(MNIST1D_MODELS)
    results = {"machine": platform.node(), "device": f"CPU ({platform.machine()})", "torch": torch.__version__,
               "threads": torch.get_num_threads(), "models": {}}
    for model in models:
        results["models"][model] = run(model)
        row = results["models"][model]
        print(f"{model:9s} test accuracy {row['test_accuracy']:.1%} (paper {row['paper_test_accuracy']:.0%}), "
              f"{row['train_seconds']:.1f} s training", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
