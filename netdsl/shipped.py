"""The specs netdsl ships: the reference networks and their block libraries, by name.

A wheel carries the repository's ``specs/`` as ``netdsl/specs`` (package data), so
``netdsl compile resnet50`` and ``include "resnet"`` work after ``pip install netdsl``.
A local file always wins: a name is looked up in netdsl's copy only when no such file exists.
"""

from __future__ import annotations

import functools
from pathlib import Path

SUFFIX = ".net"


@functools.cache
def specs_dir() -> Path:
    """The directory of the shipped specs (its ``lib/`` holds the block libraries).

    The installed package data, or the source checkout's ``specs/``. Code that confines
    ``include`` to trusted directories allows this one.
    """
    here = Path(__file__).resolve().parent
    if (here / "specs").is_dir():
        return here / "specs"
    return here.parent / "specs"  # a source checkout (pyproject.toml beside netdsl/)


def _candidates(name: str) -> list[str]:
    return [name] if name.endswith(SUFFIX) else [name, name + SUFFIX]


def _inside(root: Path, name: str) -> Path | None:
    """``root/name`` (or ``root/name.net``) when it is a file within ``root``."""
    for cand in _candidates(name):
        p = (root / cand).resolve()
        if p.is_file() and p.is_relative_to(root.resolve()):
            return p
    return None


def find_spec(name: str) -> str | None:
    """Where ``netdsl CMD NAME`` reads its spec when ``NAME`` is not a file: ``NAME.net`` here,
    then the shipped ``NAME`` / ``NAME.net`` (``resnet50``, ``examples/alexnet-224``)."""
    if not name.endswith(SUFFIX) and Path(name + SUFFIX).is_file():
        return name + SUFFIX
    found = _inside(specs_dir(), name) if name else None
    return str(found) if found else None


def find_include(base: Path, name: str) -> Path:
    """The file ``include "name"`` in a spec in directory ``base`` reads: ``name`` (or
    ``name.net``) relative to ``base``; else the shipped ``lib/name``, then the shipped
    ``name``. When none exists: ``base/name``, for the error message."""
    for cand in _candidates(name):
        if (base / cand).is_file():
            return (base / cand).resolve()
    for root in (specs_dir() / "lib", specs_dir()):
        found = _inside(root, name)
        if found:
            return found
    return (base / name).resolve()


def library_names() -> list[str]:
    """The shipped block libraries, by the name ``include`` takes."""
    return sorted(p.stem for p in (specs_dir() / "lib").glob("*" + SUFFIX))


def names() -> list[str]:
    """The shipped reference specs, by the name that loads them."""
    return sorted(p.stem for p in specs_dir().glob("*" + SUFFIX))
