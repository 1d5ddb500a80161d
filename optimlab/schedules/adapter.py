"""``LRSchedule(optimizer, schedule)``: drive any optimizer with a schedule, torch LRScheduler style.

Works with optimlab's and torch.optim's optimizers alike: it only writes ``group["lr"]``. Its
state is the step (``last_epoch``) and the base lrs, so resuming recomputes the lr from the step
instead of replaying updates (torch's recursive schedulers break on resume and composition:
pytorch #72874, #160626).
"""

from __future__ import annotations

from typing import Any, Callable

from torch.optim import Optimizer

Schedule = Callable[[float], float]


class LRSchedule:
    """Sets ``group['lr'] = base_lr * schedule(step)`` for every group; torch LRScheduler conventions.

    The lr for the first step is set at construction (``last_epoch = 0``), and each ``step()``
    after ``optimizer.step()`` advances it, as with torch's schedulers.
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule | str, last_epoch: int = -1) -> None:
        if isinstance(schedule, str):
            from .parse import parse_schedule

            schedule = parse_schedule(schedule)
        self.optimizer = optimizer
        self.schedule = schedule
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_last_lr(self) -> list[float]:
        """The lr of each group for the coming optimizer step."""
        return list(self._last_lr)

    def step(self) -> None:
        self.last_epoch += 1
        factor = self.schedule(self.last_epoch)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the lr is recomputed from the step, never replayed."""
        self.base_lrs = list(state["base_lrs"])
        self.last_epoch = state["last_epoch"] - 1
        self.step()

