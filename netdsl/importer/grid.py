"""Token grids: Swin's channels-last maps, (shifted) window attention and patch merging.

A map transposed to channels-last is either ConvNeXt's detour (LayerNorm and Linear on the
channels, transposed back right away: the recognizer follows it as the map itself) or a token
grid that stays (Swin: residual adds, windows, patch merging on it). ``opens_grid`` tells the
two apart by looking ahead from the transpose; a grid becomes netdsl's ``grid`` and, when
transposed back, ``map``.

Window attention and patch merging are recognized by their data movement. The nodes between
the grid and its first product by a weight only move values (padding, the cyclic shift, the
window partition, the 2×2 gather), so evaluating them on a grid of element numbers says
exactly which value goes where, whatever ops the exporter chose (torchvision's Slices and
Concats, netdsl's Reshapes and Transposes). The weights are read from the products, the
relative position bias and the shift mask from the constants added to the attention logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..ops.swin import Geometry, WindowAttrs, geometry, relative_position_index, shift_regions
from ..shape import Shape
from .arrays import MOVES, move, numbers
from .layers import CHANNELS_FIRST, Hole, Part, Unsupported, common_prefix
from .read import Node

if TYPE_CHECKING:
    from .recognize import Recognizer

# ops on a channels-last value that mean it is a token grid, not ConvNeXt's detour
GRID_OPS = {"Reshape", "Slice", "Pad", "Concat", "Softmax", "Gather", "Split", "Flatten",
            "Expand", "MatMul"}  # MatMul by a non-constant: attention
LOOKAHEAD = 64  # nodes looked at from one transpose (ConvNeXt's detours are a dozen)


def opens_grid(r: Recognizer, value: str) -> bool:
    """Whether a map transposed to channels-last (``value``) is used as a token grid: the
    model ends on it, or it reaches a reshape, a window op or a residual add before it is
    transposed back."""
    todo, seen = [value], set()
    while todo and len(seen) < LOOKAHEAD:
        v = todo.pop()
        if v == r.g.output:
            return True
        for u in r.users.get(v, []):
            if id(u) in seen:
                continue
            seen.add(id(u))
            perm = [int(p) for p in u.attrs.get("perm", [])]
            if u.op == "Transpose" and perm == CHANNELS_FIRST.get(len(perm)):
                continue  # back to the map
            moving = [i for i in u.inputs if i and not r.is_const_like(i)]
            if u.op in GRID_OPS and (u.op != "MatMul" or len(moving) > 1) or \
                    u.op in ("Add", "Sum") and len(moving) > 1 or \
                    u.op == "Transpose":
                return True
            todo.extend(o for o in u.outputs if o)
    return len(seen) >= LOOKAHEAD


# ---- the window partition, as netdsl computes it -------------------------------------------
def windows(x: np.ndarray, g: Geometry) -> np.ndarray:
    """(windows·L, D): x (1, H, W, D) padded, cyclically shifted by −(sh, sw) and cut into
    windows, token by token (torchvision's window partition)."""
    _, h, w, d = x.shape
    x = np.pad(x, [(0, 0), (0, g.ph - h), (0, g.pw - w), (0, 0)])
    x = np.roll(x, (-g.sh, -g.sw), (1, 2))
    x = x.reshape(g.ph // g.wh, g.wh, g.pw // g.ww, g.ww, d).transpose(0, 2, 1, 3, 4)
    return x.reshape(-1, d)


# ---- the region around one attention --------------------------------------------------------
def _region(r: Recognizer, starts: list[str], forward: bool, allowed: set[str],
            stop: Callable[[Node], bool] = lambda n: False, limit: int = 400
            ) -> tuple[list[Node], list[str]] | None:
    """Nodes reached from ``starts`` (forward through users, or backward through producers)
    while their op is in ``allowed``; the values where the walk left them (its borders)."""
    seen: dict[int, Node] = {}
    border: list[str] = []
    todo = list(starts)
    while todo:
        v = todo.pop()
        nexts = r.users.get(v, []) if forward else [r.producer.get(v)]
        if forward and (v == r.g.output or any(
                u.op not in allowed and not r.sizes_only(u) for u in nexts)):
            border.append(v)
        for n in nexts:
            if n is not None and id(n) in seen:
                continue
            if n is None or n.op not in allowed or r.sizes_only(n):
                if not forward:
                    border.append(v)
                continue
            seen[id(n)] = n
            if len(seen) > limit:
                return None
            if stop(n):
                continue
            todo.extend(o for o in (n.outputs if forward else n.inputs)
                        if o and not r.is_const_like(o))
    return sorted(seen.values(), key=lambda n: r.index[id(n)]), list(dict.fromkeys(border))


def _weight(r: Recognizer, n: Node | None) -> bool:
    """A MatMul of data by a constant (a Linear's transposed weight)."""
    return n is not None and n.op == "MatMul" and not r.is_const_like(n.inputs[0]) and \
        r.is_const_like(n.inputs[1])


def _bias_of(r: Recognizer, mm: Node) -> Node | None:
    u = r.single_user(mm.outputs[0])
    if u is not None and u.op == "Add" and any(r.is_const_like(i) for i in u.inputs):
        return u
    return None


def window_attention(r: Recognizer, sm: Node) -> tuple[Node, Callable[[], None]] | None:
    """(Shifted) window attention on an N×H×W×D grid, anchored at its Softmax; the layer is
    added at the region's last node."""
    if sm.op != "Softmax":
        return None
    # the logits: Q·Kᵀ, plus constants (the relative position bias, then the shift mask)
    adds: list[Node] = []
    chain: list[Node] = []
    s = r.producer.get(sm.inputs[0])
    while s is not None and s.op in ("Add", "Reshape", "Identity", "Cast", "Mul", "Div"):
        chain.append(s)
        if s.op == "Add":
            adds.append(s)
        nxt = [i for i in s.inputs if i and not r.is_const_like(i)]
        if len(nxt) != 1:
            return None
        s = r.producer.get(nxt[0])
    if s is None or s.op != "MatMul" or not adds or \
            any(r.is_const_like(i) for i in s.inputs):
        return None
    # forward: A·V, the output projection, then data movement back to the grid
    cur, av = sm.outputs[0], None
    while (u := r.single_user(cur)) is not None and av is None:
        if u.op == "MatMul" and u.inputs[0] == cur:
            av = u
        elif u.op not in ("Identity", "Dropout", "Cast"):
            return None
        cur = u.outputs[0]
    if av is None:
        return None
    to_proj = _region(r, [av.outputs[0]], True, MOVES | {"MatMul"},
                      stop=lambda n: n.op == "MatMul")
    projs = [n for n in to_proj[0] if n.op == "MatMul"] if to_proj else []
    if len(projs) != 1 or not _weight(r, projs[0]):
        return None
    proj = projs[0]
    pb = _bias_of(r, proj)
    last = pb or proj
    out = _region(r, [last.outputs[0]], True, MOVES)
    if out is None or len(out[1]) != 1:
        return None
    y = out[1][0]
    # backward: from the logits and A·V to the one input projection, then to the grid
    inner = _region(r, [*s.inputs, av.inputs[1]], False,
                    MOVES | {"MatMul", "Add", "Mul", "Div", "Gather", "Split", "Cast"},
                    stop=lambda n: _weight(r, n))
    if inner is None:
        return None
    qkvs = [n for n in inner[0] if _weight(r, n)]
    if len(qkvs) != 1:
        return None
    qkv = qkvs[0]
    before = _region(r, [qkv.inputs[0]], False, MOVES)
    if before is None or len(before[1]) != 1:
        return None
    x = before[1][0]
    xs = r.g.shapes.get(x)
    if xs is None or len(xs) != 3 or r.g.shapes.get(y) != xs or r.g.batch not in (None, 1):
        return None
    region = [*before[0], *inner[0], s, *chain, sm, av, *to_proj[0], *out[0]]
    if pb is not None:
        region.append(pb)
    region = sorted({id(n): n for n in region}.values(), key=lambda n: r.index[id(n)])
    if not r.one_layer(region, x, y):
        return None
    end = r.producer[y]
    r.absorb(*(n for n in region if n is not end))

    def act() -> None:
        _window_layer(r, end, x, y, qkv, proj, pb, adds[::-1], before[0], out[0], last)
    return end, act


def _window_layer(r: Recognizer, end: Node, x: str, y: str, qkv: Node, proj: Node,
                  pb: Node | None, adds: list[Node], side_in: list[Node],
                  side_out: list[Node], last: Node) -> None:
    h, w, d = r.g.shapes[x]
    consts = [r.consts[i] for a in adds for i in a.inputs if i in r.consts]
    if len(consts) != len(adds) or not 1 <= len(consts) <= 2:
        raise Unsupported("an attention on a token grid without Swin's relative position bias")
    rel = consts[0].reshape(consts[0].shape[-3:]) if consts[0].ndim >= 3 else None
    if rel is None or rel.shape[1] != rel.shape[2]:
        raise Unsupported("an attention bias that is not a per-head L×L bias")
    heads, length = rel.shape[0], rel.shape[1]
    m = int(round(length ** 0.5))
    if m * m != length or d % heads:
        raise Unsupported(f"windows of {length} tokens: netdsl's windows are square")
    table = _bias_table(rel, m)
    # the shift: the one whose window partition the input side computes
    ids = numbers((1, h, w, d))
    got = move(r, side_in, x, ids)[qkv.inputs[0]].reshape(-1, d)
    a, g = None, None
    for shift in range(m):
        a = WindowAttrs(heads=heads, window=m, shift=shift)
        g = geometry(a, Shape.grid(h, w, d))
        if (shift == 0 or (g.sh, g.sw) != (0, 0)) and got.shape == (g.windows * g.tokens, d) \
                and np.array_equal(got, windows(ids, g)):
            break
    else:
        raise Unsupported("data movement before a window attention other than Swin's "
                          "padding, cyclic shift and window partition")
    shifted = (g.sh, g.sw) != (0, 0)
    mask = consts[1] if len(consts) > 1 else None
    if shifted != (mask is not None) or mask is not None and not _is_mask(mask, g):
        raise Unsupported("an attention mask other than Swin's mask of the shifted windows")
    v = last.outputs[0]
    back = move(r, side_out, v, windows(ids, g).reshape(r.g.full.get(v) or
                                                        (1, *r.g.shapes[v])))[y]
    if not np.array_equal(back, ids):
        raise Unsupported("data movement after a window attention other than Swin's window "
                          "merge, reverse shift and crop")
    wq = r.const(qkv.inputs[1], qkv).T
    bq = _bias(r, _bias_of(r, qkv), 3 * d)
    wo, bo = r.const(proj.inputs[1], proj).T, _bias(r, pb, d)
    if wq.shape != (3 * d, d) or wo.shape != (d, d):
        raise Unsupported("a window attention whose projections are not 3D×D and D×D")
    parts: list[Part] = ["wattention heads=", Hole("c", heads), f" window={m}",
                         Hole("shift", a.shift if shifted else 0)]
    tensors = [np.ascontiguousarray(t, np.float32) for t in (table, wq, bq, wo, bo)]
    r.add(end, "wattention", parts, [r.src(x)], tensors, out=y)


def _bias(r: Recognizer, add: Node | None, size: int) -> np.ndarray:
    if add is None:
        return np.zeros(size, np.float32)
    c = next(r.consts[i] for i in add.inputs if i in r.consts)
    if c.size != size:
        raise Unsupported("a projection bias of another size than its output")
    return c.reshape(-1)


def _bias_table(rel: np.ndarray, m: int) -> np.ndarray:
    """The ((2M−1)², heads) table whose rows, gathered by Swin's relative position index,
    give ``rel`` (heads, L, L); every relative position occurs, so the table is recovered."""
    index = relative_position_index(m, m)
    heads = rel.shape[0]
    pairs = rel.reshape(heads, -1).T  # (L·L, heads)
    table = np.zeros(((2 * m - 1) ** 2, heads), np.float32)
    table[index] = pairs
    if not np.array_equal(table[index], pairs):
        raise Unsupported("an attention bias that is not a relative position bias: tokens "
                          "at the same relative position get different biases")
    return table


def _is_mask(mask: np.ndarray, g: Geometry) -> bool:
    """Swin's mask: −100 between tokens of different regions of the shifted grid, else 0."""
    ids = shift_regions(g)
    want = np.where(ids[:, :, None] == ids[:, None, :], 0.0, -100.0)
    try:
        got = np.broadcast_to(mask, (*mask.shape[:-4], g.windows, 1, g.tokens, g.tokens)) \
            if mask.ndim >= 4 else mask
        return np.array_equal(got.reshape(g.windows, g.tokens, g.tokens), want)
    except ValueError:
        return False


# ---- patch merging ---------------------------------------------------------------------------
def patch_merging(r: Recognizer, ln: Node) -> tuple[Node, Callable[[], None]] | None:
    """Each 2×2 neighbourhood's tokens concatenated, LayerNorm, a linear map without bias
    (anchored at the LayerNormalization; the layer is added at the product)."""
    if ln.op != "LayerNormalization" or len(ln.inputs) < 2:
        return None
    mm = r.single_user(ln.outputs[0])
    if mm is None or not _weight(r, mm) or mm.inputs[0] != ln.outputs[0] or \
            _bias_of(r, mm) is not None:
        return None
    before = _region(r, [ln.inputs[0]], False, MOVES)
    if before is None or len(before[1]) != 1 or not before[0]:
        return None
    x = before[1][0]
    xs, zs = r.g.shapes.get(x), r.g.shapes.get(ln.inputs[0])
    if xs is None or zs is None or len(xs) != 3 or r.g.batch not in (None, 1) or \
            zs != (-(-xs[0] // 2), -(-xs[1] // 2), 4 * xs[2]):
        return None
    region = [*before[0], ln, mm]
    if not r.one_layer(region, x, mm.outputs[0]):
        return None
    r.absorb(*before[0], ln)

    def act() -> None:
        h, w, d = xs
        ids = numbers((1, h, w, d))
        got = move(r, before[0], x, ids)[ln.inputs[0]]
        if not np.array_equal(got, _merged(ids)):
            raise Unsupported("data movement before a LayerNorm other than Swin's patch "
                              "merging")
        wt = r.const(mm.inputs[1], mm)
        scale, shift = (r.const(i, ln).reshape(-1) for i in ln.inputs[1:3])
        eps = float(ln.attrs.get("epsilon", 1e-5))
        out = int(wt.shape[1])
        text = "patchmerge" + ("" if out == 2 * d else f"-{out}") + \
            ("" if abs(eps - 1e-5) < 1e-12 else f" eps={eps:g}")
        tensors = [np.ascontiguousarray(t, np.float32) for t in (wt.T, scale, shift)]
        lay = r.add(mm, "patchmerge", [text], [r.src(x)], tensors)
        # the module holding `norm` and `reduction` (torchvision's PatchMerging), not the latter
        lay.path = common_prefix([lay.path, r.path_of(ln)])
    return mm, act


def _merged(x: np.ndarray) -> np.ndarray:
    """Swin's patch merging of x (1, H, W, D) without the norm and the product:
    x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] concatenated (odd sizes padded)."""
    _, h, w, d = x.shape
    x = np.pad(x, [(0, 0), (0, h % 2), (0, w % 2), (0, 0)])
    return np.concatenate([x[:, i::2, j::2] for j in (0, 1) for i in (0, 1)], axis=-1)


PATTERNS = [window_attention, patch_merging]
