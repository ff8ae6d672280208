"""compile / emit / run: the commands, weights files, external data, errors without tracebacks."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import netdsl
from netdsl import ops
from netdsl.codegen.onnx import compile_onnx
from netdsl.codegen.weights import match_weights, tensor_specs

from .conftest import ROOT, SPECS

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

SPEC = ROOT / "specs"


def netdsl_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=cwd)


def _initializers(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_declared_tensors_add_up_to_the_parameter_count(spec: Path) -> None:
    net = netdsl.load(spec)
    for lay in net.graph.layers():
        if lay.op == "input":
            continue
        op = ops.OPS[lay.op]
        ins = net.in_shapes(lay)
        trainable = sum(math.prod(t.shape) for t in op.tensors(lay.attrs, ins) if t.trainable)
        assert trainable == op.params(lay.attrs, ins), lay.name


def test_compile_then_run(tmp_path: Path) -> None:
    out = tmp_path / "lenet5.onnx"
    r = netdsl_cli("compile", "specs/lenet5.net", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and out.is_file()
    onnx.checker.check_model(str(out), full_check=True)
    r = netdsl_cli("run", str(out), "--device", "cpu", "--repeat", "3", "--batch", "2")
    assert r.returncode == 0, r.stderr
    assert "provider: CPUExecutionProvider" in r.stdout
    assert "output:   2×10" in r.stdout
    assert "top-5:" in r.stdout and "latency:  median" in r.stdout


def test_run_a_spec_directly() -> None:
    r = netdsl_cli("run", "specs/resnet20.net", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "output:   1×10" in r.stdout


def test_run_with_input_file(tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 32, 32), np.float32))  # one example, no batch axis
    r = netdsl_cli("run", "specs/lenet5.net", "--input", str(x), "--repeat", "1")
    assert r.returncode == 0, r.stderr
    np.save(x, np.ones((3, 32, 32), np.float32))
    r = netdsl_cli("run", "specs/lenet5.net", "--input", str(x), "--repeat", "1")
    assert r.returncode == 1
    assert "input has shape [1, 3, 32, 32], the model expects [N, 1, 32, 32]" in r.stderr
    assert "Traceback" not in r.stderr


def test_run_cuda_without_cuda_is_an_error() -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider (tested in test_backends)")
    r = netdsl_cli("run", "specs/lenet5.net", "--device", "cuda")
    assert r.returncode == 1
    assert "--device cuda: this onnxruntime build has no CUDA provider" in r.stderr
    assert "Traceback" not in r.stderr
    r = netdsl_cli("run", "specs/lenet5.net", "--device", "auto", "--repeat", "1")
    assert r.returncode == 0 and "auto: CPU, since" in r.stdout


def test_compile_and_run_do_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys, netdsl.cli\n"
            f"assert netdsl.cli.main(['compile', 'specs/resnet20.net', '-o', r'{tmp_path}/m.onnx'])"
            " == 0\n"
            f"assert netdsl.cli.main(['run', r'{tmp_path}/m.onnx', '--repeat', '1']) == 0\n"
            "netdsl.to_onnx, netdsl.run_onnx\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'torch'], 'torch imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_emit(tmp_path: Path) -> None:
    out = tmp_path / "resnet20.py"
    r = netdsl_cli("emit", "specs/resnet20.net", "-o", str(out))
    assert r.returncode == 0, r.stderr
    src = out.read_text()
    assert "class Resnet20(nn.Module):" in src and "# line 13" in src
    assert "netdsl" not in src.split('"""', 2)[2]  # only the docstring mentions it
    assert netdsl_cli("emit", "specs/resnet20.net").stdout == src


# ---- weights ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet20_state() -> dict[str, torch.Tensor]:
    m = netdsl.to_torch(netdsl.load(SPEC / "resnet20.net"), seed=5)
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_compile_with_weights(tmp_path: Path, resnet20_state: dict[str, torch.Tensor],
                              suffix: str) -> None:
    w = tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save(resnet20_state, w)
    else:
        from safetensors.torch import save_file

        save_file(resnet20_state, str(w))
    out = tmp_path / "m.onnx"
    r = netdsl_cli("compile", "specs/resnet20.net", "-o", str(out), "--weights", str(w))
    assert r.returncode == 0, r.stderr
    got = _initializers(out)
    assert got.keys() == {k for k in resnet20_state if not k.endswith("num_batches_tracked")}
    for k, v in got.items():
        np.testing.assert_array_equal(v, resnet20_state[k].numpy())


def test_weights_that_do_not_fit_are_named(tmp_path: Path,
                                            resnet20_state: dict[str, torch.Tensor]) -> None:
    bad = dict(resnet20_state)
    del bad["fc.bias"]
    bad["extra.weight"] = torch.zeros(3)
    bad["conv1.weight"] = torch.zeros(16, 3, 5, 5)
    w = tmp_path / "bad.pt"
    torch.save(bad, w)
    out = tmp_path / "m.onnx"
    r = netdsl_cli("compile", "specs/resnet20.net", "-o", str(out), "--weights", str(w))
    assert r.returncode == 1
    assert "1 missing: fc.bias" in r.stderr
    assert "1 unexpected: extra.weight" in r.stderr
    assert "conv1.weight: expected [16, 3, 3, 3], got [16, 3, 5, 5]" in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == [w]  # nothing written, no temporary left


def test_weights_by_order(tmp_path: Path, resnet20_state: dict[str, torch.Tensor]) -> None:
    # another library's names for the same tensors (the counters it keeps are ignored)
    theirs = {f"model.{i}.{k.rpartition('.')[2]}": v for i, (k, v) in
              enumerate(resnet20_state.items())}
    w = tmp_path / "theirs.pt"
    torch.save(theirs, w)
    out = tmp_path / "m.onnx"
    r = netdsl_cli("compile", "specs/resnet20.net", "-o", str(out), "--weights", str(w))
    assert r.returncode == 1 and "--weights-by-order" in r.stderr
    r = netdsl_cli("compile", "specs/resnet20.net", "-o", str(out), "--weights-by-order", str(w))
    assert r.returncode == 0, r.stderr
    for k, v in _initializers(out).items():
        np.testing.assert_array_equal(v, resnet20_state[k].numpy())
    # a different order: refused at the first tensor whose shape disagrees
    items = list(theirs.items())
    items[0], items[1] = items[1], items[0]
    torch.save(dict(items), w)
    out.unlink()
    r = netdsl_cli("compile", "specs/resnet20.net", "-o", str(out), "--weights-by-order", str(w))
    assert r.returncode == 1
    assert "tensor #0" in r.stderr and "refusing to guess" in r.stderr
    assert not out.exists()


def test_unreadable_weights_and_outputs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    for args, msg in ((["--weights", str(junk)], "cannot read weights"),
                      (["--weights", str(tmp_path / "none.pt")], "no such weights file"),
                      (["-o", str(tmp_path / "no" / "m.onnx")], "output directory does not exist"),
                      (["-o", str(tmp_path)], "output path is a directory")):
        r = netdsl_cli("compile", "specs/lenet5.net", *args)
        assert r.returncode == 1, args
        assert msg in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_external_data_for_large_models(tmp_path: Path) -> None:
    net = netdsl.load(SPEC / "resnet20.net")
    single, split = tmp_path / "single.onnx", tmp_path / "split.onnx"
    assert compile_onnx(net, single) is None
    data = compile_onnx(net, split, external_threshold=0)  # as if past the 2 GB limit
    assert data == tmp_path / "split.onnx.data" and data.is_file()
    assert split.stat().st_size < 100_000 < data.stat().st_size
    onnx.checker.check_model(str(split), full_check=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(netdsl.run_onnx(str(split), x, device="cpu"),
                                  netdsl.run_onnx(str(single), x, device="cpu"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["single.onnx", "split.onnx",
                                                          "split.onnx.data"]


def test_compile_says_when_weights_go_external(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from netdsl import cli
    from netdsl.codegen import onnx as lowering

    monkeypatch.setattr(lowering, "EXTERNAL_THRESHOLD", 1000)  # as if resnet20 were past 2 GB
    out = tmp_path / "m.onnx"
    assert cli.main(["compile", str(SPEC / "resnet20.net"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "exceed protobuf's 2 GB limit" in err and "m.onnx.data" in err
    assert (tmp_path / "m.onnx.data").is_file()


def test_tensor_order_follows_the_state_dict() -> None:
    net = netdsl.load(SPEC / "resnet50.net")
    ours = [n for n, _, _ in tensor_specs(net)]
    m = netdsl.to_torch(net)
    assert ours == [k for k in m.state_dict() if not k.endswith("num_batches_tracked")]


def test_training_checkpoints_compile_without_their_aux_heads() -> None:
    net = netdsl.load(SPEC / "googlenet.net")
    full = {k: v.numpy() for k, v in netdsl.to_torch(net, seed=2).state_dict().items()}
    assert any(k.startswith("aux1.") for k in full)
    want = {n for n, _, is_aux in tensor_specs(net, aux=True) if not is_aux}
    for by_order in (False, True):
        got = match_weights(net, full, by_order=by_order)
        assert got.keys() == want
        assert all(np.array_equal(got[k], full[k]) for k in want)


def test_even_lrn_window_is_refused() -> None:
    with pytest.raises(netdsl.NetdslError, match="LRN size must be odd"):
        netdsl.loads("input 8x4x4\nLRN 4\n")


def test_output_is_an_ordinary_file(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    assert netdsl_cli("compile", "specs/lenet5.net", "-o", str(out)).returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would make it, not 0600
