"""Token grids: the Swin Transformer's vocabulary (Liu et al. 2021).

Swin keeps its feature maps channels-last, an H×W grid of D-feature tokens (``N, H, W, D``
with the batch), exactly as torchvision's ``SwinTransformer`` holds them: per-token ops (FC,
LayerNorm, GELU, dropout, stochastic depth, ``add``) apply to the grid unchanged and no op
permutes back and forth. ``grid`` turns a C×H×W map into a grid (after the patch-partition
conv), ``wattention`` is (shifted) window attention, ``patchmerge`` halves the grid and doubles
D, and ``avgtokens`` / ``tokens`` reduce or flatten it.

Costs: window attention on an H×W grid (padded up to whole windows) of D-feature tokens in
windows of M×M = L tokens counts, per window, its four projections (Q, K, V, output: 4·L·D²)
and its two activation products, Q·Kᵀ and A·V (L²·D each): H·W·(4·D² + 2·L·D) per image.
The relative position bias, the shift mask, softmax and the scaling are not multiply-adds.
Patch merging counts its linear reduction, (H/2)·(W/2)·4D·2D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from ..errors import NetdslError, SourceLoc
from ..limits import MAX_WINDOW
from ..shape import Layout, Shape
from . import OpDef, TensorSpec, TorchCode, opt, register

if TYPE_CHECKING:
    import numpy as np

    from ..codegen.onnx import OnnxBuilder

GRID = frozenset({Layout.GRID})


class GridOp(OpDef):
    """An op on a token grid; its layout error says how to get one."""

    accepts = GRID

    def layout_hint(self, got: Shape) -> str:
        if got.layout is Layout.MAP2:
            return "turn a C×H×W map into an H×W grid of C-feature tokens with `grid`"
        if got.layout is Layout.TOKENS:
            return "a token sequence has no 2-D positions: keep the grid (`grid` after the " \
                   "patch-partition conv) instead of flattening it with `tokens`"
        return f"{self.name} works on an H×W×D token grid (`grid` makes one from a C×H×W map)"


@register("grid", "to_grid", "channels_last")
class Grid(OpDef):
    """A C×H×W map as an H×W grid of C-feature tokens (channels last, torchvision's
    ``Permute([0, 2, 3, 1])`` after Swin's patch-partition conv)."""

    accepts = frozenset({Layout.MAP2})
    produces = GRID

    def layout_hint(self, got: Shape) -> str:
        return "it turns the positions of a C×H×W map into a token grid"

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        c, (h, w) = ins[0].channels, ins[0].spatial
        return Shape.grid(h, w, c)

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "{0}.permute(0, 2, 3, 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Transpose", inputs, name, perm=[0, 2, 3, 1])


@register("map", "to_map", "channels_first")
class GridToMap(OpDef):
    """An H×W grid of D-feature tokens as a D×H×W map (channels first again, torchvision's
    ``Permute([0, 3, 1, 2])`` before Swin's average pool, or before a convolution)."""

    accepts = GRID
    produces = frozenset({Layout.MAP2})

    def layout_hint(self, got: Shape) -> str:
        return "it turns an H×W token grid back into a map (`grid` makes a grid)"

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return Shape.map(ins[0].features, *ins[0].positions)

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "{0}.permute(0, 3, 1, 2)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Transpose", inputs, name, perm=[0, 3, 1, 2])


# ---- (shifted) window attention ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WindowAttrs:
    heads: int = opt(kind="int", lo=1, doc="attention heads")
    window: int = opt(7, kind="int", lo=1, doc="window size M (M×M tokens)")
    shift: int = opt(0, kind="int", lo=0, doc="cyclic shift of the windows (SW-MSA: M/2)")
    dropout: float = opt(0.0, kind="float", lo=0.0, hi=1.0,
                         doc="dropout on the attention weights (training only)")


class Geometry(NamedTuple):
    """Window attention on one grid: window (wh, ww), effective shift (sh, sw), padded grid."""

    wh: int
    ww: int
    sh: int
    sw: int
    ph: int
    pw: int

    @property
    def tokens(self) -> int:  # L, tokens per window
        return self.wh * self.ww

    @property
    def windows(self) -> int:
        return (self.ph // self.wh) * (self.pw // self.ww)


def geometry(a: WindowAttrs, x: Shape) -> Geometry:
    """torchvision's rules: the grid is padded (bottom, right) to whole windows, and an axis
    whose padded size fits in one window is not shifted."""
    (h, w), wh, ww, sh, sw = x.positions, a.window, a.window, a.shift, a.shift
    ph, pw = -(-h // wh) * wh, -(-w // ww) * ww
    return Geometry(wh, ww, 0 if wh >= ph else sh, 0 if ww >= pw else sw, ph, pw)


def relative_position_index(wh: int, ww: int) -> np.ndarray:
    """(L·L,) rows of the bias table for every pair of tokens in a window (torchvision's)."""
    import numpy as np  # here: `netdsl check` does not import numpy (its start-up time)

    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    return ((rel[..., 0] + wh - 1) * (2 * ww - 1) + rel[..., 1] + ww - 1).reshape(-1)


def shift_regions(g: Geometry) -> np.ndarray:
    """(windows, L): the region of the shifted grid each token of each window comes from
    (torchvision's attention mask ids, slice for slice). Tokens of different regions were
    brought together by the cyclic shift: their attention is masked with −100."""
    import numpy as np

    m = np.zeros((g.ph, g.pw), np.float32)
    count = 0
    for h0, h1 in ((0, -g.wh), (-g.wh, -g.sh), (-g.sh, None)):
        for w0, w1 in ((0, -g.ww), (-g.ww, -g.sw), (-g.sw, None)):
            m[h0:h1, w0:w1] = count
            count += 1
    m = m.reshape(g.ph // g.wh, g.wh, g.pw // g.ww, g.ww).transpose(0, 2, 1, 3)
    return m.reshape(g.windows, g.tokens)


# The PyTorch lowering: standalone source written into the generated module (torch, nn, F only).
WINDOW_ATTENTION = '''
class WindowAttention(nn.Module):
    """(Shifted) window attention on (N, H, W, C), as torchvision's ShiftedWindowAttention:
    multi-head self-attention within windows of window[0]×window[1] tokens, cyclically
    shifted by shift, with a learned relative position bias per head."""

    def __init__(self, dim, heads, window, shift, dropout=0.0):
        super().__init__()
        self.heads, self.window, self.shift, self.dropout = heads, window, shift, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.empty((2 * window[0] - 1) * (2 * window[1] - 1), heads))

    def relative_position_bias(self):
        (wh, ww), t = self.window, self.relative_position_bias_table
        ij = torch.meshgrid(torch.arange(wh, device=t.device), torch.arange(ww, device=t.device),
                            indexing="ij")
        coords = torch.stack(ij).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        index = (rel[..., 0] + wh - 1) * (2 * ww - 1) + rel[..., 1] + ww - 1
        return t[index.flatten()].view(wh * ww, wh * ww, -1).permute(2, 0, 1).unsqueeze(0)

    def mask(self, ph, pw, like):
        (wh, ww), (sh, sw) = self.window, self.shift
        m = like.new_zeros((ph, pw))
        count = 0
        for h0, h1 in ((0, -wh), (-wh, -sh), (-sh, None)):
            for w0, w1 in ((0, -ww), (-ww, -sw), (-sw, None)):
                m[h0:h1, w0:w1] = count
                count += 1
        m = m.view(ph // wh, wh, pw // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
        m = m.unsqueeze(1) - m.unsqueeze(2)
        return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)

    def forward(self, x):
        n, h, w, c = x.shape
        (wh, ww), (sh, sw), heads = self.window, self.shift, self.heads
        x = F.pad(x, (0, 0, 0, -w % ww, 0, -h % wh))  # whole windows
        ph, pw = x.shape[1], x.shape[2]
        if sh or sw:
            x = torch.roll(x, (-sh, -sw), (1, 2))
        x = x.view(n, ph // wh, wh, pw // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(-1, wh * ww, c)  # (N·windows, L, C)
        qkv = self.qkv(x).reshape(x.size(0), x.size(1), 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1))
        attn = attn + self.relative_position_bias()
        if sh or sw:
            windows = (ph // wh) * (pw // ww)
            attn = attn.view(-1, windows, heads, x.size(1), x.size(1))
            attn = attn + self.mask(ph, pw, x).unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, x.size(1), x.size(1))
        attn = F.dropout(F.softmax(attn, dim=-1), self.dropout, self.training)
        x = self.proj(attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c))
        x = x.view(n, ph // wh, pw // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(n, ph, pw, c)
        if sh or sw:
            x = torch.roll(x, (sh, sw), (1, 2))
        return x[:, :h, :w].contiguous()
'''


@register("wattention", "window_attention", "wmsa")
class WindowAttention(GridOp):
    """Window multi-head self-attention, ``wattention heads=3 window=7`` (W-MSA), and its
    shifted form ``wattention heads=3 window=7 shift=3`` (SW-MSA), on an H×W×D token grid:
    softmax(Q·Kᵀ/√(D/h) + B)·V within each M×M window, B the learned relative position bias
    of each head, the windows cyclically shifted by ``shift`` with torchvision's mask.
    torchvision's tensors: ``qkv`` (3D×D, bias), ``proj`` (D×D, bias),
    ``relative_position_bias_table`` ((2M−1)², heads)."""

    Attrs = WindowAttrs
    positional = ("heads",)
    carries_weights = counts_in_depth = True

    def validate(self, a: WindowAttrs, loc: SourceLoc) -> None:
        if a.window > MAX_WINDOW:  # the bias index alone has M⁴ entries
            raise NetdslError(f"{self.name} window {a.window} is over the limit of "
                              f"{MAX_WINDOW}", loc,
                              hint=f"the relative position bias pairs every two of the "
                                   f"window's M×M tokens: use a window up to {MAX_WINDOW} "
                                   "(Swin: 7)")
        if a.shift >= a.window:
            raise NetdslError(f"{self.name} shift {a.shift} is not smaller than the window "
                              f"{a.window}", loc,
                              hint="shift the windows by less than their size (Swin: half "
                                   "a window, shift=3 for window=7)")

    def infer(self, a: WindowAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        d = ins[0].features
        if d % a.heads:
            raise NetdslError(f"{a.heads} heads do not divide the token size {d}", loc,
                              hint="each head takes D/heads features: choose heads dividing D")
        return ins[0]

    def params(self, a: WindowAttrs, ins: tuple[Shape, ...]) -> int:
        g, d = geometry(a, ins[0]), ins[0].features
        return 4 * d * d + 4 * d + (2 * g.wh - 1) * (2 * g.ww - 1) * a.heads

    def macs(self, a: WindowAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        g, d = geometry(a, ins[0]), ins[0].features
        n = g.tokens
        return g.windows * (4 * n * d * d + 2 * n * n * d)  # projections; QKᵀ and A·V

    def notation(self, a: WindowAttrs, ins: tuple[Shape, ...]) -> str:
        g = geometry(a, ins[0])
        # the paper's names: W-MSA, and SW-MSA for the shift by half a window
        kind = "W" if (g.sh, g.sw) == (0, 0) else "SW"
        shift = "" if (g.sh, g.sw) in ((0, 0), (g.wh // 2, g.ww // 2)) else \
            f" shift {g.sh}×{g.sw}"
        return f"{kind}-MSA {g.wh}×{g.ww}{shift} heads={a.heads}"

    def tensors(self, a: WindowAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        g, d = geometry(a, ins[0]), ins[0].features
        rows = (2 * g.wh - 1) * (2 * g.ww - 1)
        # std ≈ 0.02 under He normal, as the paper's truncated normal
        return [TensorSpec("relative_position_bias_table", (rows, a.heads), "fan", (5000, 5000)),
                TensorSpec("qkv.weight", (3 * d, d), "fan", (d, 3 * d)),
                TensorSpec("qkv.bias", (3 * d,), "zeros"),
                TensorSpec("proj.weight", (d, d), "fan", (d, d)),
                TensorSpec("proj.bias", (d,), "zeros")]

    def torch(self, a: WindowAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        g = geometry(a, ins[0])
        drop = f", dropout={a.dropout!r}" if a.dropout else ""
        return TorchCode(f"WindowAttention({ins[0].features}, {a.heads}, ({g.wh}, {g.ww}), "
                         f"({g.sh}, {g.sw}){drop})", "{m}({0})", helper=WINDOW_ATTENTION)

    def onnx(self, b: OnnxBuilder, a: WindowAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        g, c = geometry(a, ins[0]), ins[0].features
        (h, w), heads = ins[0].positions, a.heads
        nh, nw, n, win = g.ph // g.wh, g.pw // g.ww, g.tokens, g.windows
        padded = (g.ph, g.pw) != (h, w)
        x = inputs[0]
        if padded:
            x = b.node("Pad", [x, b.ints(f"{name}/pads", [0, 0, 0, 0, 0, g.ph - h, g.pw - w, 0])],
                       f"{name}/pad")
        x = _roll(b, x, (-g.sh, -g.sw), (g.ph, g.pw), f"{name}/shift")
        # windows: (N, windows, L, C)
        x = b.node("Reshape", [x, b.ints(f"{name}/grid_shape", [0, nh, g.wh, nw, g.ww, c])],
                   f"{name}/grid")
        x = b.node("Transpose", [x], f"{name}/windows_t", perm=[0, 1, 3, 2, 4, 5])
        x = b.node("Reshape", [x, b.ints(f"{name}/windows_shape", [0, win, n, c])],
                   f"{name}/windows")
        qkv = _linear(b, x, f"{name}.qkv", f"{name}/qkv")
        qkv = b.node("Reshape", [qkv, b.ints(f"{name}/heads_shape", [0, win, n, 3, heads,
                                                                      c // heads])],
                     f"{name}/heads")
        qkv = b.node("Transpose", [qkv], f"{name}/qkv_t", perm=[3, 0, 1, 4, 2, 5])
        q, k, v = (b.node("Gather", [qkv, b.scalar_int(f"{name}/{t}_index", i)], f"{name}/{t}",
                          axis=0) for i, t in enumerate("qkv"))
        q = b.node("Mul", [q, b.float(f"{name}/scale", (c // heads) ** -0.5)], f"{name}/q_scaled")
        kt = b.node("Transpose", [k], f"{name}/k_t", perm=[0, 1, 2, 4, 3])
        att = b.node("MatMul", [q, kt], f"{name}/logits")  # (N, windows, heads, L, L)
        index = relative_position_index(g.wh, g.ww)
        bias = b.node("Gather", [b.param(f"{name}.relative_position_bias_table"),
                                 b.ints(f"{name}/bias_index", index)], f"{name}/bias_rows",
                      axis=0)
        bias = b.node("Reshape", [bias, b.ints(f"{name}/bias_shape", [n, n, heads])],
                      f"{name}/bias_pairs")
        bias = b.node("Transpose", [bias], f"{name}/bias", perm=[2, 0, 1])
        att = b.node("Add", [att, bias], f"{name}/logits_bias")
        if g.sh or g.sw:
            # tokens from different regions of the shifted grid: −100 (built in the graph
            # from the regions' ids, windows·L values, not stored as windows·L² ones)
            ids = b.constant(f"{name}/regions", shift_regions(g).reshape(win, 1, 1, n))
            ids_t = b.node("Transpose", [ids], f"{name}/regions_t", perm=[0, 1, 3, 2])
            same = b.node("Equal", [ids, ids_t], f"{name}/same_region")
            mask = b.node("Where", [same, b.float(f"{name}/zero", 0.0),
                                    b.float(f"{name}/apart", -100.0)], f"{name}/mask")
            att = b.node("Add", [att, mask], f"{name}/logits_masked")
        att = b.node("Softmax", [att], f"{name}/softmax", axis=-1)
        y = b.node("MatMul", [att, v], f"{name}/av")  # (N, windows, heads, L, C/heads)
        y = b.node("Transpose", [y], f"{name}/av_t", perm=[0, 1, 3, 2, 4])
        y = b.node("Reshape", [y, b.ints(f"{name}/merge_shape", [0, win, n, c])],
                   f"{name}/merged")
        y = _linear(b, y, f"{name}.proj", f"{name}/proj")
        y = b.node("Reshape", [y, b.ints(f"{name}/unwindow_shape", [0, nh, nw, g.wh, g.ww, c])],
                   f"{name}/unwindow")
        y = b.node("Transpose", [y], f"{name}/unwindow_t", perm=[0, 1, 3, 2, 4, 5])
        y = b.node("Reshape", [y, b.ints(f"{name}/out_shape", [0, g.ph, g.pw, c])],
                   f"{name}/ungrid")
        y = _roll(b, y, (g.sh, g.sw), (g.ph, g.pw), f"{name}/unshift")
        if padded:
            y = b.node("Slice", [y, b.ints(f"{name}/crop_starts", [0, 0]),
                                 b.ints(f"{name}/crop_ends", [h, w]),
                                 b.ints(f"{name}/crop_axes", [1, 2])], f"{name}/crop")
        return y


def _linear(b: OnnxBuilder, x: str, param: str, name: str) -> str:
    """x·Wᵀ + b over the last axis (Gemm is 2-D only); the transpose folds at load time."""
    wt = b.node("Transpose", [b.param(f"{param}.weight")], f"{name}/weight_t", perm=[1, 0])
    y = b.node("MatMul", [x, wt], f"{name}/matmul")
    return b.node("Add", [y, b.param(f"{param}.bias")], name)


def _roll(b: OnnxBuilder, x: str, shifts: tuple[int, int], sizes: tuple[int, int],
          name: str) -> str:
    """torch.roll over axes 1 and 2 (opset 17 has no Roll): a Slice and a Concat per axis."""
    for axis, s, size in zip((1, 2), shifts, sizes, strict=True):
        k = s % size
        if k == 0:
            continue
        ax = b.ints(f"{name}{axis}/axis", [axis])
        tail = b.node("Slice", [x, b.ints(f"{name}{axis}/tail_start", [size - k]),
                                b.ints(f"{name}{axis}/tail_end", [size]), ax],
                      f"{name}{axis}/tail")
        head = b.node("Slice", [x, b.ints(f"{name}{axis}/head_start", [0]),
                                b.ints(f"{name}{axis}/head_end", [size - k]), ax],
                      f"{name}{axis}/head")
        x = b.node("Concat", [tail, head], f"{name}{axis}", axis=axis)
    return x


# ---- patch merging ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MergeAttrs:
    out: int = opt(0, kind="int", lo=1, doc="output features (default 2·D)")
    eps: float = opt(1e-5, kind="float", lo=0.0, doc="LayerNorm's added variance")


@register("patchmerge", "patch_merging", "patch_merge")
class PatchMerging(GridOp):
    """Swin's patch merging, ``patchmerge`` (or ``patchmerge-192``): each 2×2 neighbourhood's
    four D-vectors concatenated (torchvision's order: x[0::2, 0::2], x[1::2, 0::2],
    x[0::2, 1::2], x[1::2, 1::2]; an odd grid padded with zeros), LayerNorm over the 4·D, then a
    linear map to 2·D without bias: H×W×D -> ⌈H/2⌉×⌈W/2⌉×2D. torchvision's tensors:
    ``reduction.weight`` (2D×4D), ``norm.weight``, ``norm.bias``."""

    Attrs = MergeAttrs
    channels_field = "out"
    carries_weights = counts_in_depth = True

    def _out(self, a: MergeAttrs, x: Shape) -> int:
        return a.out or 2 * x.features

    def infer(self, a: MergeAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        (h, w), x = ins[0].positions, ins[0]
        return Shape.grid(-(-h // 2), -(-w // 2), self._out(a, x))

    def params(self, a: MergeAttrs, ins: tuple[Shape, ...]) -> int:
        d = ins[0].features
        return 4 * d * self._out(a, ins[0]) + 8 * d

    def macs(self, a: MergeAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        h, w = out.positions
        return h * w * 4 * ins[0].features * out.features

    def notation(self, a: MergeAttrs, ins: tuple[Shape, ...]) -> str:
        return f"patch merging-{self._out(a, ins[0])}"

    def tensors(self, a: MergeAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        d, o = ins[0].features, self._out(a, ins[0])
        return [TensorSpec("reduction.weight", (o, 4 * d), "fan", (4 * d, o)),
                TensorSpec("norm.weight", (4 * d,), "ones"),
                TensorSpec("norm.bias", (4 * d,), "zeros")]

    def torch(self, a: MergeAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        (h, w), d = ins[0].positions, ins[0].features
        ctor = (f'nn.ModuleDict({{"reduction": nn.Linear({4 * d}, {self._out(a, ins[0])}, '
                f'bias=False), "norm": nn.LayerNorm({4 * d}, eps={a.eps!r})}})')
        x = f"F.pad({{0}}, (0, 0, 0, {w % 2}, 0, {h % 2}))" if h % 2 or w % 2 else "{0}"
        # (N, H/2, 2, W/2, 2, D) -> (N, H/2, W/2, [dw, dh], D): x00, x10, x01, x11 concatenated
        merge = (f"{x}.unflatten(2, ({-(-w // 2)}, 2)).unflatten(1, ({-(-h // 2)}, 2))"
                 ".permute(0, 1, 3, 4, 2, 5).flatten(3)")
        return TorchCode(ctor, f'{{m}}["reduction"]({{m}}["norm"]({merge}))')

    def onnx(self, b: OnnxBuilder, a: MergeAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        (h, w), d = ins[0].positions, ins[0].features
        h2, w2 = -(-h // 2), -(-w // 2)
        x = inputs[0]
        if h % 2 or w % 2:
            x = b.node("Pad", [x, b.ints(f"{name}/pads", [0, 0, 0, 0, 0, h % 2, w % 2, 0])],
                       f"{name}/pad")
        x = b.node("Reshape", [x, b.ints(f"{name}/pairs_shape", [0, h2, 2, w2, 2, d])],
                   f"{name}/pairs")
        x = b.node("Transpose", [x], f"{name}/gather", perm=[0, 1, 3, 4, 2, 5])
        x = b.node("Reshape", [x, b.ints(f"{name}/shape", [0, h2, w2, 4 * d])], f"{name}/concat")
        x = b.node("LayerNormalization", [x, b.param(f"{name}.norm.weight"),
                                          b.param(f"{name}.norm.bias")],
                   f"{name}/norm", axis=-1, epsilon=a.eps)
        wt = b.node("Transpose", [b.param(f"{name}.reduction.weight")], f"{name}/reduction_t",
                    perm=[1, 0])
        return b.node("MatMul", [x, wt], name)
