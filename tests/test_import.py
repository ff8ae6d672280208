"""netdsl import: specs → ONNX → specs, torchvision's exports, bad files, the CLI.

Every spec in specs/ is compiled, imported back (with the importer's own onnxruntime check)
and its summary compared with the original's. torchvision models are exported once per module
(BN statistics calibrated, constants randomized), at small inputs where the network allows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import netdsl
from netdsl.cli import main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from netdsl.codegen.onnx import to_onnx  # noqa: E402
from netdsl.importer import from_onnx  # noqa: E402
from netdsl.runtime import run_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.net")) + sorted((ROOT / "specs" / "examples").glob("*.net"))
BIG = 50_000_000  # parameters past which a spec's round trip skips the onnxruntime comparison
DEEP = 1000  # layers past which too (the deep CIFAR ResNets): both keep the suite's time low


def _spec_lines(spec: Path) -> int:
    """Lines of the spec and of the block libraries it includes (the import writes both)."""
    text = spec.read_text()
    libs = re.findall(r'^include "([^"]+)"', text, flags=re.M)
    return len(text.splitlines()) + sum(
        len((spec.parent / (lib if lib.endswith(".net") else lib + ".net")).read_text()
            .splitlines()) for lib in libs)


def _summary(net: netdsl.Network) -> tuple:
    return net.params, net.macs, net.output_shape


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_round_trip(spec: Path) -> None:
    net = netdsl.load(spec)
    big = net.params > BIG or len(net.layers()) > DEEP
    r = from_onnx(to_onnx(net), path=f"{net.name}.onnx", verify=not big)
    assert _summary(r.network) == _summary(net)
    assert not r.warnings
    if not big:
        assert r.max_error is not None and r.max_error <= 1e-5
    assert len(r.text.splitlines()) <= _spec_lines(spec) + 15


def test_draw_of_a_model_equals_the_specs(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "resnet50.net"
    model = tmp_path / "resnet50.onnx"
    assert main(["compile", str(spec), "-o", str(model)]) == 0
    a, b = tmp_path / "a.dot", tmp_path / "b.dot"
    assert main(["draw", str(model), "--depth", "2", "-o", str(a)]) == 0
    assert main(["draw", str(spec), "--depth", "2", "-o", str(b)]) == 0
    assert a.read_text() == b.read_text()


def test_onnx_goes_wherever_a_spec_goes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "lenet5.onnx"
    assert main(["compile", str(ROOT / "specs" / "lenet5.net"), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["check", str(model)]) == 0
    assert "ok (" in capsys.readouterr().out
    assert main(["summary", str(model)]) == 0
    assert f"{netdsl.load(ROOT / 'specs' / 'lenet5.net').params:,}" in capsys.readouterr().out
    assert main(["table", str(model), str(ROOT / "specs" / "lenet5.net")]) == 0


def test_weights_out_rebuild_the_same_function(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "nin.onnx"
    assert main(["compile", str(ROOT / "specs" / "nin.net"), "-o", str(src), "--seed", "3"]) == 0
    spec, w, out = tmp_path / "nin.net", tmp_path / "nin.safetensors", tmp_path / "re.onnx"
    assert main(["import", str(src), "-o", str(spec), "--weights-out", str(w)]) == 0
    assert "verified: max |Δy|" in capsys.readouterr().err
    assert main(["compile", str(spec), "--weights", str(w), "-o", str(out)]) == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(run_onnx(str(src), x, "cpu"), run_onnx(str(out), x, "cpu"))


# ---- hand-made graphs: the DAG escape and bad input -------------------------------------------
def _model(nodes: list, inits: dict[str, np.ndarray], inputs: list[tuple[str, list]] | None = None,
           out: str = "y", out_shape: list | None = None, **kw: object) -> onnx.ModelProto:
    from onnx import TensorProto, helper, numpy_helper

    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
           for n, s in (inputs or [("x", [1, 4, 8, 8])])]
    graph = helper.make_graph(nodes, "g", ins,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                                             out_shape or [1, 4, 8, 8])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kw)
    m.ir_version = 8
    return m


def _conv(name: str, x: str, y: str, c: int = 4) -> tuple:
    from onnx import helper

    w = np.random.default_rng(len(name)).standard_normal((c, 4, 3, 3)).astype(np.float32)
    return helper.make_node("Conv", [x, name], [y], name=name, kernel_shape=[3, 3],
                            pads=[1, 1, 1, 1]), {name: w}


def test_a_graph_that_is_not_nested_blocks_imports_through_from() -> None:
    from onnx import helper

    (a, wa), (b, wb) = _conv("a", "x", "ya"), _conv("b", "x", "yb")
    nodes = [a, b, helper.make_node("Add", ["ya", "yb"], ["s"], name="s"),
             helper.make_node("Add", ["s", "ya"], ["y"], name="t")]
    r = from_onnx(_model(nodes, {**wa, **wb}), path="dag.onnx")
    assert r.warnings and "DAG escape" in r.warnings[0] and "node 'a'" in r.warnings[0]
    assert " from " in r.text and r.max_error is not None and r.max_error <= 1e-5


def _run_import(path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["import", str(path), "--no-verify"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "good.onnx"
    assert main(["compile", str(ROOT / "specs" / "lenet5.net"), "-o", str(good)]) == 0
    data = good.read_bytes()
    cases = {
        "truncated": data[:len(data) // 2],
        "corrupt": bytes(range(256)) * 8,
        "empty": b"",
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.onnx"
        p.write_bytes(blob)
        code, err = _run_import(p, capsys)
        assert code == 1 and f"{name}.onnx" in err and "error:" in err, (name, err)
    code, err = _run_import(tmp_path / "missing.onnx", capsys)
    assert code == 1 and "no such file" in err


def test_unknown_op_names_node_and_op(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from onnx import helper

    p = tmp_path / "cos.onnx"
    onnx.save(_model([helper.make_node("Cos", ["x"], ["y"], name="my_cos")], {}), str(p))
    code, err = _run_import(p, capsys)
    assert code == 1 and "node 'my_cos' (Cos)" in err and "no netdsl meaning" in err


def test_a_constant_too_big_to_fold_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    """Shape arithmetic asking numpy for 2⁴⁰ elements (a stranger's model): one error naming
    the node, at once, not a machine out of memory."""
    from onnx import helper

    big = np.asarray([1 << 20, 1 << 20], np.int64)
    nodes = [helper.make_node("ConstantOfShape", ["dims"], ["huge"], name="huge"),
             helper.make_node("Shape", ["huge"], ["s"], name="shape"),
             helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")]
    p = tmp_path / "huge.onnx"
    onnx.save(_model(nodes, {"dims": big}), str(p))
    code, err = _run_import(p, capsys)
    assert code == 1 and "node 'huge' (ConstantOfShape)" in err and "elements" in err, err


def test_several_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from onnx import helper

    p = tmp_path / "two.onnx"
    m = _model([helper.make_node("Add", ["x", "z"], ["y"], name="add")], {},
               inputs=[("x", [1, 4, 8, 8]), ("z", [1, 4, 8, 8])])
    onnx.save(m, str(p))
    code, err = _run_import(p, capsys)
    assert code == 1 and "has 2 inputs ('x', 'z')" in err


def test_missing_external_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (a, wa) = _conv("a", "x", "y")
    p = tmp_path / "ext.onnx"
    onnx.save(_model([a], wa), str(p), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.data", size_threshold=0)
    assert main(["import", str(p)]) == 0
    (tmp_path / "ext.data").unlink()
    code, err = _run_import(p, capsys)
    assert code == 1 and "external data 'ext.data' of tensor 'a' is missing" in err


def test_external_data_outside_the_folder_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    (a, wa) = _conv("a", "x", "y")
    m = _model([a], wa)
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.add(key="location", value="../../etc/passwd")
    p = tmp_path / "evil.onnx"
    p.write_bytes(m.SerializeToString())
    code, err = _run_import(p, capsys)
    assert code == 1 and "outside the model's folder" in err


# ---- PyTorch ---------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


class _Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def small() -> torch.nn.Module:
    """The factory `netdsl import tests.test_import:small` calls."""
    torch.manual_seed(0)
    return _Small()


def test_from_torch_keeps_names_and_function() -> None:
    m = small().eval()
    r = netdsl.from_torch(m, torch.randn(1, 3, 16, 16))
    assert "conv3-8 +bn +relu" in r.text and "fc = FC-5" in r.text
    sd = {k: v for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert set(r.weights) == set(sd)
    x = torch.randn(2, 3, 16, 16)
    y = run_onnx(r.to_onnx().SerializeToString(), x.numpy(), "cpu")
    np.testing.assert_allclose(y, m(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_import_a_factory_from_the_command_line(capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    assert main(["import", "tests.test_import:small", "--input-shape", "3x16x16"]) == 0
    out = capsys.readouterr()
    assert "input 3x16x16" in out.out and "verified" in out.err
    assert main(["import", "tests.test_import:nothing_here"]) == 1
    assert "has no function 'nothing_here'" in capsys.readouterr().err


# ---- torchvision's own exports (legacy exporter), one per model -------------------------------
@pytest.fixture(scope="module")
def tv() -> object:
    sys.path.insert(0, str(Path(__file__).parent))
    from torchvision_oracle import import_torchvision

    return import_torchvision()


def _export(tv: object, name: str, shape: tuple[int, ...], fold_bn: bool = False,
            **kw: object) -> tuple[bytes, object]:
    from torchvision_oracle import prepare

    from netdsl.importer.torch import export

    model = prepare(getattr(tv.models, name)(weights=None, **kw), shape)  # type: ignore[attr-defined]
    if not fold_bn:
        return export(model, torch.randn(1, *shape)), model
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, *shape),), buf, dynamo=False, opset_version=17)
    return buf.getvalue(), model


def _strict(model: object, r: object, shape: tuple[int, ...]) -> float:
    from torchvision_oracle import compare

    rebuilt = r.to_onnx().SerializeToString()  # type: ignore[attr-defined]
    errs = compare(model, {"import": lambda x: run_onnx(rebuilt, x.numpy(), "cpu")}, shape,
                   batch=1)
    return errs["import"]


def test_torchvision_resnet50(tv: object) -> None:
    shape = (3, 64, 64)
    data, model = _export(tv, "resnet50", shape)
    r = from_onnx(data, path="resnet50.onnx")
    lines = r.text.splitlines()
    assert len(lines) <= 40, r.text
    assert "block bottleneck(c, stride=1) {" in lines
    assert "layer2 = (bottleneck(128, 2); bottleneck(128) ×3)" in lines
    assert r.max_error <= 1e-5
    sd = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    assert list(r.weights) == sd  # torchvision's names, in its order
    assert r.network.params == sum(p.numel() for p in model.parameters())
    assert _strict(model, r, shape) <= 1e-4


def test_torchvision_bn_folded_by_the_exporter(tv: object) -> None:
    data, model = _export(tv, "resnet18", (3, 64, 64), fold_bn=True)
    r = from_onnx(data, path="resnet18.onnx")
    assert "layer2 = (basic_proj(128); basic(128))" in r.text, r.text
    assert "+bn" not in r.text and r.max_error <= 1e-5


def test_torchvision_googlenet(tv: object) -> None:
    shape = (3, 64, 64)
    data, model = _export(tv, "googlenet", shape, aux_logits=False, init_weights=False)
    r = from_onnx(data, path="googlenet.onnx")
    assert r.text.count("block inception(") == 1
    assert r.text.count(" = inception(") == 9
    assert r.max_error <= 1e-5 and _strict(model, r, shape) <= 1e-4


def test_torchvision_densenet121(tv: object) -> None:
    shape = (3, 64, 64)
    data, model = _export(tv, "densenet121", shape)
    r = from_onnx(data, path="densenet121.onnx")
    for k, n in ((1, 6), (2, 12), (3, 24), (4, 16)):
        assert f"denseblock{k} = dense {{ denselayer() ×{n} }}" in r.text
    assert r.text.count("transition(256)") == 1 and "block transition(c) {" in r.text
    assert r.max_error <= 1e-5 and _strict(model, r, shape) <= 1e-4


def test_dynamo_exporter_scopes() -> None:
    """torch.export-based ONNX names nodes node_Conv_3; the module path is in its metadata."""
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(small().eval(), (torch.randn(1, 3, 16, 16),), dynamo=True,
                                 verbose=False)
    r = from_onnx(prog.model_proto, path="small.onnx")
    assert "fc = FC-5" in r.text and r.max_error <= 1e-5


# ---- where a broken rebuild first differs; a flat region inside a folded network ----------
def test_verify_names_the_first_layer_that_differs() -> None:
    from netdsl.errors import NetdslError
    from netdsl.importer.verify import compare

    model = to_onnx(netdsl.load(ROOT / "specs" / "lenet5.net")).SerializeToString()
    r = from_onnx(model, path="lenet5.onnx")
    broken = dict(r.weights)
    key = [k for k in broken if k.endswith(".weight")][1]  # the second weight layer's
    broken[key] = broken[key] * 1.5
    with pytest.raises(NetdslError) as e:
        compare(model, r.network, broken, r.layers, r.batch, "lenet5.onnx")
    layer = key.rsplit(".", 1)[0]
    msg = e.value.message
    assert f"first differs at layer '{layer}'" in msg and "max |Δ| = " in msg, msg
    assert "from ONNX node '" in msg and "max |y| = " in msg


def test_a_region_that_is_not_nested_is_written_with_from_and_the_rest_folded() -> None:
    from onnx import helper

    convs = [_conv(f"c{k}", f"v{k}", f"w{k}") for k in range(6)]
    nodes, inits = [], {k: v for _, w in convs for k, v in w.items()}
    # c0, then the region: c1 and c2 from c0's output, s = c1 + c2, t = s + c1 (c1 read twice)
    nodes += [convs[0][0], helper.make_node("Relu", ["w0"], ["v1"], name="r0"), convs[1][0]]
    nodes.append(helper.make_node("Identity", ["v1"], ["v2"], name="id"))
    nodes += [convs[2][0], helper.make_node("Add", ["w1", "w2"], ["s"], name="s"),
              helper.make_node("Add", ["s", "w1"], ["v3"], name="t")]
    # then three equal conv + relu layers
    for k in (3, 4, 5):
        nodes += [convs[k][0], helper.make_node("Relu", [f"w{k}"], [f"v{k + 1}"], name=f"r{k}")]
    nodes[0].input[0] = "x"
    nodes[-1].output[0] = "y"
    r = from_onnx(_model(nodes, inits), path="region.onnx")
    assert len(r.warnings) == 1 and "ONNX node 'c1' to 't' (Conv, Add)" in r.warnings[0], \
        r.warnings
    body = r.text.split("\n\n", 1)[1]
    assert "conv3-4 +relu ×3" in body, r.text  # the rest is folded
    assert body.count(" from ") == 3 and "from input" in body, r.text  # only the region
    assert r.max_error is not None and r.max_error <= 1e-5
