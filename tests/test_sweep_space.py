"""Search-space parsing, grids at a budget, coarse-to-fine narrowing, and the sweep analysis math."""

from __future__ import annotations

import math

import numpy as np
import optuna.distributions as od
import pytest

from optimlab.analysis.sweep import (best_so_far, lr_sensitivity, performance_profile, performance_ratios,
                                     profile_score, robust_lr_range, time_to_target)
from optimlab.sweep.plan import make_plans
from optimlab.sweep.space import (CATEGORICAL, FLOAT, INT, default_params, grid_points, grid_shape, narrow,
                                  optimizer_kwargs, parse_dimension, parse_space, space_for, space_text)


def test_parse_kinds_and_round_trip():
    dims = parse_space(["lr=log:1e-5:1", "betas1=0.8:0.99", "batch=int:16:256", "k=intlog:1:64",
                        "momentum=0.5,0.9,0.99", "nesterov=true,false", "adam.eps=1e-8"])
    lr, b1, batch, k, momentum, nesterov, eps = dims
    assert (lr.kind, lr.low, lr.high, lr.log) == (FLOAT, 1e-5, 1.0, True)
    assert (b1.kind, b1.low, b1.high, b1.log) == (FLOAT, 0.8, 0.99, False)
    assert (batch.kind, batch.low, batch.high) == (INT, 16, 256) and not batch.log
    assert (k.kind, k.log) == (INT, True)
    assert momentum.kind == CATEGORICAL and momentum.choices == (0.5, 0.9, 0.99)
    assert nesterov.choices == (True, False)
    assert eps.optimizer == "adam" and eps.kind == CATEGORICAL and eps.choices == (1e-8,)
    assert parse_space(space_text(dims)) == dims
    assert isinstance(lr.to_distribution(), od.FloatDistribution) and lr.to_distribution().log
    assert isinstance(batch.to_distribution(), od.IntDistribution)


@pytest.mark.parametrize("option, fragment", [
    ("lr", "expected name=RANGE"),
    ("lr=", "expected name=RANGE"),
    ("lr=log:0:1", "needs low > 0"),
    ("lr=log:1e-3", "expected log:LOW:HIGH"),
    ("lr=1:0.1", "must be <= high"),
    ("lr=a:b", "is not a number"),
    ("lr=0.1:inf", "not a finite number"),
    ("n=int:1.5:4", "is not an integer"),
    ("lr=1:2:3", "expected LOW:HIGH"),
    ("m=0.9,0.9", "distinct"),
    ("9lr=0.1:1", "bad hyperparameter name"),
])
def test_parse_errors_are_one_line(option, fragment):
    with pytest.raises(ValueError, match=fragment) as error:
        parse_dimension(option)
    assert "\n" not in str(error.value) and option.split("=")[0] in str(error.value)


def test_duplicate_dimension_rejected():
    with pytest.raises(ValueError, match="given twice"):
        parse_space(["lr=0.1:1", "lr=log:1e-3:1"])
    assert len(parse_space(["lr=0.1:1", "adam.lr=log:1e-3:1"])) == 2  # a scoped one is another dimension


def test_space_checked_against_the_optimizer():
    dims = parse_space(["lr=log:1e-5:1", "adam.betas1=0.8:0.99", "momentum.momentum=0.5:0.99"])
    assert [d.name for d in space_for(dims, "adam")] == ["lr", "betas1"]
    assert [d.name for d in space_for(dims, "momentum")] == ["lr", "momentum"]
    with pytest.raises(ValueError, match="'betas1' is not a hyperparameter of momentum"):
        space_for(parse_space(["betas1=0.8:0.99"]), "momentum")
    with pytest.raises(ValueError, match=r"betas\[0\]"):  # the optimizer's own validator speaks
        space_for(parse_space(["betas1=0.8:1.2"]), "adam")
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        space_for(parse_space(["adma.lr=0.1:1"]), "adam")


def test_betas_aliases_map_onto_the_pair():
    assert optimizer_kwargs("adam", {"lr": 0.1, "betas1": 0.8}) == {"lr": 0.1, "betas": (0.8, 0.999)}
    assert optimizer_kwargs("adam", {"betas2": 0.9}) == {"betas": (0.9, 0.9)}
    dims = parse_space(["lr=log:1e-5:1", "betas1=0.8:0.99"])
    assert default_params("adam", dims) == {"lr": 1e-3, "betas1": 0.9}
    assert default_params("momentum", dims[:1]) == {"lr": 0.05}


@pytest.mark.parametrize("budget, expected", [(40, [8, 5]), (36, [6, 6]), (37, [6, 6]), (9, [3, 3]), (3, [3, 1])])
def test_grid_shape_uses_the_budget(budget, expected):
    dims = parse_space(["lr=log:1e-5:1", "betas1=0.8:0.99"])
    shape = grid_shape(budget, dims)
    assert shape == expected and math.prod(shape) <= budget


def test_grid_points_log_spacing_and_categoricals():
    dims = parse_space(["lr=log:1e-4:1", "nesterov=true,false"])
    points = grid_points(10, dims)
    assert len(points) == 10
    lrs = sorted({p["lr"] for p in points})
    np.testing.assert_allclose(lrs, np.logspace(-4, 0, 5), rtol=1e-5)  # geometric, ends included
    assert {p["nesterov"] for p in points} == {True, False}
    with pytest.raises(ValueError, match="fewer than the 6 combinations"):
        grid_points(5, parse_space(["a=1,2,3", "b=1,2"]))
    ints = grid_points(100, parse_space(["n=int:1:4"]))
    assert [p["n"] for p in ints] == [1, 2, 3, 4]  # no more points than integers


def test_narrow_spans_the_best_trials_with_a_margin():
    dims = parse_space(["lr=log:1e-5:1", "beta=0.8:0.99", "n=int:1:100", "c=1,2"])
    best = [{"lr": 1e-3, "beta": 0.9, "n": 10, "c": 1}, {"lr": 1e-2, "beta": 0.95, "n": 20, "c": 2}]
    lr, beta, n, c = narrow(dims, best, margin=0.25)
    # log space: [-3, -2] widened by 0.25 decade each side
    assert lr.low == pytest.approx(10 ** -3.25, rel=1e-5) and lr.high == pytest.approx(10 ** -1.75, rel=1e-5)
    assert (beta.low, beta.high) == (pytest.approx(0.8875), pytest.approx(0.9625))
    assert (n.low, n.high) == (7, 23)  # [10, 20] +- 2.5 = [7.5, 22.5], rounded outward
    assert c == dims[3]  # categoricals keep their choices
    # clipped to the old range, and a single best point keeps a margin of the old width
    (edge,) = narrow(parse_space(["lr=0:1"]), [{"lr": 0.95}], margin=0.25)
    assert (edge.low, edge.high) == (pytest.approx(0.7), 1.0)


def test_plans_share_the_budget_and_check_names():
    plans = make_plans("s", ["digits-mlp"], ["momentum", "adam"], ["random", "grid"],
                       ["lr=log:1e-4:1", "adam.betas1=0.8:0.99"], trials=12, epochs=3, seeds=2)
    tuned = [p for p in plans if p.sampler != "default"]
    assert {p.budget["epoch_runs"] for p in tuned} == {12 * 3 * 2}
    assert {p.study_name for p in plans} >= {"s/digits-mlp/adam/random", "s/digits-mlp/momentum/grid",
                                             "s/digits-mlp/adam/default"}
    default = next(p for p in plans if p.study_name == "s/digits-mlp/adam/default")
    assert default.trials == 1 and default.space == ["lr=0.001", "betas1=0.9"]
    with pytest.raises(ValueError, match="--sampler 'bayes'"):
        make_plans("s", ["t"], ["adam"], ["bayes"], ["lr=0.1:1"], trials=2, epochs=1)
    with pytest.raises(ValueError, match="--trials=0"):
        make_plans("s", ["t"], ["adam"], ["random"], ["lr=0.1:1"], trials=0, epochs=1)
    with pytest.raises(ValueError, match="no '/'"):
        make_plans("a/b", ["t"], ["adam"], ["random"], ["lr=0.1:1"], trials=2, epochs=1)


def test_round_sizes_split_the_budget():
    (plan, _default) = make_plans("s", ["t"], ["adam"], ["random"], ["lr=0.1:1"], trials=10, epochs=1, rounds=3)
    assert plan.round_sizes() == [4, 3, 3]


# --- the analysis math, against hand-computed values ----------------------------------------

def test_robust_lr_range_closed_form():
    # losses: a bowl in log10(lr) with its minimum 1.0 at lr=1e-2; within 10% -> loss <= 1.1
    lrs = [10.0 ** e for e in (-5, -4, -3, -2.5, -2, -1.5, -1, 0)]
    losses = [3.0, 2.0, 1.05, 1.02, 1.0, 1.08, 1.5, 1.09]  # lr=1 is good again but not contiguous
    result = robust_lr_range(list(zip(lrs, losses)), within=0.1)
    assert result["best_lr"] == 1e-2 and result["threshold"] == pytest.approx(1.1)
    assert (result["lr_low"], result["lr_high"]) == (1e-3, 10 ** -1.5)
    assert result["decades"] == pytest.approx(1.5)
    assert robust_lr_range([(1e-3, 2.0)], 0.1)["decades"] == 0.0


def test_lr_sensitivity_bins_half_decades():
    points = [(1e-3, 4.0), (2e-3, 2.0), (5e-3, 3.0), (0.9e-3, 5.0), (0.1, 1.0)]
    rows = lr_sensitivity(points, bins_per_decade=2)
    # bins: [1e-4 * 10^0.5, 1e-3) holds 0.9e-3; [1e-3, 10^-2.5) holds 1e-3 and 2e-3; [10^-2.5, 1e-2) 5e-3
    assert [r["n"] for r in rows] == [1, 2, 1, 1]
    assert rows[1]["best"] == 2.0 and rows[1]["best_lr"] == 2e-3 and rows[1]["median"] == 3.0
    assert rows[1]["lr"] == pytest.approx(math.sqrt(1e-3 * 2e-3))  # geometric mean of the bin's lrs


def test_profile_and_time_to_target():
    assert time_to_target([3.0, 2.0, 1.0], 2.5) == 2 and math.isinf(time_to_target([3.0], 1.0))
    assert best_so_far([3.0, None, 1.0, 2.0, float("nan")]) == [3.0, 3.0, 1.0, 1.0, 1.0]
    times = {"a": {"x": 2.0, "y": 4.0}, "b": {"x": 9.0, "y": 3.0}, "c": {"x": math.inf, "y": 5.0}}
    ratios = performance_ratios(times)
    assert ratios["a"] == {"x": 1.0, "y": 2.0} and ratios["b"]["x"] == 3.0 and math.isinf(ratios["c"]["x"])
    rho = performance_profile(ratios, [1.0, 2.0, 3.0, 4.0])
    assert rho["x"] == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert rho["y"] == [2 / 3, 1.0, 1.0, 1.0]
    # area under rho on [1, 4] / 3: x has ratios 1 and 3 -> (1 + 1/3) / 3 tasks; y has 1, 2, 1
    assert profile_score(ratios, "x") == pytest.approx((1 + 1 / 3) / 3)
    assert profile_score(ratios, "y") == pytest.approx((1 + 2 / 3 + 1) / 3)
