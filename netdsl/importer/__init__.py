"""ONNX models (and PyTorch modules, through the ONNX exporter) back to specs.

read (load and check the file) → recognize (ONNX nodes → netdsl layers) → structure (the
layer DAG → nested residual/concat/scale/dense statements) → fold (scopes → block calls,
repeats → ×n) → verify (rebuild and compare under onnxruntime). Each stage is one module.
"""

from __future__ import annotations

from .api import ImportResult, from_onnx, from_torch, import_model

__all__ = ["ImportResult", "from_onnx", "from_torch", "import_model"]
