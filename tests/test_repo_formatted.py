"""The repository's own specs and documents pass `netdsl fmt --check`, as .ci/run checks and as
the README advises any project using netdsl to check in CI."""

from __future__ import annotations

import pytest

from netdsl.fmt import format_source
from netdsl.network import read_spec

from .conftest import ROOT

FILES = sorted([*(ROOT / "specs").rglob("*.net"), ROOT / "README.md",
                *(ROOT / "docs").glob("*.md"), *(ROOT / "docs").glob("*.tex")])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_formatted(path) -> None:
    text = read_spec(path)
    rel = path.relative_to(ROOT)
    assert format_source(text, str(rel)) == text, f"run: netdsl fmt -w {rel}"


def test_ci_checks_the_same_files() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "netdsl fmt --check specs/*.net specs/*/*.net README.md docs/*.md docs/*.tex" in ci
    assert not list((ROOT / "specs").glob("*/*/*.net")), "a deeper spec: extend .ci/run's glob"
