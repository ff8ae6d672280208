"""Ops that join or reshape tensors: residual add, concat, channel scaling, shortcuts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NetdslError, NetdslShapeError, SourceLoc
from ..ir import Shape
from . import OpDef, TorchCode, opt, register
from .dense import features

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder

_END = 2**63 - 1  # ONNX Slice's "to the end"


def _dims(shape: Shape) -> str:
    return "×".join(str(d) for d in shape[1:])


@register("add", "sum")
class Add(OpDef):
    """Elementwise sum of two or more tensors of one shape (residual connections)."""

    arity = None

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        for i, s in enumerate(ins[1:], 1):
            if s != ins[0]:
                raise NetdslShapeError("add of different shapes", loc, (0, i),
                                       (_dims(ins[0]), _dims(s)),
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
    """Scale a C×H×W tensor by a per-channel C or C×1×1 gate (SENet's excitation)."""

    arity = 2

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        x, g = ins
        if g == x or (len(x) == 4 and features(g) == x[1] and len(g) in (2, 4)
                      and all(d == 1 for d in g[2:])):
            return x
        raise NetdslShapeError("cannot scale by a gate of the wrong size", loc, (0, 1),
                               (_dims(x), _dims(g)),
                               hint=f"the gate needs one value per channel of the input: "
                                    f"{x[1] if len(x) > 1 else 'C'} (C or C×1×1)")

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        x, g = ins
        return TorchCode(None, "{0} * {1}[:, :, None, None]" if len(g) < len(x) else "{0} * {1}")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        x, g = inputs
        if len(ins[1]) < len(ins[0]):  # an (N, C) gate: make it (N, C, 1, 1) to broadcast
            g = b.node("Unsqueeze", [g, b.ints(f"{name}/axes", [2, 3])], f"{name}/unsqueeze")
        return b.node("Mul", [x, g], name)


@register("concat", "cat")
class Concat(OpDef):
    """Channel concatenation of tensors with equal spatial size (inception, DenseNet)."""

    arity = None

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        first = ins[0]
        for i, s in enumerate(ins[1:], 1):
            if len(s) != len(first) or s[2:] != first[2:]:
                raise NetdslShapeError("concat of different spatial sizes", loc, (0, i),
                                       (_dims(first), _dims(s)),
                                       hint="give every branch the same stride and padding")
        return (first[0], sum(int(s[1]) for s in ins), *first[2:])

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"torch.cat([{', '.join(f'{{{i}}}' for i in range(len(ins)))}], 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Concat", inputs, name, axis=1)


@register("flatten")
class Flatten(OpDef):
    """Flatten C×H×W to C·H·W features (FC layers do this implicitly)."""

    transparent = True

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return (ins[0][0], features(ins[0]))

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "torch.flatten({0}, 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("Flatten", inputs, name, axis=1)


@dataclass(frozen=True, slots=True)
class PadShortcutAttrs:
    out: int = opt(kind="int", lo=1, doc="output channels (zeros appended)")
    stride: tuple[int, int] = opt((1, 1), kind="pair", lo=1, doc="spatial subsampling")


@register("padshortcut", "zeropad")
class PadShortcut(OpDef):
    """ResNet option A shortcut: subsample by the stride and append zero channels; no parameters."""

    Attrs = PadShortcutAttrs
    channels_field = "out"
    stride_field = "stride"

    def infer(self, a: PadShortcutAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        n, c, h, w = ins[0]
        if a.out < int(c):
            raise NetdslError(f"zero-padding shortcut cannot reduce {c} channels to {a.out}", loc)
        return (n, a.out, -(-int(h) // a.stride[0]), -(-int(w) // a.stride[1]))

    def notation(self, a: PadShortcutAttrs, ins: tuple[Shape, ...]) -> str:
        return f"shortcut A-{a.out}" + (f"/{a.stride[0]}" if a.stride != (1, 1) else "")

    def torch(self, a: PadShortcutAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        sh, sw = a.stride
        x = "{0}" if a.stride == (1, 1) else f"{{0}}[:, :, ::{sh}, ::{sw}]"
        extra = a.out - int(ins[0][1])
        return TorchCode(None, f"F.pad({x}, (0, 0, 0, 0, 0, {extra}))" if extra else x)

    def onnx(self, b: OnnxBuilder, a: PadShortcutAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        x, extra = inputs[0], a.out - int(ins[0][1])
        if a.stride != (1, 1):
            last = f"{name}/slice" if extra else name
            x = b.node("Slice", [x, b.ints(f"{name}/starts", [0, 0]),
                                 b.ints(f"{name}/ends", [_END, _END]),
                                 b.ints(f"{name}/axes", [2, 3]),
                                 b.ints(f"{name}/steps", list(a.stride))], last)
        if extra:  # zero channels appended at the end: pads are [begins…, ends…] per axis
            x = b.node("Pad", [x, b.ints(f"{name}/pads", [0, 0, 0, 0, 0, extra, 0, 0])], name)
        if x == inputs[0]:
            x = b.node("Identity", [x], name)
        return x
