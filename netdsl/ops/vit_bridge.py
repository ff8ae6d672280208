"""LayerNorm over token features and GELU, for the Vision Transformer: a bridge.

The modern CNN vocabulary (issue 10) owns these two layer types and brings them for maps as
well; until it lands, the transformer specs need them on token sequences and vectors. Each op is
registered here only when no other module has registered it, so once the vocabulary's own
``layernorm`` and ``gelu`` are imported first this module adds nothing (and can be deleted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..shape import Layout, Shape
from . import OPS, OpDef, TensorSpec, TorchCode, opt, register

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


@dataclass(frozen=True, slots=True)
class LnAttrs:
    eps: float = opt(1e-5, kind="float", lo=0.0, doc="added to the variance")


class LayerNorm(OpDef):
    """Layer normalization over the features of each token (or of a vector): ``layernorm``,
    ``layernorm eps=1e-6`` (ViT); 2·D parameters."""

    Attrs = LnAttrs
    accepts = frozenset({Layout.TOKENS, Layout.VECTOR})
    carries_weights = True

    def params(self, a: LnAttrs, ins: tuple[Shape, ...]) -> int:
        return 2 * ins[0].features

    def notation(self, a: LnAttrs, ins: tuple[Shape, ...]) -> str:
        return "LN"

    def tensors(self, a: LnAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        d = (ins[0].features,)
        return [TensorSpec("weight", d, "ones"), TensorSpec("bias", d, "zeros")]

    def torch(self, a: LnAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(f"nn.LayerNorm({ins[0].features}, eps={a.eps!r})", "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: LnAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # opset 17's LayerNormalization: onnxruntime's fused kernel
        return b.node("LayerNormalization", [inputs[0], b.param(f"{name}.weight"),
                                             b.param(f"{name}.bias")], name, axis=-1,
                      epsilon=a.eps)


class GELU(OpDef):
    """GELU x·Φ(x), exact (erf), as PyTorch's default ``nn.GELU``."""

    inplace = True
    is_activation = True

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "F.gelu({0})")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # x · (erf(x/√2) + 1) / 2 as PyTorch's exporter writes it: onnxruntime fuses this
        # pattern into its Gelu kernel (and the bias before it into BiasGelu)
        x = inputs[0]
        e = b.node("Div", [x, b.float(f"{name}/sqrt2", 2 ** 0.5)], f"{name}/div")
        e = b.node("Erf", [e], f"{name}/erf")
        e = b.node("Add", [e, b.float(f"{name}/one", 1.0)], f"{name}/add")
        e = b.node("Mul", [x, e], f"{name}/mul")
        return b.node("Mul", [e, b.float(f"{name}/half", 0.5)], name)


for _name, _aliases, _cls in (("layernorm", ("ln", "layer_norm"), LayerNorm),
                              ("gelu", (), GELU)):
    if _name not in OPS:
        register(_name, *_aliases)(_cls)
