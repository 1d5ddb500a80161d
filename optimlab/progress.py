"""Progress of long runs: a live rich bar with ETA on a terminal, periodic lines otherwise.

    with progress_reporter("compare digits-mlp", total=1200, unit="steps") as progress:
        for ...:
            progress.advance(1, status="loss 0.31")
        progress.note("adam seed 0: final train loss 0.12")   # a line above the bar / in the log

The kind follows the stream (stderr by default): a TTY gets a transient rich bar (done/total,
elapsed, ETA, status); anything else (a log file, CI, a pipe) gets one line every
``interval`` seconds (default 10, or ``$OPTIMLAB_PROGRESS_SECONDS``) and a last line at the end:

    compare digits-mlp: 600/1200 steps (50%), 12 s elapsed, ETA 12 s, adam:lr=0.003 seed 1

ETA = elapsed * (total - done) / done. ``quiet=True`` prints nothing. The bar is redrawn at most
every 0.1 s, so advancing it every optimizer step costs a clock read.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Callable

DEFAULT_INTERVAL = 10.0
REFRESH_SECONDS = 0.1


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """The no-op reporter (``quiet``); the others share its interface."""

    def __init__(self, title: str, total: int | None = None, unit: str = "steps") -> None:
        self.title, self.total, self.unit = title, total, unit
        self.done = 0
        self.status: str | Callable[[], str] = ""
        self.started = time.perf_counter()

    def set_total(self, total: int) -> None:
        self.total = total

    def advance(self, count: int = 1, status: str | Callable[[], str] | None = None) -> None:
        """``count`` more units done; ``status``: text (or a function making it, called only when
        the progress is drawn, so a per-step status costs nothing between redraws)."""
        self.done += count
        if status is not None:
            self.status = status
        self._show(final=False)

    def status_text(self) -> str:
        return self.status() if callable(self.status) else self.status

    def note(self, text: str) -> None:
        """A line of its own (a finished run's result), printed above the bar."""

    def eta(self) -> float | None:
        """Seconds left, extrapolated from the rate so far (None before the first unit)."""
        if not self.total or self.done <= 0:
            return None
        return (time.perf_counter() - self.started) * max(0, self.total - self.done) / self.done

    def _show(self, final: bool) -> None:
        pass

    def close(self) -> None:
        self._show(final=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LineProgress(Progress):
    """One line every ``interval`` seconds, and one at the end, for logs and pipes."""

    def __init__(self, title: str, total: int | None = None, unit: str = "steps", stream: IO[str] | None = None,
                 interval: float | None = None) -> None:
        super().__init__(title, total, unit)
        self.stream = stream or sys.stderr
        self.interval = interval if interval is not None else _env_interval()
        self.last_printed = self.started
        self.printed_done = -1

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = self.eta()
        tail = f", ETA {format_seconds(eta)}" if eta is not None and self.done < (self.total or 0) else ""
        status = f", {self.status_text()}" if self.status else ""
        return f"{self.title}: {count} {self.unit}{percent}, {format_seconds(elapsed)} elapsed{tail}{status}"

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _show(self, final: bool) -> None:
        now = time.perf_counter()
        if final or now - self.last_printed >= self.interval:
            if final and self.done == self.printed_done:
                return  # the closing line would repeat the count already printed
            print(self.line(), file=self.stream, flush=True)
            self.last_printed, self.printed_done = now, self.done


class BarProgress(Progress):
    """A transient rich bar: title, bar, done/total, elapsed, ETA and the status text."""

    def __init__(self, title: str, total: int | None = None, unit: str = "steps",
                 stream: IO[str] | None = None) -> None:
        super().__init__(title, total, unit)
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = RichProgress(TextColumn("{task.fields[title]}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                TextColumn("{task.description}"), console=Console(file=stream or sys.stderr),
                                transient=True)
        self.bar.start()
        self.task_id = self.bar.add_task("", total=total, title=title)
        self.last_drawn = 0.0

    def set_total(self, total: int) -> None:
        super().set_total(total)
        self.bar.update(self.task_id, total=total)

    def note(self, text: str) -> None:
        self.bar.console.print(text, markup=False, highlight=False)

    def _show(self, final: bool) -> None:
        now = time.perf_counter()
        if final or now - self.last_drawn >= REFRESH_SECONDS:
            self.last_drawn = now
            self.bar.update(self.task_id, completed=self.done, description=self.status_text())

    def close(self) -> None:
        self._show(final=True)
        self.bar.stop()


def progress_reporter(title: str, total: int | None = None, *, unit: str = "steps", quiet: bool = False,
                      stream: IO[str] | None = None, interval: float | None = None) -> Progress:
    """A bar on a terminal, periodic lines elsewhere, nothing when ``quiet`` (a context manager)."""
    if quiet:
        return Progress(title, total, unit)
    stream = stream or sys.stderr
    if _is_terminal(stream):
        return BarProgress(title, total, unit, stream)
    return LineProgress(title, total, unit, stream, interval)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _env_interval() -> float:
    text = os.environ.get("OPTIMLAB_PROGRESS_SECONDS")
    if not text:
        return DEFAULT_INTERVAL
    try:
        return max(0.0, float(text))
    except ValueError:
        raise ValueError(f"OPTIMLAB_PROGRESS_SECONDS={text!r} must be a number of seconds") from None


class StepCounter:
    """Engine callback: advances a reporter by one per optimizer step, with the run as status."""

    reads_weights = False  # the engine need not swap in a schedule-free optimizer's average for it

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label = progress, label
        self.steps = 0

    def __call__(self, event: str, state: Any) -> None:
        if event == "step_end":
            self.steps += 1
            loss = state.row.get("loss", float("nan"))
            self.progress.advance(1, status=lambda: f"{self.label}, loss {loss:.4g}")


__all__ = ["progress_reporter", "Progress", "LineProgress", "BarProgress", "StepCounter", "format_seconds"]
