"""What `pip install netdsl` gives a user: the wheel, installed in a fresh venv, run elsewhere.

The wheel is built from a copy of the checkout (the build writes build/ and *.egg-info) without
build isolation, and installed with --no-deps into a venv that sees this environment's
packages, so no network is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import ROOT

pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
SOURCES = ("netdsl", "grammars", "specs", "pyproject.toml", "README.md", "LICENSE")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a venv with the freshly built wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                        if (ROOT / name).is_dir() else {}))
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    wheel = next((tmp / "dist").glob("netdsl-*.whl"))
    venv.create(tmp / "venv", system_site_packages=True, with_pip=False)
    python = tmp / "venv" / "bin" / "python"
    # --ignore-installed: the venv sees this environment's packages, netdsl's checkout among
    # them when it is installed editable; the wheel must still go into the venv
    subprocess.run([*pip, "--python", str(python), "install", "-q", "--no-deps",
                    "--ignore-installed", str(wheel)],
                   check=True, capture_output=True, text=True, env=_ENV)
    return python.parent


# without PYTHONPATH: a checkout on it would shadow the installed wheel being tested
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(bindir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True,
                          cwd=cwd, env=_ENV)


def test_wheel_ships_specs_and_license(installed: Path, tmp_path: Path) -> None:
    r = run(installed, "python", "-c", "import netdsl, netdsl.shipped as s; "
            "print(netdsl.__file__); print(s.specs_dir()); print(' '.join(s.names()))",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    module, specs, names = r.stdout.splitlines()
    venv_dir = installed.parent
    assert Path(module).is_relative_to(venv_dir)  # the wheel's copy, not the checkout
    assert Path(specs).is_relative_to(venv_dir) and (Path(specs) / "lib" / "resnet.net").is_file()
    assert names.split() == sorted(p.stem for p in (ROOT / "specs").glob("*.net"))
    licenses = list(venv_dir.glob("lib/python*/site-packages/netdsl-*.dist-info/licenses/LICENSE"))
    assert licenses and "MIT License" in licenses[0].read_text()


def test_compile_a_shipped_spec_by_name_from_another_directory(installed: Path,
                                                               tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    r = run(installed, "netdsl", "compile", "resnet50", "-o", "r50.onnx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "wrote r50.onnx: 25,557,032 params" in r.stdout  # torchvision's ResNet-50 count
    assert (tmp_path / "r50.onnx").stat().st_size > 100e6


def test_include_a_shipped_library_by_name(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.net").write_text('include "resnet"\ninput 3x32x32\nconv3-16 +bn +relu\n'
                                       'basic(16) ×3\ngap; FC-10\n')
    r = run(installed, "netdsl", "check", "mine.net", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "mine.net: ok (" in r.stdout


def test_wheel_ships_every_subpackage(installed: Path, tmp_path: Path) -> None:
    """Every package of the checkout imports from the wheel (netdsl.importer was missing from
    setuptools' package list, shipped only as package data)."""
    packages = sorted(p.parent.relative_to(ROOT).as_posix().replace("/", ".")
                      for p in (ROOT / "netdsl").rglob("__init__.py"))
    r = run(installed, "python", "-c", "import importlib; [importlib.import_module(m) for m in "
            f"{packages!r}]; import netdsl.importer.recognize", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
