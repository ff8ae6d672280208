"""Shipped specs by name: `netdsl check resnet50`, `include "resnet"`; a local file wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from netdsl.shipped import names, specs_dir

from .conftest import ROOT

TINY = "network tiny\ninput 3x8x8\nconv3-4\n"


def netdsl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def test_the_checkout_is_the_shipped_directory() -> None:
    assert specs_dir() == ROOT / "specs"
    assert "resnet50" in names() and "lib" not in names()


def test_a_shipped_spec_by_name_from_another_directory(tmp_path: Path) -> None:
    r = netdsl("check", "resnet50", "examples/alexnet-224", "vgg16.net", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resnet50: ok (174 layers, 25,557,032 params" in r.stdout
    assert "examples/alexnet-224: ok" in r.stdout and "vgg16.net: ok" in r.stdout


def test_a_local_file_wins_over_a_shipped_spec(tmp_path: Path) -> None:
    (tmp_path / "resnet50.net").write_text(TINY)
    r = netdsl("check", "resnet50", cwd=tmp_path)
    assert r.returncode == 0 and "resnet50: ok (1 layer, 112 params" in r.stdout, r.stderr


def test_include_order_local_then_shipped_library(tmp_path: Path) -> None:
    spec = tmp_path / "mine.net"
    spec.write_text('include "resnet"\ninput 3x8x8\nbasic(4)\n')
    r = netdsl("check", "mine.net", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "resnet.net").write_text("block basic(c) {\n    conv1-c\n}\n")  # local wins
    r = netdsl("check", "mine.net", cwd=tmp_path)
    assert r.returncode == 0 and "(1 layer, 16 params" in r.stdout, r.stderr


def test_an_unknown_name_lists_the_shipped_specs(tmp_path: Path) -> None:
    r = netdsl("check", "resnet51", cwd=tmp_path)
    assert r.returncode == 1
    assert "resnet51: error: no such file, nor a spec netdsl ships" in r.stderr
    assert "hint: netdsl ships: alexnet, " in r.stderr and ", resnet50, " in r.stderr
    r = netdsl("check", "no/such.net", cwd=tmp_path)  # a path: the plain message
    assert r.returncode == 1 and "no/such.net: error: no such file" in r.stderr


def test_a_shipped_name_cannot_escape_the_shipped_directory(tmp_path: Path) -> None:
    r = netdsl("check", "../pyproject.toml", cwd=tmp_path)
    assert r.returncode == 1 and "no such file" in r.stderr


def test_empty_and_directory_names_get_hints_that_fit(tmp_path: Path) -> None:
    r = netdsl("check", "", cwd=tmp_path)
    assert r.returncode == 1 and "'': error: empty file name" in r.stderr
    assert "/*.net" not in r.stderr
    (tmp_path / "inc.net").write_text('include "/"\ninput 3x8x8\nrelu\n')
    r = netdsl("check", "inc.net", cwd=tmp_path)
    assert r.returncode == 1 and 'cannot include "/": it is outside' in r.stderr
    assert "hint: copy the library next to the spec" in r.stderr  # never echoes the file
