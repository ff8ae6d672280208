"""Fully connected, normalization and dropout layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NetdslError, SourceLoc
from ..shape import MAPS, Layout, Shape
from . import OpDef, TensorSpec, TorchCode, opt, register

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


@dataclass(frozen=True, slots=True)
class FcAttrs:
    out: int = opt(kind="int", lo=1, doc="output features")
    bias: bool = opt(True, kind="bool", doc="add a learned bias")


@register("fc", "linear", "dense")
class Linear(OpDef):
    """Fully connected layer ``FC-4096``: flattens a map first (implicit flatten); on a token
    sequence or grid it applies to each token, as PyTorch's ``nn.Linear`` does."""

    Attrs = FcAttrs
    channels_field = "out"
    produces = frozenset({Layout.VECTOR, Layout.TOKENS, Layout.GRID})  # tokens stay tokens
    carries_weights = takes_activation = counts_in_depth = True

    def infer(self, a: FcAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        x = ins[0]
        return Shape(x.layout, (*x.dims[:-1], a.out)) if x.layout.is_tokens \
            else Shape.vector(a.out)

    def params(self, a: FcAttrs, ins: tuple[Shape, ...]) -> int:
        return features(ins[0]) * a.out + (a.out if a.bias else 0)

    def macs(self, a: FcAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        tokens = ins[0].numel // ins[0].features if ins[0].layout.is_tokens else 1
        return tokens * features(ins[0]) * a.out

    def notation(self, a: FcAttrs, ins: tuple[Shape, ...]) -> str:
        return f"FC-{a.out}"

    def tensors(self, a: FcAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        n = features(ins[0])
        w = TensorSpec("weight", (a.out, n), "fan", (n, a.out))
        return [w, TensorSpec("bias", (a.out,), "zeros")] if a.bias else [w]

    def torch(self, a: FcAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        ctor = f"nn.Linear({features(ins[0])}, {a.out}{'' if a.bias else ', bias=False'})"
        return TorchCode(ctor, "{m}(torch.flatten({0}, 1))" if ins[0].layout.is_map
                         else "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: FcAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        x = inputs[0]
        params = [b.param(f"{name}.weight")] + ([b.param(f"{name}.bias")] if a.bias else [])
        if ins[0].layout.is_tokens:  # Gemm is 2-D only: x · Wᵀ (+ b) per token
            wt = b.node("Transpose", [params[0]], f"{name}/weight_t", perm=[1, 0])
            y = b.node("MatMul", [x, wt], f"{name}/matmul" if a.bias else name)
            return b.node("Add", [y, params[1]], name) if a.bias else y
        if ins[0].layout.is_map:
            x = b.node("Flatten", [x], f"{name}/flatten", axis=1)
        return b.node("Gemm", [x, *params], name, transB=1)


def features(shape: Shape) -> int:
    """What an FC layer reads per position: all elements of a map (the implicit flatten) or a
    vector, the features of one token."""
    return shape.features if shape.layout.is_tokens else shape.numel


@dataclass(frozen=True, slots=True)
class BnAttrs:
    eps: float = opt(1e-5, kind="float", lo=0.0, doc="added to the variance")
    momentum: float = opt(0.1, kind="float", lo=0.0, hi=1.0, doc="running-statistics momentum")


@register("bn", "batchnorm", "batch_norm")
class BatchNorm(OpDef):
    """Batch normalization over the channels of a map or the features of a vector; 2·C
    parameters (scale and shift)."""

    Attrs = BnAttrs
    accepts = MAPS | {Layout.VECTOR}
    carries_weights = True

    def layout_hint(self, got: Shape) -> str:
        return "batch norm normalizes channels; a token sequence is normalized per token " \
            "(a layer norm)" if got.layout.is_tokens else super().layout_hint(got)

    def params(self, a: BnAttrs, ins: tuple[Shape, ...]) -> int:
        return 2 * ins[0].channels

    def notation(self, a: BnAttrs, ins: tuple[Shape, ...]) -> str:
        return "BN"

    def tensors(self, a: BnAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        c = (ins[0].channels,)
        # running statistics start as PyTorch's (mean 0, var 1), so both backends agree at init
        return [TensorSpec("weight", c, "ones"), TensorSpec("bias", c, "zeros"),
                TensorSpec("running_mean", c, "zeros", trainable=False),
                TensorSpec("running_var", c, "ones", trainable=False)]

    def torch(self, a: BnAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        # eps and momentum always explicit: the spec's values, never a library default
        args = [str(ins[0].channels), f"eps={a.eps!r}", f"momentum={a.momentum!r}"]
        n = max(1, len(ins[0].spatial))  # BatchNorm1d takes (N, C) and (N, C, L)
        return TorchCode(f"nn.BatchNorm{n}d({', '.join(args)})", "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: BnAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        params = [b.param(f"{name}.{t}") for t in ("weight", "bias", "running_mean", "running_var")]
        # ONNX momentum is the weight of the old statistics; PyTorch's is that of the new ones
        return b.node("BatchNormalization", [inputs[0], *params], name, epsilon=a.eps,
                      momentum=1.0 - a.momentum)


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

    def torch(self, a: DropoutAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"F.dropout({{0}}, {a.p!r}, self.training)")

    def onnx(self, b: OnnxBuilder, a: DropoutAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return inputs[0]  # inference form: dropout is the identity and emits no node


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
    accepts = frozenset({Layout.MAP2})

    def validate(self, a: LrnAttrs, loc: SourceLoc) -> None:
        if a.size % 2 == 0:
            # an even window has no centre: PyTorch puts the extra channel before, ONNX after
            raise NetdslError(f"LRN size must be odd, got {a.size}", loc,
                              hint="PyTorch and ONNX centre even windows differently; "
                                   "use e.g. 5 (AlexNet)")

    def notation(self, a: LrnAttrs, ins: tuple[Shape, ...]) -> str:
        return "LRN"

    def torch(self, a: LrnAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"F.local_response_norm({{0}}, {a.size}, alpha={a.alpha!r}, "
                               f"beta={a.beta!r}, k={a.k!r})")

    def onnx(self, b: OnnxBuilder, a: LrnAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # x / (k + alpha/size · Σx²)^beta, written as PyTorch's exporter writes it: a padded
        # average over a (size, 1, 1) window of x². onnxruntime's LRN kernel runs on one thread
        # and was 20% slower than this on GoogLeNet (benchmarks/RESULTS.md, kernel profile).
        x = inputs[0]
        sq = b.node("Mul", [x, x], f"{name}/square")
        sq = b.node("Unsqueeze", [sq, b.ints(f"{name}/axes", [1])], f"{name}/unsqueeze")
        pads = [a.size // 2, 0, 0, (a.size - 1) // 2, 0, 0]
        avg = b.node("AveragePool", [sq], f"{name}/window", kernel_shape=[a.size, 1, 1],
                     pads=pads, count_include_pad=1)
        avg = b.node("Squeeze", [avg, b.ints(f"{name}/axes2", [1])], f"{name}/squeeze")
        den = b.node("Mul", [avg, b.float(f"{name}/alpha", a.alpha)], f"{name}/scale")
        den = b.node("Add", [den, b.float(f"{name}/k", a.k)], f"{name}/bias")
        den = b.node("Pow", [den, b.float(f"{name}/beta", a.beta)], f"{name}/pow")
        return b.node("Div", [x, den], name)
