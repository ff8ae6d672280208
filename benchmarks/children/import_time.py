"""Time ``netdsl.importer.from_onnx(MODEL, verify=False)`` inside one process, after the
imports it needs: the importer's own wall and CPU time, without Python's start-up."""

from __future__ import annotations

import json
import sys
import time

import onnx  # noqa: F401  (imported before timing: its import alone takes seconds)

from netdsl.importer import from_onnx

t0, c0 = time.perf_counter(), time.process_time()
r = from_onnx(sys.argv[1], verify=False)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "nodes": r.onnx_nodes, "lines": len(r.text.splitlines())}))
