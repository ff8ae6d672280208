"""Elementwise activations and the soft-max classifier."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Shape
from . import OpDef, opt, register


class _Activation(OpDef):
    inplace = True
    is_activation = True


@register("relu")
class ReLU(_Activation):
    """Rectified linear unit max(0, x)."""


@dataclass(frozen=True, slots=True)
class LeakyAttrs:
    slope: float = opt(0.01, kind="float", lo=0.0, doc="slope for x < 0")


@register("leakyrelu", "leaky_relu", "lrelu")
class LeakyReLU(_Activation):
    """Leaky ReLU, ``leakyrelu 0.1``: x for x ≥ 0, slope·x below."""

    Attrs = LeakyAttrs
    positional = ("slope",)

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


@register("tanh")
class Tanh(_Activation):
    """Hyperbolic tangent (LeNet-5)."""


@register("sigmoid")
class Sigmoid(_Activation):
    """Logistic sigmoid (SENet's gate)."""


@register("identity", "linear_act")
class Identity(_Activation):
    """The identity: a named no-op, e.g. an explicit shortcut branch."""

    transparent = True


@register("softmax", "soft-max")
class Softmax(OpDef):
    """Soft-max over classes (axis 1)."""

    transparent = True

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "soft-max"
