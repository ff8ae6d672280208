"""The Swin Transformer: specs/swin_t.net against torchvision 0.28's swin_t, and its ops.

Equivalence is the strict check of ``torchvision_oracle``: every constant-initialized tensor of
torchvision's model (LayerNorm scales and shifts, zero biases) is randomized, and so are the
relative position bias tables (std 0.02) and the MLP biases (std 1e-6), which would otherwise
hide a missing or misplaced bias; torchvision's state_dict is loaded by name and the PyTorch
module and onnxruntime must both be within 1e-4 of max |y| at 1× and 20× input (batch 1).
The window attention and patch merging ops are also checked one by one against torchvision's
modules on grids that need padding and where the shift is dropped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .test_transformer import Pair, _candidates, _pair
from .torchvision_oracle import compare, import_torchvision, prepare, relative_error

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import netdsl  # noqa: E402
from netdsl.codegen.torch import to_torch  # noqa: E402
from netdsl.codegen.weights import match_weights, state_dict_order, tensor_specs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SWIN = ROOT / "specs" / "swin_t.net"
SHAPE = (3, 224, 224)
SWIN_T_PARAMS = 28_288_354  # torchvision 0.28's Swin_T_Weights meta "num_params"
SMALL_C = 24  # a narrow Swin-T (heads 3/6/12/24 still divide 24·2^k) for the file round trip


def _randomized(ref: torch.nn.Module) -> torch.nn.Module:
    extra = [k for k, _ in ref.named_parameters()
             if k.endswith("relative_position_bias_table") or (".mlp." in k and
                                                               k.endswith(".bias"))]
    return prepare(ref, SHAPE, extra=extra)


@pytest.fixture(scope="module")
def tv() -> Any:
    return import_torchvision()


@pytest.fixture(scope="module")
def swin_t(tv: Any) -> Pair:
    return _pair(_randomized(tv.models.swin_t()), netdsl.load(SWIN))


# ---- torchvision equivalence ------------------------------------------------------------------

def test_swin_t_is_strictly_torchvisions(swin_t: Pair) -> None:
    worst = compare(swin_t.ref, _candidates(swin_t), SHAPE, batch=1)
    assert max(worst.values()) <= 1e-4, worst


def test_swin_t_has_torchvisions_state_dict(swin_t: Pair) -> None:
    """Names, shapes and order, but the window geometry's index buffers, which netdsl derives
    from the window size (they are ignored when loading)."""
    theirs = {k: tuple(v.shape) for k, v in swin_t.ref.state_dict().items()
              if not k.endswith(".relative_position_index")}
    ours = {name: t.shape for name, t, _ in state_dict_order(tensor_specs(swin_t.net))}
    assert list(ours) == list(theirs)
    assert ours == theirs
    assert list(swin_t.module.state_dict()) == list(ours)
    # by order too: the index buffers are skipped like BN's counters
    state = {k: v.numpy() for k, v in swin_t.ref.state_dict().items()}
    w = match_weights(swin_t.net, state, by_order=True)
    assert all(np.array_equal(w[k], state[k]) for k in ours)


def test_parameter_count_equals_torchvisions(tv: Any) -> None:
    with torch.device("meta"):
        theirs = sum(p.numel() for p in tv.models.swin_t().parameters())
    assert theirs == SWIN_T_PARAMS
    assert netdsl.load(SWIN).params == SWIN_T_PARAMS


def test_weights_option_loads_torchvisions_checkpoint(tv: Any, tmp_path: Path) -> None:
    ref = _randomized(tv.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=SMALL_C, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
        window_size=[7, 7], stochastic_depth_prob=0.2, num_classes=10))
    ckpt, out = tmp_path / "swin.pth", tmp_path / "swin.onnx"
    torch.save(ref.state_dict(), ckpt)  # with torchvision's relative_position_index buffers
    r = subprocess.run([sys.executable, "-m", "netdsl", "compile", str(SWIN), "--param",
                        f"C={SMALL_C}", "--param", "classes=10", "--weights", str(ckpt),
                        "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    x = torch.randn((1, *SHAPE), generator=torch.Generator().manual_seed(3)) * 20
    with torch.no_grad():
        want = ref(x)
    assert relative_error(want, netdsl.run_onnx(str(out), x.numpy(), device="cpu")) <= 1e-4


# ---- costs -----------------------------------------------------------------------------------

def counted_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward, counted from the tensors PyTorch actually multiplies (not
    from netdsl): every linear map (per row of its input), conv and matrix product, the
    attention's Q·Kᵀ and A·V included; additions, norms, softmax and scalings count nothing."""
    from torch.overrides import TorchFunctionMode

    total = 0

    class Count(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            nonlocal total
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            if name == "linear":
                w = args[1]
                total += args[0].numel() // args[0].shape[-1] * w.shape[0] * w.shape[1]
            elif name == "conv2d":
                w = args[1]
                total += out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
            elif name == "matmul":
                total += out.numel() * args[0].shape[-1]
            return out

    with torch.no_grad(), Count():
        model(x)
    return total


def test_swin_t_macs_match_an_independent_count(swin_t: Pair) -> None:
    want = counted_macs(swin_t.ref, torch.zeros((1, *SHAPE)))
    assert want == 4_490_566_656  # torchvision's Swin_T_Weights meta: 4.491 G"ops"
    assert swin_t.net.macs == want


def test_window_attention_macs_convention() -> None:
    net = netdsl.loads("input 14x14x32 grid\nwattention heads=4 window=7 shift=3\n")
    att = net.layers()[-1]
    windows, n, d = 4, 49, 32
    assert att.macs == windows * (4 * n * d * d + 2 * n * n * d)
    assert att.params == 4 * d * d + 4 * d + 13 * 13 * 4


# ---- the ops against torchvision's modules ---------------------------------------------------

def _agree(ref: torch.nn.Module, text: str, shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    net = netdsl.loads(text)
    state = {f"m.{k}": v.numpy() for k, v in ref.state_dict().items()}
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref.eval()(x)
        got = to_torch(net, weights=state).eval()(x)
    assert relative_error(want, got) <= 1e-6
    onnx = netdsl.run_onnx(netdsl.to_onnx(net, weights=state), x.numpy(), device="cpu")
    assert relative_error(want, onnx) <= 1e-5


@pytest.mark.parametrize("h,w,window,shift", [
    (14, 14, 7, 0), (14, 14, 7, 3),
    (10, 13, 7, 3),  # padded to 14×14 before the windows
    (7, 7, 7, 3),  # one window: no shift (torchvision drops it)
    (5, 16, 7, 3),  # the height fits one window: shifted along the width only
    (9, 9, 3, 1),
])
def test_window_attention_is_torchvisions(tv: Any, h: int, w: int, window: int,
                                          shift: int) -> None:
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    ref = ShiftedWindowAttention(12, [window, window], [shift, shift], 3)
    _agree(ref, f"input {h}x{w}x12 grid\nm = wattention 3 window={window} shift={shift}\n",
           (h, w, 12))


@pytest.mark.parametrize("h,w", [(8, 8), (7, 9)])
def test_patch_merging_is_torchvisions(tv: Any, h: int, w: int) -> None:
    from torchvision.models.swin_transformer import PatchMerging

    _agree(PatchMerging(6), f"input {h}x{w}x6 grid\nm = patchmerge\n", (h, w, 6))


def test_grid_ops_shapes() -> None:
    net = netdsl.loads("input 3x32x32\nconv4-8/4\ngrid\npatchmerge\nFC-5\ntokens\n")
    assert [str(x.out) for x in net.layers()[1:]] == [
        "8×8×8 grid", "4×4×16 grid", "4×4×5 grid", "16×5 tokens"]
    assert netdsl.loads("input 7x5x4 grid\npatchmerge-6").output_shape == ("N", 4, 3, 6)


@pytest.mark.parametrize("text,message", [
    ("input 3x32x32\nwattention 2", "wattention expects a token grid (H×W×D), got a 3×32×32 "
     "map"),
    ("input 49x8 tokens\npatchmerge", "patchmerge expects a token grid (H×W×D), got a 49×8 "
     "token sequence"),
    ("input 7x7x8 grid\nattention 2", "attention expects a token sequence, got a 7×7×8 token "
     "grid"),
    ("input 7x7x8 grid\nwattention 3", "3 heads do not divide the token size 8"),
    ("input 7x7x8 grid\nwattention 2 window=7 shift=7", "wattention shift 7 is not smaller "
     "than the window 7"),
    ("input 8x7x7\ngrid\ngrid", "grid expects a 2-D map (C×H×W), got a 7×7×8 token grid"),
])
def test_layout_errors(text: str, message: str) -> None:
    with pytest.raises(netdsl.NetdslError) as e:
        netdsl.loads(text)
    assert message in str(e.value)
    assert e.value.hint
