"""Rosenbrock from (-1.5, 2): iterations and function evaluations of optimlab's LBFGS, torch's
LBFGS and scipy's L-BFGS-B, each run until its own stopping test fires (counts, not timings).

    PYTHONPATH=. python benchmarks/lbfgs_rosenbrock.py [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import scipy
import scipy.optimize
import torch

from optimlab.optim.lbfgs import LBFGS

START = (-1.5, 2.0)


def rosenbrock(w):
    return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2


def run_torch_style(cls, **options) -> dict:
    w = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    optimizer = cls([w], max_iter=1000, max_eval=2000, **options)

    def closure():
        optimizer.zero_grad()
        loss = rosenbrock(w)
        loss.backward()
        return loss

    optimizer.step(closure)
    state = optimizer.state[w]
    return {"iterations": state["n_iter"], "evaluations": state["func_evals"],
            "error": float((w.detach() - 1).abs().max())}


def run_scipy(**options) -> dict:
    def value_and_gradient(x):
        g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
        return rosenbrock(x), g

    result = scipy.optimize.minimize(value_and_gradient, START, jac=True, method="L-BFGS-B", options=options)
    return {"iterations": int(result.nit), "evaluations": int(result.nfev), "error": float(np.abs(result.x - 1).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tight = dict(tolerance_grad=1e-10, tolerance_change=0)
    rows = []
    for line_search in ("strong_wolfe", None):
        for label, tolerances in (("defaults", {}), ("tol_grad=1e-10,tol_change=0", tight)):
            for name, cls in (("optimlab.optim.LBFGS", LBFGS), ("torch.optim.LBFGS", torch.optim.LBFGS)):
                result = run_torch_style(cls, line_search_fn=line_search, **tolerances)
                rows.append({"method": name, "options": f"line_search_fn={line_search}; {label}", **result})
    for label, options in (("defaults", {}), ("gtol=1e-10,ftol=1e-16", dict(gtol=1e-10, ftol=1e-16))):
        rows.append({"method": f"scipy L-BFGS-B {scipy.__version__}", "options": label, **run_scipy(**options)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"torch {torch.__version__}, scipy {scipy.__version__}; Rosenbrock from {START}, float64; LBFGS: one step() with max_iter=1000, max_eval=2000")
    width = max(len(row["options"]) for row in rows)
    print(f"{'method':<24} {'options':<{width}} {'iters':>5} {'evals':>5} {'max|x-1|':>9}")
    for row in rows:
        print(f"{row['method']:<24} {row['options']:<{width}} {row['iterations']:>5} {row['evaluations']:>5} {row['error']:>9.1e}")


if __name__ == "__main__":
    main()
