"""Transformers: the ViT specs against torchvision 0.28, the token ops, attention's costs.

Equivalence is the strict check of ``torchvision_oracle``: every constant-initialized tensor of
torchvision's model (class token, LayerNorm scales and shifts, zero biases, the zero head) and
the position embedding are randomized, torchvision's state_dict is loaded into netdsl's models
by name, and the PyTorch module and onnxruntime must both be within 1e-4 of max |y| at 1× and
20× input. ViT-B/16 costs 17.6 GMACs per image, so it runs at batch 1 from one shared fixture;
a small ViT of the same spec (the paper's table as params) is checked at batch 2.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .torchvision_oracle import compare, import_torchvision, prepare, relative_error

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import netdsl  # noqa: E402
from netdsl.codegen.torch import to_torch  # noqa: E402
from netdsl.codegen.weights import state_dict_order, tensor_specs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VIT = ROOT / "specs" / "vit_b_16.net"
SHAPE = (3, 224, 224)
EXTRA = ["encoder.pos_embedding"]  # drawn with std 0.02: randomized like the constants

# torchvision 0.28's parameter counts, and the ViT paper's Table 1 rows that give them
TORCHVISION = {"vit_b_16": 86_567_656, "vit_b_32": 88_224_232, "vit_l_16": 304_326_632}
# a small ViT of the same spec: patch 32 on 224×224 (49 tokens + 1), 2 layers, D 64, 4 heads
SMALL = {"P": 32, "num_layers": 2, "D": 64, "mlp_size": 128, "num_heads": 4, "classes": 10}


@pytest.fixture(scope="module")
def tv() -> Any:
    return import_torchvision()


def _small_reference(tv: Any) -> torch.nn.Module:
    ref = tv.models.VisionTransformer(image_size=224, patch_size=SMALL["P"],
                                      num_layers=SMALL["num_layers"],
                                      num_heads=SMALL["num_heads"], hidden_dim=SMALL["D"],
                                      mlp_dim=SMALL["mlp_size"], num_classes=SMALL["classes"])
    return prepare(ref, SHAPE, extra=EXTRA)


@dataclass
class Pair:
    ref: torch.nn.Module
    net: netdsl.Network
    module: torch.nn.Module
    session: Any


def _pair(ref: torch.nn.Module, net: netdsl.Network) -> Pair:
    """netdsl's PyTorch module and ONNX model, both holding ``ref``'s state_dict by name."""
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    module = to_torch(net, weights=state).eval()
    model = netdsl.to_onnx(net, weights=state)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return Pair(ref, net, module, session)


def _candidates(p: Pair) -> dict[str, Any]:
    def run_ort(x: torch.Tensor) -> np.ndarray:
        return p.session.run(None, {"input": x.numpy()})[0]

    def run_torch(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return p.module(x)

    return {"netdsl PyTorch": run_torch, "netdsl onnxruntime": run_ort}


@pytest.fixture(scope="module")
def small(tv: Any) -> Pair:
    return _pair(_small_reference(tv), netdsl.load(VIT, params=SMALL))


@pytest.fixture(scope="module")
def vit_b_16(tv: Any) -> Pair:
    return _pair(prepare(tv.models.vit_b_16(), SHAPE, extra=EXTRA), netdsl.load(VIT))


# ---- torchvision equivalence ------------------------------------------------------------------

def test_small_vit_is_strictly_torchvisions(small: Pair) -> None:
    worst = compare(small.ref, _candidates(small), SHAPE, batch=2)
    assert max(worst.values()) <= 1e-4, worst


def test_vit_b_16_is_strictly_torchvisions(vit_b_16: Pair) -> None:
    worst = compare(vit_b_16.ref, _candidates(vit_b_16), SHAPE, batch=1)
    assert max(worst.values()) <= 1e-4, worst


def test_vit_b_16_has_torchvisions_state_dict(vit_b_16: Pair) -> None:
    theirs = {k: tuple(v.shape) for k, v in vit_b_16.ref.state_dict().items()}
    ours = {name: t.shape for name, t, _ in state_dict_order(tensor_specs(vit_b_16.net))}
    assert list(ours) == list(theirs)
    assert ours == theirs  # names and shapes: --weights loads torchvision's file by name
    assert list(vit_b_16.module.state_dict()) == list(ours)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_counts_equal_torchvisions(tv: Any, name: str) -> None:
    with torch.device("meta"):  # counted without allocating 300M parameters
        theirs = sum(p.numel() for p in getattr(tv.models, name)().parameters())
    assert theirs == TORCHVISION[name]
    assert netdsl.load(ROOT / "specs" / f"{name}.net").params == theirs


def test_vit_l_16_one_forward(tv: Any) -> None:
    ref = prepare(tv.models.vit_l_16(), SHAPE, extra=EXTRA)
    net = netdsl.load(ROOT / "specs" / "vit_l_16.net")
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    x = torch.randn((1, *SHAPE), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ref(x)
        del ref
        got = to_torch(net, weights=state).eval()(x)
    assert relative_error(want, got) <= 1e-4


def test_weights_option_loads_torchvisions_checkpoint(small: Pair, tmp_path: Path) -> None:
    ckpt, out = tmp_path / "vit.pth", tmp_path / "vit.onnx"
    torch.save(small.ref.state_dict(), ckpt)
    params = [a for k, v in SMALL.items() for a in ("--param", f"{k}={v}")]
    r = subprocess.run([sys.executable, "-m", "netdsl", "compile", str(VIT), *params,
                        "--weights", str(ckpt), "-o", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    x = torch.randn((2, *SHAPE), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = small.ref(x)
    assert relative_error(want, netdsl.run_onnx(str(out), x.numpy(), device="cpu")) <= 1e-4


# ---- costs -----------------------------------------------------------------------------------

def vit_macs(image: int, patch: int, layers: int, d: int, mlp: int, classes: int) -> int:
    """ViT multiply-adds per image, derived from the paper's equations (not from netdsl).

    Patch embedding: L0·(3·P²)·D for L0 = (image/P)² patches. Each of the layers, on
    L = L0 + 1 tokens: Q, K, V and output projections 4·L·D², the products QKᵀ and A·V L²·D
    each, the MLP 2·L·D·mlp. The head: D·classes. LayerNorm, softmax, GELU, the additions and
    the scaling by 1/√d are not multiply-adds of a weight or activation product: not counted.
    """
    n0 = (image // patch) ** 2
    n = n0 + 1
    per_layer = 4 * n * d * d + 2 * n * n * d + 2 * n * d * mlp
    return n0 * 3 * patch * patch * d + layers * per_layer + d * classes


def test_vit_b_16_macs_match_the_derivation() -> None:
    want = vit_macs(224, 16, 12, 768, 3072, 1000)
    assert want == 17_563_828_224  # ≈ 17.6 G, the figure usually quoted for ViT-B/16
    assert abs(netdsl.load(VIT).macs - want) <= 0.01 * want


@pytest.mark.parametrize("name,cfg", [("vit_b_32", (32, 12, 768, 3072)),
                                      ("vit_l_16", (16, 24, 1024, 4096))])
def test_other_vit_macs_match_the_derivation(name: str, cfg: tuple[int, ...]) -> None:
    want = vit_macs(224, *cfg, 1000)
    assert netdsl.load(ROOT / "specs" / f"{name}.net").macs == want


def test_attention_macs_convention() -> None:
    net = netdsl.loads("input 3x32x32\npatch8-16\nattention heads=2\n")
    att = net.layers()[-1]
    n, d = 16, 16
    assert att.macs == 4 * n * d * d + 2 * n * n * d
    assert att.params == 4 * d * d + 4 * d


# ---- token ops -----------------------------------------------------------------------------

TOKENS_NET = """
input 8x6x6
conv3-16 +relu
tokens                 # 36 tokens of 16
cls
pos_embed
layernorm
attention 4 dropout=0.1
FC-32 +gelu
FC-16
avgtokens
FC-5
"""


def test_token_ops_agree_across_backends() -> None:
    net = netdsl.loads(TOKENS_NET)
    assert net.output_shape == ("N", 5)
    module = to_torch(net, seed=0)
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    for t in state.values():  # no constant tensors: zero class token and biases hide bugs
        t.copy_(torch.randn(t.shape, generator=gen) * 0.5)
    module.load_state_dict(state)
    x = torch.randn(3, 8, 6, 6, generator=gen)
    with torch.no_grad():
        want = module.eval()(x).numpy()
        assert not np.allclose(module.train()(x).numpy(), want)  # attention dropout is live
    model = netdsl.to_onnx(net, weights={k: v.numpy() for k, v in state.items()})
    got = netdsl.run_onnx(model, x.numpy(), device="cpu")
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_token_selects_one_token() -> None:
    net = netdsl.loads("input 3x32x32\npatch16-8\ncls\ntoken 4\n")
    assert net.output_shape == ("N", 8)
    module = to_torch(net, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = module(x)
        patches = module.patch1(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(y, patches[:, 3])  # token 4 is patch 3 after the class token
    got = netdsl.run_onnx(netdsl.to_onnx(net, seed=0), x.numpy(), device="cpu")
    np.testing.assert_allclose(got, y.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text,message", [
    ("input 3x32x32\nconv3-8\nattention 2\n",
     "attention expects a token sequence, got a 8×32×32 map"),
    ("input 3x32x32\npatch16-8\nattention 3\n", "3 heads do not divide the token size 8"),
    ("input 3x30x30\npatch16-8\n", "16×16 patches do not tile the 30×30 input"),
    ("input 3x32x32\npatch16-8\ntoken 4\n", "token 4 does not exist: the sequence has 4 tokens"),
    ("input 3x32x32\npatch16-8\ntoken 0\ncls\n", "cls expects a token sequence, got a "
     "vector of 8 features"),
    ("input 10\npos_embed\n", "pos_embed expects a token sequence"),
    ("input 197x768 tokens\npatch16-8\n", "patch expects a 2-D map (C×H×W), got a 197×768 "
     "token sequence"),
    ("input 3x32x32\npatch16-8\ntokens\n", "tokens expects a map or a token grid (H×W×D), got "
     "a 4×8 token sequence"),
])
def test_layout_errors(text: str, message: str) -> None:
    with pytest.raises(netdsl.NetdslError, match=None) as e:
        netdsl.loads(text)
    assert message in str(e.value)
    assert "hint:" in str(e.value) or e.value.hint
