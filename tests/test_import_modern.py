"""netdsl import of the modern vocabulary: from both PyTorch exporters and torchvision's zoo.

A small module using every modern op is exported with the legacy (TorchScript) exporter and
with the dynamo (torch.export) one; each export must import to the same layers and compute the
same function. torchvision's zoo models are exported once each (legacy exporter, BN kept as
its own node), imported, verified by the import itself under onnxruntime and compared with
PyTorch at 1× and 20× input scale (constants randomized, BN statistics calibrated).
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from netdsl.importer import from_onnx  # noqa: E402
from netdsl.importer.torch import export  # noqa: E402
from netdsl.runtime import run_onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import torchvision_oracle  # noqa: E402
from torchvision_oracle import compare, prepare  # noqa: E402

nn = torch.nn
F = torch.nn.functional


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm: channels-last for the normalization."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Modern(nn.Module):
    """Every modern CNN op once: ReLU6, hard-sigmoid, hard-swish, SiLU, GELU (erf and tanh),
    LayerNorm on a map (ConvNeXt's permutes, Linear on channels-last), GroupNorm, channel
    split and shuffle, layer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.ln = LayerNorm2d(16, eps=1e-6)
        self.pw1 = nn.Linear(16, 32)
        self.pw2 = nn.Linear(32, 16)
        self.layer_scale = nn.Parameter(torch.rand(16, 1, 1) + 0.5)
        self.branch = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.gn(self.stem(x)))
        y = self.ln(self.dw(x)).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(y))).permute(0, 3, 1, 2)
        x = x + self.layer_scale * y
        x = F.hardswish(x)
        x = x * F.hardsigmoid(x).mean((2, 3), keepdim=True)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, F.silu(self.branch(b))], 1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        x = F.gelu(x, approximate="tanh")
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _dynamo(model: nn.Module, x: torch.Tensor) -> bytes:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, (x,), dynamo=True, verbose=False)
    return prog.model_proto.SerializeToString()


def _opset14(model: nn.Module, x: torch.Tensor) -> bytes:
    """The legacy exporter before opset 17: LayerNorm as ReduceMean, Sub, Pow, Sqrt, Div…"""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=14)
    return buf.getvalue()


EXPORTERS = {"legacy": lambda m, x: export(m, x), "dynamo": _dynamo, "legacy-opset14": _opset14}


@pytest.fixture(scope="module")
def modern() -> nn.Module:
    torch.manual_seed(0)
    return prepare(Modern(), (3, 8, 8))


@pytest.mark.parametrize("exporter", sorted(EXPORTERS))
def test_modern_ops_from_each_exporter(modern: nn.Module, exporter: str) -> None:
    x = torch.randn(1, 3, 8, 8)
    r = from_onnx(EXPORTERS[exporter](modern, x), path=f"modern_{exporter}.onnx")
    text = r.text
    for words in ("relu6", "groupnorm 4", "layernorm eps=1e-06", "conv1-32 +gelu",
                  "layer_scale = layerscale", "hswish", "hsigmoid", "split 2 0", "split 2 1",
                  "+silu", "shuffle 2", "gelu tanh"):
        assert words in text, (words, text)
    assert r.max_error is not None and r.max_error <= 1e-5
    assert r.network.params == sum(p.numel() for p in modern.parameters())
    rebuilt = r.to_onnx().SerializeToString()
    compare(modern, {"import": lambda t: run_onnx(rebuilt, t.numpy(), "cpu")}, (3, 8, 8),
            batch=1)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_vision_transformer_from_both_exporters(tv: object, exporter: str) -> None:
    """nn.MultiheadAttention decomposed by each exporter comes back as one attention layer."""
    torch.manual_seed(0)
    model = prepare(tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                                num_heads=4, hidden_dim=32, mlp_dim=64),
                    (3, 32, 32))
    r = from_onnx(EXPORTERS[exporter](model, torch.randn(1, 3, 32, 32)),
                  path=f"vit_{exporter}.onnx")
    for words in ("conv_proj = patch8-32", "cls\n", "pos_embedding = pos_embed",
                  "attention heads=4", "FC-64 +gelu", "layers = encoder_layer() ×2", "token 0"):
        assert words in r.text, (words, r.text)
    if exporter == "legacy":  # dynamo folds the class token's expand into a new constant
        assert "class_token = cls" in r.text
    assert not r.warnings and r.max_error is not None and r.max_error <= 1e-5
    assert r.network.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_swin_transformer_from_both_exporters(tv: object, exporter: str) -> None:
    """A small Swin on a 9×9 grid (windows of 4: padded to 12×12, shifted by 2), merged to
    5×5 (an odd grid padded): torchvision's Slices and Concats from the legacy exporter, the
    dynamo exporter's own spelling (and its as_strided flatten before the head), both back as
    `wattention` and `patchmerge`, computing what PyTorch computes at 1× and 20×."""
    torch.manual_seed(0)
    swin = tv.models.swin_transformer
    model = prepare(swin.SwinTransformer([4, 4], 16, [2, 2], [2, 4], [4, 4], num_classes=10),
                    (3, 36, 36))
    r = from_onnx(EXPORTERS[exporter](model, torch.randn(1, 3, 36, 36)),
                  path=f"swin_{exporter}.onnx")
    for words in ("grid", "wattention heads=c window=4 shift=shift", "patchmerge", "map"):
        assert words in r.text, (words, r.text)
    assert not r.warnings and r.max_error is not None and r.max_error <= 1e-5
    assert r.network.params == sum(p.numel() for p in model.parameters())
    rebuilt = r.to_onnx().SerializeToString()
    compare(model, {"import": lambda t: run_onnx(rebuilt, t.numpy(), "cpu")}, (3, 36, 36),
            batch=1)


# ---- torchvision's zoo, exported with the legacy exporter ------------------------------------
@pytest.fixture(scope="module")
def tv() -> object:
    from torchvision_oracle import import_torchvision

    return import_torchvision()


# builder: (input, builder's keyword arguments); small inputs where global pooling allows
ZOO: dict[str, tuple[tuple[int, int, int], dict]] = {
    "mobilenet_v2": ((3, 64, 64), {}),
    "mobilenet_v3_small": ((3, 64, 64), {}),
    "mobilenet_v3_large": ((3, 64, 64), {}),
    "efficientnet_b0": ((3, 64, 64), {}),
    "shufflenet_v2_x0_5": ((3, 64, 64), {}),
    "squeezenet1_1": ((3, 64, 64), {}),
    "convnext_tiny": ((3, 64, 64), {}),
    "inception_v3": ((3, 75, 75), {"aux_logits": False, "init_weights": False}),
    "vit_b_16": ((3, 32, 32), {"image_size": 32}),
    # 28×28 → 14×14 → 7×7 → 4×4 grids: shifted windows, then one unshifted window, and an
    # odd grid padded by patch merging
    "swin_t": ((3, 112, 112), {}),
}


# PyTorch against onnxruntime: float32 kernels differ; Inception-v3's 94 layers at 20× input
# reach 1.3e-4 of max |y| (tests/test_zoo.py shows the same for netdsl's own spec)
TORCH_TOL = {"inception_v3": 3e-4}


class Imported:
    def __init__(self, tv: object, name: str) -> None:
        self.name = name
        self.shape, kw = ZOO[name]
        torch.manual_seed(0)
        self.model = prepare(getattr(tv.models, name)(weights=None, **kw), self.shape)
        self.onnx = export(self.model, torch.randn(1, *self.shape))
        self.result = from_onnx(self.onnx, path=f"{name}.onnx")

    def strict(self) -> None:
        """The rebuilt model against the exported one (both onnxruntime) within 1e-5, and
        against PyTorch within 1e-4, at 1× and 20× input scale."""
        rebuilt = self.result.to_onnx().SerializeToString()
        ours = {"import": lambda t: run_onnx(rebuilt, t.numpy(), "cpu")}
        original = torchvision_oracle.inputs(self.shape, batch=1)
        for _, x in original:
            y, y2 = run_onnx(self.onnx, x.numpy(), "cpu"), ours["import"](x)
            assert np.abs(y2 - y).max() <= 1e-5 * np.abs(y).max()
        compare(self.model, ours, self.shape, batch=1, tol=TORCH_TOL.get(self.name, 1e-4))


@pytest.fixture(scope="module")
def imported(tv: object) -> dict[str, Imported]:
    return {}


def _get(tv: object, cache: dict[str, Imported], name: str) -> Imported:
    if name not in cache:
        cache[name] = Imported(tv, name)
    return cache[name]


@pytest.mark.parametrize("name", list(ZOO))
def test_torchvision_zoo_imports_and_computes_the_same(tv: object, imported: dict,
                                                      name: str) -> None:
    got = _get(tv, imported, name)
    r = got.result
    assert r.max_error is not None and r.max_error <= 1e-5
    assert not r.warnings, r.warnings
    assert r.network.params == sum(p.numel() for p in got.model.parameters())
    for words in SHAPES.get(name, ()):
        assert words in r.text, (words, r.text)
    got.strict()


# what the issue asks of some imports: MobileNetV2 as inverted-residual calls, ViT-B/16 as one
# encoder block ×12, Inception-v3's flattened nested concats without the DAG escape
SHAPES = {
    "mobilenet_v2": ("block inverted(c, c2, stride=1) {", "block inverted_res(c) {",
                     "inverted(96, 24, 2)", "inverted_res(384) ×3"),
    "vit_b_16": ("layers = encoder_layer() ×12", "attention heads=12", "conv_proj = patch16-768"),
    "convnext_tiny": ("layer_scale = layerscale", "conv1-(4*c) +gelu", "conv2-768/2"),
    "swin_t": ("wattention heads=c window=7 shift=shift", "conv4-96/4", "grid", "patchmerge",
               "res_block(12) ×6", "map"),
}


def test_torchvision_mobilenet_v2_from_the_dynamo_exporter(tv: object) -> None:
    """The dynamo exporter folds BN into the convolutions and names nodes node_Conv_3: the
    module paths come from its metadata, the blocks are the legacy export's."""
    torch.manual_seed(0)
    model = prepare(tv.models.mobilenet_v2(weights=None), (3, 64, 64))
    r = from_onnx(_dynamo(model, torch.randn(1, 3, 64, 64)), path="mobilenet_v2.onnx")
    for words in ("block inverted(c, c2, stride=1) {", "inverted(96, 24, 2)",
                  "inverted_res(384) ×3"):
        assert words in r.text, (words, r.text)
    assert not r.warnings and r.max_error is not None and r.max_error <= 1e-5
    rebuilt = r.to_onnx().SerializeToString()
    compare(model, {"import": lambda t: run_onnx(rebuilt, t.numpy(), "cpu")}, (3, 64, 64),
            batch=1)
