"""The documented examples run: the README's Python session and every docstring example."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import netdsl

from .conftest import ROOT

NEEDS_TORCH = "# needs PyTorch"  # in the README: this example and the rest need PyTorch


def _run(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures: list[str] = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)


def test_readme_python_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.M | re.S)
    sessions = [b for b in blocks if b.startswith(">>> ")]
    assert sessions, "the README lost its Python example"
    monkeypatch.chdir(tmp_path)  # it writes files, and loads the specs by name
    for text in sessions:
        test = doctest.DocTestParser().get_doctest(text, {}, "README.md", "README.md", 0)
        if importlib.util.find_spec("torch") is None:
            cut = next((i for i, e in enumerate(test.examples) if NEEDS_TORCH in e.source),
                       len(test.examples))
            test.examples = test.examples[:cut]
        _run(test)
    assert (tmp_path / "cifar.dot").read_text().startswith("digraph")


def _modules() -> list[str]:
    found = (m.name for m in pkgutil.walk_packages(netdsl.__path__, "netdsl."))
    return ["netdsl", *(n for n in found if n != "netdsl.__main__")]  # that one runs the CLI


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    for test in tests:
        if test.examples:
            _run(test)


def test_the_docstring_examples_exist() -> None:
    found = [t.name for name in _modules()
             for t in doctest.DocTestFinder().find(importlib.import_module(name)) if t.examples]
    assert "netdsl" in found and "netdsl.network.Network.summary" in found
