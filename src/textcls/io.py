"""Atomic file and directory output: an interrupted stage never leaves a file DVC would trust."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # left by a run killed with SIGKILL
        remove(stale)
    if is_dir:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and ``os.replace``."""
    path = Path(path)
    tmp = _tmp_sibling(path, is_dir=False)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """JSON with ``indent=2, sort_keys=True`` (stable diffs), written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def remove(path: str | Path) -> None:
    """Remove a file or directory tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory that replaces ``path`` only if the block succeeds.

    On any exception the temp directory is deleted and ``path`` is left absent
    (a stale output from an earlier run is removed first, so nothing half-valid remains).
    """
    path = Path(path)
    remove(path)
    tmp = _tmp_sibling(path, is_dir=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextlib.contextmanager
def atomic_outputs(*paths: str | Path) -> Iterator[None]:
    """Remove ``paths`` before the block and again if it fails: all-or-nothing outputs for a stage.

    Each file inside should itself be written with :func:`write_text`/:func:`atomic_dir`.
    """
    for p in paths:
        remove(p)
    try:
        yield
    except BaseException:
        for p in paths:
            remove(p)
        raise
