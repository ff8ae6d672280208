"""The torchvision zoo specs: parameter counts exact and strict equivalence with torchvision.

torchvision's model is prepared (constants randomized, BN statistics calibrated), its
state_dict saved to a ``.pth`` and loaded by name into netdsl's PyTorch module and ONNX model,
as ``netdsl compile --weights`` loads it (every spec carries torchvision's state_dict keys), and
both compared with it at 1× and 20× input scale within 1e-4 of max |y|. Small inputs keep it
quick where the architecture allows (global pooling before the classifier); big variants are
compared on one batch of one image.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import netdsl
from netdsl.codegen.weights import match_weights, read_checkpoint, state_dict_order, tensor_specs

from .conftest import ROOT
from .torchvision_oracle import (
    calibrate_bn,
    import_torchvision,
    inputs,
    randomize_constants,
    relative_error,
)

torch = pytest.importorskip("torch")
TOL = 1e-4


@dataclass(frozen=True)
class Zoo:
    stem: str  # spec file and torchvision builder
    params: int  # torchvision 0.28's count (the issue's oracle)
    shape: tuple[int, int, int] = (3, 64, 64)  # the comparison's input
    big: bool = False  # one image per scale, one calibration batch
    kwargs: tuple[tuple[str, Any], ...] = ()
    spec_params: tuple[tuple[str, Any], ...] = ()
    spec: str = ""  # the spec file's stem when it differs from ``stem``


ZOO = [
    Zoo("mobilenet_v2", 3_504_872),
    Zoo("mobilenet_v3_large", 5_483_032),
    Zoo("mobilenet_v3_small", 2_542_856),
    Zoo("efficientnet_b0", 5_288_548),
    Zoo("efficientnet_b4", 19_341_616, big=True),  # B0's spec at width 1.4, depth 1.8
    Zoo("shufflenet_v2_x1_0", 2_278_604),
    Zoo("shufflenet_v2_x0_5", 1_366_792),
    Zoo("squeezenet1_0", 1_248_424),
    Zoo("squeezenet1_1", 1_235_496),
    Zoo("inception_v3", 23_834_568, (3, 75, 75),  # 75×75: the smallest input it takes
        kwargs=(("aux_logits", False), ("init_weights", False))),
    Zoo("convnext_tiny", 28_589_128),
    Zoo("convnext_base", 88_591_464, big=True),
    Zoo("vgg11_bn", 132_868_840, (3, 224, 224), big=True),
    Zoo("vgg16_bn", 138_365_992, (3, 224, 224), big=True),
    Zoo("densenet169", 14_149_480),
    Zoo("densenet201", 20_013_928, big=True),
    Zoo("resnext101_32x8d", 88_791_336, big=True),
    Zoo("wide_resnet101_2", 126_886_696, big=True),
]
BY_STEM = {z.stem: z for z in ZOO}
SPEC_STEMS = {z.spec or z.stem for z in ZOO}
# The specs renamed to torchvision's state_dict keys by naming alone (sequences, named chains,
# `concat flat`), and the ViTs (compared in test_transformer.py); the MobileNets' and
# EfficientNets' keys are checked in test_torchvision_names.py
RENAMED = {"shufflenet_v2_x1_0", "shufflenet_v2_x0_5", "squeezenet1_0", "squeezenet1_1",
           "inception_v3", "convnext_tiny", "convnext_base", "vgg11_bn", "vgg16_bn",
           "densenet121", "densenet169", "densenet201", "resnext101_32x8d", "wide_resnet101_2",
           "vit_b_16", "vit_b_32", "vit_l_16"}
# torchvision's ConvNeXt holds its pointwise layers as Linears, (O, I), where netdsl has 1×1
# convs, (O, I, 1, 1): `--weights` and to_torch(weights=…) reshape them, nn.Module's
# load_state_dict does not. Every other zoo module loads torchvision's state_dict as it is.
LINEAR_AS_CONV = {"convnext_tiny", "convnext_base"}


def load_spec(z: Zoo, shape: tuple[int, int, int] | None = None) -> netdsl.Network:
    """The zoo spec, at ``shape`` instead of its own input when given."""
    path = ROOT / "specs" / f"{z.spec or z.stem}.net"
    text = path.read_text(encoding="utf-8")
    if shape is not None:
        text = re.sub(r"^input .*$", "input " + "x".join(map(str, shape)), text, count=1,
                      flags=re.M)
    return netdsl.loads(text, str(path), dict(z.spec_params))


@dataclass
class Compared:
    net: netdsl.Network
    reference_params: int
    errors: dict[str, float]  # backend -> worst max|diff| / max|y| over the scales
    # Where an error passes TOL: (backend's error, torchvision's own float32 error), both
    # against torchvision's model in float64, at that scale
    floors: dict[str, tuple[float, float]]

    def failures(self) -> list[str]:
        """Backends off by more than TOL and by more than twice float32's own rounding."""
        out = []
        for backend, err in self.errors.items():
            if err <= TOL:
                continue
            e64, floor = self.floors[backend]
            if e64 > 2 * floor:
                out.append(f"{backend}: max|diff|/max|y| = {err:.3g} (against float64 "
                           f"{e64:.3g}, torchvision's own float32 {floor:.3g})")
        return out


def compare_with_torchvision(z: Zoo, tmp: Path) -> Compared:
    tv = import_torchvision()
    torch.manual_seed(0)
    ref = getattr(tv.models, z.stem)(weights=None, **dict(z.kwargs))
    randomize_constants(ref)
    calibrate_bn(ref, z.shape, batches=1 if z.big else 4, batch=2 if z.big else 8)
    ref.eval()
    net = load_spec(z, z.shape)
    ckpt = tmp / f"{z.stem}.pth"  # as `netdsl compile --weights FILE.pth`: read, matched by name
    torch.save(ref.state_dict(), ckpt)
    w = match_weights(net, read_checkpoint(ckpt), path=str(ckpt))
    ckpt.unlink()
    module = netdsl.to_torch(net, weights=w).eval()
    if z.stem not in LINEAR_AS_CONV:  # the module itself takes torchvision's state_dict too
        module.load_state_dict(ref.state_dict(), strict=True)
    model = netdsl.to_onnx(net, weights=w)
    errors = {"torch": 0.0, "onnxruntime": 0.0}
    floors: dict[str, tuple[float, float]] = {}
    for _, x in inputs(z.shape, batch=1 if z.big else 2):
        with torch.no_grad():
            y = ref(x)
            got = {"torch": module(x), "onnxruntime": netdsl.run_onnx(model, x.numpy(), "cpu")}
        y64 = None
        for backend, out in got.items():
            err = relative_error(y, out)
            errors[backend] = max(errors[backend], err)
            if err > TOL:  # is it more than float32 rounding? ask torchvision in float64
                if y64 is None:
                    with torch.no_grad():
                        y64 = copy.deepcopy(ref).double()(x.double())
                worst = floors.get(backend, (0.0, 1.0))
                here = (relative_error(y64, out), relative_error(y64, y))
                if here[0] / max(here[1], 1e-30) > worst[0] / max(worst[1], 1e-30):
                    floors[backend] = here
    return Compared(net, sum(p.numel() for p in ref.parameters()), errors, floors)


@pytest.fixture(scope="module", params=ZOO, ids=lambda z: z.stem)
def compared(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Compared:
    return compare_with_torchvision(request.param, tmp_path_factory.mktemp("zoo"))


@pytest.mark.parametrize("z", ZOO, ids=lambda z: z.stem)
def test_parameter_count_is_torchvisions(z: Zoo) -> None:
    net = load_spec(z)  # at the spec's own resolution
    assert net.params == z.params


def test_strictly_equivalent_to_torchvision(compared: Compared) -> None:
    assert compared.reference_params == compared.net.params
    assert not compared.failures()


@pytest.mark.parametrize("stem", sorted(RENAMED))
def test_state_dict_keys_are_torchvisions(stem: str) -> None:
    """Every tensor torchvision's model holds, under its name, in its order and with its shape
    (a Linear's (O, I) where netdsl has the equal 1×1 conv's (O, I, 1, 1)): compile --weights
    loads it, and --weights-by-order pairs the same tensors."""
    tv = import_torchvision()
    kwargs = dict(BY_STEM[stem].kwargs) if stem in BY_STEM else {}
    with torch.device("meta"):  # names and shapes without allocating the weights
        ref = getattr(tv.models, stem)(weights=None, **kwargs)
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    net = netdsl.load(ROOT / "specs" / f"{stem}.net")
    ours = {n: t.shape for n, t, _ in state_dict_order(tensor_specs(net))}
    assert list(ours) == list(theirs)
    assert {k: s for k, s in theirs.items() if ours[k][:len(s)] != s or
            any(d != 1 for d in ours[k][len(s):])} == {}


if __name__ == "__main__":  # the figures for the report: python -m tests.test_zoo [stem…]
    import sys
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    for z in [BY_STEM[s] for s in sys.argv[1:]] or ZOO:
        c = compare_with_torchvision(z, tmp)
        floors = "".join(f"; {b} against float64 {e:.2e}, torchvision float32 {f:.2e}"
                         for b, (e, f) in c.floors.items())
        print(f"{z.stem}: params {c.net.params:,} (torchvision {c.reference_params:,}); "
              + ", ".join(f"{b} {e:.2e}" for b, e in c.errors.items()) + floors
              + ("; FAIL " + " ".join(c.failures()) if c.failures() else ""), flush=True)


def torchvision_macs(model: Any, shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one image counted independently, by forward hooks on torchvision's
    Conv2d and Linear modules: Cout·Ho·Wo·(Cin/groups)·kh·kw per conv and in·out per output
    position of a Linear (ConvNeXt applies its Linears at every pixel)."""
    total = 0

    def hook(m: Any, ins: tuple[Any, ...], out: Any) -> None:
        nonlocal total
        per_image = out.numel() // out.shape[0]
        if isinstance(m, torch.nn.Conv2d):
            total += per_image * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += per_image * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


# The approximate figures; the exact oracle is the hook count above
MACS = {"mobilenet_v2": 0.30e9, "efficientnet_b0": 0.39e9, "convnext_tiny": 4.46e9,
        "efficientnet_b4": 4.39e9}  # torchvision's documentation: 4.39 GFLOPS (multiply-adds)


@pytest.mark.parametrize("stem", sorted(MACS))
def test_multiply_adds_within_one_percent_of_torchvisions(stem: str) -> None:
    tv = import_torchvision()
    net = load_spec(BY_STEM[stem])
    shape = tuple(int(d) for d in net.input_shape[1:])
    counted = torchvision_macs(getattr(tv.models, stem)(weights=None), shape)
    assert net.macs == pytest.approx(counted, rel=0.01)
    assert net.macs == pytest.approx(MACS[stem], rel=0.02)
