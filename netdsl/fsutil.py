"""Atomic output: write a temp file in the target directory, then rename over the target.

An error or an interrupt leaves the previous file intact and no temporary behind. The policy
for what is there already (README, "Outputs"):

* only a regular file is replaced: a directory, device, FIFO or socket is refused;
* a symlink is written through: its target gets the new content, the link stays;
* the replaced file keeps its mode, owner and group; where the rename cannot keep them (a
  file with other hard links, one owned by a user this process cannot chown to), the new
  content, complete in the temporary first, is copied into the file itself;
* temporaries are named ``.NAME.PID.XXXXXXXX[.suffix].tmp``: one whose process is gone
  (killed by SIGKILL) is removed by the next write to the same target.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import NetdslError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """'a directory', 'a FIFO', … for a file mode that is not a regular file's."""
    return next((k for test, k in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path) -> BinaryIO:
    """Open a file for reading only if it is a regular file, without ever blocking.

    The type is read from the opened descriptor, so a file swapped after an earlier check
    cannot slip through; O_NONBLOCK makes opening a FIFO return at once instead of waiting
    for a writer forever. Raises IsADirectoryError / OSError(kind) for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"is {kind_of(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def resolve_target(target: str | Path) -> Path:
    """The file a write to ``target`` replaces: symlinks followed; refused unless it is a
    regular file or does not exist yet in an existing directory."""
    name = str(target)
    if not name:
        raise NetdslError("the output file name is empty", path="netdsl",
                          hint="give a file name, e.g. -o model.onnx")
    try:
        real = Path(os.path.realpath(target))
    except (OSError, ValueError) as e:  # a symlink loop, a NUL in the name
        raise NetdslError(f"cannot resolve the output path: {e}", path=name) from None
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise NetdslError(f"cannot write here: {e.strerror}", path=name) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise NetdslError(f"the output path is {kind_of(st.st_mode)}: netdsl only replaces "
                          "regular files", path=name, hint="give a file name, e.g. -o model.onnx")
    if not real.parent.is_dir():
        raise NetdslError("output directory does not exist", path=name,
                          hint=f"create {Path(name).parent} first")
    return real


def refuse_inputs(target: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse to write ``target`` when it is one of ``inputs`` (the same file, by inode)."""
    try:
        out = os.stat(target)
    except (OSError, ValueError):
        return  # does not exist yet (or resolve_target reports it)
    for src in inputs:
        try:
            st = os.stat(src)
        except (OSError, ValueError):
            continue
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            same = "" if str(src) == str(target) else f" (the same file as {src})"
            raise NetdslError(f"the output is one of the inputs{same}: refusing to overwrite it",
                              path=str(target), hint="choose another output name with -o")


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``."""
    real = resolve_target(target)
    _remove_stale(real, suffix)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.{os.getpid()}.", suffix=suffix + ".tmp",
                                   dir=real.parent)
    except OSError as e:
        raise NetdslError(f"cannot write here: {e.strerror}", path=str(target),
                          hint="choose a writable output directory") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        keep = _take_over(tmp_path, real)
        yield tmp_path
        if keep:
            os.replace(tmp_path, real)
        else:
            _copy_into(tmp_path, real, str(target))
            tmp_path.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _take_over(tmp: Path, real: Path) -> bool:
    """Give the temporary the target's mode, owner and group (or the umask default for a new
    file); False when renaming it over the target would lose something (see module doc)."""
    try:
        st = real.stat()
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~umask)
        return True
    if st.st_nlink > 1:
        return False
    try:
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
    except OSError:
        return False
    return True


def _copy_into(tmp: Path, real: Path, name: str) -> None:
    try:
        with open(tmp, "rb") as src, open(real, "r+b") as dst:
            dst.truncate(0)
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as e:
        raise NetdslError(f"cannot write: {e.strerror}", path=name) from None


def _remove_stale(real: Path, suffix: str) -> None:
    """Remove temporaries of this target left by writers that were killed (SIGKILL, a crash)."""
    pattern = re.compile(rf"\.{re.escape(real.name)}\.(\d+)\.\w{{8}}{re.escape(suffix)}\.tmp")
    try:
        names = os.listdir(real.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if not m or _alive(int(m.group(1))):
            continue
        p = real.parent / name
        with contextlib.suppress(OSError):
            st = p.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                p.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True  # another write of this process (external data beside its model)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
