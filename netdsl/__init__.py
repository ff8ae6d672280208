"""netdsl: network specs in the papers' notation, compiled to checked, runnable models.

>>> import netdsl
>>> net = netdsl.loads("input 1x32x32\\nconv5-6 pad 0 +tanh; avgpool; FC-10")
>>> net.output_shape, net.params
(('N', 10), 11926)
"""

from __future__ import annotations

from typing import Any

from .errors import NetdslError, NetdslWarning, SourceLoc
from .network import LayerInfo, Network, load, loads

__version__ = "0.1.0"

__all__ = ["LayerInfo", "NetdslError", "NetdslWarning", "Network", "SourceLoc", "__version__",
           "config_table", "from_onnx", "from_torch", "load", "loads", "run_onnx", "to_onnx",
           "to_torch", "to_torch_source"]

# Backends load on first use: `import netdsl` (and check/summary) stays free of torch and onnx.
_LAZY = {"to_torch": "codegen.torch", "to_torch_source": "codegen.torch",
         "to_onnx": "codegen.onnx", "run_onnx": "runtime", "config_table": "table",
         "from_onnx": "importer.api", "from_torch": "importer.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'netdsl' has no attribute {name!r}")
