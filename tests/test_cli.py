"""The command-line contract: exit codes, streams, and a torch-free check path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, SPECS


def netdsl(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_check_all_specs_exit_0() -> None:
    r = netdsl("check", *map(str, SPECS))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok (") == len(SPECS)


def test_check_error_exit_1_with_location_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.net"
    bad.write_text("input 3x32x32\nconv3-64; maxpol; FC-10\n")
    r = netdsl("check", str(bad), str(ROOT / "specs" / "lenet5.net"))
    assert r.returncode == 1
    assert f"{bad}:2:11: error: unknown layer 'maxpol'" in r.stderr
    assert "hint: did you mean 'maxpool'" in r.stderr
    assert "Traceback" not in r.stderr
    assert "lenet5.net: ok" in r.stdout  # the other spec is still checked


def test_usage_errors_exit_2() -> None:
    assert netdsl().returncode == 2
    assert netdsl("check").returncode == 2
    assert netdsl("summary", "--format", "yaml", "specs/vgg16.net").returncode == 2
    r = netdsl("summary", "--param", "classes", "specs/vgg16.net")
    assert r.returncode == 2 and "NAME=VALUE" in r.stderr


def test_param_override_changes_the_network() -> None:
    r = netdsl("summary", "--format", "json", "--param", "classes=10", "specs/vgg16.net")
    assert r.returncode == 0 and '"output": [\n    10\n  ]' in r.stdout
    r = netdsl("summary", "--param", "nope=1", "specs/vgg16.net")
    assert r.returncode == 1 and "no param 'nope'" in r.stderr


def test_check_and_summary_do_not_import_torch_or_onnxruntime() -> None:
    """Nor numpy or onnx: each adds tens of milliseconds to the cold start (the swin ops once
    imported numpy at module level: check of LeNet-5 went from 0.24 to 0.36 s of CPU)."""
    code = ("import sys; from netdsl.cli import main; "
            "main(['check', '-q', 'specs/resnet50.net']); "
            "main(['summary', '--format', 'json', 'specs/googlenet.net']); "
            "heavy = [m for m in ('torch', 'onnxruntime', 'numpy', 'onnx') if m in sys.modules]; "
            "sys.stderr.write(repr(heavy)); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
