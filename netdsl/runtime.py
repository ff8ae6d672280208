"""Running compiled models with onnxruntime, on the device asked for and nowhere else.

onnxruntime-gpu quietly falls back to the CPU when CUDA cannot start (missing cuDNN, no
driver); netdsl checks the providers a session actually got and says so instead.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NetdslError

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Session:
    """An onnxruntime session and the story of how its provider was chosen."""

    sess: Any  # onnxruntime.InferenceSession
    provider: str  # the provider that actually runs the model
    note: str  # why this one (e.g. "auto: no CUDA provider in this onnxruntime build")

    @property
    def input_name(self) -> str:
        return str(self.sess.get_inputs()[0].name)

    @property
    def input_shape(self) -> list[Any]:
        return list(self.sess.get_inputs()[0].shape)

    @property
    def weights(self) -> str | None:
        """Where a netdsl-compiled model's weights came from ("given", or netdsl's random
        initialization and its seed); None for other models."""
        meta = self.sess.get_modelmeta().custom_metadata_map
        return meta.get("netdsl.weights")

    def run(self, x: np.ndarray) -> np.ndarray:
        """The main (first) output for input ``x``."""
        return self.sess.run(None, {self.input_name: x})[0]


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise NetdslError("onnxruntime is not installed",
                          hint="pip install 'netdsl[cpu]' (or 'netdsl[gpu]' on a CUDA "
                               "machine)") from None
    return onnxruntime


def _model_bytes(model: Any) -> tuple[bytes | str, str]:
    if isinstance(model, (str, Path)):
        p = Path(model)
        if not p.is_file():
            raise NetdslError("no such model file", path=str(model), hint="check the path")
        return str(p), str(model)
    if isinstance(model, bytes):
        return model, "model"
    return model.SerializeToString(), "model"  # an onnx.ModelProto


def open_session(model: Any, device: str = "auto") -> Session:
    """An onnxruntime session on ``device``: "cpu", "cuda" (or an error saying why not) or
    "auto" (CUDA when it works, else the CPU).

    Args:
        model: a path to an .onnx file, serialized bytes, or an ``onnx.ModelProto``.
        device: "auto", "cpu" or "cuda".

    Raises:
        NetdslError: for an unreadable model, or "cuda" when CUDA cannot run it.
    """
    if device not in DEVICES:
        raise NetdslError(f"unknown device '{device}'", hint="use auto, cpu or cuda")
    ort = _ort()
    data, where = _model_bytes(model)
    available = ort.get_available_providers()
    why_not = None
    if device in ("auto", "cuda"):
        if CUDA not in available:
            why_not = (f"this onnxruntime build has no CUDA provider (it has "
                       f"{', '.join(available)})")
        else:
            _preload_cuda(ort)
            sess = _create(ort, data, where, [CUDA, CPU])
            got = sess.get_providers()
            if got and got[0] == CUDA:
                return Session(sess, CUDA, f"{device}: CUDA")
            why_not = ("onnxruntime's CUDA provider failed to start and it fell back to the "
                       "CPU (its log above says why: usually the CUDA or cuDNN libraries)")
        if device == "cuda":
            raise NetdslError(f"--device cuda: {why_not}",
                              hint="install onnxruntime-gpu (the gpu extra, not cpu) on a machine "
                                   "with a working CUDA driver, or use --device auto or cpu")
    sess = _create(ort, data, where, [CPU])
    return Session(sess, CPU, f"auto: CPU, since {why_not}" if device == "auto" else "cpu")


def _preload_cuda(ort: Any) -> None:
    """Load the CUDA and cuDNN libraries the gpu extra installs from pip (nvidia-* wheels),
    which onnxruntime-gpu (1.21+) does not find by itself; its messages go to stderr."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    with contextlib.redirect_stdout(sys.stderr):
        try:
            preload()
        except Exception as e:  # a failed preload shows again as a session without CUDA
            print(f"netdsl: onnxruntime.preload_dlls() failed: {e}", file=sys.stderr)


def _create(ort: Any, data: bytes | str, where: str, providers: list[str]) -> Any:
    try:
        return ort.InferenceSession(data, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for invalid models
        raise NetdslError(f"onnxruntime cannot load the model: {str(e).splitlines()[0]}",
                          path=where) from None


def _input_dims(s: Session) -> list[Any]:
    """The model's one float input's dimensions, or an error saying why ``run`` cannot feed it."""
    inputs = s.sess.get_inputs()
    if not inputs:
        raise NetdslError("the model has no input: there is nothing to feed")
    kind = str(inputs[0].type)
    if kind != "tensor(float)":
        raise NetdslError(f"the model's input '{inputs[0].name}' is {kind}: netdsl run feeds "
                          "float32 images", hint="run it with onnxruntime directly")
    dims = list(inputs[0].shape)
    if not dims:
        raise NetdslError(f"the model's input '{inputs[0].name}' is a scalar, not a batch",
                          hint="run it with onnxruntime directly")
    return dims


def _fits(nbytes: int, what: str, hint: str) -> None:
    from .codegen.memory import physical_memory, size

    have = physical_memory()
    if 2 * nbytes > have:  # the array and onnxruntime's copy of it
        raise NetdslError(f"{what} needs {size(2 * nbytes)} of memory (the array and "
                          f"onnxruntime's copy); this machine has {size(have)}", hint=hint)


def random_input(s: Session, batch: int, seed: int) -> np.ndarray:
    """A standard normal batch of the model's input shape, after checking it fits in memory."""
    dims = _input_dims(s)
    shape = [batch if i == 0 and not isinstance(d, int) else d for i, d in enumerate(dims)]
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise NetdslError(f"the model's input has unknown dimensions {dims}: netdsl cannot "
                          "make a random input for it", hint="give one with --input X.npy")
    _fits(math.prod(shape) * 4, f"--batch {batch:,} ({'×'.join(map(str, shape))} input)",
          "lower --batch")
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def read_input(path: str, s: Session) -> np.ndarray:
    """An input array from a ``.npy`` file, memory-mapped and checked before it is read."""
    _input_dims(s)
    p = Path(path)
    hint = "give a .npy file of float32 images (numpy.save)"
    if not p.is_file():
        raise NetdslError("no such input file" if not p.exists() else
                          "the input is not a regular file", path=path, hint=hint)
    try:
        x = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # a bad header, or one claiming more than is there
        raise NetdslError(f"cannot read input: {e}".splitlines()[0], path=path,
                          hint=hint) from None
    if not isinstance(x, np.ndarray):  # an .npz archive
        raise NetdslError("the input is an .npz archive of several arrays", path=path, hint=hint)
    if x.dtype.kind not in "fiub":
        raise NetdslError(f"the input holds {x.dtype} values, not numbers", path=path, hint=hint)
    if x.size == 0:
        raise NetdslError(f"the input is empty (shape {list(x.shape)})", path=path, hint=hint)
    _fits(x.size * 4, f"the input ({'×'.join(map(str, x.shape))})", hint)
    return np.array(x, dtype=np.float32)


def check_input(s: Session, x: np.ndarray) -> np.ndarray:
    """``x`` as float32 with a batch axis, or an error comparing it with the model's input."""
    want = _input_dims(s)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == len(want) - 1:
        x = x[None]
    if x.ndim and not len(x):
        raise NetdslError("the input batch is empty (0 images)", hint="give at least one image")
    fixed = [d for d in want[1:]]
    if x.ndim != len(want) or any(isinstance(d, int) and d != g
                                  for d, g in zip(fixed, x.shape[1:], strict=True)):
        raise NetdslError(f"input has shape {list(x.shape)}, the model expects "
                          f"[N, {', '.join(map(str, fixed))}]")
    return x


def run_onnx(model: Any, x: np.ndarray, device: str = "auto") -> np.ndarray:
    """Run an ONNX model with onnxruntime and return its main output.

    Args:
        model: a path to an .onnx file, serialized bytes, or an ``onnx.ModelProto``.
        x: the input batch (a single example without batch axis is accepted).
        device: "auto", "cpu" or "cuda" (an error when CUDA is unusable, never a fallback).
    """
    s = open_session(model, device)
    return s.run(check_input(s, x))


def time_runs(s: Session, x: np.ndarray, repeat: int,
              progress: Callable[[int, int, list[float]], None] | None = None
              ) -> tuple[np.ndarray, list[float]]:
    """The output and ``repeat`` wall-clock latencies in seconds, after one warm-up run.

    ``progress(done, repeat, times)`` is called before the warm-up (done = -1) and after each
    timed run; its own time is not measured.
    """
    if progress:
        progress(-1, repeat, [])
    y = s.run(x)
    times: list[float] = []
    for i in range(repeat):
        if progress:
            progress(i, repeat, times)
        t = time.perf_counter()
        s.run(x)
        times.append(time.perf_counter() - t)
    return y, times
