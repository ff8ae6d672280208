"""Channel structure and residual-branch ops: channel split and shuffle (ShuffleNet), layer
scale and stochastic depth (ConvNeXt). None counts multiply-adds (only conv and FC do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NetdslError, SourceLoc
from ..shape import ANY, MAPS, Layout, Shape
from . import OpDef, TensorSpec, TorchCode, opt, register
from .norm import feature_count

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


@dataclass(frozen=True, slots=True)
class SplitAttrs:
    parts: int = opt(kind="int", lo=1, doc="equal channel parts")
    index: int = opt(kind="int", lo=0, doc="which part, from 0")


@register("split", "chunk", "channel_split")
class ChannelSplit(OpDef):
    """One of equal channel parts, ``split 2 0`` / ``split 2 1`` (ShuffleNetV2's halves)."""

    Attrs = SplitAttrs
    positional = ("parts", "index")
    accepts = MAPS | {Layout.VECTOR}

    def validate(self, a: SplitAttrs, loc: SourceLoc) -> None:
        if a.index >= a.parts:
            raise NetdslError(f"split part {a.index} of {a.parts} does not exist", loc,
                              hint=f"parts are numbered 0 to {a.parts - 1}")

    def _range(self, a: SplitAttrs, c: int) -> tuple[int, int]:
        size = c // a.parts
        return a.index * size, (a.index + 1) * size

    def infer(self, a: SplitAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        c = ins[0].channels
        if c % a.parts:
            raise NetdslError(f"split: {c} channels do not divide into {a.parts} equal parts",
                              loc, hint="split a channel count divisible by the parts")
        return ins[0].with_channels(c // a.parts)

    def notation(self, a: SplitAttrs, ins: tuple[Shape, ...]) -> str:
        return f"split {a.parts} {a.index}"

    def torch(self, a: SplitAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        lo, hi = self._range(a, ins[0].channels)
        return TorchCode(None, f"{{0}}[:, {lo}:{hi}]")

    def onnx(self, b: OnnxBuilder, a: SplitAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        lo, hi = self._range(a, ins[0].channels)
        return b.node("Slice", [inputs[0], b.ints(f"{name}/starts", [lo]),
                                b.ints(f"{name}/ends", [hi]), b.ints(f"{name}/axes", [1])], name)


@dataclass(frozen=True, slots=True)
class ShuffleAttrs:
    groups: int = opt(kind="int", lo=1, doc="channel groups to interleave")


@register("shuffle", "channel_shuffle", "channelshuffle")
class ChannelShuffle(OpDef):
    """Channel shuffle, ``shuffle 2``: view C as G×(C/G), transpose, flatten (ShuffleNet)."""

    Attrs = ShuffleAttrs
    positional = ("groups",)
    accepts = MAPS

    def infer(self, a: ShuffleAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        c = ins[0].channels
        if c % a.groups:
            raise NetdslError(f"shuffle: {a.groups} groups do not divide the {c} channels", loc,
                              hint="use a number of groups that divides the channels")
        return ins[0]

    def notation(self, a: ShuffleAttrs, ins: tuple[Shape, ...]) -> str:
        return f"shuffle {a.groups}"

    def torch(self, a: ShuffleAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        c = ins[0].channels
        return TorchCode(None, f"{{0}}.unflatten(1, ({a.groups}, {c // a.groups}))"
                               ".transpose(1, 2).flatten(1, 2)")

    def onnx(self, b: OnnxBuilder, a: ShuffleAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        dims = list(ins[0].dims)
        c, rest = dims[0], dims[1:]
        x = b.node("Reshape", [inputs[0], b.ints(f"{name}/grouped", [0, a.groups,
                                                                       c // a.groups, *rest])],
                   f"{name}/view")
        x = b.node("Transpose", [x], f"{name}/transpose",
                   perm=[0, 2, 1, *range(3, 3 + len(rest))])
        return b.node("Reshape", [x, b.ints(f"{name}/shape", [0, *dims])], name)


@dataclass(frozen=True, slots=True)
class LayerScaleAttrs:
    init: float = opt(1e-6, kind="float", doc="initial value of every scale (ConvNeXt: 1e-6)")


@register("layerscale", "layer_scale")
class LayerScale(OpDef):
    """A learned per-channel scale, ``layerscale`` (ConvNeXt, CaiT), initialized to ``init``.

    Its one tensor is the layer itself (no ``.weight`` suffix), as in torchvision's ConvNeXt:
    ``layer_scale = layerscale`` in block ``features.1.0`` is ``features.1.0.layer_scale``,
    shaped C×1×1 on maps and C on vectors and token sequences.
    """

    Attrs = LayerScaleAttrs
    inplace = True
    accepts = ANY
    carries_weights = True

    def _shape(self, ins: tuple[Shape, ...]) -> tuple[int, ...]:
        return (feature_count(ins[0]), *(1 for _ in ins[0].spatial))

    def params(self, a: LayerScaleAttrs, ins: tuple[Shape, ...]) -> int:
        return feature_count(ins[0])

    def notation(self, a: LayerScaleAttrs, ins: tuple[Shape, ...]) -> str:
        return "layer scale"

    def tensors(self, a: LayerScaleAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        return [TensorSpec("", self._shape(ins), "const", value=a.init)]

    def torch(self, a: LayerScaleAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        shape = ", ".join(map(str, self._shape(ins)))
        return TorchCode(f"nn.Parameter(torch.empty({shape}))", "{m} * {0}", parameter=True)

    def onnx(self, b: OnnxBuilder, a: LayerScaleAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # the initializer holds the layer's name (the state_dict key): the node takes a suffix
        return b.node("Mul", [b.param(name), inputs[0]], f"{name}/mul")


@dataclass(frozen=True, slots=True)
class DropPathAttrs:
    p: float = opt(kind="float", lo=0.0, hi=1.0, doc="probability of dropping the branch")
    mode: str = opt("row", kind="choice", choices=("row", "batch"),
                    doc="drop per example (row) or for the whole batch")


@register("droppath", "drop_path", "stochastic_depth", "stochasticdepth")
class StochasticDepth(OpDef):
    """Stochastic depth on a residual branch, ``droppath 0.1``: in training each example's
    branch is zeroed with probability p and the survivors scaled by 1/(1 − p) (torchvision's
    ``StochasticDepth``); the identity in inference."""

    Attrs = DropPathAttrs
    positional = ("p",)
    inplace = True
    accepts = ANY

    def notation(self, a: DropPathAttrs, ins: tuple[Shape, ...]) -> str:
        return f"droppath {a.p:g}"

    def torch(self, a: DropPathAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        if a.p == 0:
            return TorchCode(None, "{0}")
        size = ("({0}.shape[0],) + (1,) * ({0}.dim() - 1)" if a.mode == "row"
                else "(1,) * {0}.dim()")
        keep = 1.0 - a.p
        return TorchCode(None, f"({{0}} * {{0}}.new_empty({size}).bernoulli_({keep!r})"
                               f".div_({keep!r}) if self.training else {{0}})")

    def onnx(self, b: OnnxBuilder, a: DropPathAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return inputs[0]  # inference form: the identity, no node
