"""Checks of output paths, run before any work so that a bad ``--out`` fails in the first second.

``check_output_dir("report/x", "--out")`` passes when the folder exists and is writable, or can be
created (its nearest existing ancestor is a writable folder); otherwise one ValueError line says
why: a part of the path is a regular file, or a folder is not writable.
"""

from __future__ import annotations

import os
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder that exists or can be created, writable; else ValueError naming ``option``."""
    folder = Path(path).expanduser()
    if not str(path).strip():
        raise ValueError(f"{option} is empty")
    existing = _nearest_existing(folder.absolute())
    if not existing.is_dir():
        raise ValueError(f"{option} {str(path)!r}: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(path)!r}: folder {str(existing)!r} is not writable")
    return folder


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a file that can be written (its folder exists or can be created); not a folder."""
    target = Path(path).expanduser()
    if not str(path).strip():
        raise ValueError(f"{option} is empty")
    if target.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a folder, not a file")
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{option} {str(path)!r} is not writable")
    check_output_dir(target.absolute().parent, option)
    return target
