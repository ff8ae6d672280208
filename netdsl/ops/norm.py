"""Normalizations over features: LayerNorm and GroupNorm (batch norm lives with dense.py).

Both normalize each example on its own. LayerNorm normalizes over the feature axis: the
channels of a C×H×W map at every pixel (ConvNeXt's ``LayerNorm2d``), the features of a vector,
the features of every token of a sequence. GroupNorm normalizes over groups of channels and
all pixels. Neither counts multiply-adds (only conv and FC do, the papers' convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NetdslError, SourceLoc
from ..shape import ANY, MAPS, Layout, Shape
from . import OpDef, TensorSpec, TorchCode, opt, register

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


def _is_map(shape: Shape) -> bool:
    return shape.layout.is_map


def feature_count(shape: Shape) -> int:
    """The axis LayerNorm normalizes: channels of a map or vector, features of a token."""
    return shape.features if shape.layout.is_tokens else shape.channels


def channels_last(shape: Shape) -> list[int]:
    """The permutation that moves a map's channels (axis 1) to the end."""
    n = len(shape.spatial)
    return [0, *range(2, 2 + n), 1]


def channels_first(shape: Shape) -> list[int]:
    n = len(shape.spatial)
    return [0, n + 1, *range(1, n + 1)]


@dataclass(frozen=True, slots=True)
class LnAttrs:
    eps: float = opt(1e-5, kind="float", lo=0.0, doc="added to the variance")
    affine: bool = opt(True, kind="bool", doc="learned scale and shift")


def _affine(affine: bool, c: int) -> list[TensorSpec]:
    return [TensorSpec("weight", (c,), "ones"), TensorSpec("bias", (c,), "zeros")] if affine \
        else []


@register("layernorm", "ln", "layer_norm")
class LayerNorm(OpDef):
    """Layer normalization over features: ``layernorm``, ``layernorm eps=1e-6`` (ConvNeXt)."""

    Attrs = LnAttrs
    accepts = ANY
    carries_weights = True

    def params(self, a: LnAttrs, ins: tuple[Shape, ...]) -> int:
        return 2 * feature_count(ins[0]) if a.affine else 0

    def notation(self, a: LnAttrs, ins: tuple[Shape, ...]) -> str:
        return "LN"

    def tensors(self, a: LnAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        return _affine(a.affine, feature_count(ins[0]))

    def torch(self, a: LnAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        ctor = (f"nn.LayerNorm({feature_count(ins[0])}, eps={a.eps!r}, "
                f"elementwise_affine={a.affine})")
        if _is_map(ins[0]):  # channels last for the normalization, as ConvNeXt's LayerNorm2d
            last, first = channels_last(ins[0]), channels_first(ins[0])
            return TorchCode(ctor, f"{{m}}({{0}}.permute{tuple(last)}).permute{tuple(first)}")
        return TorchCode(ctor, "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: LnAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        c = feature_count(ins[0])
        x = inputs[0]
        if _is_map(ins[0]):
            x = b.node("Transpose", [x], f"{name}/to_nhwc", perm=channels_last(ins[0]))
        if a.affine:
            params = [b.param(f"{name}.weight"), b.param(f"{name}.bias")]
        else:
            params = [b.floats(f"{name}/ones", [1.0] * c), b.floats(f"{name}/zeros", [0.0] * c)]
        # opset 17's LayerNormalization: onnxruntime's fused kernel
        out = f"{name}/nhwc" if _is_map(ins[0]) else name
        y = b.node("LayerNormalization", [x, *params], out, axis=-1, epsilon=a.eps)
        if _is_map(ins[0]):
            y = b.node("Transpose", [y], name, perm=channels_first(ins[0]))
        return y


@dataclass(frozen=True, slots=True)
class GnAttrs:
    groups: int = opt(kind="int", lo=1, doc="channel groups")
    eps: float = opt(1e-5, kind="float", lo=0.0, doc="added to the variance")
    affine: bool = opt(True, kind="bool", doc="learned per-channel scale and shift")


@register("groupnorm", "gn", "group_norm")
class GroupNorm(OpDef):
    """Group normalization, ``groupnorm 32``: channels in groups, over each group and all pixels."""

    Attrs = GnAttrs
    positional = ("groups",)
    accepts = MAPS | {Layout.VECTOR}
    carries_weights = True

    def infer(self, a: GnAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        c = ins[0].channels
        if c % a.groups:
            raise NetdslError(f"groupnorm: {a.groups} groups do not divide the {c} channels",
                              loc, hint="use a number of groups that divides the channels")
        return ins[0]

    def params(self, a: GnAttrs, ins: tuple[Shape, ...]) -> int:
        return 2 * ins[0].channels if a.affine else 0

    def notation(self, a: GnAttrs, ins: tuple[Shape, ...]) -> str:
        return f"GN {a.groups}"

    def tensors(self, a: GnAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        return _affine(a.affine, ins[0].channels)

    def torch(self, a: GnAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(f"nn.GroupNorm({a.groups}, {ins[0].channels}, eps={a.eps!r}, "
                         f"affine={a.affine})", "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: GnAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # opset 17 has no GroupNormalization: instance-normalize (N, G, rest), then the
        # per-channel affine, as PyTorch's exporter does
        shape = ins[0]
        g = b.node("Reshape", [inputs[0], b.ints(f"{name}/groups", [0, a.groups, -1])],
                   f"{name}/grouped")
        g = b.node("InstanceNormalization",
                   [g, b.floats(f"{name}/ones", [1.0] * a.groups),
                    b.floats(f"{name}/zeros", [0.0] * a.groups)],
                   f"{name}/norm", epsilon=a.eps)
        back = [0, *shape.dims]
        y = b.node("Reshape", [g, b.ints(f"{name}/shape", back)],
                   f"{name}/ungrouped" if a.affine else name)
        if not a.affine:
            return y
        axes = list(range(1, 1 + len(shape.spatial)))  # (C,) -> (C, 1, 1) over the pixels
        w, bias = b.param(f"{name}.weight"), b.param(f"{name}.bias")
        if axes:
            ax = b.ints(f"{name}/axes", axes)
            w = b.node("Unsqueeze", [w, ax], f"{name}/scale")
            bias = b.node("Unsqueeze", [bias, ax], f"{name}/shift")
        y = b.node("Mul", [y, w], f"{name}/mul")
        return b.node("Add", [y, bias], name)
