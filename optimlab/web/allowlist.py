"""What a web request may set: each optimizer's hyperparameters with their ranges, and each landscape's arguments.

The library accepts everything torch does (``fused``, ``foreach``, ``capturable``, huge
``history_size``...); a request over the network may only touch the hyperparameters a playground
needs, within ranges that keep one request cheap. Anything else is a 422 naming the field.

Entries for optimizers that are not in :data:`optimlab.optim.registry.OPTIMIZERS` are ignored (the
table also covers optimizers other branches add: torch's NAdam, RAdam, Adamax, Adadelta,
Adafactor, ASGD, Rprop, Muon; Lion, schedule-free AdamW/SGD, AdEMAMix, SOAP, with the argument
names of torch and of their reference packages). A registered optimizer without an entry may set
only ``lr``. The optimizer's own validators still run after this check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_NOISE = 100.0  # std of the gradient noise, request field or landscape argument
MAX_TEXT = 40  # a name or a text value


def short(value: Any, limit: int = MAX_TEXT) -> str:
    """repr(value), cut to `limit` characters (a message never echoes a big input)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number:
    """A finite number in [low, high]; ``integer``: a whole number (5.0 counts, 5.5 does not)."""

    low: float
    high: float
    integer: bool = False

    def check(self, name: str, value: Any) -> Any:
        kind = "an integer" if self.integer else "a finite number"
        if not _is_number(value) or isinstance(value, float) and not math.isfinite(value) \
                or not self.low <= value <= self.high or (self.integer and value != int(value)):
            raise ValueError(f"{name}={short(value)} must be {kind} in [{self.low:g}, {self.high:g}]")
        return int(value) if self.integer else value


@dataclass(frozen=True)
class Flag:
    """true or false (JSON booleans only: "no" is not false)."""

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}={short(value)} must be true or false")
        return value


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]

    def check(self, name: str, value: Any) -> str:
        if value not in self.values:
            raise ValueError(f"{name}={short(value)} must be one of: {', '.join(self.values)}")
        return value


@dataclass(frozen=True)
class Numbers:
    """A fixed-length list, one :class:`Number` per entry (``betas``: [beta1, beta2])."""

    entries: tuple[Number, ...]

    def check(self, name: str, value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)) or len(value) != len(self.entries):
            raise ValueError(f"{name}={short(value)} must be a list of {len(self.entries)} numbers")
        return [entry.check(f"{name}[{i}]", v) for i, (entry, v) in enumerate(zip(self.entries, value))]


LR = Number(0.0, 1e3)
UNIT = Number(0.0, 1.0)  # momentum, betas, rho, alpha of RMSProp... (the optimizer refines: [0, 1))
EPS = Number(0.0, 1.0)
WEIGHT_DECAY = Number(0.0, 10.0)
BETAS = Numbers((UNIT, UNIT))
STEPS = Number(0, 5000, integer=True)

_SGD = {"lr": LR, "momentum": UNIT, "dampening": UNIT, "weight_decay": WEIGHT_DECAY, "nesterov": Flag()}
_ADAM = {"lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WEIGHT_DECAY, "amsgrad": Flag()}
_SCHEDULE_FREE = {"lr": LR, "weight_decay": WEIGHT_DECAY, "warmup_steps": STEPS, "r": Number(0.0, 10.0),
                  "weight_lr_power": Number(0.0, 10.0)}

OPTIMIZER_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "gd": _SGD, "sgd": _SGD, "momentum": _SGD, "nesterov": _SGD,
    "adagrad": {"lr": LR, "lr_decay": Number(0.0, 10.0), "weight_decay": WEIGHT_DECAY,
                "initial_accumulator_value": Number(0.0, 1e3), "eps": EPS, "eps_inside_sqrt": Flag()},
    "rmsprop": {"lr": LR, "alpha": UNIT, "eps": EPS, "weight_decay": WEIGHT_DECAY, "momentum": UNIT,
                "centered": Flag(), "eps_inside_sqrt": Flag()},
    "adam": {**_ADAM, "decoupled_weight_decay": Flag()},
    "adamw": _ADAM,
    "newton": {"lr": Number(0.0, 10.0), "damping": Number(0.0, 1e6), "mode": Choice(("saddle_free", "plain")),
               "max_params": Number(1, 2000, integer=True)},
    "lbfgs": {"lr": Number(0.0, 10.0), "max_iter": Number(1, 20, integer=True), "max_eval": Number(1, 100, integer=True),
              "tolerance_grad": EPS, "tolerance_change": EPS, "history_size": Number(1, 100, integer=True),
              "line_search_fn": Choice(("strong_wolfe",))},
    # torch.optim
    "nadam": {"lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WEIGHT_DECAY, "momentum_decay": UNIT,
              "decoupled_weight_decay": Flag()},
    "radam": {"lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WEIGHT_DECAY, "decoupled_weight_decay": Flag()},
    "adamax": {"lr": LR, "betas": BETAS, "eps": EPS, "weight_decay": WEIGHT_DECAY},
    "adadelta": {"lr": LR, "rho": UNIT, "eps": EPS, "weight_decay": WEIGHT_DECAY},
    "adafactor": {"lr": LR, "beta2_decay": Number(-1.0, 0.0), "d": Number(0.0, 1e3), "weight_decay": WEIGHT_DECAY},
    "asgd": {"lr": LR, "lambd": UNIT, "alpha": Number(0.0, 10.0), "t0": Number(0.0, 1e6), "weight_decay": WEIGHT_DECAY},
    "rprop": {"lr": LR, "etas": Numbers((UNIT, Number(1.0, 10.0))), "step_sizes": Numbers((Number(0.0, 1e3),) * 2)},
    "muon": {"lr": LR, "weight_decay": WEIGHT_DECAY, "momentum": UNIT, "nesterov": Flag(),
             "ns_steps": Number(1, 10, integer=True), "adjust_lr_fn": Choice(("original", "match_rms_adamw")),
             "adamw_lr": LR, "adamw_betas": BETAS, "adamw_eps": EPS, "adamw_weight_decay": WEIGHT_DECAY},
    # reference packages: lion-pytorch, schedulefree, pytorch_optimizer
    "lion": {"lr": LR, "betas": BETAS, "weight_decay": WEIGHT_DECAY, "decoupled_weight_decay": Flag()},
    "sf-adamw": {**_SCHEDULE_FREE, "betas": BETAS, "eps": EPS},
    "sf-sgd": {**_SCHEDULE_FREE, "momentum": UNIT},
    "ademamix": {"lr": LR, "betas": Numbers((UNIT, UNIT, UNIT)), "weight_decay": WEIGHT_DECAY, "weight_decouple": Flag(),
                 "fixed_decay": Flag(), "alpha": Number(0.0, 100.0), "t_alpha_beta3": STEPS, "eps": EPS},
    "soap": {"lr": LR, "betas": BETAS, "shampoo_beta": UNIT, "eps": EPS, "weight_decay": WEIGHT_DECAY,
             "precondition_frequency": Number(1, 1000, integer=True), "max_precondition_dim": Number(1, 10000, integer=True),
             "merge_dims": Flag(), "precondition_1d": Flag(), "correct_bias": Flag(), "normalize_gradient": Flag()},
}
ONLY_LR = {"lr": LR}

LANDSCAPE_ARGUMENTS: dict[str, dict[str, Number]] = {
    "xcos": {"c": Number(0.01, 100.0)},
    "cosh": {"c": Number(0.01, 10.0)},
    "quadratic": {"kappa": Number(1e-6, 1e6)},
}
NOISE = Number(0.0, MAX_NOISE)


def optimizer_hyperparameters(name: str) -> dict[str, Any]:
    """The allowlist of a registered optimizer (``{"lr": ...}`` for one without an entry)."""
    return OPTIMIZER_HYPERPARAMETERS.get(name.lower(), ONLY_LR)


def adjustable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The optimizer catalogue (``/api/optimizers`` rows) with only the hyperparameters a request may set."""
    return [{**row, "hyperparameters": [hp for hp in row["hyperparameters"]
                                        if hp["name"] in optimizer_hyperparameters(row["name"])]} for row in rows]


def check_optimizer(name: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters, checked against the allowlist of registered optimizer `name`; ValueError names the bad one."""
    from ..optim.registry import get_entry

    entry = get_entry(name)
    allowed = optimizer_hyperparameters(entry.name)
    checked = {}
    for key, value in hyperparameters.items():
        if key not in allowed:
            raise ValueError(f"unknown hyperparameter {short(key)} for {entry.name} (the playground sets only: "
                             f"{', '.join(allowed)})")
        checked[key] = allowed[key].check(key, value)
    return checked


def landscape_argument(name: str, value: Any, landscape: str) -> Any:
    """A landscape argument as a number: 'pi/4', '0.15*pi' (or the parser's ('pi', 4)) become floats."""
    from ..landscapes import _check_positive

    if _is_number(value):
        return value
    try:
        return _check_positive(name, value, landscape)
    except ValueError:
        return value  # not a number: the range check below says so


def check_landscape(spec: str) -> Any:
    """The landscape of `spec`, every argument (``noise`` included) within its range; ValueError otherwise."""
    from ..landscapes import LANDSCAPES, get_landscape
    from ..spec import parse_spec

    parsed = parse_spec(spec, "landscape spec")
    name = parsed.name.lower()
    if name not in LANDSCAPES:
        return get_landscape(parsed)  # raises: unknown landscape
    allowed = {**LANDSCAPE_ARGUMENTS.get(name, {}), "noise": NOISE}
    for key, value in parsed.kwargs.items():
        if key in allowed:
            allowed[key].check(key, landscape_argument(key, value, name))
    return get_landscape(parsed)
