"""PyTorch modules → ONNX bytes, through PyTorch's TorchScript-based ("legacy") ONNX exporter.

The legacy exporter is used because it keeps the module names in the node names
(``/layer1/layer1.0/conv1/Conv``), from which the spec's blocks are recovered, and exports in
seconds. ``TrainingMode.PRESERVE`` keeps BatchNorm as its own node (the default eval export
folds it into the preceding convolution's weights), so the spec says ``conv3-64 +bn``.
"""

from __future__ import annotations

import importlib
import io
import warnings
from typing import Any

from ..errors import NetdslError


def export(module: Any, example_input: Any) -> bytes:
    import torch

    was_training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        # with gradients on: nn.MultiheadAttention's inference fast path (a fused op no
        # exporter knows) is taken only without them
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example_input,), buf, dynamo=False, opset_version=17,
                              training=torch.onnx.TrainingMode.PRESERVE,
                              input_names=["input"], output_names=["output"])
    except Exception as e:  # the exporter's own message says what it could not trace
        raise NetdslError(f"PyTorch's ONNX exporter failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}", path="<module>",
                          hint="the module must be traceable with one tensor input") from None
    finally:
        module.train(was_training)
    return buf.getvalue()


def from_factory(target: str, input_shape: tuple[int, ...], verify: bool) -> Any:
    """``pkg.module:factory``: import that module (running its code: the user's explicit
    choice on the command line), call ``factory()`` and import the module it returns."""
    from .api import from_onnx

    mod_name, _, attr = target.partition(":")
    try:
        import torch
    except ImportError:
        raise NetdslError("importing a PyTorch module needs PyTorch", path=target,
                          hint="pip install torch") from None
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:
        raise NetdslError(f"cannot import Python module '{mod_name}': {type(e).__name__}: {e}",
                          path=target, hint="give pkg.module:factory, importable from here"
                          ) from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise NetdslError(f"'{mod_name}' has no function '{attr}'", path=target,
                          hint="give pkg.module:factory, a function returning an nn.Module")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise NetdslError(f"{target}() returned a {type(model).__name__}, not an nn.Module",
                          path=target)
    x = torch.randn(1, *input_shape)
    name = attr if attr.isidentifier() else "model"
    return from_onnx(export(model, x), path=f"{name}.onnx", verify=verify)
