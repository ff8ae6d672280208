"""The import's check: the rebuilt model against the original under onnxruntime.

Both run on one random batch; the import passes when max |y' − y| ≤ 1e-5 · max |y|. When it
does not, both models run again with every layer's output exposed (the original's ONNX value
that each recognized layer computes, the rebuilt model's value of the layer built from it),
and the first layer in topological order whose output differs beyond the tolerance is named,
with both ONNX names and the difference: where to look for the bug.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetdslError
from ..network import Network
from .layers import Lyr

TOL = 1e-5


def _bytes(original: Any) -> bytes:
    if isinstance(original, (str, Path)):
        import onnx

        return onnx.load(str(original)).SerializeToString()  # external data resolved
    if isinstance(original, (bytes, bytearray)):
        return bytes(original)
    return original.SerializeToString()


def _error(y: np.ndarray, y2: np.ndarray) -> float:
    """max |y2 − y| / max |y| over the finite entries (inf when shapes or infinities differ)."""
    finite = np.isfinite(y)  # a deep net with initial BN statistics may overflow: compare the
    if y.shape != y2.shape or not np.array_equal(finite, np.isfinite(y2)):  # rest, same places
        return float("inf")
    if not finite.any():
        return 0.0
    scale = float(np.abs(y[finite]).max()) or 1.0
    return float(np.abs(y[finite] - y2[finite]).max()) / scale


def compare(original: Any, network: Network, weights: dict[str, np.ndarray],
            order: list[Lyr], batch: int | None, path: str, seed: int = 0) -> float:
    """max |y - y'| / max |y| between the original and the rebuilt model under onnxruntime."""
    from ..codegen.onnx import to_onnx
    from ..runtime import run_onnx

    shape = (batch or 2, *network.input_shape[1:])
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    src = original if isinstance(original, (str, Path)) else _bytes(original)
    src = str(src) if isinstance(src, Path) else src
    try:
        y = run_onnx(src, x, device="cpu")
    except NetdslError:
        raise
    except Exception as e:  # onnxruntime refuses the original: nothing to compare against
        raise NetdslError(f"onnxruntime cannot run the original model to verify the import: "
                          f"{str(e).splitlines()[0]}", path=path,
                          hint="--no-verify writes the spec without checking it") from None
    values: dict[str, str] = {}
    rebuilt = to_onnx(network, weights, values=values)
    y2 = run_onnx(rebuilt.SerializeToString(), x, device="cpu")
    err = _error(y, y2)
    if not err <= TOL:
        where = first_difference(src, rebuilt, values, network, order, x)
        raise NetdslError(f"the imported spec computes something else: max |Δy| = "
                          f"{err:.3g} × max |y| (tolerance {TOL:g}), output "
                          f"{y.shape} vs {y2.shape}" + (f"; {where}" if where else ""),
                          path=path, hint="this is a netdsl import bug; please report it "
                                          "(--no-verify writes the spec anyway)")
    return err


def pairs(network: Network, order: list[Lyr]) -> list[tuple[Lyr, str]]:
    """Each recognized layer with the rebuilt network's layer built from it: the build order
    is the same, the network may add layers of its own (an ``identity`` branch)."""
    from .. import ops

    built = [lay for lay in network.graph.layers() if ops.OPS[lay.op].arity != 0 and not lay.aux]
    out, k = [], 0
    for lyr in order:
        while k < len(built) and built[k].op != lyr.kind:
            k += 1
        if k == len(built):
            break
        out.append((lyr, built[k].name))
        k += 1
    return out


def first_difference(original: Any, rebuilt: Any, values: dict[str, str], network: Network,
                     order: list[Lyr], x: np.ndarray) -> str:
    """'first differs at …' for the first layer whose output differs, or '' if none does."""
    try:
        matched = [(lyr, name) for lyr, name in pairs(network, order)
                   if lyr.value and name in values]
        ours = _run_with(original, [lyr.value for lyr, _ in matched], x)
        theirs = _run_with(rebuilt, [values[name] for _, name in matched], x)
    except Exception:  # the search is a help: never hide the comparison's own error
        return ""
    for (lyr, name), a, b in zip(matched, ours, theirs, strict=True):
        if a is None or b is None or a.size != b.size:
            continue
        err = _error(a.reshape(-1), b.reshape(-1))
        if not err <= TOL:
            d = float(np.abs(a.reshape(-1) - b.reshape(-1)).max()) if np.isfinite(err) else err
            return (f"first differs at layer '{name}' ({lyr.text()}, from ONNX node "
                    f"'{lyr.origin}'): max |Δ| = {d:.3g}, max |y| = "
                    f"{float(np.abs(a).max()):.3g}")
    return ""


def _run_with(model: Any, outputs: list[str], x: np.ndarray) -> list[np.ndarray | None]:
    """The model's values ``outputs`` on input ``x`` (None for a value it lacks)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.ModelProto()
    m.ParseFromString(model if isinstance(model, bytes) else _bytes(model))
    have = {o.name for o in m.graph.output}
    known = {o for n in m.graph.node for o in n.output}
    for name in dict.fromkeys(outputs):
        if name in known and name not in have:
            m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    got = dict(zip(names, s.run(names, {s.get_inputs()[0].name: x}), strict=True))
    return [got.get(o) for o in outputs]
