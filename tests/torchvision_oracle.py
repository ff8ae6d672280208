"""torchvision as the oracle for the zoo specs, and the strict equivalence check.

A naive comparison with default initialization hides bugs: random init never drives an
activation past ReLU6's cap, zero biases and unit norm scales make a missing bias or a
swapped norm invisible, a layer scale of 1e-6 silences a whole branch. ``prepare`` therefore
randomizes every constant-initialized tensor and calibrates BatchNorm's running statistics on
random inputs before weights are copied across; ``compare`` then checks at 1× and 20× input
scale (20× crosses ReLU6's and hard-swish's caps).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the torchvision oracle needs PyTorch")

SCALES = (1.0, 20.0)


def import_torchvision() -> Any:
    """``import torchvision``, or skip the test saying why it cannot be imported.

    The CPU-only torchvision 0.28 wheel installed over the CPU torch wheel has a compiled
    extension that does not load; its Python side then fails registering fake kernels for the
    ``torchvision::nms`` and ``torchvision::qnms`` operators, which the extension would have
    defined. Defining those two schemas first makes the pure-Python model zoo importable (only
    detection models call them). Where the extension loads, the first import succeeds and
    nothing is defined here.
    """
    try:
        return importlib.import_module("torchvision")
    except ModuleNotFoundError:
        pytest.skip("torchvision is not installed (the zoo specs' oracle)")
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the failed import left half-initialized modules behind
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBS.append(lib)  # a Library deregisters its definitions when garbage-collected
    return importlib.import_module("torchvision")


_LIBS: list[Any] = []

_NORMS = (torch.nn.modules.batchnorm._BatchNorm,)


def randomize_constants(model: torch.nn.Module, seed: int = 0,
                        extra: Iterable[str] = ()) -> list[str]:
    """Replace every constant-initialized parameter or buffer with random values.

    A tensor is constant-initialized when all its elements are equal (zero biases, unit norm
    scales, zero class tokens, 1e-6 layer scales); names in ``extra`` (e.g. a position
    embedding drawn with a tiny std) are randomized too. Zeros become N(0, 0.1²) and other
    constants U(0.5, 1.5), so scales stay positive and outputs of deep networks stay finite.
    BatchNorm running statistics are left to ``calibrate_bn``. Returns the names changed.
    """
    g = torch.Generator().manual_seed(seed)
    extra = set(extra)
    changed = []
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point() or t.numel() == 0 or _is_bn_stat(name):
                continue
            flat = t.flatten()
            if name not in extra and not (t.numel() > 1 and bool((flat == flat[0]).all())):
                continue
            zero = name in extra or float(flat[0]) == 0.0
            r = (torch.randn(t.shape, generator=g) * 0.1 if zero
                 else torch.rand(t.shape, generator=g) + 0.5)
            t.copy_(r.to(t.dtype))
            changed.append(name)
    return changed


def _is_bn_stat(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")


def calibrate_bn(model: torch.nn.Module, input_shape: tuple[int, ...], batches: int = 4,
                 batch: int = 8, seed: int = 1) -> None:
    """Set BatchNorm running statistics to those of random inputs (cumulative average).

    Only the BN layers are put in training mode: dropout and stochastic depth stay off, so
    the statistics are those the inference network sees.
    """
    bns = [m for m in model.modules() if isinstance(m, _NORMS)]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
        m.train()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn((batch, *input_shape), generator=g))
    model.eval()


def prepare(model: torch.nn.Module, input_shape: tuple[int, ...], seed: int = 0,
            extra: Iterable[str] = ()) -> torch.nn.Module:
    """Randomize constants, calibrate BN statistics, return the model in eval mode."""
    torch.manual_seed(seed)
    randomize_constants(model, seed, extra)
    calibrate_bn(model, input_shape)
    return model.eval()


def inputs(input_shape: tuple[int, ...], batch: int = 2, seed: int = 2
           ) -> list[tuple[float, torch.Tensor]]:
    """The comparison inputs: one random batch at each of ``SCALES``."""
    x = torch.randn((batch, *input_shape), generator=torch.Generator().manual_seed(seed))
    return [(s, x * s) for s in SCALES]


def relative_error(ref: Any, got: Any) -> float:
    """max |got − ref| / max |ref| (arrays or tensors)."""
    ref = torch.as_tensor(ref).detach().to(torch.float64)
    got = torch.as_tensor(got).detach().to(torch.float64)
    assert ref.shape == got.shape, f"shapes differ: {tuple(ref.shape)} vs {tuple(got.shape)}"
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def compare(reference: torch.nn.Module, candidates: dict[str, Callable[[torch.Tensor], Any]],
            input_shape: tuple[int, ...], tol: float = 1e-4, batch: int = 2) -> dict[str, float]:
    """Run ``reference`` and each candidate at every scale; assert each within ``tol``.

    Returns the worst relative error per candidate, for messages and reports.
    """
    worst = dict.fromkeys(candidates, 0.0)
    for scale, x in inputs(input_shape, batch):
        with torch.no_grad():
            ref = reference(x)
        for name, fn in candidates.items():
            err = relative_error(ref, fn(x))
            worst[name] = max(worst[name], err)
            assert err <= tol, f"{name} at {scale:g}× input: max|diff|/max|y| = {err:.3g}"
    return worst
