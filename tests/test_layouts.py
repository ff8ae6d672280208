"""Tensors of every layout: 1-D and 3-D maps through conv, pooling, BN, gap and FC, token
sequences through FC and soft-max, checked against PyTorch's own modules and onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import netdsl  # noqa: E402
from netdsl import NetdslError  # noqa: E402
from netdsl.codegen.torch import to_torch, to_torch_source  # noqa: E402
from netdsl.shape import Layout, Shape  # noqa: E402

from .conftest import ROOT  # noqa: E402

nn = torch.nn


def _randomize(module: torch.nn.Module) -> None:
    """Every constant-initialized tensor random (biases, BN scale, shift and statistics), so
    that no term of a lowering can hide behind a zero or a one."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("running_var") or name.endswith(".weight") and t.dim() == 1:
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.rand(t.shape, generator=gen) - 0.5)


def _agree(net: netdsl.Network, batch: int = 2) -> torch.nn.Module:
    """The PyTorch module of ``net`` (tensors randomized) and onnxruntime agree at 1× and 20×
    input scale; returns the module in eval mode."""
    module = to_torch(net, seed=0).eval()
    _randomize(module)
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    model = netdsl.to_onnx(net, weights=state)
    x = np.random.default_rng(0).standard_normal((batch, *net.input.dims), dtype=np.float32)
    for scale in (1.0, 20.0):
        with torch.no_grad():
            want = module(torch.from_numpy(x * scale)).numpy()
        got = netdsl.run_onnx(model, x * scale, device="cpu")
        assert got.shape == (batch, *net.output.dims)
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), scale
    return module


def _same_function(net: netdsl.Network, reference: torch.nn.Module) -> None:
    """``reference`` (built from PyTorch's own modules) has netdsl's parameter count and, given
    netdsl's tensors in order, computes the same function."""
    mine = to_torch(net, seed=0).eval()
    _randomize(mine)
    assert sum(p.numel() for p in reference.parameters()) == net.params
    theirs = reference.state_dict()
    ours = [v for k, v in mine.state_dict().items() if not k.endswith("num_batches_tracked")]
    keys = [k for k in theirs if not k.endswith("num_batches_tracked")]
    assert [tuple(theirs[k].shape) for k in keys] == [tuple(v.shape) for v in ours]
    reference.load_state_dict(dict(zip(keys, ours, strict=True)), strict=False)
    x = torch.randn(2, *net.input.dims, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(mine(x), reference.eval()(x), rtol=1e-5, atol=1e-5)


# ---- the specs, against PyTorch's Conv1d/Conv3d assembled by hand ----------------------------

def test_m5_is_pytorch_conv1d_network() -> None:
    net = netdsl.load(ROOT / "specs" / "m5-audio.net")

    def stage(cin: int, cout: int, k: int, **kw: int) -> list[torch.nn.Module]:
        return [nn.Conv1d(cin, cout, k, bias=False, **kw), nn.BatchNorm1d(cout), nn.ReLU()]

    reference = nn.Sequential(
        *stage(1, 128, 80, stride=4, padding=38), nn.MaxPool1d(4),
        *stage(128, 128, 3, padding=1), nn.MaxPool1d(4),
        *stage(128, 256, 3, padding=1), nn.MaxPool1d(4, ceil_mode=True),
        *stage(256, 512, 3, padding=1), nn.MaxPool1d(4, ceil_mode=True),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(512, 35))
    # by hand: conv weights C_out·C_in·k, BN 2·C, FC 512·35 + 35
    assert net.params == (128 * 80 + 128 * 128 * 3 + 256 * 128 * 3 + 512 * 256 * 3
                          + 2 * (128 + 128 + 256 + 512) + 512 * 35 + 35) == 570_915
    assert net.input == Shape.map(1, 16000) and net.input.layout is Layout.MAP1
    assert [str(r.out) for r in net.layers() if r.op.startswith("maxpool")] == [
        "128×1000", "128×250", "256×63", "512×16"]
    _same_function(net, reference)


def test_c3d_stages_are_pytorch_conv3d_network() -> None:
    net = netdsl.load(ROOT / "specs" / "c3d-stages.net")
    reference = nn.Sequential(
        nn.Conv3d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
        nn.Conv3d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(128, 101))
    assert net.params == (64 * 3 * 27 + 64 + 128 * 64 * 27 + 128 + 128 * 101 + 101) == 239_589
    # conv MACs: C_out·D·H·W·C_in·27 per clip
    assert net.macs == (64 * 16 * 112 * 112 * 3 * 27 + 128 * 16 * 56 * 56 * 64 * 27
                        + 128 * 101)
    assert str(net.graph["pool2"].out) == "128×8×28×28"
    mine = to_torch(net, seed=0).eval()
    x = torch.randn(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(0))
    reference.load_state_dict(dict(zip(reference.state_dict(), mine.state_dict().values(),
                                       strict=True)))
    with torch.no_grad():
        torch.testing.assert_close(mine(x), reference.eval()(x), rtol=1e-5, atol=1e-5)


def test_one_keyword_lowers_by_the_input_layout() -> None:
    for inp, want in (("1x64", "nn.Conv1d(1, 8, 3, padding=1)"),
                      ("3x8x8", "nn.Conv2d(3, 8, 3, padding=1)"),
                      ("3x4x8x8", "nn.Conv3d(3, 8, 3, padding=1)")):
        src = to_torch_source(netdsl.loads(f"input {inp}\nconv3-8; bn; maxpool; gap; FC-2"))
        assert want in src
        n = inp.count("x")
        assert f"nn.BatchNorm{n}d(8, eps=1e-05, momentum=0.1)" in src and f"F.max_pool{n}d(" in src
        assert f"F.adaptive_avg_pool{n}d(" in src


# ---- every layout-generic op on 1-D and 3-D maps and on tokens, PyTorch vs onnxruntime ------

ONE_D = """input 2x37
a = conv5-6/2 dilation 2 +bn +leakyrelu 0.1
b = conv1-6/2 groups 2 bias off from input
d = add from a, b
e = concat from d, b
f = maxpool3/2 pad 1 ceil
g = avgpool3/2 pad 1 ceil from e
h = add from f, g
i = padshortcut-16/2
s = (gap; conv1-16 +sigmoid)
m = mul from i, s
v = gap from m
w = FC-16 +sigmoid from v
y = mul from m, w
r = residual { conv3-24/2 +bn +relu; conv3-24 +bn }
FC-5; softmax
"""

THREE_D = """input 3x5x9x7
default residual shortcut=A
a = conv3x1x3-6 +bn +relu
b = conv1x3x3-6/2 from input
c = maxpool3/2 pad 1 ceil from a
d = add from c, b
e = avgpool2 ceil
p = padshortcut-8/1
r = residual { conv3-12/2 +bn +relu; conv3-12 +bn }
s = scale { gap; FC-3 +relu; FC-12 +sigmoid }
FC-4; bn; softmax
"""

TOKENS = """input 7x12 tokens
FC-24 +relu
dropout 0.1
FC-6 bias off; identity
softmax
"""


@pytest.mark.parametrize("text", [ONE_D, THREE_D, TOKENS], ids=["1d", "3d", "tokens"])
def test_every_layout_agrees_across_backends(text: str) -> None:
    net = netdsl.loads(text)
    module = _agree(net)
    assert sum(p.numel() for p in module.parameters()) == net.params


def test_exact_size_rule_per_axis() -> None:
    """Each spatial axis follows floor((N + 2P − D·(K−1) − 1)/S) + 1 on its own, as in PyTorch."""
    net = netdsl.loads("input 2x11x20x9\nconv3x5x1-4/2 dilation 2\nmaxpool3/2 ceil\nbn")
    conv = nn.Conv3d(2, 4, (3, 5, 1), stride=2, padding=(2, 4, 0), dilation=2)
    pool = nn.MaxPool3d(3, 2, ceil_mode=True)
    with torch.no_grad():
        y = conv(torch.zeros(1, 2, 11, 20, 9))
        assert net.graph["conv1"].out.dims == tuple(y.shape[1:])
        assert net.output.dims == tuple(pool(y).shape[1:])
    assert net.layers()[0].params == 4 * 2 * 15 + 4


def test_fc_on_tokens_is_per_token() -> None:
    net = netdsl.loads("input 197x768 tokens\nFC-3072")
    assert net.output == Shape.tokens(197, 3072) and str(net.output) == "197×3072 tokens"
    assert net.params == 768 * 3072 + 3072 and net.macs == 197 * 768 * 3072


def test_input_layouts() -> None:
    for text, shape in (("4096", Shape.vector(4096)), ("1x16000", Shape.map(1, 16000)),
                        ("3x224x224", Shape.map(3, 224, 224)),
                        ("3x16x112x112", Shape.map(3, 16, 112, 112)),
                        ("197x768 tokens", Shape.tokens(197, 768)),
                        ("56x56x96 grid", Shape.grid(56, 56, 96))):
        net = netdsl.loads(f"input {text}\nidentity")
        assert net.input == shape and net.input_shape == ("N", *shape.dims)


@pytest.mark.parametrize(("text", "message"), [
    ("input 197x768 tokens\nbn", "bn expects a map or a vector, got a 197×768 token sequence"),
    ("input 1x100\nFC-4; gap", "gap expects a map, got a vector of 4 features"),
    ("input 1x100\nLRN", "lrn expects a 2-D map (C×H×W), got a 1×100 map"),
    ("input 4x10\nconcat from input, input\nconv3x3-2",
     "conv kernel 3x3 has 2 sizes, but its input is a 8×10 map with 1 spatial axis"),
    ("input 3x8x8\nmaxpool2x2x2", "maxpool kernel 2x2x2 has 3 sizes"),
    ("input 5x5x5x5x5\nrelu", "input 5×5×5×5×5 fits no layout"),
])
def test_layout_errors_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(NetdslError) as e:
        netdsl.loads(text, "t.net")
    assert message in str(e.value)


def test_specs_of_every_layout_exist() -> None:
    layouts = {netdsl.load(p).input.layout for p in (ROOT / "specs").glob("*.net")}
    assert {Layout.MAP1, Layout.MAP2, Layout.MAP3} <= layouts
    assert Path(ROOT / "specs" / "m5-audio.net").exists()


# ---- traits, not names ----------------------------------------------------------------------

def test_traits_match_what_ops_do() -> None:
    """``carries_weights`` is declared where ``tensors`` is non-empty, on every op in use."""
    nets = [netdsl.load(ROOT / "tests" / "data" / "every-op.net"),
            *(netdsl.loads(t) for t in (ONE_D, THREE_D, TOKENS))]
    seen = set()
    for net in nets:
        for lay in net.graph.layers():
            op = netdsl.ops.OPS[lay.op]
            seen.add(op.name)
            assert bool(op.tensors(lay.attrs, net.in_shapes(lay))) == op.carries_weights, op.name
            if op.takes_activation or op.counts_in_depth:
                assert op.carries_weights, op.name
    assert seen == set(netdsl.ops.OPS)


DRIVERS = ("summary.py", "draw.py", "table.py", "network.py", "passes", "codegen", "layout.py",
           "tikz.py", "stagetable.py", "vittable.py")


def test_drivers_compare_no_op_names() -> None:
    """Drivers ask ops for traits; comparing ``.op`` (or the input's name) with a string
    literal would make a new op need edits outside netdsl/ops/."""
    import ast

    files = []
    for d in DRIVERS:
        p = ROOT / "netdsl" / d
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names = [s for s in sides if isinstance(s, ast.Attribute) and s.attr == "op"]
                texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "input"]
                assert not (names and any(isinstance(s, ast.Constant) for s in sides)), \
                    f"{f.name}:{node.lineno} compares an op name"
                assert not texts, f"{f.name}:{node.lineno} compares with 'input'"
