"""Weights as numpy arrays keyed by state_dict names: seeded init, checkpoint loading, matching.

Both backends take their weights from here, so ``to_torch(net, seed=s)`` and
``to_onnx(net, seed=s)`` hold identical tensors. Names are ``<layer>.<tensor>``
(``layer1.0.conv1.weight``), the PyTorch state_dict keys.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import ops
from ..errors import NetdslError
from ..network import Network
from ..ops import TensorSpec
from .checkpoint import read_checkpoint  # noqa: F401  (re-exported: reading files is there)
from .memory import check_fits

Weights = dict[str, np.ndarray]

# Buffers PyTorch keeps that no backend computes with (BN's step counter) or that are a fixed
# function of the architecture (Swin's window geometry: netdsl derives it from the window
# size): ignored when loading.
IGNORED_SUFFIXES = (".num_batches_tracked", ".relative_position_index")


def tensor_specs(net: Network, aux: bool = False) -> list[tuple[str, TensorSpec, bool]]:
    """(full name, spec, is-aux) of every weight and buffer, in graph (= state_dict) order."""
    out = []
    for lay in net.graph.layers():
        op = ops.OPS[lay.op]
        if not op.carries_weights or (lay.aux and not aux):
            continue
        for t in op.tensors(lay.attrs, net.in_shapes(lay)):
            out.append((t.key(lay.name), t, lay.aux))
    return out


def init_weights(net: Network, seed: int = 0, aux: bool = False) -> Weights:
    """Seeded initial weights following the spec's ``init`` (He/Glorot, normal/uniform).

    Conv/FC weights are drawn from one random stream in a single vectorized call and scaled
    in place per tensor; biases and BN shifts are 0, BN scales and running variances 1. The
    stream always covers the auxiliary heads, so the inference weights do not depend on
    ``aux``.
    """
    check_fits(net, "build its weights")
    scheme, dist = net.header.init
    specs = tensor_specs(net, aux=True)
    total = sum(math.prod(t.shape) for _, t, _ in specs if t.init == "fan")
    buf = _random(total, seed, dist)
    out: Weights = {}
    pos = 0
    for name, t, is_aux in specs:
        n = math.prod(t.shape)
        if t.init != "fan":
            value = {"ones": 1.0, "zeros": 0.0}.get(t.init, t.value)
            arr = np.full(t.shape, value, dtype=np.float32)
        else:
            arr = buf[pos:pos + n].reshape(t.shape)  # a view: no copy
            pos += n
            fan_in, fan_out = t.fans
            var = 2.0 / fan_in if scheme == "he" else 2.0 / (fan_in + fan_out)
            if dist == "normal":
                arr *= np.float32(math.sqrt(var))
            else:  # U(-b, b) has variance b²/3
                bound = np.float32(math.sqrt(3.0 * var))
                arr *= 2 * bound
                arr -= bound
        if aux or not is_aux:
            out[name] = arr
    return out


CHUNK = 1 << 22  # elements per independently seeded chunk of the random stream


def _random(n: int, seed: int, dist: str) -> np.ndarray:
    """n float32 draws of N(0, 1) or U(0, 1), filled by all cores.

    Chunk i is drawn from its own generator spawned from ``seed``, so the result does not
    depend on the number of threads (numpy releases the GIL while filling).
    """
    buf = np.empty(n, dtype=np.float32)
    seeds = np.random.SeedSequence(seed).spawn(-(-n // CHUNK))

    def fill(i: int) -> None:
        rng = np.random.default_rng(seeds[i])
        part = buf[i * CHUNK:(i + 1) * CHUNK]
        if dist == "normal":
            rng.standard_normal(out=part, dtype=np.float32)
        else:
            rng.random(out=part, dtype=np.float32)

    with ThreadPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1) or 1) as pool:
        list(pool.map(fill, range(len(seeds))))
    return buf


def match_weights(net: Network, given: Mapping[str, np.ndarray], by_order: bool = False,
                  path: str = "weights", aux: bool = False) -> Weights:
    """Check ``given`` against the network's tensors and return them under netdsl's names.

    By name, every expected tensor must be present with its shape and nothing else may be
    (PyTorch's ``num_batches_tracked`` counters are ignored, and so are the auxiliary heads'
    tensors of a training checkpoint when ``aux`` is False). By order (``by_order``), the
    i-th tensor of the checkpoint feeds the i-th tensor of the network, for checkpoints of an
    equivalent model from another library; any difference in count or shape is refused.

    Args:
        net: the network the weights are for.
        given: tensors by name, in the checkpoint's order.
        by_order: match by position instead of by name.
        path: the checkpoint, for messages.
        aux: whether the auxiliary heads' tensors are wanted too.

    Raises:
        NetdslError: naming every missing, extra or mis-shaped tensor.
    """
    check_fits(net, "load its weights")
    every = tensor_specs(net, aux=True)
    specs = [s for s in every if aux or not s[2]]
    given = {k: v for k, v in given.items() if not k.endswith(IGNORED_SUFFIXES)}
    if by_order:
        if len(given) == len(every) != len(specs):  # a training checkpoint: drop the aux heads
            w = _match_by_order(state_dict_order(every), given, path)
            return {n: w[n] for n, _, _ in specs}
        return _match_by_order(state_dict_order(specs), given, path)
    if not aux:
        heads = {n for n, _, is_aux in every if is_aux}
        given = {k: v for k, v in given.items() if k not in heads}
    problems = []
    names = {n for n, _, _ in specs}
    missing = [n for n, _, _ in specs if n not in given]
    extra = [k for k in given if k not in names]
    bad = [f"{n}: expected {_shape(t.shape)}, got {_shape(given[n].shape)}"
           for n, t, _ in specs if n in given and not _fits(given[n].shape, t.shape)]
    for what, items in (("missing", missing), ("unexpected", extra), ("mis-shaped", bad)):
        if items:
            problems.append(f"{len(items)} {what}: " + _few(items))
    if problems:
        hint = ("names differ: if this is the same architecture from another library, "
                "try --weights-by-order" if missing and extra else
                f"{net.name} expects {len(specs)} tensors named like '{specs[0][0]}'"
                if specs else None)
        raise NetdslError("weights do not fit the network: " + "; ".join(problems), path=path,
                          hint=hint)
    return {n: _float32(given[n]).reshape(t.shape) for n, t, _ in specs}


def _fits(given: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Same shape, or a Linear's (O, I) for a 1×1 conv's (O, I, 1, 1): the same function."""
    given = tuple(given)
    return given == want or (len(given) < len(want) and
                             given + (1,) * (len(want) - len(given)) == want)


def state_dict_order(specs: list[tuple[str, TensorSpec, bool]]
                     ) -> list[tuple[str, TensorSpec, bool]]:
    """The tensors in the order of netdsl's PyTorch module's ``state_dict``.

    PyTorch lists a module's own parameters before its submodules' (recursively, submodules
    in registration order). A layer's tensors belong to its own submodule; a tensor that is the
    layer itself (layer scale) is a parameter of the enclosing scope, so it comes before that
    scope's layers, as torchvision's ConvNeXt registers ``layer_scale`` before its ``block``.
    Everywhere else this is the order of use.
    """
    own: dict[str, list] = {"": []}  # scope or layer -> its own tensors
    children: dict[str, list[str]] = {"": []}  # scope -> submodules in registration order
    for item in specs:
        name, t, _ = item
        owner = name.rpartition(".")[0] if t.name else None  # a layer's own submodule
        scope = owner if owner is not None else name
        parts = scope.split(".")
        for i in range(len(parts)):  # register the submodule path, as the torch lowering does
            node, parent = ".".join(parts[:i + 1]), ".".join(parts[:i])
            if node not in own:
                own[node], children[node] = [], []
                if owner is not None or i < len(parts) - 1:
                    children[parent].append(node)
        own[owner if owner is not None else name.rpartition(".")[0]].append(item)
    out: list = []

    def visit(node: str) -> None:
        out.extend(own[node])
        for c in children[node]:
            visit(c)

    visit("")
    return out


def _match_by_order(specs: list[tuple[str, TensorSpec, bool]], given: Mapping[str, np.ndarray],
                    path: str) -> Weights:
    theirs = list(given.items())
    if len(theirs) != len(specs):
        raise NetdslError(f"weights by order: the file has {len(theirs)} tensors, the network "
                          f"{len(specs)}", path=path,
                          hint="the checkpoint is of a different architecture")
    out = {}
    for i, ((name, t, _), (key, arr)) in enumerate(zip(specs, theirs, strict=True)):
        if not _fits(arr.shape, t.shape):
            raise NetdslError(f"weights by order: tensor #{i} '{key}' has shape "
                              f"{_shape(arr.shape)}, but #{i} of the network '{name}' is "
                              f"{_shape(t.shape)}", path=path,
                              hint="the checkpoint is of a different architecture or orders its "
                                   "tensors differently; refusing to guess")
        out[name] = _float32(arr).reshape(t.shape)
    return out


def _float32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _shape(s: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, s)) + "]"


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" (and {len(items) - n} more)" if len(items) > n else "")
