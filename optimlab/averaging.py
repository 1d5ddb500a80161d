"""Parameter averaging (EMA/Polyak, SWA), snapshot and seed ensembles, prediction averaging.

* ``EMA(model, decay=0.999, start=0)``: w_avg <- decay * w_avg + (1 - decay) * w after each
  update from step ``start`` on (before it, and at its first update, w_avg = w), parameters and
  floating-point buffers (BatchNorm running stats) alike; integer buffers are copied
  (torch ``AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)``).
* ``SWA(model, start=0)``: the equal-weight running mean w_avg <- w_avg + (w - w_avg) / (n + 1)
  of the weights seen from step ``start`` on (torch ``AveragedModel``'s default).
* ``with averager.averaged(model): evaluate(model)`` swaps the averaged weights in and restores
  the raw ones bit for bit afterwards.
* ``SnapshotEnsemble``: state dicts collected at the ends of warm-restart cycles (Huang et al.,
  "Snapshot ensembles: train 1, get M for free"); ``predict_ensemble`` averages the predictions
  of snapshots or of independently trained models (seed ensembles).
* ``average_predictions``: classification: the mean of the softmax probabilities (its log is
  returned, so it can be fed to argmax and to a cross-entropy on log-probabilities);
  regression: the mean output.

The EMA update is ``optimlab.optim.rules.ema_`` (a ``lerp_``), shared with the optimizers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from .optim.rules import ema_
from .optim.validate import check_positive_int, check_unit_interval
from .spec import Spec, parse_spec

TASK_KINDS = ("classification", "regression")


def averaged_tensors(model: nn.Module, buffers: bool = True) -> dict[str, Tensor]:
    """The tensors an averager tracks: named parameters, then named buffers when ``buffers``."""
    tensors = dict(model.named_parameters())
    if buffers:
        tensors.update(model.named_buffers())
    return tensors


class ParameterAverager:
    """Base of EMA and SWA: a running average of a model's weights, updated after optimizer steps.

    ``update(model)`` counts one step (the first call is step 0); from step ``start`` on, every
    ``every``-th step is blended in by ``blend_``; the first blended step copies the weights.
    """

    def __init__(self, model: nn.Module, *, start: int = 0, every: int = 1, buffers: bool = True) -> None:
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start={start!r} must be a non-negative integer")
        self.start = start
        self.every = check_positive_int("every", every)
        self.buffers = bool(buffers)
        self.average = {name: t.detach().clone() for name, t in averaged_tensors(model, self.buffers).items()}
        self.step = 0
        self.count = 0

    def blend_(self, average: Tensor, value: Tensor) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimizer step)."""
        current = averaged_tensors(model, self.buffers)
        before_start = self.step < self.start
        due = not before_start and (self.step - self.start) % self.every == 0
        if before_start or due:
            for name, average in self.average.items():
                value = current[name].detach()
                if before_start or self.count == 0 or not average.is_floating_point():
                    average.copy_(value)  # before start the average tracks the raw weights
                else:
                    self.blend_(average, value)
        self.count += int(due)
        self.step += 1

    @contextlib.contextmanager
    def averaged(self, model: nn.Module) -> Iterator[nn.Module]:
        """Evaluate ``model`` with the averaged weights inside the block; the raw ones come back exactly."""
        with swapped_weights(model, self.average):
            yield model

    def state_dict(self) -> dict[str, Any]:
        return {"average": {k: v.clone() for k, v in self.average.items()}, "step": self.step, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, value in state["average"].items():
            self.average[name].copy_(value)
        self.step, self.count = int(state["step"]), int(state["count"])


class EMA(ParameterAverager):
    """Exponential moving average (Polyak averaging with exponential weights) of the weights.

    w_avg_t = decay * w_avg_{t-1} + (1 - decay) * w_t; its effective window is 1 / (1 - decay) steps.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, *, start: int = 0, every: int = 1,
                 buffers: bool = True) -> None:
        self.decay = check_unit_interval("decay", decay, closed_right=True)
        super().__init__(model, start=start, every=every, buffers=buffers)

    def blend_(self, average: Tensor, value: Tensor) -> None:
        ema_(average, value, self.decay)


class SWA(ParameterAverager):
    """Stochastic weight averaging: the equal-weight mean of the n weights seen so far.

    w_avg_n = w_avg_{n-1} + (w_n - w_avg_{n-1}) / n, i.e. an EMA with decay (n - 1) / n.
    """

    def blend_(self, average: Tensor, value: Tensor) -> None:
        ema_(average, value, self.count / (self.count + 1))


AVERAGERS = {"ema": EMA, "swa": SWA}


def parse_averager(spec: str | Spec, model: nn.Module) -> ParameterAverager:
    """``ema:decay=0.999,start=100`` or ``swa:start=500,every=10`` -> an averager of ``model``."""
    parsed = parse_spec(spec, "averaging spec") if isinstance(spec, str) else spec
    if parsed.name not in AVERAGERS:
        raise ValueError(f"unknown averaging {parsed.name!r}; choose one of: {', '.join(AVERAGERS)}")
    try:
        return AVERAGERS[parsed.name](model, **parsed.kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments for averaging {parsed.name!r}: {error}") from None


@contextlib.contextmanager
def swapped_weights(model: nn.Module, weights: Mapping[str, Tensor]) -> Iterator[nn.Module]:
    """Copy ``weights`` (a subset of the model's state) into the model; restore the originals exactly."""
    tensors = averaged_tensors(model)
    unknown = set(weights) - set(tensors)
    if unknown:
        raise ValueError(f"weights for {sorted(unknown)!r} do not belong to the model")
    raw = {name: tensors[name].detach().clone() for name in weights}
    try:
        with torch.no_grad():
            for name, value in weights.items():
                tensors[name].copy_(value)
        yield model
    finally:
        with torch.no_grad():
            for name, value in raw.items():
                tensors[name].copy_(value)


def snapshot_of(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the model's parameters and buffers (what a snapshot ensemble stores)."""
    return {name: t.detach().clone() for name, t in averaged_tensors(model).items()}


class SnapshotEnsemble:
    """Snapshots of one training run, taken at the given steps (the ends of warm-restart cycles)."""

    def __init__(self, steps: Sequence[int] = ()) -> None:
        self.steps = set(steps)
        self.snapshots: list[dict[str, Tensor]] = []
        self.taken_at: list[int] = []

    def maybe_collect(self, model: nn.Module, step: int) -> bool:
        """Take a snapshot if ``step`` (0-based index of the optimizer step just done) is a cycle end."""
        if step not in self.steps:
            return False
        self.collect(model, step)
        return True

    def collect(self, model: nn.Module, step: int) -> None:
        self.snapshots.append(snapshot_of(model))
        self.taken_at.append(step)

    def __len__(self) -> int:
        return len(self.snapshots)


def average_predictions(outputs: Sequence[Tensor], kind: str) -> Tensor:
    """Combine the outputs of ensemble members.

    classification: log of the mean of softmax(logits) over members (argmax gives the ensemble's
    class; it is a valid log-probability); regression: the mean output.
    """
    if kind not in TASK_KINDS:
        raise ValueError(f"kind={kind!r} must be one of: {', '.join(TASK_KINDS)}")
    if not outputs:
        raise ValueError("an ensemble needs at least one member")
    stacked = torch.stack([out.detach() for out in outputs])
    if kind == "regression":
        return stacked.mean(dim=0)
    return stacked.softmax(dim=-1).mean(dim=0).log()


@torch.no_grad()
def _predict(model: nn.Module, inputs: Tensor, batch_size: int) -> Tensor:
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])
    finally:
        model.train(was_training)


def predict_ensemble(
    members: Sequence[nn.Module | Mapping[str, Tensor]],
    inputs: Tensor,
    kind: str,
    *,
    model: nn.Module | None = None,
    batch_size: int = 4096,
) -> Tensor:
    """Averaged prediction of ensemble members: models (seed ensembles) or snapshots of ``model``.

    A snapshot member is swapped into ``model`` for its forward pass; ``model``'s weights are
    restored exactly afterwards. Models run in eval mode.
    """
    outputs = []
    for member in members:
        if isinstance(member, nn.Module):
            outputs.append(_predict(member, inputs, batch_size))
        else:
            if model is None:
                raise ValueError("snapshot members need the model they were taken from (model=...)")
            with swapped_weights(model, member):
                outputs.append(_predict(model, inputs, batch_size))
    return average_predictions(outputs, kind)
