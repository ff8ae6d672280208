"""Ops that join or reshape tensors: residual add, concat, channel scaling, shortcuts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import NetdslError, NetdslShapeError, SourceLoc
from ..shape import ANY, MAPS, Layout, Shape
from . import OpDef, TorchCode, opt, register, size_text, sizes

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder

_END = 2**63 - 1  # ONNX Slice's "to the end"


@dataclass(frozen=True, slots=True)
class InputAttrs:
    shape: Shape = field(metadata={})  # set by the header's `input` line, not a layer option


@register("input", keyword=False)
class Input(OpDef):
    """The network's input (``input 3x224x224`` in the header): a node without inputs, whose
    value the backends take as their argument."""

    Attrs = InputAttrs
    arity = 0
    produces = ANY  # whatever the header declares

    def infer(self, a: InputAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return a.shape


@register("add", "sum")
class Add(OpDef):
    """Elementwise sum of two or more tensors of one shape (residual connections)."""

    arity = None

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        for i, s in enumerate(ins[1:], 1):
            if s != ins[0]:
                raise NetdslShapeError("add of different shapes", loc, (0, i),
                                       (str(ins[0]), str(s)),
                                       hint="make the branches agree, or let `residual` insert "
                                            "a projection shortcut")
        return ins[0]

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, " + ".join(f"{{{i}}}" for i in range(len(ins))))

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Add" if len(inputs) == 2 else "Sum", inputs, name)


@register("mul", "scale_channels")
class Mul(OpDef):
    """Scale a map by a per-channel gate, C or C×1(×1…) (SENet's excitation), or multiply two
    tensors of one shape."""

    arity = 2
    gates = (1,)  # the gate modulates the signal: depth is counted through input 0 only

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        x, g = ins
        if g == x or _is_gate(x, g):
            return x
        want = x.channels if not x.layout.is_tokens else "C"
        raise NetdslShapeError("cannot scale by a gate of the wrong size", loc, (0, 1),
                               (str(x), str(g)),
                               hint=f"the gate needs one value per channel of the input: "
                                    f"{want} (C or C×1×1)")

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        x, g = ins
        if g.layout is Layout.VECTOR and g != x:  # (N, C) -> (N, C, 1, …) to broadcast
            return TorchCode(None, "{0} * {1}[:, :" + ", None" * len(x.spatial) + "]")
        return TorchCode(None, "{0} * {1}")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        x, g = inputs
        if ins[1].layout is Layout.VECTOR and ins[1] != ins[0]:
            axes = list(range(2, 2 + len(ins[0].spatial)))
            g = b.node("Unsqueeze", [g, b.ints(f"{name}/axes", axes)], f"{name}/unsqueeze")
        return b.node("Mul", [x, g], name)


def _is_gate(x: Shape, g: Shape) -> bool:
    """``g`` holds one value per channel of map ``x``: C, or C×1 with x's spatial rank."""
    if not x.layout.is_map or g.dims[0] != x.channels:
        return False
    return g.layout is Layout.VECTOR or (g.layout is x.layout and set(g.spatial) == {1})


@register("concat", "cat")
class Concat(OpDef):
    """Channel concatenation of maps with equal spatial size (inception, DenseNet), or of
    vectors."""

    arity = None
    accepts = MAPS | {Layout.VECTOR}

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        first = ins[0]
        for i, s in enumerate(ins[1:], 1):
            if s.layout is not first.layout or s.spatial != first.spatial:
                raise NetdslShapeError("concat of different spatial sizes", loc, (0, i),
                                       (str(first), str(s)),
                                       hint="give every branch the same stride and padding")
        return first.with_channels(sum(s.channels for s in ins))

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"torch.cat([{', '.join(f'{{{i}}}' for i in range(len(ins)))}], 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Concat", inputs, name, axis=1)


@register("flatten")
class Flatten(OpDef):
    """Flatten a map (or a token sequence) to a vector of all its elements (FC layers do this
    implicitly for maps)."""

    transparent = True
    produces = frozenset({Layout.VECTOR})

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return Shape.vector(ins[0].numel)

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "torch.flatten({0}, 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Flatten", inputs, name, axis=1)


@dataclass(frozen=True, slots=True)
class PadShortcutAttrs:
    out: int = opt(kind="int", lo=1, doc="output channels (zeros appended)")
    stride: tuple[int, ...] = opt((1,), kind="size", lo=1, doc="spatial subsampling")


@register("padshortcut", "zeropad")
class PadShortcut(OpDef):
    """ResNet option A shortcut: subsample by the stride and append zero channels; no parameters."""

    Attrs = PadShortcutAttrs
    channels_field = "out"
    stride_field = "stride"
    accepts = MAPS

    def infer(self, a: PadShortcutAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        x = ins[0]
        if a.out < x.channels:
            raise NetdslError(f"zero-padding shortcut cannot reduce {x.channels} channels to "
                              f"{a.out}", loc)
        s = sizes(a.stride, x, "stride", self.name, loc)
        return x.with_channels(a.out).with_spatial(
            tuple(-(-n // k) for n, k in zip(x.spatial, s, strict=True)))

    def notation(self, a: PadShortcutAttrs, ins: tuple[Shape, ...]) -> str:
        return f"shortcut A-{a.out}" + (f"/{size_text(a.stride)}" if set(a.stride) != {1}
                                        else "")

    def torch(self, a: PadShortcutAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        x = ins[0]
        s = sizes(a.stride, x, "stride", self.name, None)
        sub = "{0}" if set(s) == {1} else "{0}[:, :, " + ", ".join(f"::{k}" for k in s) + "]"
        extra = a.out - x.channels
        pads = "0, 0, " * len(s) + f"0, {extra}"  # F.pad: (begin, end) from the last axis on
        return TorchCode(None, f"F.pad({sub}, ({pads}))" if extra else sub)

    def onnx(self, b: OnnxBuilder, a: PadShortcutAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        s = sizes(a.stride, ins[0], "stride", self.name, None)
        x, extra, n = inputs[0], a.out - ins[0].channels, len(s)
        if set(s) != {1}:
            last = f"{name}/slice" if extra else name
            x = b.node("Slice", [x, b.ints(f"{name}/starts", [0] * n),
                                 b.ints(f"{name}/ends", [_END] * n),
                                 b.ints(f"{name}/axes", list(range(2, 2 + n))),
                                 b.ints(f"{name}/steps", list(s))], last)
        if extra:  # zero channels appended at the end: pads are [begins…, ends…] per axis
            pads = [0] * (2 + n) + [0, extra] + [0] * n
            x = b.node("Pad", [x, b.ints(f"{name}/pads", pads)], name)
        if x == inputs[0]:
            x = b.node("Identity", [x], name)
        return x
