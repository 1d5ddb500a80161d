"""Try many bad inputs across the CLI and the Python API and classify each answer (issue 16).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bad_inputs.py --json benchmarks/results/bad_inputs.json

Every case is an input a user could type that must NOT run as asked: a value out of range, a flag
that is not true/false/1/0, a path that cannot be written, a database that cannot be opened, a
size that would take the machine. Each answer is classified as

- ``clear``: a one-line error (CLI: exit status 2, stderr's last line "optimlab ...: error: ..." or
  argparse's "usage + error"; API: a ValueError with a one-line message), or for the "honest
  outcome" cases a result that says what happened (e.g. outcome ``unstable``);
- ``unclear``: an error, but a traceback, several lines or another exception type;
- ``accepted``: it ran as if nothing were wrong (exit 0, or an API call that returned).

CLI cases call ``optimlab.cli.main(argv)`` with stdout/stderr captured, each in a forked child
with an address-space limit and a time limit (a case that runs past it did what was asked:
accepted; one that dies took the machine: unclear); a verb that would train is given a tiny
budget, so an accepted case costs about a second. The non-clear cases are printed as they come. The web API
section posts bad bodies through FastAPI's TestClient when fastapi/httpx are installed.
Writes JSON (machine, counts, every case) and prints the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
CASE_SECONDS = 60.0  # a case still running after this was accepted (it is doing what was asked)


class CaseTimeout(BaseException):
    """Raised by the alarm inside a case that ran past CASE_SECONDS."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise CaseTimeout


@contextlib.contextmanager
def time_limit(seconds: float):  # noqa: ANN201
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


@dataclass
class Outcome:
    section: str
    case: str
    verdict: str  # clear, unclear, accepted
    answer: str  # the error line, or what happened


# -- running one case ---------------------------------------------------------------------------

def run_cli(argv: list[str]) -> tuple[str, str]:
    from optimlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(CASE_SECONDS):
            code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code if isinstance(exit_.code, int) else 2
    except CaseTimeout:
        return "accepted", f"still running after {CASE_SECONDS:g} s (stopped by this script)"
    except BaseException as error:  # noqa: BLE001 - a traceback is what this script looks for
        return "unclear", f"{type(error).__name__}: {str(error)[:200]} (traceback)"
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    if code == 0:
        return "accepted", (out.getvalue().strip().splitlines() or ["exit 0"])[-1][:200]
    if "Traceback" in text or not lines:
        return "unclear", (lines[-1] if lines else f"exit {code}, nothing on stderr")[:200]
    last = lines[-1]
    argparse_error = last.startswith(("optimlab", "usage:")) and ": error: " in last and lines[0].startswith("usage:")
    one_line = len(lines) == 1 and ": error: " in last
    return ("clear" if one_line or argparse_error else "unclear"), last[:200]


def run_api(call: Callable[[], Any], honest: Callable[[Any], bool] | None = None) -> tuple[str, str]:
    try:
        with time_limit(CASE_SECONDS):
            result = call()
    except CaseTimeout:
        return "accepted", f"still running after {CASE_SECONDS:g} s (stopped by this script)"
    except ValueError as error:
        message = str(error)
        return ("clear" if message and "\n" not in message else "unclear"), message[:200]
    except BaseException as error:  # noqa: BLE001
        return "unclear", f"{type(error).__name__}: {str(error)[:200]}"
    if honest is not None and honest(result):
        return "clear", f"ran and said so: {_describe(result)}"
    return "accepted", f"returned {_describe(result)}"


def isolated(case: Callable[[], tuple[str, str]], memory_bytes: int) -> tuple[str, str]:
    """Run one case in a forked child with an address-space limit, so that a case which takes the
    machine (a huge allocation, an abort inside a native library) is counted, not fatal."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report on the pipe, leave without cleanup handlers
        os.close(read_end)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            payload = json.dumps(list(case()))
        except BaseException as error:  # noqa: BLE001
            payload = json.dumps(["unclear", f"{type(error).__name__} (escaped the case runner)"])
        os.write(write_end, payload.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        return "unclear", f"the process died ({how}): it took the machine's memory or crashed"
    verdict, answer = json.loads(data)
    return verdict, answer


def _describe(result: Any) -> str:
    outcome = getattr(result, "outcome_text", None)
    return str(outcome if outcome is not None else type(result).__name__)[:200]


# -- the cases ------------------------------------------------------------------------------------

BAD_NUMBERS = ["-1", "nan", "inf", "-inf", "abc", "1e400", "true", "1/2"]
BAD_FLAGS = ["no", "yes", "maybe", "2", "0.5", "on", "-1"]
OPTIMIZER_NUMBERS = {
    "sgd": ["lr", "momentum", "dampening", "weight_decay"],
    "momentum": ["lr", "momentum", "weight_decay"],
    "nesterov": ["lr", "momentum"],
    "adagrad": ["lr", "lr_decay", "eps", "initial_accumulator_value", "weight_decay"],
    "rmsprop": ["lr", "alpha", "eps", "momentum", "weight_decay"],
    "adam": ["lr", "eps", "weight_decay", "betas"],
    "adamw": ["lr", "eps", "weight_decay", "betas"],
    "lbfgs": ["lr", "max_iter", "max_eval", "history_size", "tolerance_grad"],
    "newton": ["lr"],
}
OPTIMIZER_FLAGS = {"sgd": ["maximize", "nesterov"], "adam": ["amsgrad", "maximize"], "adamw": ["amsgrad", "maximize"],
                   "rmsprop": ["centered", "maximize"], "adagrad": ["maximize"]}
BAD_SCHEDULES = [
    "cosine", "cosine:total=0", "cosine:total=-5", "cosine:total=abc", "cosine:T_max=10", "cosine:total=10,final=-1",
    "cosine:total=10,final=nan", "step", "step:every=0", "step:every=10,factor=-1", "step:every=10,gamma=0.5",
    "step:every=1.5", "multistep:milestones=5/3", "multistep:milestones=0/3", "exponential", "exponential:gamma=2",
    "exponential:gamma=-0.5", "exponential:gamma=0.9,k=1", "exponential:k=-1", "inverse_time:k=-1",
    "polynomial:total=0", "polynomial:total=10,power=-1", "cosine_restarts:period=0", "cosine_restarts:period=5,mult=0",
    "cyclic:up=0", "cyclic:up=5,mode=zigzag", "onecycle:total=0", "onecycle:total=100,pct_start=2",
    "onecycle:total=100,anneal=cubic", "onecycle:total=100,three_phase=maybe", "linear:total=-1",
    "cosine:total=10,warmup=-1", "cosine:total=10,warmup=abc", "cosine:total=10,warmup_start=-1",
    "cosine:total=10,unit=fortnight", "step:every=2,unit=epoch", "step:every=2,steps_per_epoch=0",
    "step:every=2,steps_per_epoch=3,smooth=maybe", "nosuch:total=10", "", "cosine:total", "cosine:=3",
    "cosine:total=10,total=20", "9cosine", "cosine:total=" + "9" * 5000,
]
BAD_LANDSCAPES = [
    "nosuch", "quadratic:kappa=1e308", "quadratic:kappa=0", "quadratic:kappa=-1", "quadratic:kappa=abc",
    "quadratic:kappa=nan", "quadratic:kappa=1e-300", "cosh:c=1000", "cosh:c=-1", "cosh:c=0", "xcos:c=1e-12",
    "xcos:c=1e9", "xcos:c=pi/0", "bowl:noise=-1", "bowl:noise=nan", "bowl:noise=1e300", "bowl:noise=inf",
    "rosenbrock:a=1", "bowl:kappa=3", "quadratic:kappa=10,kappa=20", "quadratic:kappa=true",
]
BAD_TASKS = [
    "digits-mlp:hidden=0", "digits-mlp:hidden=-3", "digits-mlp:hidden=abc", "digits-mlp:hidden=1e9",
    "digits-mlp:hidden=true", "digits-mlp:depth=0", "digits-mlp:depth=abc", "digits-mlp:depth=1000",
    "digits-cnn:channels=0", "digits-cnn:channels=100000", "digits-softmax:l2=-1", "digits-softmax:l2=nan",
    "digits-softmax:l2=abc", "synthetic-linear:n=0", "synthetic-linear:n=-5", "synthetic-linear:n=1000000000",
    "synthetic-linear:d=100000,n=100000", "synthetic-linear:kappa=0.5", "synthetic-linear:kappa=abc",
    "synthetic-linear:kappa=1e300", "synthetic-linear:noise=-1", "synthetic-linear:noise=1e300",
    "digits-mlp:width=3", "nosuch-task", "digits-transformer", "mnist-mlp", "digits-mlp:hidden=64,hidden=32",
]


def optimizer_cases() -> list[tuple[str, Callable[[], Any]]]:
    import torch

    from optimlab.optim.registry import create

    def build(spec: str) -> Callable[[], Any]:
        return lambda: create(spec, [torch.zeros(3, requires_grad=True)])

    cases = []
    for name, keys in OPTIMIZER_NUMBERS.items():
        for key in keys:
            values = BAD_NUMBERS if key != "betas" else ["1/0.9", "0.9/1", "-0.1/0.9", "0.9", "0.9/0.99/0.999", "nan/0.9"]
            if key in ("max_iter", "max_eval", "history_size"):
                values = ["0", "-1", "1.5", "abc", "1000000000", "nan"]
            cases += [(f"{name}:{key}={value}", build(f"{name}:{key}={value}")) for value in values]
    for name, keys in OPTIMIZER_FLAGS.items():
        for key in keys:
            cases += [(f"{name}:{key}={value}", build(f"{name}:{key}={value}")) for value in BAD_FLAGS]
    cases += [(spec, build(spec)) for spec in ["nosuch", "adam:bogus=1", "adam:lr", "adam:lr=1,lr=2", "adam:",
                                               ":lr=1", "adam:lr=" + "1" * 5000, "sgd:nesterov=true",
                                               "lbfgs:line_search_fn=armijo", "adam:capturable=true"]]
    return cases


def api_cases(tmp: Path) -> list[tuple[str, Callable[[], Any], Callable[[Any], bool] | None]]:
    try:
        from optimlab.commands.report import parse_run_ranges
    except ImportError:  # the code before issue 16 (for a baseline run)
        from optimlab.commands.report import parse_run_ids as parse_run_ranges
    from optimlab.engine.compare import compare_optimizers
    from optimlab.engine.training import train
    from optimlab.engine.trajectory import run_trajectory
    from optimlab.landscapes import get_landscape
    from optimlab.schedules import parse_schedule
    from optimlab.spec import parse_spec
    from optimlab.store import Store
    from optimlab.tasks import get_task

    corrupt = tmp / "corrupt.db"
    corrupt.write_bytes(b"not sqlite" * 100)
    blocker = tmp / "blocker"
    blocker.write_text("x")
    cases: list[tuple[str, Callable[[], Any], Callable[[Any], bool] | None]] = []
    cases += [(f"parse_schedule({s[:40]!r})", (lambda s=s: parse_schedule(s)), None) for s in BAD_SCHEDULES]
    cases += [(f"get_landscape({s!r})", (lambda s=s: get_landscape(s)), None) for s in BAD_LANDSCAPES]
    cases += [(f"get_task({s!r})", (lambda s=s: get_task(s)), None) for s in BAD_TASKS]
    cases += [(f"parse_spec({s[:30]!r})", (lambda s=s: parse_spec(s)), None)
              for s in ["", "   ", "a b", "adam:lr=1e-3x,", "adam:=1", "adam:lr=nan", "adam:lr=inf", "x" * 2000,
                        "adam:lr=1,,", "adam;lr=1", "adam:1lr=3"]]
    cases += [(f"parse_run_ranges({s!r})", (lambda s=s: parse_run_ranges([s])), None)
              for s in ["0", "5-3", "-1", "a", "1-", "1--2", "99999999999999999999999", "1-2," * 1100, "", "3.5"]]
    cases += [
        ("Store(folder)", lambda: Store(tmp), None),
        ("Store(corrupt file)", lambda: Store(corrupt), None),
        ("Store(under a regular file)", lambda: Store(blocker / "x.db"), None),
        ("Store(missing folder)", lambda: Store(tmp / "no" / "x.db"), None),
        ("Store(missing, create=False)", lambda: Store(tmp / "typo.db", create=False), None),
        ("Store(unreachable PostgreSQL)", lambda: Store("postgresql://u:p@127.0.0.1:1/x"), None),
        ("Store(driver not installed)", lambda: Store("postgresql+pg8000://u@127.0.0.1/x"), None),
        ("Store(bad URL)", lambda: Store("nosuchdialect://x"), None),
        ("Store('')", lambda: Store(""), None),
        ("Store.export_csv(table=bogus)", lambda: Store(tmp / "ok.db").export_csv([], io.StringIO(), "bogus"), None),
        ("Store.load_run(999)", lambda: Store(tmp / "ok.db").load_run(999), None),
    ]
    unstable = (lambda trace: trace.outcome != "completed")
    cases += [
        ("train momentum=1.5 (loss grows)", lambda: train("momentum:lr=0.5,momentum=1.5", "digits-softmax", epochs=2),
         unstable),
        ("train(epochs=0)", lambda: train("sgd", "digits-softmax", epochs=0), None),
        ("train(epochs=nan)", lambda: train("sgd", "digits-softmax", epochs=float("nan")), None),
        ("train(batch_size=0)", lambda: train("sgd", "digits-softmax", batch_size=0), None),
        ("train(batch_size='half')", lambda: train("sgd", "digits-softmax", batch_size="half"), None),
        ("train(max_steps=-1)", lambda: train("sgd", "digits-softmax", max_steps=-1), None),
        ("train(max_seconds=0)", lambda: train("sgd", "digits-softmax", max_seconds=0), None),
        ("train(schedule='cosine:T_max=3')", lambda: train("sgd", "digits-softmax", schedule="cosine:T_max=3"), None),
        ("compare_optimizers(evals_per_epoch=0)",
         lambda: compare_optimizers(get_task("digits-softmax"), ["sgd"], seeds=1, epochs=1, evals_per_epoch=0), None),
        ("compare_optimizers(seeds=0)", lambda: compare_optimizers(get_task("digits-softmax"), ["sgd"], seeds=0), None),
        ("run_trajectory(steps=0)", lambda: run_trajectory("gd", "bowl", 0), None),
        ("run_trajectory(steps=-1)", lambda: run_trajectory("gd", "bowl", -1), None),
        ("run_trajectory(steps=10**12)", lambda: run_trajectory("gd", "bowl", 10**12), None),
        ("run_trajectory(noise=nan)", lambda: run_trajectory("gd", "bowl", 5, noise=float("nan")), None),
        ("run_trajectory(start=(nan, 0))", lambda: run_trajectory("gd", "bowl", 5, start=(float("nan"), 0.0)), None),
        ("run_trajectory(start 3-D on 2-D)", lambda: run_trajectory("gd", "bowl", 5, start=(1.0, 2.0, 3.0)), None),
        ("run_trajectory(gd:maximize=no)", lambda: run_trajectory("gd:maximize=no", "bowl", 5), None),
    ]
    return cases


def cli_cases(tmp: Path) -> list[list[str]]:
    db = str(tmp / "cli.db")
    blocker = tmp / "blocker-cli"
    blocker.write_text("x")
    corrupt = tmp / "corrupt-cli.db"
    corrupt.write_bytes(b"garbage" * 200)
    readonly = tmp / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    tiny = ["--seeds", "1", "--epochs", "1", "--no-report", "--quiet"]
    compare = ["compare", "digits-softmax", "--opt", "sgd"]
    cases: list[list[str]] = []

    def budget_without(option: str) -> list[str]:
        """The tiny budget, less the option under test (argparse keeps the last value given)."""
        pairs = [tiny[i:i + 2] for i in (0, 2)]
        return [x for pair in pairs if pair[0] != option for x in pair] + ["--no-report", "--quiet"]

    # compare: every option out of range, bad specs, bad paths
    for option, values in {"--threads": ["-1", "100000", "abc"], "--seeds": ["0", "-2", "100000000", "x"],
                           "--first-seed": ["-1"], "--epochs": ["0", "-1", "nan", "inf"],
                           "--evals-per-epoch": ["0", "-1", "100000"], "--max-steps": ["0", "-5"],
                           "--max-seconds": ["0", "nan", "-1"], "--batch-size": ["0", "-1", "half"],
                           "--limit": ["0", "-1"], "--l2": ["-1", "nan"], "--task-seed": ["abc"],
                           "--target": ["val_acc", "accuracy=0.9", "val_acc=abc"],
                           "--schedule": ["cosine:T_max=5", "nosuch", "cosine:total=0"],
                           "--average": ["ema:decay=2", "nosuch", "swa:start=-1"],
                           "--ensemble": ["seeds:0", "snapshot:cycles=0", "bagging:3"],
                           "--track": ["sharpness:every=0", "curvature"], "--init": ["nosuch", "normal:std=-1"]}.items():
        cases += [[*compare, option, value, "--db", db, *budget_without(option)] for value in values]
    for spec in ["sgd:lr=0.1,maximize=no", "nesterov:nesterov=no", "adam:amsgrad=maybe", "sgd:lr=-1",
                 "adam:betas=1/0.9", "sgd:batch_size=0", "sgd:epochs=-1", "nosuch", "sgd:lr=nan", "lbfgs:history_size=1e9"]:
        cases.append(["compare", "digits-softmax", "--opt", spec, "--db", db, *tiny])
    for task in ["digits-mlp:hidden=0", "digits-mlp:depth=abc", "synthetic-linear:n=1000000000", "nosuch-task",
                 "mnist-mlp", "digits-mlp:hidden=1e9"]:
        cases.append(["compare", task, "--opt", "sgd", "--db", db, *tiny])
    cases += [
        [*compare, "--seeds", "1", "--epochs", "1", "--db", db, "--out", str(blocker / "report")],
        [*compare, "--db", str(tmp), *tiny], [*compare, "--db", str(corrupt), *tiny],
        [*compare, "--db", str(tmp / "nofolder" / "x.db"), *tiny],
        [*compare, "--db", "postgresql://u:secret@127.0.0.1:1/x", *tiny],
        [*compare, "--db", "postgresql+pg8000://u@127.0.0.1/x", *tiny],
        [*compare, "--db", str(blocker / "x.db"), *tiny],
    ]
    if os.geteuid() != 0:  # root may write anywhere: the case would test nothing
        cases.append([*compare, "--seeds", "1", "--epochs", "1", "--db", db, "--out", str(readonly / "report")])
    # trace
    for extra in (["--steps", "0"], ["--steps", "-1"], ["--steps", "10000000000"], ["--tol", "0"], ["--tol", "nan"],
                  ["--noise", "-1"], ["--noise", "nan"], ["--start", "1,x"], ["--start", "1,2,3"], ["--start=nan,1"],
                  ["--out", "x.jpg"], ["--out", str(blocker / "t.png")], ["--out", str(tmp)],
                  ["--schedule", "cosine:T_max=1"], ["--seed", "abc"]):
        cases.append(["trace", "bowl", "--opt", "gd", *extra])
    for spec in ["gd:maximize=no", "momentum:nesterov=maybe", "gd:lr=-1", "adam:betas=0.9", "nosuch", "gd:bogus=1",
                 "adam:amsgrad=yes", "lbfgs:max_iter=0", "newton:lr=nan", "gd:lr=" + "1" * 3000]:
        cases.append(["trace", "bowl", "--opt", spec])
    cases += [["trace", landscape, "--opt", "gd"] for landscape in BAD_LANDSCAPES]
    cases.append(["trace", "bowl"])
    # schedule verb
    cases += [["schedule", spec] for spec in BAD_SCHEDULES if spec]
    cases += [["schedule", "constant", "--steps", v] for v in ("0", "-1", "10000000000")]
    cases += [["schedule", "constant", "--lr", v] for v in ("-1", "nan")]
    cases += [["schedule", "step:every=2,unit=epoch", "--steps-per-epoch", "0"], ["schedule"],
              ["schedule", "constant", "--out", str(blocker / "lr.png")]]
    # analyze
    cases += [["analyze", "bowl", "--grid", v] for v in ("1", "0", "1000000")]
    cases += [["analyze", "bowl", "--samples", v] for v in ("0", "100000000000")]
    cases += [["analyze", "nowhere"], ["analyze", "quadratic:kappa=abc"], ["analyze", "quadratic:kappa=1e308"]]
    # bench
    cases += [["bench", "step", "--device", d] for d in ("tpu", "cuda", "gpu", "cuda:abc")]
    cases += [["bench", "step", "--device", "cpu", *extra] for extra in (
        ["--big", "24"], ["--big", "0x10"], ["--big", "100000x100000000"], ["--small", "axb"], ["--layouts", "huge"],
        ["--algorithms", "lion"], ["--implementations", "jax"], ["--min-steps", "0"], ["--budget", "0"],
        ["--budget", "nan"], ["--out", str(blocker / "b.json")])]
    cases.append(["bench"])
    # runs / report: read-only, ids, paths
    missing = str(tmp / "typo.db")
    cases += [["runs", "--db", missing, "list"], ["runs", "--db", missing, "show", "1"],
              ["runs", "--db", missing, "export", "1", "--csv"], ["report", "1", "--db", missing],
              ["runs", "--db", str(corrupt), "list"], ["runs", "--db", str(tmp), "list"],
              ["runs", "--db", "postgresql://u@127.0.0.1:1/x", "list"], ["runs", "list", "--limit", "0"],
              ["runs", "list", "--limit", "-3"], ["runs", "show", "abc"], ["runs", "show", "0"],
              ["runs", "export", "1"], ["runs", "export", "--csv", "1", "--table", "bogus"]]
    for ids in ("0", "5-3", "abc", "1-99999999999999999999999", "-4", "1,,2", "1-2" + ",3" * 2000):
        cases += [["report", ids, "--db", db], ["runs", "--db", db, "export", ids, "--csv"]]
    cases += [["report", "--db", db], ["report", "--experiment", "nosuch", "--db", db],
              ["report", "1", "--db", db, "--out", str(blocker / "r")], ["report", "999999", "--db", db],
              ["report", "1-999999999", "--db", db, "--out", str(blocker / "r")],
              ["runs", "--db", db, "export", "1", "--csv", "-o", str(tmp)],
              ["runs", "--db", db, "export", "1", "--csv", "-o", str(blocker / "x.csv")]]
    # sweep (sizes and options checked before anything is planned)
    sweep = ["sweep", "digits-mlp", "--db", db, "--storage", str(tmp / "s.journal")]
    for option, values in {"--trials": ["0", "1000000000"], "--epochs": ["0", "100000000"], "--seeds": ["0"],
                           "--workers": ["0", "100000"], "--coarse-to-fine": ["0", "1000"], "--batch-size": ["0"],
                           "--within": ["nan", "-1"], "--slack": ["-1"], "--seed": ["-1"], "--sampler": ["bayes"],
                           "--pruner": ["hyperband"], "--objective": ["accuracy"], "--heartbeat": ["0"],
                           "--grace": ["0"]}.items():
        cases += [[*sweep, option, value] for value in values]
    cases += [[*sweep, "--space", space] for space in ("lr", "lr=log:0:1", "lr=log:1:1e-5", "lr=abc", "lr=1:0")]
    cases += [["sweep", "--resume"], ["sweep", "report"], ["sweep", "report", "a", "b"], ["sweep"],
              [*sweep[:2], "--opt", "nosuch", "--db", db, "--storage", str(tmp / "s2.journal")],
              ["sweep", "nosuch-task", "--db", db, "--storage", str(tmp / "s3.journal")],
              ["sweep", "digits-mlp", "--db", str(corrupt), "--storage", str(tmp / "s4.journal")]]
    # unknown verbs and options
    cases += [["nosuch"], ["list", "--bogus"], ["tasks", "--bogus"], ["landscapes", "extra"], ["demo", "--out",
              str(blocker / "demo")], ["reproduce", "nosuch"], ["serve", "--port", "-1"], ["serve", "--port", "99999999"]]
    return cases


def web_cases() -> list[tuple[str, dict[str, Any]]]:
    big = "x" * 200_000
    base = {"landscape": "rosenbrock", "optimizers": ["gd"], "steps": 10}
    bodies = [
        {**base, "steps": 0}, {**base, "steps": 10**9}, {**base, "steps": "many"}, {**base, "landscape": "nosuch"},
        {**base, "landscape": "quadratic:kappa=1e308"}, {**base, "landscape": "bowl:noise=1e300"},
        {**base, "optimizers": []}, {**base, "optimizers": ["gd"] * 100}, {**base, "optimizers": ["gd:maximize=no"]},
        {**base, "optimizers": ["adam:amsgrad=maybe"]}, {**base, "optimizers": ["lbfgs:history_size=1000000000"]},
        {**base, "optimizers": ["adam:fused=true"]}, {**base, "noise": -1}, {**base, "noise": 1e300},
        {**base, "start": [1e300, 0]}, {**base, "start": [1]}, {**base, "schedule": "cosine:T_max=3"},
        {**base, "seed": -1}, {**base, "landscape": big}, {**base, "optimizers": [big]}, {}, {"bogus": 1},
    ]
    return [(json.dumps(body)[:80], body) for body in bodies]


def run_web(outcomes: list[Outcome]) -> None:
    try:
        from fastapi.testclient import TestClient

        from optimlab.web.app import create_app
    except Exception as error:  # noqa: BLE001 - the web section is optional
        print(f"web section skipped: {error}", file=sys.stderr)
        return
    client = TestClient(create_app(), raise_server_exceptions=False)
    for label, body in web_cases():
        response = client.post("/api/trace", json=body)
        size = len(response.content)
        if response.status_code in (400, 413, 422) and size < 4000:
            verdict = "clear"
        elif response.status_code >= 400:
            verdict = "unclear"
        else:
            verdict = "accepted"
        outcomes.append(Outcome("web", label, verdict, f"HTTP {response.status_code}, {size} bytes"))


def main() -> int:
    global CASE_SECONDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "bad_inputs.json"),
                        help="write the cases and counts here")
    parser.add_argument("--no-web", action="store_true", help="skip the web API section")
    parser.add_argument("--case-seconds", type=float, default=CASE_SECONDS,
                        help="a case running longer is stopped and counted as accepted (default 60)")
    parser.add_argument("--memory-gb", type=float, default=16.0,
                        help="address-space limit of each case's process, so a case that would allocate a huge "
                             "list fails with MemoryError instead of taking the machine (default 16)")
    args = parser.parse_args()
    CASE_SECONDS = args.case_seconds
    limit = int(args.memory_gb * 2**30)

    def record(section: str, label: str, case: Callable[[], tuple[str, str]]) -> None:
        outcome = Outcome(section, label, *isolated(case, limit))
        outcomes.append(outcome)
        if outcome.verdict != "clear":
            print(f"{outcome.verdict:<9} [{section}] {label}\n          -> {outcome.answer}", file=sys.stderr, flush=True)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["OPTIMLAB_DB"] = str(tmp / "default.db")
        for label, call in optimizer_cases():
            record("api: optimizer spec", label, lambda call=call: run_api(call))
        for label, call, honest in api_cases(tmp):
            record("api", label, lambda call=call, honest=honest: run_api(call, honest))
        for argv in cli_cases(tmp):
            label = "optimlab " + " ".join(a if len(a) < 60 else a[:57] + "..." for a in argv)
            record("cli", label.replace(folder, "$TMP"), lambda argv=argv: run_cli(argv))
        if not args.no_web:
            run_web(outcomes)
        (tmp / "readonly").chmod(0o700)
    counts = {verdict: sum(o.verdict == verdict for o in outcomes) for verdict in ("clear", "unclear", "accepted")}
    by_section = {section: {verdict: sum(o.verdict == verdict and o.section == section for o in outcomes)
                            for verdict in counts} for section in dict.fromkeys(o.section for o in outcomes)}
    import subprocess

    import optimlab

    package = Path(optimlab.__file__).resolve().parent
    commit = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"optimlab": str(package), "commit": commit, "machine": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
              "device": "cpu", "seconds": round(time.perf_counter() - started, 1), "total": len(outcomes),
              "counts": counts, "by_section": by_section, "cases": [asdict(o) for o in outcomes]}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(outcomes)} bad inputs: {counts['clear']} clear one-line errors "
          f"({counts['clear'] / len(outcomes):.1%}), {counts['unclear']} unclear or tracebacks, "
          f"{counts['accepted']} accepted silently; by section: {json.dumps(by_section)}")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
