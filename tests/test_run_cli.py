"""`netdsl run`: progress on a terminal, what the weights are, and options it cannot use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytest.importorskip("onnxruntime")
pty = pytest.importorskip("pty", reason="the progress test needs a pseudo-terminal (POSIX)")


def netdsl(*args: str, cwd: Path = ROOT, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=cwd, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "lenet5.onnx"
    r = netdsl("compile", "specs/lenet5.net", "-o", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_progress_on_a_terminal() -> None:
    main, sub = pty.openpty()
    r = subprocess.run([sys.executable, "-m", "netdsl", "run", "specs/lenet5.net", "--repeat",
                        "3"], stdout=subprocess.PIPE, stderr=sub, text=True, cwd=ROOT)
    os.close(sub)
    shown = b""
    try:
        while chunk := os.read(main, 1 << 16):
            shown += chunk
    except OSError:  # Linux: EIO once the child's end is closed
        pass
    os.close(main)
    assert r.returncode == 0
    steps = shown.decode().split("\r\x1b[K")
    assert "netdsl run: compiling specs/lenet5.net…" in steps
    assert "netdsl run: warm-up run…" in steps and "netdsl run: timed run 1/3" in steps
    assert any(s.startswith("netdsl run: timed run 3/3, median so far") for s in steps)
    assert steps[-1] == ""  # the status line is cleared before the results
    assert "latency:" in r.stdout and "netdsl run:" not in r.stdout


def test_no_progress_when_stderr_is_not_a_terminal(lenet: Path) -> None:
    r = netdsl("run", str(lenet), "--repeat", "2")
    assert r.returncode == 0 and r.stderr == ""


def test_says_when_the_weights_are_netdsls_random_initialization(lenet: Path) -> None:
    for model in (str(lenet), "specs/lenet5.net"):
        r = netdsl("run", model, "--repeat", "1")
        assert ("weights:  netdsl's random initialization (glorot uniform, seed 0): untrained, "
                "so the outputs mean nothing yet") in r.stdout, r.stderr


def test_no_weights_note_for_given_weights(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.numpy")
    from netdsl import load
    from netdsl.codegen.weights import init_weights

    safetensors.save_file(init_weights(load(ROOT / "specs" / "lenet5.net"), seed=3),
                          str(tmp_path / "w.safetensors"))
    r = netdsl("compile", "specs/lenet5.net", "--weights", str(tmp_path / "w.safetensors"),
               "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr
    r = netdsl("run", str(tmp_path / "m.onnx"), "--repeat", "1")
    assert r.returncode == 0 and "weights:" not in r.stdout


def test_spec_options_are_refused_for_an_onnx_model(lenet: Path) -> None:
    r = netdsl("run", str(lenet), "--param", "classes=3")
    assert r.returncode == 2
    assert f"--param applies to specs, and {lenet} is an ONNX model" in r.stderr
    r = netdsl("run", str(lenet), "--param", "classes=3", "--strict")
    assert r.returncode == 2 and "--param and --strict apply to specs" in r.stderr


def test_a_hash_in_an_onnx_file_name_is_not_a_document(lenet: Path, tmp_path: Path) -> None:
    odd = tmp_path / "x#1.onnx"
    odd.write_bytes(lenet.read_bytes())
    r = netdsl("run", str(odd), "--repeat", "1")
    assert r.returncode == 0 and "output:   1×10" in r.stdout, r.stderr


def test_run_a_shipped_spec_by_name(tmp_path: Path) -> None:
    r = netdsl("run", "lenet5", "--repeat", "1", cwd=tmp_path,
               env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and "output:   1×10" in r.stdout, r.stderr
