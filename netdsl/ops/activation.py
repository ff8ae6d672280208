"""Elementwise activations and the soft-max classifier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..shape import Shape
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


@register("relu6")
class ReLU6(_Activation):
    """ReLU capped at 6, min(max(0, x), 6) (MobileNetV2)."""

    torch_expr = "F.relu6({0})"

    def onnx(self, b: OnnxBuilder, a: Any, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        lo, hi = b.float(f"{name}/min", 0.0), b.float(f"{name}/max", 6.0)
        return b.node("Clip", [inputs[0], lo, hi], name)


@register("hsigmoid", "hardsigmoid", "hard_sigmoid")
class HardSigmoid(_Activation):
    """Hard sigmoid relu6(x + 3) / 6 (MobileNetV3's gate), PyTorch's definition."""

    torch_expr, onnx_op = "F.hardsigmoid({0})", "HardSigmoid"

    def onnx(self, b: OnnxBuilder, a: Any, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # ONNX's default alpha is 0.2 (Keras' hard sigmoid): PyTorch's is 1/6, so say it
        return b.node("HardSigmoid", inputs, name, alpha=1.0 / 6.0, beta=0.5)


@register("hswish", "hardswish", "hard_swish")
class HardSwish(_Activation):
    """Hard swish x · relu6(x + 3) / 6 (MobileNetV3)."""

    torch_expr, onnx_op = "F.hardswish({0})", "HardSwish"


@register("silu", "swish")
class SiLU(_Activation):
    """SiLU / swish x · sigmoid(x) (EfficientNet)."""

    torch_expr = "F.silu({0})"

    def onnx(self, b: OnnxBuilder, a: Any, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        gate = b.node("Sigmoid", inputs, f"{name}/sigmoid")
        return b.node("Mul", [inputs[0], gate], name)


@dataclass(frozen=True, slots=True)
class GeluAttrs:
    tanh: bool = opt(False, kind="bool", doc="the tanh approximation instead of the exact erf")


@register("gelu")
class GELU(_Activation):
    """GELU x · Φ(x), exact (erf) by default, ``gelu tanh`` for the tanh approximation."""

    Attrs = GeluAttrs

    def notation(self, a: GeluAttrs, ins: tuple[Shape, ...]) -> str:
        return "gelu tanh" if a.tanh else "gelu"

    def torch(self, a: GeluAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"F.gelu({{0}}, approximate={'tanh' if a.tanh else 'none'!r})")

    def onnx(self, b: OnnxBuilder, a: GeluAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # Opset 17 has no Gelu: these are the patterns onnxruntime fuses into its Gelu and
        # FastGelu kernels (written as PyTorch's exporter writes them)
        x = inputs[0]
        half = b.float(f"{name}/half", 0.5)
        one = b.float(f"{name}/one", 1.0)
        if a.tanh:
            cube = b.node("Pow", [x, b.float(f"{name}/three", 3.0)], f"{name}/cube")
            cube = b.node("Mul", [cube, b.float(f"{name}/c", 0.044715)], f"{name}/cubic")
            inner = b.node("Add", [x, cube], f"{name}/inner")
            inner = b.node("Mul", [inner, b.float(f"{name}/k", math.sqrt(2.0 / math.pi))],
                           f"{name}/scale")
            t = b.node("Tanh", [inner], f"{name}/tanh")
        else:
            t = b.node("Div", [x, b.float(f"{name}/sqrt2", math.sqrt(2.0))], f"{name}/div")
            t = b.node("Erf", [t], f"{name}/erf")
        t = b.node("Add", [t, one], f"{name}/add")
        y = b.node("Mul", [x, t], f"{name}/mul")
        return b.node("Mul", [y, half], name)


@register("mish")
class Mish(_Activation):
    """Mish x · tanh(softplus(x))."""

    torch_expr = "F.mish({0})"

    def onnx(self, b: OnnxBuilder, a: Any, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        t = b.node("Softplus", inputs, f"{name}/softplus")
        t = b.node("Tanh", [t], f"{name}/tanh")
        return b.node("Mul", [inputs[0], t], name)


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
        return -1 if x.layout.is_tokens else 1

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"torch.softmax({{0}}, {self._axis(ins[0])})")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Softmax", inputs, name, axis=self._axis(ins[0]))
