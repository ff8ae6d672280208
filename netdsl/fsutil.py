"""Atomic output: write a temp file in the target directory, then rename over the target.

An error or an interrupt leaves the previous file intact and no temporary behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import NetdslError


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise NetdslError("output path is a directory", path=str(target),
                          hint="give a file name, e.g. -o model.onnx")
    if not parent.is_dir():
        raise NetdslError("output directory does not exist", path=str(target),
                          hint=f"create {parent} first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=parent)
    except OSError as e:
        raise NetdslError(f"cannot write here: {e.strerror}", path=str(target),
                          hint="choose a writable output directory") from None
    os.close(fd)
    tmp_path = Path(tmp)
    _set_mode(tmp_path, target)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _set_mode(tmp: Path, target: Path) -> None:
    """mkstemp creates 0600 files: give the result the target's mode, or the umask default."""
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def write_durably(tmp: Path, write: Callable[[BinaryIO], object], target: str | Path) -> None:
    """Call ``write(f)`` on ``tmp`` and flush it to disk; errors name ``target``."""
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise NetdslError(f"cannot write: {e.strerror}", path=str(target)) from None


def atomic_write(target: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file and move it onto ``target`` when it returns."""
    with atomic_path(target) as tmp:
        write_durably(tmp, write, target)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write(target, lambda f: f.write(text.encode("utf-8")))
