"""``--task package.module:function`` (or ``path/to/file.py:function``): a user's task for the CLI.

The function is called with no arguments and must return a task: an
:class:`optimlab.tasks.LoaderTask` (model factory + DataLoaders) or a :class:`optimlab.tasks.Task`.
A module is imported with the current directory on ``sys.path`` (as ``python -m`` does); a file
path is loaded as a module of its own. A bad path, a missing function or a function that
returns something else is one line (ValueError) naming what is wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

TASK_ATTRIBUTES = ("name", "num_train", "default_batch_size", "default_epochs", "make_model", "objective",
                   "evaluate", "loss_fn", "metric", "metric_name", "kind")
FORM = "package.module:function or path/to/file.py:function"


def is_task_reference(text: str) -> bool:
    """Whether ``text`` names a function (``module:function``) rather than a built-in task spec."""
    target, colon, function = text.rpartition(":")
    return bool(colon and target and re.fullmatch(r"[A-Za-z_]\w*", function)
                and (re.fullmatch(r"[A-Za-z_][\w.]*", target) or target.endswith(".py") or "/" in target))


def load_task_reference(text: str) -> Any:
    """Import the module or file, call the function, check that it returned a task."""
    target, _, function_name = text.rpartition(":")
    if not target or not re.fullmatch(r"[A-Za-z_]\w*", function_name):
        raise ValueError(f"--task {text!r} must look like {FORM}")
    module = _load_file(text, target) if target.endswith(".py") or "/" in target else _import(text, target)
    function = getattr(module, function_name, None)
    if function is None:
        raise ValueError(f"--task {text!r}: {target} has no function {function_name!r}")
    if not callable(function):
        raise ValueError(f"--task {text!r}: {function_name} is a {type(function).__name__}, not a function")
    task = function()
    missing = [name for name in TASK_ATTRIBUTES if not hasattr(task, name)]
    if missing:
        raise ValueError(f"--task {text!r}: {function_name}() returned {type(task).__name__}, not a task "
                         f"(return optimlab.tasks.LoaderTask(model=..., train=..., ...); missing {missing[0]!r})")
    if isinstance(getattr(task, "options", None), dict):
        task.options.setdefault("task_function", text)
    return task


def _import(text: str, target: str) -> Any:
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name and (target == error.name or target.startswith(error.name + ".")):
            raise ValueError(f"--task {text!r}: no module named {error.name!r} (from the current directory "
                             f"or the installed packages)") from None
        raise


def _load_file(text: str, target: str) -> Any:
    path = Path(target).expanduser()
    if not path.is_file():
        raise ValueError(f"--task {text!r}: no file {str(path)!r}")
    name = "optimlab_user_task_" + re.sub(r"\W", "_", str(path.resolve()))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"--task {text!r}: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def resolve_task(name: str, **options: Any) -> Any:
    """A built-in task name/spec (``get_task(name, **options)``) or a ``module:function`` reference."""
    from .registry import get_task

    if is_task_reference(name):  # never a valid task spec: a spec's arguments are key=value
        return load_task_reference(name)
    return get_task(name, **options)


__all__ = ["load_task_reference", "is_task_reference", "resolve_task"]
