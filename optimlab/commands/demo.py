"""`optimlab demo`: the main job of `make demo`."""

from __future__ import annotations

import argparse

import torch

from ..optim import create


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the main job of `make demo`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The notes' optimizers on the ill-conditioned valley f = 0.1*x1^2 + 2*x2^2 from (-5, -2)."""
    specs = ["gd:lr=0.4", "momentum:lr=0.4,momentum=0.5", "nesterov:lr=0.4,momentum=0.5",
             "adagrad:lr=0.4", "rmsprop:lr=0.4,alpha=0.9", "adam:lr=0.4"]
    print("f(x) = 0.1*x1^2 + 2*x2^2, start (-5, -2), 20 steps")
    print(f"{'optimizer':<32} {'x1':>10} {'x2':>10} {'f':>12}")
    for spec in specs:
        x = torch.tensor([-5.0, -2.0], dtype=torch.float64, requires_grad=True)
        optimizer = create(spec, [x])
        for _ in range(20):
            optimizer.zero_grad()
            loss = 0.1 * x[0] ** 2 + 2 * x[1] ** 2
            loss.backward()
            optimizer.step()
        f = (0.1 * x[0] ** 2 + 2 * x[1] ** 2).item()
        print(f"{spec:<32} {x[0].item():>10.4f} {x[1].item():>10.4f} {f:>12.3e}")
    return 0
