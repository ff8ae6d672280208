"""Convolution and pooling: the sliding-window ops and their exact size rule.

``out = floor((N + 2P - D·(F-1) - 1) / S) + 1`` (with D = 1 this is the notes'
``floor((N + 2P - F)/S) + 1``); ceil mode rounds up but never starts a window in the padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..errors import NetdslError, NetdslWarning, SourceLoc
from ..ir import Shape
from . import OpDef, TensorSpec, TorchCode, opt, register

if TYPE_CHECKING:
    from ..codegen.onnx import OnnxBuilder


def _spatial(ins: tuple[Shape, ...], op: str, loc: SourceLoc | None) -> tuple[int, int, int]:
    shape = ins[0]
    if len(shape) != 4:
        raise NetdslError(f"{op} expects a C×H×W input, got {_fmt(shape)}", loc,
                          hint="a conv or pooling layer cannot follow an FC layer")
    return int(shape[1]), int(shape[2]), int(shape[3])


def _fmt(shape: Shape) -> str:
    return "×".join(str(d) for d in shape[1:]) or "a scalar"


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
class ConvAttrs:
    out: int = opt(kind="int", lo=1, doc="output channels")
    kernel: tuple[int, int] = opt((3, 3), kind="pair", lo=1, doc="kernel size")
    stride: tuple[int, int] = opt((1, 1), kind="pair", lo=1, doc="stride")
    pad: tuple[int, int] | None = opt(None, kind="pair", lo=0,
                                      doc="zero padding; default keeps the size for odd kernels")
    dilation: tuple[int, int] = opt((1, 1), kind="pair", lo=1, doc="dilation")
    groups: int = opt(1, kind="int", lo=1, doc="channel groups (ResNeXt cardinality, depthwise)")
    bias: bool = opt(True, kind="bool", doc="add a learned bias")

    @property
    def padding(self) -> tuple[int, int]:
        if self.pad is not None:
            return self.pad
        # "padding such that the resolution is preserved" (VGG) for odd kernels at stride 1
        return tuple(d * (k - 1) // 2 if k % 2 else 0
                     for k, d in zip(self.kernel, self.dilation, strict=True))  # type: ignore[return-value]


@register("conv", "convolution")
class Conv2d(OpDef):
    """2-D convolution: ``conv3-64``, ``conv7-64/2``, ``conv1x7-128 pad 0``, ``groups 32``.
    """

    Attrs = ConvAttrs
    kernel_field = "kernel"
    channels_field = "out"
    stride_field = "stride"
    weight_layer = True

    def validate(self, a: ConvAttrs, loc: SourceLoc) -> None:
        if a.out % a.groups:
            raise NetdslError(f"groups {a.groups} does not divide the {a.out} output channels",
                              loc, hint="use a number of groups that divides both channel counts")

    def _out_hw(self, a: ConvAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
                ) -> tuple[int, int, list[str]]:
        c, h, w = _spatial(ins, "conv", loc)
        if c % a.groups:
            raise NetdslError(f"groups {a.groups} does not divide the {c} input channels", loc,
                              hint="use a number of groups that divides both channel counts")
        (ph, pw), dropped = a.padding, []
        ho, dh = window(h, a.kernel[0], a.stride[0], ph, a.dilation[0], False, "height", "conv",
                        loc)
        wo, dw = window(w, a.kernel[1], a.stride[1], pw, a.dilation[1], False, "width", "conv", loc)
        if dh:
            dropped.append(f"height {h}")
        if dw:
            dropped.append(f"width {w}")
        return ho, wo, dropped

    def infer(self, a: ConvAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        ho, wo, _ = self._out_hw(a, ins, loc)
        return (ins[0][0], a.out, ho, wo)

    def warnings(self, a: ConvAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
                 ) -> list[NetdslWarning]:
        _, _, dropped = self._out_hw(a, ins, loc)
        return _dropped_warning("conv", a.kernel, a.stride, a.padding, dropped, loc)

    def params(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> int:
        cin = int(ins[0][1])
        return a.out * (cin // a.groups) * a.kernel[0] * a.kernel[1] + (a.out if a.bias else 0)

    def macs(self, a: ConvAttrs, ins: tuple[Shape, ...], out: Shape) -> int:
        cin = int(ins[0][1])
        return a.out * int(out[2]) * int(out[3]) * (cin // a.groups) * a.kernel[0] * a.kernel[1]

    def notation(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> str:
        s = f"conv{_k(a.kernel)}-{a.out}"
        if a.stride != (1, 1):
            s += f"/{_k(a.stride)}"
        if a.groups > 1:
            s += f" groups {a.groups}"
        return s

    def tensors(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> list[TensorSpec]:
        cin = int(ins[0][1]) // a.groups
        rf = a.kernel[0] * a.kernel[1]
        # fan_out as PyTorch computes it: out channels × receptive field, groups not divided out
        w = TensorSpec("weight", (a.out, cin, *a.kernel), "fan", (cin * rf, a.out * rf))
        return [w, TensorSpec("bias", (a.out,), "zeros")] if a.bias else [w]

    def torch(self, a: ConvAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        args = [str(ins[0][1]), str(a.out), _tk(a.kernel)]
        for key, value, default in (("stride", a.stride, (1, 1)), ("padding", a.padding, (0, 0)),
                                    ("dilation", a.dilation, (1, 1))):
            if value != default:
                args.append(f"{key}={_tk(value)}")
        if a.groups != 1:
            args.append(f"groups={a.groups}")
        if not a.bias:
            args.append("bias=False")
        return TorchCode(f"nn.Conv2d({', '.join(args)})", "{m}({0})")

    def onnx(self, b: OnnxBuilder, a: ConvAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        params = [b.param(f"{name}.weight")] + ([b.param(f"{name}.bias")] if a.bias else [])
        ph, pw = a.padding
        return b.node("Conv", [inputs[0], *params], name, kernel_shape=list(a.kernel),
                      strides=list(a.stride), pads=[ph, pw, ph, pw],
                      dilations=list(a.dilation), group=a.groups)


def _k(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _tk(pair: tuple[int, int]) -> str:
    """A size pair as PyTorch source: ``3`` or ``(1, 7)``."""
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


def _dropped_warning(op: str, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
                     dropped: list[str], loc: SourceLoc | None) -> list[NetdslWarning]:
    if not dropped:
        return []
    axis, n = dropped[0].split()
    i = 0 if axis == "height" else 1
    room = int(n) + 2 * p[i] - k[i]
    axes = " and ".join(d.split()[0] for d in dropped)
    return [NetdslWarning(
        f"{op} drops input pixels: ({n} + 2·{p[i]} − {k[i]}) = {room} is not divisible by "
        f"stride {s[i]}, so the last {room % s[i] - p[i]} pixel(s) of the {axes} are never seen",
        loc, hint="change the input size or padding so the windows tile the input "
                  "(AlexNet needs 227, not 224)")]


@dataclass(frozen=True, slots=True)
class PoolAttrs:
    kernel: tuple[int, int] = opt((2, 2), kind="pair", lo=1, doc="window size")
    stride: tuple[int, int] | None = opt(None, kind="pair", lo=1, doc="stride; default = kernel")
    pad: tuple[int, int] = opt((0, 0), kind="pair", lo=0, doc="zero padding")
    ceil: bool = opt(False, kind="bool", doc="round the output size up")

    @property
    def step(self) -> tuple[int, int]:
        return self.stride or self.kernel


class _Pool(OpDef):
    Attrs = PoolAttrs
    kernel_field = "kernel"
    stride_field = "stride"

    def validate(self, a: PoolAttrs, loc: SourceLoc) -> None:
        if any(2 * p > k for p, k in zip(a.pad, a.kernel, strict=True)):
            raise NetdslError(f"{self.name} padding {a.pad[0]} is more than half its kernel "
                              f"{a.kernel[0]}", loc, hint="padding may be at most kernel // 2")

    def _out_hw(self, a: PoolAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
                ) -> tuple[int, int, list[str]]:
        _, h, w = _spatial(ins, self.name, loc)
        s = a.step
        ho, dh = window(h, a.kernel[0], s[0], a.pad[0], 1, a.ceil, "height", self.name, loc)
        wo, dw = window(w, a.kernel[1], s[1], a.pad[1], 1, a.ceil, "width", self.name, loc)
        return ho, wo, [d for d, bad in ((f"height {h}", dh), (f"width {w}", dw)) if bad]

    def infer(self, a: PoolAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        ho, wo, _ = self._out_hw(a, ins, loc)
        return (*ins[0][:2], ho, wo)

    def warnings(self, a: PoolAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None
                 ) -> list[NetdslWarning]:
        _, _, dropped = self._out_hw(a, ins, loc)
        return _dropped_warning(self.name, a.kernel, a.step, a.pad, dropped, loc)

    def notation(self, a: PoolAttrs, ins: tuple[Shape, ...]) -> str:
        if a.kernel == (2, 2) and a.step == (2, 2):
            return self.name
        return f"{self.name}{_k(a.kernel)}/{_k(a.step)}"

    torch_fn: ClassVar[str] = ""  # torch.nn.functional name
    onnx_op: ClassVar[str] = ""

    # Every semantic default is spelled out in both lowerings (PyTorch's and ONNX's defaults
    # differ: AveragePool's count_include_pad is 0 in ONNX, True in PyTorch).
    def torch(self, a: PoolAttrs, ins: tuple[Shape, ...]) -> TorchCode:
        args = [_tk(a.kernel), _tk(a.step), _tk(a.pad), f"ceil_mode={a.ceil}", *self._extra(a)]
        return TorchCode(None, f"F.{self.torch_fn}({{0}}, {', '.join(args)})")

    def _extra(self, a: PoolAttrs) -> list[str]:
        return []

    def onnx(self, b: OnnxBuilder, a: PoolAttrs, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        ph, pw = a.pad
        extra = {"count_include_pad": int(a.count_pad)} if isinstance(a, AvgPoolAttrs) else {}
        return b.node(self.onnx_op, inputs, name, kernel_shape=list(a.kernel),
                      strides=list(a.step), pads=[ph, pw, ph, pw], ceil_mode=int(a.ceil),
                      **extra)


@register("maxpool", "max_pool", "pool")
class MaxPool(_Pool):
    """Max pooling: ``maxpool`` (2/2, VGG), ``maxpool3/2 pad 1`` (ResNet), ``maxpool3/2 ceil``."""

    torch_fn, onnx_op = "max_pool2d", "MaxPool"


@dataclass(frozen=True, slots=True)
class AvgPoolAttrs(PoolAttrs):
    count_pad: bool = opt(True, kind="bool",
                          doc="count the zero padding in the divisor (PyTorch's default)")


@register("avgpool", "avg_pool")
class AvgPool(_Pool):
    """Average pooling: ``avgpool2/2``, ``avgpool5/3``, ``avgpool3/1 pad 1`` (the padding's zeros
    count in the mean, PyTorch's ``count_include_pad=True``; ``count_pad off`` leaves them out)."""

    Attrs = AvgPoolAttrs
    torch_fn, onnx_op = "avg_pool2d", "AveragePool"

    def _extra(self, a: AvgPoolAttrs) -> list[str]:
        return [f"count_include_pad={a.count_pad}"]

    def infer(self, a: AvgPoolAttrs, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        out = super().infer(a, ins, loc)
        if a.ceil and a.count_pad and a.pad != (0, 0):
            for n, o, k, s, p in zip(ins[0][2:], out[2:], a.kernel, a.step, a.pad, strict=True):
                if (int(o) - 1) * s + k > int(n) + 2 * p:
                    # the last window runs past the padding: PyTorch and onnxruntime divide
                    # it differently, so refuse rather than differ
                    raise NetdslError("avgpool's last window runs past the padding (ceil) while "
                                      "the padding counts in the divisor", loc,
                                      hint="write `count_pad off`, drop `ceil` or the padding")
        return out


@register("gap", "globalavgpool", "global_avgpool", "avgpool_global")
class GlobalAvgPool(OpDef):
    """Global average pooling to C×1×1 (NiN, GoogLeNet, ResNet)."""

    def infer(self, a: object, ins: tuple[Shape, ...], loc: SourceLoc | None) -> Shape:
        _spatial(ins, self.name, loc)
        return (*ins[0][:2], 1, 1)

    def notation(self, a: object, ins: tuple[Shape, ...]) -> str:
        return "global avgpool"

    def torch(self, a: object, ins: tuple[Shape, ...]) -> TorchCode:
        return TorchCode(None, "F.adaptive_avg_pool2d({0}, 1)")

    def onnx(self, b: OnnxBuilder, a: object, name: str, inputs: list[str],
             ins: tuple[Shape, ...]) -> str:
        return b.node("GlobalAveragePool", inputs, name)
