"""``netdsl import``: an ONNX model → a spec, its weights under netdsl's names, a check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetdslError
from ..network import Network, loads
from .read import read_model
from .recognize import Lyr, recognize
from .structure import NotSeriesParallel, structure
from .write import write_flat, write_structured


@dataclass
class ImportResult:
    text: str  # the spec
    network: Network  # the spec, loaded and checked
    weights: dict[str, np.ndarray]  # under netdsl's names (state_dict keys)
    warnings: list[str] = field(default_factory=list)
    onnx_nodes: int = 0
    seconds: float = 0.0
    max_error: float | None = None  # verify: max |y_import - y_original| / max |y_original|
    batch: int | None = None  # the original model's fixed batch size, if any

    def to_onnx(self) -> Any:
        from ..codegen.onnx import to_onnx

        return to_onnx(self.network, self.weights)


def from_onnx(source: str | Path | bytes | Any, path: str | None = None,
              verify: bool = True) -> ImportResult:
    """Import an ONNX model (a path, its bytes or a ``ModelProto``) as a netdsl spec.

    Raises:
        NetdslError: for unreadable files, ops with no netdsl meaning, or (``verify``) a
            rebuilt model whose outputs differ from the original's.
    """
    t0 = time.perf_counter()
    g = read_model(source, path)
    net = recognize(g)
    warnings = list(net.warnings)
    try:
        items = structure(net)
        text, order = write_structured(g, net, items)
    except NotSeriesParallel as e:
        warnings.append(f"the graph around ONNX node '{e.join.origin}' ({e.join.kind}) is not "
                        "nested residual/concat/scale blocks: written with 'from' (the DAG "
                        "escape), one statement per layer")
        text, order = write_flat(g, net)
    spec_path = str(Path(g.path).with_suffix(".net")) if g.path != "<model>" else "<import>"
    try:
        network = loads(text, spec_path)
    except NetdslError as e:
        raise NetdslError(f"the imported spec does not check: {e.message}", path=g.path,
                          hint="this is a netdsl import bug; please report it with the "
                               "model") from None
    weights = _weights(network, order, g.path)
    result = ImportResult(text, network, weights, warnings, len(g.nodes), batch=g.batch)
    if verify:
        result.max_error = compare(source if not isinstance(source, (str, Path)) else
                                   str(source), result, g.path)
    result.seconds = time.perf_counter() - t0
    return result


def _weights(network: Network, order: list[Lyr], path: str) -> dict[str, np.ndarray]:
    from ..codegen.weights import match_weights

    ours = {f"t{k}": np.asarray(t, dtype=np.float32) for k, t in
            enumerate(t for lay in order for t in lay.tensors)}
    try:
        return match_weights(network, ours, by_order=True, path=path)
    except NetdslError as e:
        raise NetdslError(f"the imported spec's weights do not line up: {e.message}", path=path,
                          hint="this is a netdsl import bug; please report it") from None


def compare(original: Any, result: ImportResult, path: str, seed: int = 0) -> float:
    """max |y - y'| / max |y| between the original and the rebuilt model under onnxruntime."""
    from ..runtime import run_onnx

    shape = (result.batch or 2, *result.network.input_shape[1:])
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    src = original
    if isinstance(original, (str, Path)):
        src = str(original)
    elif not isinstance(original, (bytes, bytearray)):
        src = original.SerializeToString()
    try:
        y = run_onnx(src, x, device="cpu")
    except NetdslError:
        raise
    except Exception as e:  # onnxruntime refuses the original: nothing to compare against
        raise NetdslError(f"onnxruntime cannot run the original model to verify the import: "
                          f"{str(e).splitlines()[0]}", path=path,
                          hint="--no-verify writes the spec without checking it") from None
    y2 = run_onnx(result.to_onnx().SerializeToString(), x, device="cpu")
    finite = np.isfinite(y)  # a deep net with initial BN statistics may overflow: compare the
    if y.shape != y2.shape or not np.array_equal(finite, np.isfinite(y2)):  # rest, same places
        err = float("inf")
    elif not finite.any():
        err = 0.0
    else:
        scale = float(np.abs(y[finite]).max()) or 1.0
        err = float(np.abs(y[finite] - y2[finite]).max()) / scale
    if not err <= 1e-5:
        raise NetdslError(f"the imported spec computes something else: max |Δy| = "
                          f"{err:.3g} × max |y| (tolerance 1e-5), output "
                          f"{y.shape} vs {y2.shape}", path=path,
                          hint="this is a netdsl import bug; please report it (--no-verify "
                               "writes the spec anyway)")
    return err


def import_model(target: str, verify: bool = True, input_shape: tuple[int, ...] | None = None
                 ) -> ImportResult:
    """An ONNX file, or ``pkg.module:factory`` (a PyTorch module built by that function)."""
    if ":" in target and not Path(target).exists() and not target.endswith(".onnx"):
        from .torch import from_factory

        return from_factory(target, input_shape or (3, 224, 224), verify)
    return from_onnx(target, verify=verify)


def from_torch(module: Any, example_input: Any, verify: bool = True,
               name: str = "model") -> ImportResult:
    """Import a PyTorch module through PyTorch's ONNX exporter (see ``importer.torch``)."""
    from .torch import export

    return from_onnx(export(module, example_input), path=f"{name}.onnx", verify=verify)
