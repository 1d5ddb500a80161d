"""``optimlab benchmark``: AlgoPerf's rules at laptop scale (workloads with fixed validation
targets, an equal declared tuning budget per optimizer, time to target on two clocks,
performance profiles). See docs/benchmark.md."""

from .leaderboard import format_leaderboard, leaderboard
from .run import run_benchmark
from .targets import Target, derive_target, time_to_target
from .workloads import NOTES_OPTIMIZERS, SCALES, WORKLOADS, workloads_for

__all__ = ["run_benchmark", "leaderboard", "format_leaderboard", "Target", "derive_target", "time_to_target",
           "WORKLOADS", "SCALES", "NOTES_OPTIMIZERS", "workloads_for"]
