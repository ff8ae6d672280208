"""`pip install netdsl[cpu]` has no PyTorch: emitting source must work, and what truly needs
PyTorch says which extra installs it (exit 1), never an internal error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

# Runs in a child whose `import torch` fails, as on a machine without PyTorch.
NO_TORCH = "import sys; sys.modules['torch'] = None\n"


def without_torch(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True,
                          text=True, cwd=ROOT)


def test_emit_and_to_torch_source_need_no_torch(tmp_path) -> None:
    out = tmp_path / "r18.py"
    r = without_torch("from netdsl.cli import main\n"
                      f"rc = main(['emit', 'specs/resnet18.net', '-o', {str(out)!r}])\n"
                      "import netdsl\n"
                      "src = netdsl.to_torch_source(netdsl.load('specs/googlenet.net'))\n"
                      "print(rc, 'class Googlenet(nn.Module)' in src)")
    assert r.stdout.split()[-2:] == ["0", "True"], r.stderr  # after "wrote …"
    assert "class Resnet18(nn.Module)" in out.read_text()


def test_to_torch_without_torch_names_the_extra() -> None:
    r = without_torch("import netdsl\n"
                      "try:\n    netdsl.to_torch(netdsl.load('specs/lenet5.net'))\n"
                      "except netdsl.NetdslError as e:\n    print(e)")
    assert "netdsl.to_torch needs PyTorch, which is not installed" in r.stdout, r.stderr
    assert "pip install 'netdsl[torch]'" in r.stdout


def test_pt_weights_without_torch_exit_1(tmp_path) -> None:
    pt = tmp_path / "w.pt"
    pt.write_bytes(b"PK\x03\x04 not really")
    r = without_torch("from netdsl.cli import main\n"
                      f"sys.exit(main(['compile', 'specs/lenet5.net', '--weights', {str(pt)!r},"
                      f" '-o', {str(tmp_path / 'l.onnx')!r}]))")
    assert r.returncode == 1, r.stderr
    assert "reading .pt weights needs torch" in r.stderr
    assert "netdsl[torch]" in r.stderr and "internal error" not in r.stderr


def test_module_attrs_cover_the_installed_torch() -> None:
    torch = pytest.importorskip("torch")
    from netdsl.codegen.torch import MODULE_ATTRS

    theirs = {n for n in dir(torch.nn.ModuleDict()) if not (n[:2] == n[-2:] == "__")}
    assert theirs <= MODULE_ATTRS, sorted(theirs - MODULE_ATTRS)


def test_layer_named_like_a_module_attribute_is_refused_without_torch() -> None:
    r = without_torch("import netdsl\n"
                      "net = netdsl.loads('input 3x8x8\\ntrain = conv3-4')\n"
                      "try:\n    netdsl.to_torch_source(net)\n"
                      "except netdsl.NetdslError as e:\n    print(e)")
    assert "'train' is an attribute of nn.Module" in r.stdout, r.stderr
