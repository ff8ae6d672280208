"""Elementwise activations and the soft-max classifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..shape import Layout, Shape
from . import OpDef, TorchCode, opt, register

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


class _Activation(OpDef):
    inplace = True
    is_activation = True
    # Lowerings as data: a torch expression template ({0} the input, {a} the Attrs) and an
    # ONNX op with attributes read from Attrs fields (ONNX name -> field).
    torch_expr: ClassVar[str] = ""
    onnx_op: ClassVar[str] = ""
    onnx_attrs: ClassVar[dict[str, str]] = {}

    def torch(self, a: Any, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, self.torch_expr.format("{0}", a=a))  # keeps {0} for the driver

    def onnx(self, b: OnnxBuilder, a: Any, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        attrs = {k: getattr(a, f) for k, f in self.onnx_attrs.items()}
        return b.node(self.onnx_op, inputs, name, **attrs)


@register("relu")
class ReLU(_Activation):
    """Rectified linear unit max(0, x)."""

    torch_expr, onnx_op = "torch.relu({0})", "Relu"


@dataclass(frozen=True, slots=True)
class LeakyAttrs:
    slope: float = opt(0.01, kind="float", lo=0.0, doc="slope for x < 0")


@register("leakyrelu", "leaky_relu", "lrelu")
class LeakyReLU(_Activation):
    """Leaky ReLU, ``leakyrelu 0.1``: x for x ≥ 0, slope·x below."""

    Attrs = LeakyAttrs
    positional = ("slope",)

    torch_expr, onnx_op = "F.leaky_relu({0}, {a.slope!r})", "LeakyRelu"
    onnx_attrs = {"alpha": "slope"}

    def notation(self, a: LeakyAttrs, ins: tuple[Shape, ...]) -> str:
        return f"leakyrelu {a.slope:g}"


@dataclass(frozen=True, slots=True)
class EluAttrs:
    alpha: float = opt(1.0, kind="float", lo=0.0, doc="saturation value for x < 0")


@register("elu")
class ELU(_Activation):
    """Exponential linear unit, ``elu`` or ``elu 0.5``."""

    Attrs = EluAttrs
    positional = ("alpha",)

    torch_expr, onnx_op = "F.elu({0}, {a.alpha!r})", "Elu"
    onnx_attrs = {"alpha": "alpha"}


@register("tanh")
class Tanh(_Activation):
    """Hyperbolic tangent (LeNet-5)."""

    torch_expr, onnx_op = "torch.tanh({0})", "Tanh"


@register("sigmoid")
class Sigmoid(_Activation):
    """Logistic sigmoid (SENet's gate)."""

    torch_expr, onnx_op = "torch.sigmoid({0})", "Sigmoid"


@register("identity", "linear_act")
class Identity(_Activation):
    """The identity: a named no-op, e.g. an explicit shortcut branch."""

    transparent = True

    torch_expr, onnx_op = "{0}", "Identity"


@register("softmax", "soft-max")
class Softmax(OpDef):
    """Soft-max over classes or channels (axis 1), or over each token's features."""

    transparent = True

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "soft-max"

    @staticmethod
    def _axis(x: Shape) -> int:
        return -1 if x.layout is Layout.TOKENS else 1

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"torch.softmax({{0}}, {self._axis(ins[0])})")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Softmax", inputs, name, axis=self._axis(ins[0]))
