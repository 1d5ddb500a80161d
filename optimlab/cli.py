"""`optimlab <verb>`: every module in optimlab/commands/ that defines `register(subparsers)` is a verb.

A verb's `register` adds its subparser and sets ``func`` to a function ``(args) -> int``.
Errors a user can cause (bad specs, unknown names, paths that cannot be read or written, a
database that cannot be opened) print one line and exit with status 2. A verb module imports only
the standard library at import time (torch, Optuna, matplotlib when it runs), so `--help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optimlab",
        description="A laboratory for the optimization algorithms of deep learning.",
    )
    parser.add_argument("--version", action="version", version=f"optimlab {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"optimlab {args.verb}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"optimlab {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `optimlab ... | head`: the reader left; exit quietly as Unix tools do
        sys.stderr.close()
        return 141
    except OSError as error:  # a folder not writable, a disk full, ...: the path and the reason
        where = f"{error.filename}: " if error.filename else ""
        print(f"optimlab {args.verb}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except Exception as error:
        if type(error).__module__.split(".")[0] != "sqlalchemy":
            raise
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"optimlab {args.verb}: error: database: {reason}", file=sys.stderr)
        return 2


def _one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a multi-line message is joined with '; ')."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
