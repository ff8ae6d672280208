"""Fully connected, normalization and dropout layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import NetdslError, SourceLoc
from ..ir import Shape
from . import OpDef, opt, register


@dataclass(frozen=True, slots=True)
class FcAttrs:
    out: int = opt(kind="int", lo=1, doc="output features")
    bias: bool = opt(True, kind="bool", doc="add a learned bias")


@register("fc", "linear", "dense")
class Linear(OpDef):
    """Fully connected layer ``FC-4096``; flattens a C×H×W input first (implicit flatten)."""

    Attrs = FcAttrs
    channels_field = "out"
    weight_layer = True

    def infer(self, a: FcAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return (ins[0][0], a.out)

    def params(self, a: FcAttrs, ins: tuple[Shape, ...]) -> int:
        return features(ins[0]) * a.out + (a.out if a.bias else 0)

    def macs(self, a: FcAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        return features(ins[0]) * a.out

    def notation(self, a: FcAttrs, ins: tuple[Shape, ...]) -> str:
        return f"FC-{a.out}"


def features(shape: Shape) -> int:
    """Elements per example: what an FC layer sees after the implicit flatten."""
    return math.prod(int(d) for d in shape[1:])


@dataclass(frozen=True, slots=True)
class BnAttrs:
    eps: float = opt(1e-5, kind="float", lo=0.0, doc="added to the variance")
    momentum: float = opt(0.1, kind="float", lo=0.0, hi=1.0, doc="running-statistics momentum")


@register("bn", "batchnorm", "batch_norm")
class BatchNorm(OpDef):
    """Batch normalization over channels; 2·C parameters (scale and shift)."""

    Attrs = BnAttrs

    def infer(self, a: BnAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        if len(ins[0]) not in (2, 4):
            raise NetdslError(f"bn expects a C or C×H×W input, got rank {len(ins[0]) - 1}", loc)
        return ins[0]

    def params(self, a: BnAttrs, ins: tuple[Shape, ...]) -> int:
        return 2 * int(ins[0][1])

    def notation(self, a: BnAttrs, ins: tuple[Shape, ...]) -> str:
        return "BN"


@dataclass(frozen=True, slots=True)
class DropoutAttrs:
    p: float = opt(0.5, kind="float", lo=0.0, hi=1.0, doc="probability of dropping a unit")


@register("dropout")
class Dropout(OpDef):
    """Dropout with rate p (``dropout 0.5``): active in training, the identity in inference."""

    Attrs = DropoutAttrs
    positional = ("p",)
    transparent = True
    inplace = True

    def notation(self, a: DropoutAttrs, ins: tuple[Shape, ...]) -> str:
        return f"dropout {a.p:g}"


@dataclass(frozen=True, slots=True)
class LrnAttrs:
    size: int = opt(5, kind="int", lo=1, doc="channels in the window (n)")
    alpha: float = opt(1e-4, kind="float", lo=0.0,
                       doc="scale (divided by size, as in PyTorch/ONNX)")
    beta: float = opt(0.75, kind="float", lo=0.0, doc="exponent")
    k: float = opt(2.0, kind="float", lo=0.0, doc="additive constant")


@register("lrn", "norm", "localresponsenorm")
class LocalResponseNorm(OpDef):
    """Local response normalization across channels (AlexNet: n=5, α=1e-4, β=0.75, k=2)."""

    Attrs = LrnAttrs
    positional = ("size",)

    def infer(self, a: LrnAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        if len(ins[0]) != 4:
            raise NetdslError("LRN expects a C×H×W input", loc)
        return ins[0]

    def notation(self, a: LrnAttrs, ins: tuple[Shape, ...]) -> str:
        return "LRN"
