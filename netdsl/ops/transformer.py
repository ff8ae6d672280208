"""Token sequences and attention: the Vision Transformer's vocabulary.

A token sequence is an L×D tensor (``N, L, D`` with the batch): L tokens of D features.
``patch16-768`` embeds an image as such a sequence, ``cls`` prepends a learned class token,
``pos_embed`` adds a learned position embedding, ``attention heads=12`` is multi-head
self-attention, ``token 0`` / ``avgtokens`` reduce the sequence to a vector for the head.
Learned tensors that are not a layer's weight (the class token, the position embedding) carry
the layer's own name, as torchvision's ``class_token`` and ``encoder.pos_embedding`` do.

Costs: multiply-adds count the attention's four projections (4·L·D²) and its two activation
products, QKᵀ and A·V (L²·D each), per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NetdslError, SourceLoc
from ..shape import MAPS, Layout, Shape
from . import OpDef, TensorSpec, TorchCode, opt, register, size_text, sizes

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder

MS_DOMAIN = "com.microsoft"  # onnxruntime's contrib ops (fused Attention)


TOKENS = frozenset({Layout.TOKENS})
GRID = frozenset({Layout.GRID})
VECTOR = frozenset({Layout.VECTOR})


class TokenOp(OpDef):
    """An op on a token sequence; its layout error says how to get one."""

    accepts = TOKENS

    def layout_hint(self, got: Shape) -> str:
        if got.layout is Layout.GRID:
            return ("a token grid: `wattention` attends within its windows, `tokens` flattens "
                    "it to a sequence")
        if got.layout.is_map:
            return ("embed an image as tokens with a patch embedding (`patch16-768`), or "
                    "flatten a map's positions to tokens with `tokens`")
        return ("a vector has no tokens: token ops go before the sequence is reduced "
                "(`token 0`, `avgtokens`)")


# ---- from images to tokens ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PatchAttrs:
    size: tuple[int, ...] = opt(kind="size", lo=1, doc="patch size P (P×P pixels)")
    out: int = opt(kind="int", lo=1, doc="embedding size D")
    bias: bool = opt(True, kind="bool", doc="add a learned bias")


@register("patch", "patches", "patch_embed")
class PatchEmbed(OpDef):
    """``patch16-768``: cut the image into 16×16 patches, project each linearly to D = 768
    (a conv with kernel = stride = 16, as ViT's and torchvision's ``conv_proj``) and flatten
    the patch grid to an L×D sequence, patches in row-major order."""

    Attrs = PatchAttrs
    kernel_field = "size"
    channels_field = "out"
    accepts = frozenset({Layout.MAP2})
    produces = TOKENS
    carries_weights = counts_in_depth = True

    def layout_hint(self, got: Shape) -> str:
        return "a patch embedding cuts a C×H×W image into patches"

    def infer(self, a: PatchAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        (h, w), (ph, pw) = ins[0].spatial, sizes(a.size, ins[0], "patch size", "patch", loc)
        if h % ph or w % pw:
            fits = [f"{h2}×{w2}" for h2, w2 in ((h - h % ph, w - w % pw),
                                                (-(-h // ph) * ph, -(-w // pw) * pw)) if h2 and w2]
            raise NetdslError(f"{ph}×{pw} patches do not tile the {h}×{w} input", loc,
                              hint=f"choose an input size divisible by the patch size "
                                   f"(e.g. {' or '.join(fits)})")
        return Shape.tokens((h // ph) * (w // pw), a.out)

    def _p(self, a: PatchAttrs) -> tuple[int, int]:
        return (a.size[0], a.size[-1])  # one size means square patches

    def params(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> int:
        ph, pw = self._p(a)
        return ins[0].channels * ph * pw * a.out + (a.out if a.bias else 0)

    def macs(self, a: PatchAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        ph, pw = self._p(a)
        return out.dims[0] * ins[0].channels * ph * pw * a.out

    def notation(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> str:
        return f"patch{size_text(self._p(a))}-{a.out}"

    def tensors(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        c, (ph, pw) = ins[0].channels, self._p(a)
        w = TensorSpec("weight", (a.out, c, ph, pw), "fan", (c * ph * pw, a.out * ph * pw))
        return [w, TensorSpec("bias", (a.out,), "zeros")] if a.bias else [w]

    def torch(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        ph, pw = self._p(a)
        k = ph if ph == pw else (ph, pw)
        bias = "" if a.bias else ", bias=False"
        return TorchCode(f"nn.Conv2d({ins[0].channels}, {a.out}, {k}, stride={k}{bias})",
                         "{m}({0}).flatten(2).transpose(1, 2)")

    def onnx(self, b: OnnxBuilder, a: PatchAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        p = list(self._p(a))
        params = [b.param(f"{name}.weight")] + ([b.param(f"{name}.bias")] if a.bias else [])
        y = b.node("Conv", [inputs[0], *params], f"{name}/conv", kernel_shape=p, strides=p)
        y = b.node("Reshape", [y, b.ints(f"{name}/shape", [0, a.out, -1])], f"{name}/flatten")
        return b.node("Transpose", [y], name, perm=[0, 2, 1])


@register("tokens", "to_tokens")
class Tokens(OpDef):
    """A map's positions as tokens of its C channels (row-major): C×H×W -> (H·W)×C; a token
    grid's tokens as a sequence: H×W×D -> (H·W)×D."""

    accepts = MAPS | GRID
    produces = TOKENS

    def layout_hint(self, got: Shape) -> str:
        return "it turns the positions of a map or a token grid into a token sequence"

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        x = ins[0]
        if x.layout is Layout.GRID:
            return Shape.tokens(x.numel // x.features, x.features)
        return Shape.tokens(x.numel // x.channels, x.channels)

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        if ins[0].layout is Layout.GRID:
            return TorchCode(None, "{0}.flatten(1, 2)")
        return TorchCode(None, "{0}.flatten(2).transpose(1, 2)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        if ins[0].layout is Layout.GRID:
            shape = b.ints(f"{name}/shape", [0, -1, ins[0].features])
            return b.node("Reshape", [inputs[0], shape], name)
        shape = b.ints(f"{name}/shape", [0, ins[0].channels, -1])
        y = b.node("Reshape", [inputs[0], shape], f"{name}/flatten")
        return b.node("Transpose", [y], name, perm=[0, 2, 1])


# ---- learned tensors of their own ------------------------------------------------------------
@register("cls", "cls_token", "class_token")
class ClassToken(TokenOp):
    """Prepend a learned class token: L×D -> (L+1)×D; D parameters, named after the layer
    (``class_token = cls`` holds the tensor ``class_token``, shape 1×1×D)."""

    carries_weights = True

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        n, d = ins[0].dims
        return Shape.tokens(n + 1, d)

    def params(self, a: object, ins: tuple[Shape, ...]) -> int:
        return ins[0].features

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "class token"

    def tensors(self, a: object, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        return [TensorSpec("", (1, 1, ins[0].features), "zeros")]  # "": the layer's own name

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(f"nn.Parameter(torch.empty(1, 1, {ins[0].features}))",
                         "torch.cat([{m}.expand({0}.shape[0], -1, -1), {0}], 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        x = inputs[0]
        batch = b.node("Shape", [x], f"{name}/batch", start=0, end=1)
        shape = b.node("Concat", [batch, b.ints(f"{name}/rest", [1, ins[0].features])],
                       f"{name}/shape", axis=0)
        token = b.node("Expand", [b.param(name), shape], f"{name}/expand")
        return b.node("Concat", [token, x], f"{name}/concat", axis=1)


@register("pos_embed", "pos_embedding", "position_embedding")
class PositionEmbedding(TokenOp):
    """Add a learned position embedding (one D-vector per token): L·D parameters, named after
    the layer (``pos_embedding = pos_embed`` holds ``pos_embedding``, shape 1×L×D)."""

    carries_weights = True

    def params(self, a: object, ins: tuple[Shape, ...]) -> int:
        return ins[0].numel

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "+ position embedding"

    def tensors(self, a: object, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        n, d = ins[0].dims
        return [TensorSpec("", (1, n, d), "fan", (d, d))]

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        n, d = ins[0].dims
        return TorchCode(f"nn.Parameter(torch.empty(1, {n}, {d}))",
                         "{0} + {m}")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Add", [inputs[0], b.param(name)], f"{name}/add")


# ---- attention -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AttentionAttrs:
    heads: int = opt(kind="int", lo=1, doc="attention heads")
    dropout: float = opt(0.0, kind="float", lo=0.0, hi=1.0,
                         doc="dropout on the attention weights (training only)")


@register("attention", "msa", "mhsa", "self_attention")
class Attention(TokenOp):
    """Multi-head self-attention over a token sequence (``attention heads=12``):
    softmax(Q·Kᵀ/√(D/h))·V per head, with Q, K, V and the output projected by learned D×D
    matrices with biases, PyTorch's ``nn.MultiheadAttention`` (its tensor names and shapes:
    ``in_proj_weight`` 3D×D, ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``)."""

    Attrs = AttentionAttrs
    positional = ("heads",)
    carries_weights = counts_in_depth = True

    def infer(self, a: AttentionAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        d = ins[0].features
        if d % a.heads:
            raise NetdslError(f"{a.heads} heads do not divide the token size {d}", loc,
                              hint="each head takes D/heads features: choose heads dividing D")
        return ins[0]

    def params(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> int:
        d = ins[0].features
        return 4 * d * d + 4 * d

    def macs(self, a: AttentionAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        n, d = ins[0].dims
        return 4 * n * d * d + 2 * n * n * d  # Q, K, V, output projections; QKᵀ and A·V

    def notation(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> str:
        return f"attention heads={a.heads}"

    def tensors(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        d = ins[0].features
        return [TensorSpec("in_proj_weight", (3 * d, d), "fan", (d, 3 * d)),
                TensorSpec("in_proj_bias", (3 * d,), "zeros"),
                TensorSpec("out_proj.weight", (d, d), "fan", (d, d)),
                TensorSpec("out_proj.bias", (d,), "zeros")]

    def torch(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        drop = f", dropout={a.dropout!r}" if a.dropout else ""
        return TorchCode(f"nn.MultiheadAttention({ins[0].features}, {a.heads}{drop}, "
                         "batch_first=True)",
                         "{m}({0}, {0}, {0}, need_weights=False)[0]")

    def onnx(self, b: OnnxBuilder, a: AttentionAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        # onnxruntime's fused Attention (QKV projection, scaled softmax, A·V in one kernel)
        # takes the packed weight as D×3D: the transposes of initializers fold at load time.
        w = b.node("Transpose", [b.param(f"{name}.in_proj_weight")], f"{name}/in_proj_t",
                   perm=[1, 0])
        y = b.node("Attention", [inputs[0], w, b.param(f"{name}.in_proj_bias")], name,
                   domain=MS_DOMAIN, num_heads=a.heads)
        wo = b.node("Transpose", [b.param(f"{name}.out_proj.weight")], f"{name}/out_proj_t",
                    perm=[1, 0])
        y = b.node("MatMul", [y, wo], f"{name}/out_proj")
        return b.node("Add", [y, b.param(f"{name}.out_proj.bias")], f"{name}/out_proj_bias")


# ---- from tokens to a vector -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TokenAttrs:
    index: int = opt(0, kind="int", lo=0, doc="position of the token")


@register("token", "take_token")
class Token(TokenOp):
    """Take one token (``token 0``: the class token) as the sequence's representation."""

    Attrs = TokenAttrs
    positional = ("index",)
    produces = VECTOR

    def infer(self, a: TokenAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        n, d = ins[0].dims
        if a.index >= n:
            raise NetdslError(f"token {a.index} does not exist: the sequence has {n} tokens",
                              loc, hint=f"take a token in 0…{n - 1}")
        return Shape.vector(d)

    def notation(self, a: TokenAttrs, ins: tuple[Shape, ...]) -> str:
        return f"token {a.index}"

    def torch(self, a: TokenAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"{{0}}[:, {a.index}]")

    def onnx(self, b: OnnxBuilder, a: TokenAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        idx = b.scalar_int(f"{name}/index", a.index)
        return b.node("Gather", [inputs[0], idx], name, axis=1)


@register("avgtokens", "meantokens", "token_mean")
class AvgTokens(TokenOp):
    """Average the tokens of a sequence or a grid into one D-vector (mean pooling before the
    head; on Swin's grid it is torchvision's permute, global average pool and flatten)."""

    accepts = TOKENS | GRID
    produces = VECTOR

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return Shape.vector(ins[0].features)

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "mean of tokens"

    def _axes(self, x: Shape) -> list[int]:
        return [1, 2] if x.layout is Layout.GRID else [1]

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"{{0}}.mean({tuple(self._axes(ins[0]))})")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("ReduceMean", inputs, name, axes=self._axes(ins[0]), keepdims=0)
