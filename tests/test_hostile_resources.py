"""Hostile input, issue 13: resources (classes 11, 14, 15), crashes that must be located errors
(16-18) and the weights refusal (3)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import netdsl
from netdsl import cli
from netdsl.codegen import memory

from .conftest import ROOT

torch = pytest.importorskip("torch")
LENET = str(ROOT / "specs" / "lenet5.net")
GIB = 1 << 30


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16 GiB machine, whatever runs the tests."""
    monkeypatch.setattr(memory, "physical_memory", lambda: 16 * GIB)


# ---- 11. sizes that pass check but cannot be built -------------------------------------------
BIG = {
    "fc-65536": ("input 1x1000x1000\nFC-65536\n", [], "244.1 GiB"),
    "dense-256": ("input 3x32x32\ndense { conv3-1024 } ×256\n", [], "1.1 TiB"),
    "classes-30M": ((ROOT / "specs" / "resnet50.net").read_text(),
                    ["--param", "classes=30000000"], "229.1 GiB"),
}


@pytest.mark.usefixtures("small_machine")
@pytest.mark.parametrize("case", sorted(BIG))
@pytest.mark.parametrize("cmd", ["compile", "run"])
def test_networks_too_big_for_the_machine_are_refused_with_the_numbers(
        case: str, cmd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, extra, need = BIG[case]
    spec = tmp_path / "big.net"
    spec.write_text(text.replace('include "lib/', f'include "{ROOT}/specs/lib/'))
    args = [cmd, str(spec), *extra] + (["-o", str(tmp_path / "m.onnx")] if cmd == "compile"
                                       else [])
    t = time.process_time()
    code, _, err = run(capsys, *args)
    assert code == 1, err
    assert time.process_time() - t < 10  # refused before allocating anything
    assert "of memory to" in err and "this machine has 16.0 GiB" in err and need in err, err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.usefixtures("small_machine")
def test_to_torch_and_to_onnx_refuse_too_big_networks_too() -> None:
    net = netdsl.loads(BIG["fc-65536"][0])
    for build in (netdsl.to_torch, netdsl.to_onnx):
        with pytest.raises(netdsl.NetdslError, match="244.1 GiB of weights"):
            build(net)


def test_the_memory_estimate_counts_every_tensor() -> None:
    net = netdsl.load(LENET)
    assert memory.weight_bytes(net) == 4 * sum(
        a.size for a in netdsl.codegen.weights.init_weights(net, aux=True).values())


# ---- 14. checkpoints: names and shapes before bytes; nothing inflated ----------------------------
def _rss_after_refusing(ckpt: Path) -> tuple[int, str]:
    code = ("import resource, sys\nfrom netdsl import cli\n"
            f"rc = cli.main(['compile', {LENET!r}, '--weights', {str(ckpt)!r}, '-o', "
            f"{str(ckpt.with_suffix('.onnx'))!r}])\n"
            "print(rc, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    rc, kib = r.stdout.split()
    assert rc == "1", r.stderr
    return int(kib) << 10, r.stderr


@pytest.mark.parametrize("how", ["stored", "deflated", "expanded"])
def test_a_huge_tensor_is_refused_before_it_is_read(how: str, tmp_path: Path) -> None:
    """A checkpoint whose one tensor is 256 MiB (stored, deflated to a few KiB, or a stride-0
    view of one number): refused by name and shape with RSS far below the tensor's size."""
    small = tmp_path / "small.pt"
    torch.save({"conv1.weight": torch.zeros(2)}, small)
    big = tmp_path / "big.pt"
    t = torch.zeros(1).expand(8192, 8192) if how == "expanded" else torch.zeros(8192, 8192)
    torch.save({"conv1.weight": t}, big)
    del t
    if how == "deflated":
        packed = tmp_path / "packed.pt"
        with zipfile.ZipFile(big) as src, \
                zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info.filename))
        big.unlink()
        big = packed
        assert big.stat().st_size < 2 << 20
    base, _ = _rss_after_refusing(small)
    rss, err = _rss_after_refusing(big)
    assert rss - base < 64 << 20, (rss, base)
    assert ("compressed" if how == "deflated" else "mis-shaped") in err


@pytest.mark.parametrize("make", [
    lambda: {"a": torch.eye(3).to_sparse()},
    lambda: {"a": torch.empty(3, device="meta")},
    lambda: {3: torch.zeros(3)},
    lambda: {"a": torch.quantize_per_tensor(torch.zeros(3), 0.1, 0, torch.qint8)},
    lambda: {"a": torch.zeros(3, dtype=torch.complex64)},
    lambda: {"a": "a string"},
    lambda: [torch.zeros(3)],
], ids=["sparse", "meta", "int-key", "quantized", "complex", "not-a-tensor", "a-list"])
def test_checkpoints_that_are_not_dense_real_state_dicts_are_errors(
        make, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "w.pt"
    with warnings.catch_warnings():  # quantized tensors are deprecated: not what is tested
        warnings.simplefilter("ignore")
        torch.save(make(), p)
    code, _, err = run(capsys, "compile", LENET, "--weights", str(p), "-o",
                       str(tmp_path / "m.onnx"))
    assert code == 1 and err.startswith(f"{p}: error: "), err
    assert "Warning" not in err and "Traceback" not in err


def test_complex_safetensors_are_refused_not_truncated(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    st = pytest.importorskip("safetensors.numpy")
    p = tmp_path / "w.safetensors"
    st.save_file({"conv1.weight": np.zeros((6, 1, 5, 5), np.complex64)}, str(p))
    code, _, err = run(capsys, "compile", LENET, "--weights", str(p), "-o",
                       str(tmp_path / "m.onnx"))
    assert code == 1 and "complex64" in err and "ComplexWarning" not in err


# ---- 3. code in a checkpoint never runs, and the refusal never advises weights_only=False -------
class _Evil:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("touch PWNED",))


def test_a_checkpoint_with_code_is_refused_without_advice_to_run_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pt"
    torch.save({"conv1.weight": _Evil()}, p)
    code, _, err = run(capsys, "compile", LENET, "--weights", str(p), "-o", "m.onnx")
    assert code == 1 and "never runs code" in err and "posix.system" in err
    assert "weights_only" not in err and not (tmp_path / "PWNED").exists()


# ---- 15 and 16. run: batch bounded by memory, inputs checked before they are read ---------------
def _npy_claiming(path: Path, shape: tuple[int, ...]) -> None:
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)


@pytest.mark.parametrize("case", ["fifo", "strings", "zero-batch", "npz", "37-TiB-header",
                                  "wrong-shape", "directory"])
def test_bad_run_inputs_are_located_errors(case: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.npy"
    if case == "fifo":
        os.mkfifo(p)
    elif case == "strings":
        np.save(p, np.array([["a"] * 32] * 32))
    elif case == "zero-batch":
        np.save(p, np.zeros((0, 1, 32, 32), np.float32))
    elif case == "npz":
        with open(p, "wb") as f:
            np.savez(f, a=np.zeros((1, 1, 32, 32), np.float32))
    elif case == "37-TiB-header":
        _npy_claiming(p, (10_000, 1, 1 << 20, 1 << 10))
    elif case == "wrong-shape":
        np.save(p, np.zeros((2, 3, 32, 32), np.float32))
    else:
        p.mkdir()
    t = time.monotonic()
    code, _, err = run(capsys, "run", LENET, "--input", str(p), "--repeat", "1")
    assert code == 1, err
    assert time.monotonic() - t < 60 and "Traceback" not in err
    assert "error: " in err and "internal error" not in err


@pytest.mark.usefixtures("small_machine")
def test_run_bounds_the_batch_by_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", LENET, "--batch", "100000000000")
    assert code == 1 and "lower --batch" in err and "this machine has 16.0 GiB" in err


@pytest.mark.parametrize("value", ["-1", "1e20", "৪", ""])
@pytest.mark.parametrize("flag", ["--seed", "--batch"])
@pytest.mark.parametrize("cmd", ["run", "compile"])
def test_bad_numbers_on_the_command_line_are_usage_errors(
        cmd: str, flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    if cmd == "compile" and flag == "--batch":
        pytest.skip("compile has no --batch")
    assert run(capsys, cmd, LENET, flag, value)[0] == 2


def _model(tmp_path: Path, kind: str) -> Path:
    import onnx
    from onnx import TensorProto, helper

    p = tmp_path / f"{kind}.onnx"
    if kind == "no-input":
        c = helper.make_node("Constant", [], ["y"], value=helper.make_tensor(
            "v", TensorProto.FLOAT, [1, 2], [1.0, 2.0]))
        g = helper.make_graph([c], "g", [], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 2])])
    else:
        elem, shape = {"int64": (TensorProto.INT64, ["N", 3]),
                       "scalar": (TensorProto.FLOAT, [])}[kind]
        n = helper.make_node("Identity", ["x"], ["y"])
        g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", elem, shape)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    return p


@pytest.mark.parametrize("kind", ["int64", "no-input", "scalar"])
def test_models_run_cannot_feed_are_errors(kind: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    code, _, err = run(capsys, "run", str(_model(tmp_path, kind)), "--repeat", "1")
    assert code == 1 and "error: the model" in err, err


# ---- 18. a spec with an unused branch emits and builds like it compiles --------------------------
DEAD = ("input 3x32x32\na = conv3-16\nb = conv3-32 from input; relu\nc = conv3-8 from input\n"
        "z = conv3-8 from a\nFC-10\n")


def test_unused_branches_emit_and_build(tmp_path: Path) -> None:
    net = netdsl.loads(DEAD)
    assert net.warnings
    src = netdsl.to_torch_source(net)
    assert "self.c(" in src
    m = netdsl.to_torch(net, seed=3).eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        y = m(torch.from_numpy(x)).numpy()
    ref = netdsl.run_onnx(netdsl.to_onnx(net, seed=3), x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


# ---- 13. the spec size limit keeps check fast: specs past it are refused at once -----------------
LIMIT = 64 << 10
BULK = {"one-word statements": "relu\n", "convs reading 64 defaults": "conv3-4\n",
        "error lines": "conv3-0\n", "concat branches": " | relu"}


@pytest.mark.parametrize("kind", sorted(BULK))
def test_specs_past_the_size_limit_are_refused_before_parsing(kind: str) -> None:
    """At 256 KiB these took 5-12 s; the limit is now 64 Ki characters (check ≤ 2 s at it)."""
    head = "input 3x8x8\n" + ("default conv bias=off\n" * 64 if "defaults" in kind else "")
    body = BULK[kind] * (LIMIT // len(BULK[kind]) + 1)
    text = head + (f"concat {{ relu{body} }}\n" if "concat" in kind else body)
    t = time.process_time()
    with pytest.raises(netdsl.NetdslError, match="more than the limit of 65,536"):
        netdsl.loads(text)
    assert time.process_time() - t < 0.5


def test_the_documented_limit_is_the_real_one() -> None:
    from netdsl.parser import MAX_SPEC_CHARS

    assert MAX_SPEC_CHARS == LIMIT
    assert "| spec size | 64 Ki characters |" in (ROOT / "README.md").read_text(encoding="utf-8")
