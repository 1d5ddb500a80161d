"""The JSON API's request and response models (they are its OpenAPI schema) and its limits.

A request is validated at the door: the landscape spec must name a landscape and each of its
arguments (``noise`` too) is within its range; each optimizer may set only the hyperparameters of
its allowlist (:mod:`optimlab.web.allowlist`, with ranges: no ``fused``, no huge
``history_size``), and is then built once on a dummy parameter so the shared validators of
:mod:`optimlab.optim.validate` judge the values; the schedule is parsed; numbers must be finite;
texts, lists and the work are capped (steps, optimizers). Any failure is a 422 whose
``message`` is one short line per bad field, never an echo of a big input.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..optim.registry import create, get_entry
from ..schedules import parse_schedule
from ..spec import Spec
from .allowlist import MAX_NOISE, MAX_TEXT, check_landscape, check_optimizer, short

MAX_STEPS = 5000
MAX_OPTIMIZERS = 8
MAX_SECONDS = 10.0  # wall-clock budget of one /api/trace request
MAX_COORDINATE = 1e6
MIN_RESOLUTION, MAX_RESOLUTION = 16, 301
MAX_HYPERPARAMETERS = 16
MAX_LIST = 16  # entries of a list value (betas, milestones)
MAX_BODY_BYTES = 64 * 1024  # a request body; a scene is a few hundred bytes

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# bool before int before float: a JSON `true` stays a bool, `3` an int, `0.5` a float.
HyperValue = Union[bool, int, FiniteFloat, list[int], list[FiniteFloat], str]


def plain_value(key: Any, value: Any) -> Any:
    """One hyperparameter value as JSON gives it, checked for shape: true/false, a finite number,
    a short list of finite numbers, or a short text. One message per bad value."""
    if not isinstance(key, str) or not key or len(key) > MAX_TEXT:
        raise ValueError(f"hyperparameter name {short(key)} must be 1 to {MAX_TEXT} characters")
    if isinstance(value, (bool, int)) or isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return value
    if isinstance(value, list) and len(value) <= MAX_LIST and all(
            isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and math.isfinite(v) for v in value):
        return value
    raise ValueError(f"{key}={short(value)} must be true/false, a finite number, a list of at most {MAX_LIST} "
                     f"finite numbers, or a text of at most {MAX_TEXT} characters")


class SpecModel(BaseModel):
    """A named thing with keyword arguments, e.g. ``{"name": "momentum", "hyperparameters": {"lr": 0.05}}``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$")
    hyperparameters: dict[str, HyperValue] = Field(default_factory=dict, max_length=MAX_HYPERPARAMETERS)

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _plain_values(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic says "should be a valid dictionary"
        if len(value) > MAX_HYPERPARAMETERS:
            raise ValueError(f"at most {MAX_HYPERPARAMETERS} hyperparameters, got {len(value)}")
        return {key: plain_value(key, v) for key, v in value.items()}

    def to_spec(self) -> Spec:
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in self.hyperparameters.items()}
        return Spec(self.name.lower(), kwargs)


class OptimizerRequest(SpecModel):
    label: str | None = Field(default=None, max_length=60, description="name shown in the legend")

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        get_entry(value)
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _allowlisted(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is None:
            return value  # the name's own error is reported
        return check_optimizer(name, value)

    @model_validator(mode="after")
    def _builds(self) -> "OptimizerRequest":
        # Build it once on a dummy parameter: the optimizer's own validators judge the values.
        try:
            create(self.to_spec(), [torch.zeros(2, requires_grad=True)])
        except TypeError as error:
            raise ValueError(f"optimizer {self.name!r}: {error}") from None
        return self


class ScheduleRequest(SpecModel):
    @model_validator(mode="after")
    def _parses(self) -> "ScheduleRequest":
        try:
            parse_schedule(self.to_spec())
        except TypeError as error:
            raise ValueError(f"schedule {self.name!r}: {error}") from None
        return self


class TraceRequest(BaseModel):
    """One scene: a landscape, a start point, optimizers, an lr schedule, gradient noise, steps."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "landscape": "rosenbrock", "start": [-1.5, 2.0], "steps": 200,
        "optimizers": [{"name": "momentum", "hyperparameters": {"lr": 0.001, "momentum": 0.9}},
                       {"name": "adam", "hyperparameters": {"lr": 0.05}}],
        "schedule": None, "noise": 0.0, "seed": 0}]})

    landscape: str = Field(min_length=1, max_length=120, description="landscape spec, e.g. 'rosenbrock'")
    optimizers: list[OptimizerRequest] = Field(min_length=1, max_length=MAX_OPTIMIZERS)
    steps: int = Field(default=100, ge=1, le=MAX_STEPS)
    start: list[Annotated[FiniteFloat, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]] | None = Field(
        default=None, max_length=2, description="start point (landscape default when null)")
    schedule: ScheduleRequest | None = Field(default=None, description="lr schedule (constant when null)")
    noise: FiniteFloat = Field(default=0.0, ge=0.0, le=MAX_NOISE,
                               description="std of Gaussian gradient noise (default: the landscape spec's noise=)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    tol: FiniteFloat = Field(default=1e-6, gt=0.0, le=1.0, description="gradient-norm tolerance for 'converged'")

    @field_validator("landscape")
    @classmethod
    def _known_landscape(cls, value: str) -> str:
        check_landscape(value)
        return value

    @model_validator(mode="after")
    def _start_and_noise(self) -> "TraceRequest":
        from ..landscapes import get_landscape

        landscape = get_landscape(self.landscape)
        if self.start is not None and len(self.start) != landscape.dim:
            raise ValueError(f"start={self.start} has {len(self.start)} coordinates; "
                             f"landscape {self.landscape!r} is {landscape.dim}-D")
        if not self.noise and landscape.noise:
            self.noise = landscape.noise  # the noise the run uses, so the response reports it
        return self


class TraceResult(BaseModel):
    """One optimizer's trajectory, column by column (row 0 is the start)."""

    label: str
    spec: str
    outcome: str
    outcome_text: str
    diverged_at: int | None
    steps_run: int
    stopped_early: bool = Field(description="true when the time budget cut the run short (or skipped it)")
    seconds: float
    x: list[list[float | None]]
    f: list[float | None]
    grad_norm: list[float | None]
    lr: list[float | None]


class Limits(BaseModel):
    max_steps: int
    max_optimizers: int
    max_seconds: float = Field(description="wall-clock budget of one request, shared by its optimizers")


class TraceResponse(BaseModel):
    landscape: str
    dim: int
    start: list[float]
    steps: int
    noise: float
    schedule: str | None
    traces: list[TraceResult]
    truncated: bool = Field(description="true when the time budget cut any run short")
    elapsed_seconds: float
    limits: Limits


class CriticalPointModel(BaseModel):
    x: list[float]
    f: float | None
    kind: str


class LandscapeSummary(BaseModel):
    name: str
    spec: str
    dim: int
    formula: str
    description: str
    start: list[float]
    domain: list[list[float]] = Field(description="[[xmin, xmax]] (1-D) or [[xmin, xmax], [ymin, ymax]]")
    minima: list[CriticalPointModel] = Field(description="the known minima inside the domain")
    global_min: float | None = Field(description="the lowest value f takes anywhere (None: unbounded below)")


class SurfaceResponse(LandscapeSummary):
    """The landscape sampled on a grid (2-D: z[j][i] = f(x[i], y[j]); 1-D: z[i] = f(x[i]))."""

    x: list[float]
    y: list[float] | None
    z: list[Any]
    f_star: float | None = Field(description="lowest known minimum value in the domain (None: none known)")
    critical_points: list[CriticalPointModel] = Field(description="from optimlab.analysis.critical_points")


class HyperparameterInfo(BaseModel):
    name: str
    default: Any
    kind: str  # "float", "int", "bool", "pair", "list" (numbers separated by '/') or "text"
    required: bool = False


class OptimizerInfo(BaseModel):
    name: str
    class_name: str
    description: str
    needs_closure: bool
    hyperparameters: list[HyperparameterInfo]


class ScheduleInfo(BaseModel):
    name: str
    description: str
    hyperparameters: list[HyperparameterInfo]
