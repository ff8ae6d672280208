"""Convolution and pooling: the sliding-window ops and their exact size rule.

``out = floor((N + 2P - D·(F-1) - 1) / S) + 1`` (with D = 1 this is the notes'
``floor((N + 2P - F)/S) + 1``); ceil mode rounds up but never starts a window in the padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..errors import NetdslError, NetdslWarning, SourceLoc
from ..shape import AXIS_NAMES, MAPS, Shape
from . import OpDef, TensorSpec, TorchCode, opt, register, size_text, sizes

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


def window(n: int, k: int, s: int, p: int, d: int, ceil: bool, axis: str, op: str,
           loc: SourceLoc | None) -> tuple[int, bool]:
    """Output size along one axis and whether input pixels are silently dropped."""
    span = d * (k - 1) + 1
    room = n + 2 * p - span
    if room < 0:
        raise NetdslError(
            f"{op} kernel {k} (span {span}) is larger than its padded input {n + 2 * p} "
            f"({axis} = {n}, padding {p})", loc,
            hint="use a smaller kernel or stride earlier, more padding, or a larger input")
    out = (-(-room // s) if ceil else room // s) + 1
    if ceil and (out - 1) * s >= n + p:  # the last window would start inside the padding
        out -= 1
    # The windows stop `room % s` short of the padded end: real pixels are lost past the padding.
    # A kernel smaller than its stride subsamples on purpose (1×1/2 shortcuts): not worth a warning.
    return out, room % s > p and not ceil and k >= s


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window fitted to one input: kernel, stride, padding and dilation per axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    dilation: tuple[int, ...]

    def slide(self, x: Shape, ceil: bool, op: str, loc: SourceLoc | None
              ) -> tuple[tuple[int, ...], list[NetdslWarning]]:
        """The output's spatial sizes by the exact rule per axis, and the dropped-pixel warning."""
        names = AXIS_NAMES[len(x.spatial)]
        out, dropped = [], []
        for i, n in enumerate(x.spatial):
            o, lost = window(n, self.kernel[i], self.stride[i], self.pad[i], self.dilation[i],
                             ceil, names[i], op, loc)
            out.append(o)
            if lost:
                dropped.append(i)
        return tuple(out), self._dropped_warning(x, dropped, op, loc)

    def _dropped_warning(self, x: Shape, dropped: list[int], op: str, loc: SourceLoc | None
                         ) -> list[NetdslWarning]:
        if not dropped:
            return []
        i, names = dropped[0], AXIS_NAMES[len(x.spatial)]
        n, k, s, p = x.spatial[i], self.kernel[i], self.stride[i], self.pad[i]
        room = n + 2 * p - k
        axes = " and ".join(names[j] for j in dropped)
        return [NetdslWarning(
            f"{op} drops input pixels: ({n} + 2·{p} − {k}) = {room} is not divisible by "
            f"stride {s}, so the last {room % s - p} pixel(s) of the {axes} are never seen",
            loc, hint="change the input size or padding so the windows tile the input "
                      "(AlexNet needs 227, not 224)")]


def _tk(size: tuple[int, ...]) -> str:
    """Sizes as PyTorch source: ``3`` when equal on every axis, else ``(1, 7)``."""
    return str(size[0]) if len(set(size)) == 1 else f"({', '.join(map(str, size))})"


@dataclass(frozen=True, slots=True)
class ConvAttrs:
    out: int = opt(kind="int", lo=1, doc="output channels")
    kernel: tuple[int, ...] = opt((3,), kind="size", lo=1, doc="kernel size")
    stride: tuple[int, ...] = opt((1,), kind="size", lo=1, doc="stride")
    pad: tuple[int, ...] | None = opt(None, kind="size", lo=0,
                                      doc="zero padding; default keeps the size for odd kernels")
    dilation: tuple[int, ...] = opt((1,), kind="size", lo=1, doc="dilation")
    groups: int = opt(1, kind="int", lo=1, doc="channel groups (ResNeXt cardinality, depthwise)")
    bias: bool = opt(True, kind="bool", doc="add a learned bias")

    def window(self, x: Shape, loc: SourceLoc | None = None) -> Window:
        k = sizes(self.kernel, x, "kernel", "conv", loc)
        d = sizes(self.dilation, x, "dilation", "conv", loc)
        if self.pad is not None:
            p = sizes(self.pad, x, "padding", "conv", loc)
        else:  # "padding such that the resolution is preserved" (VGG) for odd kernels
            p = tuple(dd * (kk - 1) // 2 if kk % 2 else 0 for kk, dd in zip(k, d, strict=True))
        return Window(k, sizes(self.stride, x, "stride", "conv", loc), p, d)


@register("conv", "convolution")
class Conv(OpDef):
    """Convolution over a map of 1, 2 or 3 spatial axes (PyTorch's Conv1d/2d/3d): ``conv3-64``,
    ``conv7-64/2``, ``conv1x7-128 pad 0``, ``conv3x3x3-64``, ``groups 32``."""

    Attrs = ConvAttrs
    kernel_field = "kernel"
    channels_field = "out"
    stride_field = "stride"
    accepts = MAPS
    carries_weights = takes_activation = counts_in_depth = True

    def validate(self, a: ConvAttrs, loc: SourceLoc) -> None:
        if a.out % a.groups:
            raise NetdslError(f"groups {a.groups} does not divide the {a.out} output channels",
                              loc, hint="use a number of groups that divides both channel counts")

    def _slide(self, a: ConvAttrs, x: Shape, loc: SourceLoc | None
               ) -> tuple[tuple[int, ...], list[NetdslWarning]]:
        if x.channels % a.groups:
            raise NetdslError(f"groups {a.groups} does not divide the {x.channels} input "
                              "channels", loc,
                              hint="use a number of groups that divides both channel counts")
        return a.window(x, loc).slide(x, False, "conv", loc)

    def infer(self, a: ConvAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        spatial, _ = self._slide(a, ins[0], loc)
        return ins[0].with_channels(a.out).with_spatial(spatial)

    def warnings(self, a: ConvAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
                 ) -> list[NetdslWarning]:
        return self._slide(a, ins[0], loc)[1]

    def params(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> int:
        return a.out * self._fan(a, ins[0]) + (a.out if a.bias else 0)

    def _fan(self, a: ConvAttrs, x: Shape) -> int:
        """Inputs of one output element: (Cin/groups)·∏kernel."""
        return x.channels // a.groups * math.prod(a.window(x).kernel)

    def macs(self, a: ConvAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        return math.prod(out.dims) * self._fan(a, ins[0])

    def notation(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> str:
        s = f"conv{size_text(a.kernel)}-{a.out}"
        if set(a.stride) != {1}:
            s += f"/{size_text(a.stride)}"
        if a.groups > 1:
            s += f" groups {a.groups}"
        return s

    def tensors(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        x = ins[0]
        k = a.window(x).kernel
        cin, rf = x.channels // a.groups, math.prod(k)
        # fan_out as PyTorch computes it: out channels × receptive field, groups not divided out
        w = TensorSpec("weight", (a.out, cin, *k), "fan", (cin * rf, a.out * rf))
        return [w, TensorSpec("bias", (a.out,), "zeros")] if a.bias else [w]

    def torch(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        x = ins[0]
        win = a.window(x)
        args = [str(x.channels), str(a.out), _tk(win.kernel)]
        for key, value, default in (("stride", win.stride, 1), ("padding", win.pad, 0),
                                    ("dilation", win.dilation, 1)):
            if set(value) != {default}:
                args.append(f"{key}={_tk(value)}")
        if a.groups != 1:
            args.append(f"groups={a.groups}")
        if not a.bias:
            args.append("bias=False")
        return TorchCode(f"nn.Conv{len(x.spatial)}d({', '.join(args)})", "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: ConvAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        params = [b.param(f"{name}.weight")] + ([b.param(f"{name}.bias")] if a.bias else [])
        win = a.window(ins[0])
        return b.node("Conv", [inputs[0], *params], name, kernel_shape=list(win.kernel),
                      strides=list(win.stride), pads=[*win.pad, *win.pad],
                      dilations=list(win.dilation), group=a.groups)


@dataclass(frozen=True, slots=True)
class PoolAttrs:
    kernel: tuple[int, ...] = opt((2,), kind="size", lo=1, doc="window size")
    stride: tuple[int, ...] | None = opt(None, kind="size", lo=1, doc="stride; default = kernel")
    pad: tuple[int, ...] = opt((0,), kind="size", lo=0, doc="zero padding")
    ceil: bool = opt(False, kind="bool", doc="round the output size up")

    @property
    def step(self) -> tuple[int, ...]:
        return self.stride or self.kernel

    def window(self, x: Shape, op: str, loc: SourceLoc | None = None) -> Window:
        k = sizes(self.kernel, x, "kernel", op, loc)
        return Window(k, sizes(self.step, x, "stride", op, loc),
                      sizes(self.pad, x, "padding", op, loc), (1,) * len(k))


class _Pool(OpDef):
    Attrs = PoolAttrs
    kernel_field = "kernel"
    stride_field = "stride"
    accepts = MAPS

    def validate(self, a: PoolAttrs, loc: SourceLoc) -> None:
        n = max(len(a.pad), len(a.kernel))
        if len(a.pad) in (1, n) and len(a.kernel) in (1, n):  # else `sizes` reports it later
            for p, k in zip(a.pad * (n // len(a.pad)), a.kernel * (n // len(a.kernel)),
                            strict=True):
                if 2 * p > k:
                    raise NetdslError(f"{self.name} padding {p} is more than half its kernel "
                                      f"{k}", loc, hint="padding may be at most kernel // 2")

    def infer(self, a: PoolAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        spatial, _ = a.window(ins[0], self.name, loc).slide(ins[0], a.ceil, self.name, loc)
        return ins[0].with_spatial(spatial)

    def warnings(self, a: PoolAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
                 ) -> list[NetdslWarning]:
        return a.window(ins[0], self.name, loc).slide(ins[0], a.ceil, self.name, loc)[1]

    def notation(self, a: PoolAttrs, ins: tuple[Shape, ...]) -> str:
        if set(a.kernel) == {2} and set(a.step) == {2}:
            return self.name
        return f"{self.name}{size_text(a.kernel)}/{size_text(a.step)}"

    torch_fn: ClassVar[str] = ""  # torch.nn.functional name, without its "2d"
    onnx_op: ClassVar[str] = ""
    torch_extra: ClassVar[str] = ""  # trailing keyword arguments of the functional call

    def torch(self, a: PoolAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        win = a.window(ins[0], self.name)
        args = [_tk(win.kernel), _tk(win.stride), _tk(win.pad)]
        if a.ceil:
            args.append("ceil_mode=True")
        fn = f"{self.torch_fn}{len(ins[0].spatial)}d"
        return TorchCode(None, f"F.{fn}({{0}}, {', '.join(args)}{self.torch_extra})")

    def onnx(self, b: OnnxBuilder, a: PoolAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        win = a.window(ins[0], self.name)
        # ONNX AveragePool's count_include_pad defaults to 0: PyTorch's count_include_pad=False
        return b.node(self.onnx_op, inputs, name, kernel_shape=list(win.kernel),
                      strides=list(win.stride), pads=[*win.pad, *win.pad],
                      ceil_mode=int(a.ceil))


@register("maxpool", "max_pool", "pool")
class MaxPool(_Pool):
    """Max pooling: ``maxpool`` (2/2, VGG), ``maxpool3/2 pad 1`` (ResNet), ``maxpool3/2 ceil``."""

    torch_fn, onnx_op = "max_pool", "MaxPool"


@register("avgpool", "avg_pool")
class AvgPool(_Pool):
    """Average pooling (zero padding is not counted in the mean): ``avgpool2/2``, ``avgpool5/3``."""

    torch_fn, onnx_op = "avg_pool", "AveragePool"
    torch_extra = ", count_include_pad=False"


@register("gap", "globalavgpool", "global_avgpool", "avgpool_global")
class GlobalAvgPool(OpDef):
    """Global average pooling to C×1 (×1 ×1) (NiN, GoogLeNet, ResNet)."""

    accepts = MAPS

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        return ins[0].with_spatial((1,) * len(ins[0].spatial))

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "global avgpool"

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, f"F.adaptive_avg_pool{len(ins[0].spatial)}d({{0}}, 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("GlobalAveragePool", inputs, name)
