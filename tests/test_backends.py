"""Backends on every spec: PyTorch module, emitted source, ONNX model, onnxruntime parity.

Each spec's models are built once (a module-scoped fixture; pytest groups the tests by spec)
at batch 1. Random-init deep networks reach huge magnitudes in eval mode with BN's initial
statistics (mean 0, var 1), so BN's tensors are first set to random values that damp each
residual branch: outputs stay finite and BN is tested with non-trivial statistics.
"""

from __future__ import annotations

import ast
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import netdsl  # noqa: E402
from netdsl import runtime  # noqa: E402
from netdsl.codegen.onnx import compile_onnx  # noqa: E402
from netdsl.codegen.torch import to_torch, to_torch_source  # noqa: E402
from netdsl.codegen.weights import state_dict_order, tensor_specs  # noqa: E402

from .conftest import SPECS  # noqa: E402
from .test_zoo import SPEC_STEMS  # noqa: E402
from .torchvision_oracle import randomize_constants  # noqa: E402

RTOL = 1e-4  # of the output's largest magnitude


@dataclass
class Built:
    net: netdsl.Network
    module: torch.nn.Module  # with auxiliary heads, BN calibrated, in eval mode
    state: dict[str, np.ndarray]  # its state_dict as numpy (shares memory)
    onnx_path: Path  # compiled from ``state`` through the --weights path
    x: np.ndarray
    y: np.ndarray  # torch eval output on x


def _randomize_bn(module: torch.nn.Module) -> None:
    """Non-trivial BN tensors that keep deep residual stacks from overflowing float32.

    A variance around 4 halves each BN's output, so a residual branch adds a fraction of its
    input instead of doubling it (ResNet-1202 overflows with the initial variance of 1).
    Fixed statistics keep the network a fixed, well-conditioned function; statistics set from
    the input itself would make a random-init deep BN network chaotic (rounding differences
    of 1e-7 grow past 1e-4 in ResNet-152).
    """
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                for t, lo, hi in ((m.running_mean, -0.1, 0.1), (m.running_var, 2.0, 6.0),
                                  (m.weight, 0.5, 1.5), (m.bias, -0.1, 0.1)):
                    t.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)


# The torchvision zoo specs are compared with torchvision itself, strictly and at small inputs,
# by test_zoo.py, and the ViT specs by test_transformer.py (vit_l_16: 304M parameters, 61.6
# GMACs per image): building their big variants again here at full size would double the time.
BACKEND_SPECS = [p for p in SPECS if p.stem not in SPEC_STEMS and not p.stem.startswith("vit_")]


@pytest.fixture(scope="module", params=BACKEND_SPECS, ids=lambda p: p.stem)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    net = netdsl.load(request.param)
    module = to_torch(net, seed=0)
    shape = tuple(int(d) for d in net.input_shape[1:])
    x = np.random.default_rng(0).standard_normal((1, *shape), dtype=np.float32)
    _randomize_bn(module)
    with torch.no_grad():
        y = module.eval()(torch.from_numpy(x)).numpy()
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    aux = _aux_layers(net)
    main_state = {k: v for k, v in state.items() if k.rpartition(".")[0] not in aux}
    path = tmp_path_factory.mktemp("onnx") / f"{net.name}.onnx"
    # models over 100 MB (VGG, AlexNet, WRN-50-2) keep their weights as external data, as past
    # 2 GB: the same checks, and onnxruntime maps the weights instead of parsing them (faster)
    big = sum(a.nbytes for a in main_state.values()) > 100 << 20
    compile_onnx(net, path, weights=main_state, external_threshold=0 if big else None)
    return Built(net, module, state, path, x, y)


def _aux_layers(net: netdsl.Network) -> set[str]:
    return {lay.name for lay in net.graph.layers() if lay.aux}


def test_torch_parameter_count(built: Built) -> None:
    aux = _aux_layers(built.net)
    params = dict(built.module.named_parameters())
    assert sum(p.numel() for p in params.values()) == built.net.params_training
    main = sum(p.numel() for k, p in params.items() if k.rpartition(".")[0] not in aux)
    assert main == built.net.params


def test_state_dict_keys_are_layer_names(built: Built) -> None:
    names = {lay.name for lay in built.net.graph.layers()}
    declared = [n for n, _, _ in state_dict_order(tensor_specs(built.net, aux=True))]
    keys = [k for k in built.state if not k.endswith(".num_batches_tracked")]
    assert keys == declared  # the ops' tensors, in PyTorch's state_dict order
    for key in keys:  # <layer>.weight, <layer>.out_proj.bias, or the layer itself (class_token)
        assert key in names or any(key.startswith(f"{n}.") for n in names), key


def test_torch_output_shape_is_inferred_shape(built: Built) -> None:
    assert built.y.shape == (1, *built.net.output_shape[1:])
    assert np.isfinite(built.y).all()


def test_onnxruntime_matches_torch(built: Built) -> None:
    sess = ort.InferenceSession(str(built.onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": built.x})[0]
    assert got.shape == built.y.shape
    scale = float(np.abs(built.y).max())
    assert scale > 0
    err = float(np.abs(got - built.y).max())
    assert err <= RTOL * scale, f"max |ort - torch| = {err:.3g}, {err / scale:.3g} of max |y|"


def test_onnx_model_contract(built: Built) -> None:
    # compile_onnx already ran the full checker; the graph is enough here
    model = onnx.load(str(built.onnx_path), load_external_data=False)
    assert model.opset_import[0].version >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N"
    assert [d.dim_value for d in dims[1:]] == list(built.net.input_shape[1:])
    aux = _aux_layers(built.net)
    weights = {k for k in built.state
               if not k.endswith("num_batches_tracked") and k.rpartition(".")[0] not in aux}
    inits = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert inits == weights
    layers = {lay.name for lay in built.net.graph.layers()}
    assert all(n.name.split("/")[0] in layers for n in model.graph.node)
    assert not any(n.name.split("/")[0] in aux for n in model.graph.node)
    assert not any(n.op_type == "Dropout" for n in model.graph.node)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["netdsl.spec"] == built.net.source
    assert props["netdsl.version"] == netdsl.__version__


def test_emitted_source_is_standalone_and_identical(built: Built, tmp_path: Path) -> None:
    src = to_torch_source(built.net)
    imports = [n for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all("netdsl" not in ast.unparse(n) for n in imports)
    path = tmp_path / f"emitted_{abs(hash(built.net.name))}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    classes = [v for v in vars(mod).values() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and v.__module__ == mod.__name__]
    network = getattr(mod, type(built.module).__name__)  # beside it: ops' helpers (Swin's)
    assert network in classes and network.__init__.__code__.co_argcount == 1
    with torch.device("meta"):  # skip the default init: every tensor is loaded below
        other = network()
    other.load_state_dict(built.module.state_dict(), strict=True, assign=True)
    other.eval()
    with torch.no_grad():
        y = other(torch.from_numpy(built.x)).numpy()
    np.testing.assert_array_equal(y, built.y)


# ---- PyTorch specifics ----------------------------------------------------------------------

SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"


def test_aux_heads_in_training_mode_only() -> None:
    net = netdsl.load(SPEC_DIR / "googlenet.net")
    m = to_torch(net, seed=0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        outs = m.train()(x)
        assert isinstance(outs, tuple) and len(outs) == 3
        assert all(o.shape == (1, 1000) for o in outs)
        assert m.eval()(x).shape == (1, 1000)
    lean = to_torch(net, seed=0, aux=False)
    assert sum(p.numel() for p in lean.parameters()) == net.params
    with torch.no_grad():
        assert lean.train()(x).shape == (1, 1000)  # no aux heads: one output
    # the inference weights do not depend on whether the aux heads are built
    full = m.state_dict()
    for k, v in lean.state_dict().items():
        assert torch.equal(v, full[k]), k


def test_state_dict_keys_stable_and_seeded() -> None:
    net = netdsl.load(SPEC_DIR / "resnet50.net")
    a, b = to_torch(net, seed=3), to_torch(net, seed=3)
    assert list(a.state_dict()) == list(b.state_dict())
    assert "layer1.0.conv1.weight" in a.state_dict()
    assert "layer1.0.downsample.0.weight" in a.state_dict()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    c = to_torch(net, seed=4)
    assert not torch.equal(a.state_dict()["fc.weight"], c.state_dict()["fc.weight"])


@pytest.mark.parametrize("init", ["he normal", "he uniform", "glorot normal", "glorot uniform"])
def test_init_follows_the_spec(init: str) -> None:
    net = netdsl.loads(f"init {init}\ninput 64\nFC-2000 bias off\n")
    w = to_torch(net, seed=0).state_dict()["fc1.weight"].numpy().astype(np.float64)
    scheme, dist = init.split()
    var = 2 / 64 if scheme == "he" else 2 / (64 + 2000)
    assert w.std() == pytest.approx(math.sqrt(var), rel=0.02)
    if dist == "uniform":
        assert np.abs(w).max() <= math.sqrt(3 * var) * (1 + 1e-6)
    else:
        assert np.abs(w).max() > math.sqrt(3 * var)  # a normal's tails pass the uniform's bound


def test_torch_and_onnx_share_the_seeded_init() -> None:
    net = netdsl.load(SPEC_DIR / "resnet20.net")
    sd = to_torch(net, seed=7).state_dict()
    model = netdsl.to_onnx(net, seed=7)
    for t in model.graph.initializer:
        if t.name in sd:
            np.testing.assert_array_equal(onnx.numpy_helper.to_array(t), sd[t.name].numpy())


def test_fast_writer_writes_what_onnx_would(tmp_path: Path) -> None:
    net = netdsl.load(SPEC_DIR / "resnet20.net")
    compile_onnx(net, tmp_path / "m.onnx")
    assert onnx.load(str(tmp_path / "m.onnx")) == netdsl.to_onnx(net)


def test_generated_source_in_tracebacks() -> None:
    net = netdsl.load(SPEC_DIR / "lenet5.net")
    m = to_torch(net)
    with pytest.raises(RuntimeError) as e:
        m(torch.randn(1, 3, 32, 32))  # wrong channel count
    frames = [f for f in e.traceback if str(f.path).startswith("<netdsl:")]
    assert frames and "self.conv1(x)" in str(frames[0].statement)


def test_odd_layer_names_give_valid_identifiers() -> None:
    net = netdsl.loads("input 3x8x8\nclass = conv3-4\nlambda = (conv3-4 ×2)\nsum = FC-3\n")
    src = to_torch_source(net)
    compile(src, "<test>", "exec")
    m = to_torch(net)
    assert {k.rpartition(".")[0] for k in m.state_dict()} >= {"class", "sum"}
    assert m.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 3)


def test_layer_named_like_a_module_attribute_is_an_error() -> None:
    net = netdsl.loads("input 3x8x8\ntraining = conv3-4\nFC-3\n")
    with pytest.raises(netdsl.NetdslError, match="attribute of nn.Module"):
        to_torch_source(net)


# ---- onnxruntime device selection -----------------------------------------------------------

def _cuda_works() -> bool:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        s = runtime.open_session(netdsl.to_onnx(netdsl.loads("input 4\nFC-2\n")), "cuda")
    except netdsl.NetdslError:
        return False
    return s.provider == "CUDAExecutionProvider"


CUDA = _cuda_works()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no working onnxruntime CUDA provider here")


def test_cuda_unavailable_is_an_error_not_a_fallback() -> None:
    if CUDA:
        pytest.skip("CUDA works here")
    model = netdsl.to_onnx(netdsl.loads("input 4\nFC-2\n"))
    with pytest.raises(netdsl.NetdslError, match="cuda"):
        netdsl.run_onnx(model, np.zeros((1, 4), np.float32), device="cuda")
    y = netdsl.run_onnx(model, np.zeros((1, 4), np.float32), device="auto")
    assert y.shape == (1, 2)


@needs_cuda
@pytest.mark.parametrize("stem", ["resnet50", "googlenet", "vgg16", "densenet121"])
def test_cuda_matches_cpu(stem: str) -> None:
    model = netdsl.to_onnx(netdsl.load(SPEC_DIR / f"{stem}.net"))
    s = runtime.open_session(model, "cuda")
    assert s.provider == "CUDAExecutionProvider"
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    y_gpu = s.run(x)
    y_cpu = netdsl.run_onnx(model, x, device="cpu")
    # cuDNN may use TF32 and other algorithms: compare against the CPU at a looser tolerance
    assert np.abs(y_gpu - y_cpu).max() <= 1e-2 * np.abs(y_cpu).max()


# ---- every op -------------------------------------------------------------------------------

def test_every_registered_op_agrees_across_backends() -> None:
    """A small network using every op (and dilation, groups, asymmetric kernels, ceil, padding,
    n-ary add, 1-D BN): PyTorch and onnxruntime agree, and a new op must be added to it."""
    net = netdsl.load(Path(__file__).parent / "data" / "every-op.net")
    used = {lay.op for lay in net.graph.layers()}
    assert used >= set(netdsl.ops.OPS), f"not covered: {set(netdsl.ops.OPS) - used}"
    module = to_torch(net, seed=0)
    _randomize_bn(module)
    randomize_constants(module)  # unit LN scales, zero biases, a 1e-6 layer scale
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    model = netdsl.to_onnx(net, weights=state)
    x = np.random.default_rng(0).standard_normal((3, *net.input_shape[1:]), dtype=np.float32)
    for scale in (1, 20):  # 20× crosses ReLU6's and the hard activations' caps
        with torch.no_grad():
            y = module.eval()(torch.from_numpy(x * scale)).numpy()
        got = netdsl.run_onnx(model, x * scale, device="cpu")
        np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)
