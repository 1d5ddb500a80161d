"""Search spaces: ``--space lr=log:1e-5:1`` and friends, grids at a trial budget, coarse-to-fine.

One dimension per ``--space`` option, ``[optimizer.]name=RANGE`` where RANGE is

=====================  ==============================================
``log:1e-5:1``          float, log-uniform on [1e-5, 1]
``0.8:0.99``            float, uniform on [0.8, 0.99]
``int:16:256``          integer, uniform on {16, ..., 256}
``intlog:16:256``       integer, log-uniform
``0.5,0.9,0.99``        categorical (values parsed like spec values)
``0.9``                 fixed value
=====================  ==============================================

``betas1``/``betas2`` name the two entries of Adam's ``betas`` pair. A prefix ``adam.betas1=...``
restricts a dimension to one optimizer of a multi-optimizer sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

import optuna.distributions as od

from ..optim.registry import get_entry
from ..spec import format_value, parse_value

FLOAT, INT, CATEGORICAL = "float", "int", "categorical"
BETA_ALIASES = {"betas1": 0, "betas2": 1}


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter's range: kind float/int (with low, high, log) or categorical (choices)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    optimizer: str | None = None  # None: applies to every optimizer of the sweep

    def to_distribution(self) -> od.BaseDistribution:
        if self.kind == FLOAT:
            return od.FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == INT:
            return od.IntDistribution(int(self.low), int(self.high), log=self.log)
        return od.CategoricalDistribution(list(self.choices))

    def __str__(self) -> str:
        scope = f"{self.optimizer}." if self.optimizer else ""
        if self.kind == CATEGORICAL:
            body = ",".join(format_value(c) for c in self.choices)
        elif self.low == self.high:
            body = format_value(self.low)
        else:
            prefix = {(FLOAT, True): "log:", (FLOAT, False): "", (INT, True): "intlog:", (INT, False): "int:"}
            body = f"{prefix[self.kind, self.log]}{format_value(self.low)}:{format_value(self.high)}"
        return f"{scope}{self.name}={body}"


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--space {option!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"--space {option!r}: {text!r} is not a finite number")
    return value


def _integer(text: str, option: str) -> int:
    value = _number(text, option)
    if value != int(value):
        raise ValueError(f"--space {option!r}: {text!r} is not an integer")
    return int(value)


def parse_dimension(option: str) -> Dimension:
    """Parse one ``--space`` value; raise a one-line ValueError naming what is malformed."""
    name, eq, body = option.partition("=")
    name, body = name.strip(), body.strip()
    if not eq or not name or not body:
        raise ValueError(f"--space {option!r}: expected name=RANGE, e.g. lr=log:1e-5:1 or betas1=0.8:0.99")
    scope, _, name = name.rpartition(".")
    if not name.isidentifier():
        raise ValueError(f"--space {option!r}: bad hyperparameter name {name!r}")
    parts = body.split(":")
    kind, log = FLOAT, False
    if parts[0] in ("log", "int", "intlog"):
        kind = INT if parts[0].startswith("int") else FLOAT
        log = parts[0].endswith("log")
        parts = parts[1:]
        if len(parts) != 2:
            raise ValueError(f"--space {option!r}: expected {body.split(':')[0]}:LOW:HIGH")
    if len(parts) == 1:  # a categorical list or a fixed value
        choices = tuple(parse_value(item) for item in parts[0].split(","))
        if any(c == "" for c in choices) or len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"--space {option!r}: choices must be distinct and non-empty")
        return Dimension(name, CATEGORICAL, choices=choices, optimizer=scope or None)
    if len(parts) != 2:
        raise ValueError(f"--space {option!r}: expected LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH or A,B,C")
    read = _integer if kind == INT else _number
    low, high = read(parts[0], option), read(parts[1], option)
    if low > high:
        raise ValueError(f"--space {option!r}: low={format_value(low)} must be <= high={format_value(high)}")
    if log and low <= 0:
        raise ValueError(f"--space {option!r}: a log range needs low > 0, got {format_value(low)}")
    return Dimension(name, kind, low, high, log, optimizer=scope or None)


def parse_space(options: Sequence[str]) -> list[Dimension]:
    """All ``--space`` options; a name may appear once per optimizer scope."""
    space = [parse_dimension(option) for option in options]
    seen = set()
    for dim in space:
        if (dim.optimizer, dim.name) in seen:
            raise ValueError(f"--space {dim.name!r} given twice")
        seen.add((dim.optimizer, dim.name))
    return space


def space_for(space: Sequence[Dimension], optimizer: str) -> list[Dimension]:
    """The dimensions that apply to `optimizer`, checked against what it accepts.

    The check builds the optimizer at each end of every range (and with every choice), so the
    optimizer's own validators reject e.g. ``betas1=0.8:1.2`` with their one-line message.
    """
    entry = get_entry(optimizer)
    accepted = set(entry.accepted_arguments()) - {"foreach", "fused", "differentiable", "capturable", "maximize"}
    chosen = [d for d in space if d.optimizer in (None, entry.name)]
    for dim in chosen:
        known = dim.name in accepted or (dim.name in BETA_ALIASES and "betas" in accepted)
        if not known:
            allowed = sorted(accepted | (set(BETA_ALIASES) if "betas" in accepted else set()))
            raise ValueError(f"--space {dim.name!r} is not a hyperparameter of {entry.name} (allowed: {', '.join(allowed)}); "
                             f"write OPTIMIZER.{dim.name}=... to sweep it for one optimizer only")
        for value in (dim.choices if dim.kind == CATEGORICAL else (dim.low, dim.high)):
            _check_values(entry.name, {dim.name: value})
    for dim in space:
        if dim.optimizer is not None:
            get_entry(dim.optimizer)  # an unknown scope is an error even when not swept
    return chosen


def _check_values(optimizer: str, params: dict[str, Any]) -> None:
    import torch

    entry = get_entry(optimizer)
    kwargs = optimizer_kwargs(optimizer, params)
    try:
        entry.cls([torch.zeros(1, requires_grad=True)], **{**entry.defaults, **kwargs})
    except (ValueError, TypeError) as error:
        raise ValueError(f"--space for {optimizer}: {error}") from None


def optimizer_kwargs(optimizer: str, params: dict[str, Any]) -> dict[str, Any]:
    """Trial parameters -> optimizer keyword arguments (``betas1``/``betas2`` -> ``betas``)."""
    kwargs = {k: v for k, v in params.items() if k not in BETA_ALIASES}
    if any(k in params for k in BETA_ALIASES):
        betas = list(get_entry(optimizer).all_defaults()["betas"])
        for alias, index in BETA_ALIASES.items():
            if alias in params:
                betas[index] = params[alias]
        kwargs["betas"] = tuple(betas)
    return kwargs


def default_params(optimizer: str, dims: Sequence[Dimension]) -> dict[str, Any]:
    """The optimizer's registry defaults for the swept names (the "untuned" configuration)."""
    defaults = get_entry(optimizer).all_defaults()
    params = {}
    for dim in dims:
        if dim.name in BETA_ALIASES:
            params[dim.name] = defaults["betas"][BETA_ALIASES[dim.name]]
        else:
            params[dim.name] = defaults[dim.name]
    return params


def fixed_space(params: dict[str, Any], dims: Sequence[Dimension]) -> list[Dimension]:
    """A space that allows exactly `params` (used to run the default configuration)."""
    return [Dimension(d.name, CATEGORICAL, choices=(params[d.name],)) for d in dims]


# --- grids at a budget ----------------------------------------------------------------------


def grid_shape(budget: int, dims: Sequence[Dimension]) -> list[int]:
    """Points per dimension: (nearly) the whole `budget`, balanced across dimensions.

    Categorical dimensions keep all their choices; a fixed value gets one point. The shape of
    the continuous dimensions is chosen among those using at least 90% of the largest possible
    product within the budget: the largest product whose counts differ by at most a factor 2,
    then the most balanced, then more points for earlier dimensions (lr first).
    40 trials over (lr, beta1) -> 8 x 5; 37 -> 6 x 6 (not 37 x 1).
    """
    counts = [len(d.choices) if d.kind == CATEGORICAL else 1 for d in dims]
    fixed = math.prod(counts)
    free = [i for i, d in enumerate(dims) if d.kind != CATEGORICAL and d.low != d.high]
    if fixed > budget:
        raise ValueError(f"--trials {budget} is fewer than the {fixed} combinations of the categorical dimensions")
    if free:
        limits = [_max_points(dims[i]) for i in free]
        shapes = list(_shapes(budget // fixed, limits))
        largest = max(math.prod(c) for c in shapes)
        near = [c for c in shapes if math.prod(c) >= 0.9 * largest]
        best = max(near, key=lambda c: (max(c) <= 2 * min(c), math.prod(c), -max(c) / min(c), c))
        for i, count in zip(free, best):
            counts[i] = count
    return counts


def _shapes(budget: int, limits: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every tuple of counts (each within its limit) whose product is <= budget."""
    if not limits:
        yield ()
        return
    for count in range(1, min(budget, limits[0]) + 1):
        for rest in _shapes(budget // count, limits[1:]):
            yield (count, *rest)


def _max_points(dim: Dimension) -> int:
    return int(dim.high - dim.low) + 1 if dim.kind == INT else 10**9


def dimension_points(dim: Dimension, count: int) -> list[Any]:
    """`count` evenly spaced values over the range (geometrically for log ranges), ends included."""
    if dim.kind == CATEGORICAL:
        return list(dim.choices)
    if count == 1 or dim.low == dim.high:
        center = math.sqrt(dim.low * dim.high) if dim.log else (dim.low + dim.high) / 2
        values = [center]
    elif dim.log:
        ratio = math.log(dim.high / dim.low)
        values = [dim.low * math.exp(ratio * i / (count - 1)) for i in range(count)]
    else:
        values = [dim.low + (dim.high - dim.low) * i / (count - 1) for i in range(count)]
    if dim.kind == INT:
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.6g}") for v in values]


def grid_points(budget: int, dims: Sequence[Dimension]) -> list[dict[str, Any]]:
    """The grid (cartesian product) with at most `budget` points; see :func:`grid_shape`."""
    axes = [dimension_points(d, n) for d, n in zip(dims, grid_shape(budget, dims))]
    points: list[dict[str, Any]] = [{}]
    for dim, axis in zip(dims, axes):
        points = [{**p, dim.name: v} for p in points for v in axis]
    return points


# --- coarse-to-fine --------------------------------------------------------------------------


def narrow(dims: Sequence[Dimension], best: Sequence[dict[str, Any]], margin: float = 0.25) -> list[Dimension]:
    """The next round's space: each range shrunk to span the `best` trials' values, plus a margin.

    For a float/int dimension the new range is [min, max] of the best values widened by `margin`
    times its width on each side (in log space for log ranges; a single best value is widened by
    `margin` of the old width), then clipped to the old range. Categoricals stay as they are:
    Optuna requires the same choices in one study.
    """
    if not best:
        return list(dims)
    narrowed = []
    for dim in dims:
        if dim.kind == CATEGORICAL or dim.low == dim.high:
            narrowed.append(dim)
            continue
        to_axis = math.log if dim.log else (lambda v: v)
        from_axis = math.exp if dim.log else (lambda v: v)
        values = [to_axis(p[dim.name]) for p in best if dim.name in p]
        low_old, high_old = to_axis(dim.low), to_axis(dim.high)
        spread = max(values) - min(values) or (high_old - low_old)
        low = max(low_old, min(values) - margin * spread)
        high = min(high_old, max(values) + margin * spread)
        low, high = from_axis(low), from_axis(high)
        if dim.kind == INT:
            low, high = math.floor(low + 1e-9), math.ceil(high - 1e-9)
        else:
            low, high = max(dim.low, float(f"{low:.6g}")), min(dim.high, float(f"{high:.6g}"))
        narrowed.append(replace(dim, low=low, high=high))
    return narrowed


def space_text(dims: Sequence[Dimension]) -> list[str]:
    """The dimensions as ``--space`` strings (round trip through :func:`parse_space`)."""
    return [str(d) for d in dims]
