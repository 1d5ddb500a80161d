"""Spec strings for schedules: ``name:key=value,...`` plus keys that compose with any schedule.

    cosine:total=1000,warmup=100          linear warmup over 100 steps, then cosine over 1000
    step:every=10,factor=0.5              halve the lr every 10 steps
    step:every=10,factor=0.5,unit=epoch   ... every 10 epochs (steps_per_epoch from the caller)
    cosine_restarts:period=5,mult=2,steps_per_epoch=50,smooth=true

Keys any schedule accepts: ``warmup`` (steps, or epochs with unit=epoch), ``warmup_start``
(the factor at step 0, default 0), ``unit`` (``step`` or ``epoch``), ``steps_per_epoch``
(implies unit=epoch), ``smooth`` (with epochs: follow the fractional epoch instead of a staircase).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ..spec import Spec, parse_bool, parse_spec
from .adapter import Schedule
from .compose import InEpochs, Warmup
from .cyclic import CosineRestarts, Cyclic, OneCycle
from .decay import Constant, Cosine, Exponential, InverseTime, Linear, MultiStep, Polynomial, StepDecay

SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": Constant,
    "step": StepDecay,
    "multistep": MultiStep,
    "exponential": Exponential,
    "inverse_time": InverseTime,
    "polynomial": Polynomial,
    "cosine": Cosine,
    "cosine_restarts": CosineRestarts,
    "cyclic": Cyclic,
    "onecycle": OneCycle,
    "linear": Linear,
}

UNITS = ("step", "epoch")
COMPOSING_KEYS = ("warmup", "warmup_start", "unit", "steps_per_epoch", "smooth")


def parse_schedule(spec: str | Spec | Schedule | None, *, steps_per_epoch: int | None = None) -> Schedule:
    """A schedule from a spec string such as ``"cosine:total=1000,warmup=100"`` (None: constant).

    ``steps_per_epoch`` is the caller's epoch length, used when the spec says ``unit=epoch``; a
    ``steps_per_epoch`` key in the spec takes precedence. A callable is returned unchanged.
    """
    if spec is None:
        return Constant()
    if callable(spec) and not isinstance(spec, (str, Spec)):
        return spec
    parsed = parse_spec(spec, "schedule spec") if isinstance(spec, str) else spec
    kwargs = dict(parsed.kwargs)
    warmup = kwargs.pop("warmup", None)
    warmup_start = kwargs.pop("warmup_start", 0.0)
    epoch_length = kwargs.pop("steps_per_epoch", None)
    smooth = parse_bool("smooth", kwargs.pop("smooth", False))
    unit = kwargs.pop("unit", "epoch" if epoch_length is not None else "step")
    if unit not in UNITS:
        raise ValueError(f"unit={unit!r} must be one of: {', '.join(UNITS)}")
    if "warmup_start" in parsed.kwargs and not warmup:
        raise ValueError("warmup_start is the factor at step 0 of a warmup: give warmup=W as well")
    if smooth and unit != "epoch":
        raise ValueError("smooth=true follows the fractional epoch: give unit=epoch or steps_per_epoch=N as well")
    schedule = _build(parsed.name, kwargs)
    if warmup:
        schedule = Warmup(schedule, warmup, warmup_start)
    if unit == "epoch":
        epoch_length = epoch_length if epoch_length is not None else steps_per_epoch
        if epoch_length is None:
            raise ValueError(f"schedule {str(parsed)!r} counts epochs: give steps_per_epoch=N")
        schedule = InEpochs(schedule, epoch_length, bool(smooth))
    return schedule


def _build(name: str, kwargs: dict[str, Any]) -> Schedule:
    try:
        factory = SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}") from None
    allowed = schedule_arguments(name)
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        raise ValueError(f"unknown argument {unknown[0]!r} for schedule {name!r}; allowed: "
                         f"{', '.join([*allowed, *COMPOSING_KEYS])}")
    parameters = inspect.signature(factory).parameters
    for key in kwargs:  # flags (three_phase=...): true/false/1/0 only, never a truthy string
        if isinstance(parameters[key].default, bool) or str(parameters[key].annotation) == "bool":
            kwargs[key] = parse_bool(key, kwargs[key])
    try:
        return factory(**kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments for schedule {name!r}: {error}") from None


def schedule_arguments(name: str) -> list[str]:
    """The keyword arguments schedule ``name`` takes itself (besides :data:`COMPOSING_KEYS`)."""
    parameters = inspect.signature(SCHEDULES[name]).parameters.values()
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
