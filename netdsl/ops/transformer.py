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
from ..ir import Shape
from . import OpDef, TensorSpec, TorchCode, opt, register

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder

MS_DOMAIN = "com.microsoft"  # onnxruntime's contrib ops (fused Attention)


def _dims(shape: Shape) -> str:
    return "×".join(str(d) for d in shape[1:]) or "a scalar"


def sequence(ins: tuple[Shape, ...], op: str, loc: SourceLoc | None) -> tuple[int, int]:
    """(L, D) of a token-sequence input, or a located error saying how to get one."""
    shape = ins[0]
    if len(shape) == 3:
        return int(shape[1]), int(shape[2])
    if len(shape) == 4:
        got = f"a {_dims(shape)} map"
        hint = ("embed it as tokens with a patch embedding (`patch16-768`), or flatten its "
                "positions to tokens with `tokens`")
    else:
        got = f"a vector of {_dims(shape)} features"
        hint = ("a vector has no tokens: token ops go before the sequence is reduced "
                "(`token 0`, `avgtokens`)")
    raise NetdslError(f"`{op}` expects a token sequence (L×D), got {got}", loc, hint=hint)


# ---- from images to tokens ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PatchAttrs:
    size: tuple[int, int] = opt(kind="pair", lo=1, doc="patch size P (P×P pixels)")
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

    def _grid(self, a: PatchAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
              ) -> tuple[int, int, int]:
        shape = ins[0]
        if len(shape) != 4:
            raise NetdslError(f"`patch` expects a C×H×W image, got {_dims(shape)}", loc,
                              hint="the patch embedding is the first layer of a ViT")
        c, h, w = (int(d) for d in shape[1:])
        ph, pw = a.size
        if h % ph or w % pw:
            raise NetdslError(f"{ph}×{pw} patches do not tile the {h}×{w} input", loc,
                              hint=f"choose an input size divisible by the patch size "
                                   f"(e.g. {-(-h // ph) * ph}×{-(-w // pw) * pw})")
        return c, h // ph, w // pw

    def infer(self, a: PatchAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        _, gh, gw = self._grid(a, ins, loc)
        return (ins[0][0], gh * gw, a.out)

    def params(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> int:
        return int(ins[0][1]) * a.size[0] * a.size[1] * a.out + (a.out if a.bias else 0)

    def macs(self, a: PatchAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        return int(out[1]) * int(ins[0][1]) * a.size[0] * a.size[1] * a.out

    def notation(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> str:
        ph, pw = a.size
        return f"patch{ph if ph == pw else f'{ph}x{pw}'}-{a.out}"

    def tensors(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        c, (ph, pw) = int(ins[0][1]), a.size
        w = TensorSpec("weight", (a.out, c, ph, pw), "fan", (c * ph * pw, a.out * ph * pw))
        return [w, TensorSpec("bias", (a.out,), "zeros")] if a.bias else [w]

    def torch(self, a: PatchAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        k = a.size[0] if a.size[0] == a.size[1] else a.size
        bias = "" if a.bias else ", bias=False"
        return TorchCode(f"nn.Conv2d({ins[0][1]}, {a.out}, {k}, stride={k}{bias})",
                         "{m}({0}).flatten(2).transpose(1, 2)")

    def onnx(self, b: OnnxBuilder, a: PatchAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        params = [b.param(f"{name}.weight")] + ([b.param(f"{name}.bias")] if a.bias else [])
        y = b.node("Conv", [inputs[0], *params], f"{name}/conv", kernel_shape=list(a.size),
                   strides=list(a.size))
        y = b.node("Reshape", [y, b.ints(f"{name}/shape", [0, a.out, -1])], f"{name}/flatten")
        return b.node("Transpose", [y], name, perm=[0, 2, 1])


@register("tokens", "to_tokens")
class Tokens(OpDef):
    """A C×H×W map as H·W tokens of C features (row-major), e.g. after a conv stem."""

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        shape = ins[0]
        if len(shape) != 4:
            raise NetdslError(f"`tokens` expects a C×H×W map, got {_dims(shape)}", loc,
                              hint="it turns a map's positions into a token sequence")
        return (shape[0], int(shape[2]) * int(shape[3]), int(shape[1]))

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "{0}.flatten(2).transpose(1, 2)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        c = int(ins[0][1])
        y = b.node("Reshape", [inputs[0], b.ints(f"{name}/shape", [0, c, -1])], f"{name}/flatten")
        return b.node("Transpose", [y], name, perm=[0, 2, 1])


# ---- learned tensors of their own ------------------------------------------------------------
@register("cls", "cls_token", "class_token")
class ClassToken(OpDef):
    """Prepend a learned class token: L×D -> (L+1)×D; D parameters, named after the layer
    (``class_token = cls`` holds the tensor ``class_token``, shape 1×1×D)."""

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        n, d = sequence(ins, "cls", loc)
        return (ins[0][0], n + 1, d)

    def params(self, a: object, ins: tuple[Shape, ...]) -> int:
        return int(ins[0][2])

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "class token"

    def tensors(self, a: object, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        return [TensorSpec("", (1, 1, int(ins[0][2])), "zeros")]  # "": the layer's own name

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(f"nn.Parameter(torch.empty(1, 1, {ins[0][2]}))",
                         "torch.cat([{m}.expand({0}.shape[0], -1, -1), {0}], 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        x = inputs[0]
        batch = b.node("Shape", [x], f"{name}/batch", start=0, end=1)
        shape = b.node("Concat", [batch, b.ints(f"{name}/rest", [1, int(ins[0][2])])],
                       f"{name}/shape", axis=0)
        token = b.node("Expand", [b.param(name), shape], f"{name}/expand")
        return b.node("Concat", [token, x], f"{name}/concat", axis=1)


@register("pos_embed", "pos_embedding", "position_embedding")
class PositionEmbedding(OpDef):
    """Add a learned position embedding (one D-vector per token): L·D parameters, named after
    the layer (``pos_embedding = pos_embed`` holds ``pos_embedding``, shape 1×L×D)."""

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        sequence(ins, "pos_embed", loc)
        return ins[0]

    def params(self, a: object, ins: tuple[Shape, ...]) -> int:
        return int(ins[0][1]) * int(ins[0][2])

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "+ position embedding"

    def tensors(self, a: object, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        n, d = int(ins[0][1]), int(ins[0][2])
        return [TensorSpec("", (1, n, d), "fan", (d, d))]

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(f"nn.Parameter(torch.empty(1, {ins[0][1]}, {ins[0][2]}))",
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
class Attention(OpDef):
    """Multi-head self-attention over a token sequence (``attention heads=12``):
    softmax(Q·Kᵀ/√(D/h))·V per head, with Q, K, V and the output projected by learned D×D
    matrices with biases, PyTorch's ``nn.MultiheadAttention`` (its tensor names and shapes:
    ``in_proj_weight`` 3D×D, ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``)."""

    Attrs = AttentionAttrs
    positional = ("heads",)

    def infer(self, a: AttentionAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        _, d = sequence(ins, "attention", loc)
        if d % a.heads:
            raise NetdslError(f"{a.heads} heads do not divide the token size {d}", loc,
                              hint="each head takes D/heads features: choose heads dividing D")
        return ins[0]

    def params(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> int:
        d = int(ins[0][2])
        return 4 * d * d + 4 * d

    def macs(self, a: AttentionAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        n, d = int(ins[0][1]), int(ins[0][2])
        return 4 * n * d * d + 2 * n * n * d  # Q, K, V, output projections; QKᵀ and A·V

    def notation(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> str:
        return f"attention heads={a.heads}"

    def tensors(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        d = int(ins[0][2])
        return [TensorSpec("in_proj_weight", (3 * d, d), "fan", (d, 3 * d)),
                TensorSpec("in_proj_bias", (3 * d,), "zeros"),
                TensorSpec("out_proj.weight", (d, d), "fan", (d, d)),
                TensorSpec("out_proj.bias", (d,), "zeros")]

    def torch(self, a: AttentionAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        drop = f", dropout={a.dropout!r}" if a.dropout else ""
        return TorchCode(f"nn.MultiheadAttention({ins[0][2]}, {a.heads}{drop}, batch_first=True)",
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
class Token(OpDef):
    """Take one token (``token 0``: the class token) as the sequence's representation."""

    Attrs = TokenAttrs
    positional = ("index",)

    def infer(self, a: TokenAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        n, d = sequence(ins, "token", loc)
        if a.index >= n:
            raise NetdslError(f"token {a.index} does not exist: the sequence has {n} tokens",
                              loc, hint=f"take a token in 0…{n - 1}")
        return (ins[0][0], d)

    def notation(self, a: TokenAttrs, ins: tuple[Shape, ...]) -> str:
        return f"token {a.index}"

    def torch(self, a: TokenAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"{{0}}[:, {a.index}]")

    def onnx(self, b: OnnxBuilder, a: TokenAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        idx = b.scalar_int(f"{name}/index", a.index)
        return b.node("Gather", [inputs[0], idx], name, axis=1)


@register("avgtokens", "meantokens", "token_mean")
class AvgTokens(OpDef):
    """Average the tokens of a sequence into one D-vector (mean pooling before the head)."""

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        _, d = sequence(ins, "avgtokens", loc)
        return (ins[0][0], d)

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "mean of tokens"

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "{0}.mean(1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("ReduceMean", inputs, name, axes=[1], keepdims=0)
