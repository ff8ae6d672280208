"""onnxruntime CPU latency: netdsl's ONNX of a zoo spec vs the torch-exported torchvision model.

    python benchmarks/children/zoo_latency.py --model convnext_tiny --workdir DIR \
        [--batches 1 8] [--rounds 12]

torchvision's model (default init) is exported with ``torch.onnx.export`` (legacy exporter,
opset 17, dynamic batch) and its state_dict loaded by order into netdsl's spec
``specs/<model>.net``, so both graphs compute the same function on the same weights; the
outputs are compared before anything is timed. Each model gets two sessions
(latency.twin_sessions), all timed interleaved round by round in a rotating order; the
torch-exported model's two sessions against each other are the A/A control. Prints one JSON
line: node counts (as written and after onnxruntime's optimizations), medians, the paired ratios
netdsl / torch-exported and the control's ratio.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from latency import _paired, joined, op_counts, session, timed_rounds, twin_sessions  # noqa: E402,E501

import netdsl  # noqa: E402
from netdsl.codegen.onnx import compile_onnx  # noqa: E402
from netdsl.codegen.weights import match_weights  # noqa: E402
from tests.torchvision_oracle import import_torchvision  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=12, help="at least this many rounds")
    p.add_argument("--seconds", type=float, default=3.0,
                   help="and enough rounds for about this long per session and batch")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tv = import_torchvision()
    ref = getattr(tv.models, args.model)(weights=None).eval()
    net = netdsl.load(Path(__file__).resolve().parents[2] / "specs" / f"{args.model}.net")
    shape = tuple(int(d) for d in net.input_shape[1:])
    files = {"netdsl": work / "netdsl.onnx", "torch-legacy": work / "torch.onnx"}
    w = match_weights(net, {k: v.numpy() for k, v in ref.state_dict().items()}, by_order=True)
    compile_onnx(net, files["netdsl"], weights=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ref, (torch.randn(1, *shape),), str(files["torch-legacy"]),
                          dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    nodes, ort_nodes = {}, {}
    for name, f in files.items():
        opt = work / f"{name}.ort-optimized.onnx"
        session(f, opt)
        nodes[name] = op_counts(onnx.load(str(f), load_external_data=False))
        ort_nodes[name] = op_counts(onnx.load(str(opt), load_external_data=False))
    sessions = {}
    for name, pair in twin_sessions(files).items():
        sessions[name], sessions[name + "#2"] = pair
    result: dict = {"model": args.model, "nodes": nodes, "ort_nodes": ort_nodes, "batches": {}}
    for batch in args.batches:
        x = torch.randn(batch, *shape)
        with torch.no_grad():
            y = ref(x).numpy()
        feeds = {n: {s.get_inputs()[0].name: x.numpy()} for n, s in sessions.items()}
        diffs = {n: float(np.abs(sessions[n].run(None, feeds[n])[0] - y).max() / np.abs(y).max())
                 for n in files}
        calls = {n: functools.partial(s.run, None, feeds[n]) for n, s in sessions.items()}
        for f in calls.values():  # warm-up
            f()
            f()
        t0 = time.perf_counter()
        calls["torch-legacy"]()
        rounds = max(args.rounds, math.ceil(args.seconds / (time.perf_counter() - t0)))
        wall, cpu = timed_rounds(calls, rounds)
        # A/A control: the torch-exported model's two sessions against each other, so the
        # report shows how far two identical graphs drift apart on this machine
        control = statistics.median(a / b for a, b in zip(wall["torch-legacy#2"],
                                                          wall["torch-legacy"], strict=True))
        wall, cpu = joined(wall), joined(cpu)
        result["batches"][str(batch)] = {
            "rel_diff_vs_eager": diffs,
            "rounds": rounds,
            "median_ms": {n: 1e3 * statistics.median(v) for n, v in wall.items()},
            "paired_ratio": _paired(wall)["torch-legacy"],
            "paired_cpu_ratio": _paired(cpu)["torch-legacy"],
            "control_ratio": control,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
