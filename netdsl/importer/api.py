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
from .verify import compare
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
    layers: list[Lyr] = field(default_factory=list)  # recognized layers, in the spec's order

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
        items, flat = structure(net)
        warnings += flat
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
    result = ImportResult(text, network, weights, warnings, len(g.nodes), batch=g.batch,
                          layers=order)
    if verify:
        result.max_error = compare(source, network, weights, order, g.batch, g.path)
    result.seconds = time.perf_counter() - t0
    return result


def _weights(network: Network, order: list[Lyr], path: str) -> dict[str, np.ndarray]:
    """The recognized tensors under the rebuilt network's names (each layer's, in its op's
    order), checked against the network's own list (names and shapes)."""
    from .. import ops
    from ..codegen.weights import match_weights
    from .verify import pairs

    ours: dict[str, np.ndarray] = {}
    matched = pairs(network, order)
    for lyr, name in matched:
        lay = network.graph[name]
        specs = ops.OPS[lay.op].tensors(lay.attrs, network.in_shapes(lay))
        for spec, t in zip(specs, lyr.tensors, strict=False):
            ours[spec.key(name)] = np.asarray(t, dtype=np.float32)
    try:
        if len(matched) != len(order) or sum(len(lyr.tensors) for lyr in order) != len(ours):
            raise NetdslError("the spec's layers do not follow the recognized ones", path=path)
        return match_weights(network, ours, path=path)
    except NetdslError as e:
        raise NetdslError(f"the imported spec's weights do not line up: {e.message}", path=path,
                          hint="this is a netdsl import bug; please report it") from None


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
