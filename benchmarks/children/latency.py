"""onnxruntime CPU latency: netdsl's ONNX vs the torch-exported ONNX of the same weights vs eager.

    python benchmarks/children/latency.py --spec specs/resnet50.net --onnx resnet50.onnx \
        --workdir DIR [--batches 1 8] [--rounds 5] [--iters 4]

The PyTorch module is ``netdsl.to_torch`` of the spec with its state_dict loaded from netdsl's
ONNX initializers (same names), so all variants compute the same function on the same weights;
the outputs are compared before anything is timed. The torch ONNX files come from
``torch.onnx.export`` (legacy and dynamo; dynamo is skipped, saying why, without onnxscript) of
that module. onnxruntime runs on as many intra-op threads as eager PyTorch (its default).
Variants are timed interleaved, round by round, so a slow phase of the machine hits them all
alike. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

import netdsl


def load_weights(module: torch.nn.Module, model: onnx.ModelProto) -> dict:
    """Copy netdsl's initializers into the module; report names that did not pair up."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    state = module.state_dict()
    new, missing = {}, []
    for key, value in state.items():
        if key in inits and tuple(inits[key].shape) == tuple(value.shape):
            new[key] = torch.from_numpy(inits[key].copy()).to(value.dtype)
        elif key.endswith("num_batches_tracked"):
            continue
        else:
            missing.append(key)
    module.load_state_dict(new, strict=False)
    return {"loaded": len(new), "missing_in_onnx": missing[:10], "n_missing": len(missing)}


def export(module: torch.nn.Module, x: torch.Tensor, path: Path, dynamo: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), str(path), dynamo=True, input_names=["input"],
                              output_names=["output"],
                              dynamic_shapes=({0: torch.export.Dim("N")},), verbose=False)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, input_names=["input"],
                              output_names=["output"],
                              dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def session(path: Path, optimized: Path | None = None, threads: int = 0
            ) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads  # the same count as eager PyTorch
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads would otherwise spin after each call and steal the cores from the
    # variant timed next (eager above all); the same setting for every ONNX variant.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)  # the graph ORT actually runs
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def twin_sessions(files: dict[str, Path], threads: int = 0
                  ) -> dict[str, tuple[ort.InferenceSession, ort.InferenceSession]]:
    """Two sessions per model, the second set created in reverse order. A session's speed
    depends a little on when it was created (two sessions of one file differ by ~1% here), so
    each variant is timed on both of its sessions and none owes its result to going first."""
    first = {n: session(f, threads=threads) for n, f in files.items()}
    second = {n: session(files[n], threads=threads) for n in reversed(list(files))}
    return {n: (first[n], second[n]) for n in files}


def timed_rounds(calls: dict[str, Callable[[], object]], rounds: int, iters: int = 1,
                 before: Callable[[str], None] | None = None
                 ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Median wall and CPU seconds of ``iters`` calls, per variant per round. The order
    rotates each round: in a fixed order each variant would always follow the same one."""
    wall: dict[str, list[float]] = {n: [] for n in calls}
    cpu: dict[str, list[float]] = {n: [] for n in calls}
    order = list(calls)
    for r in range(rounds):
        k = r % len(order)
        for n in order[k:] + order[:k]:
            if before is not None:
                before(n)
            ts, cs = [], []
            for _ in range(iters):
                c, t = time.process_time(), time.perf_counter()  # CPU: all threads
                calls[n]()
                ts.append(time.perf_counter() - t)
                cs.append(time.process_time() - c)
            wall[n].append(statistics.median(ts))
            cpu[n].append(statistics.median(cs))
    return wall, cpu


def joined(rounds: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per round, the mean over a variant's twin sessions (keys ``name`` and ``name#2``)."""
    return {n: [(a + b) / 2 for a, b in zip(v, rounds[n + "#2"], strict=True)]
            for n, v in rounds.items() if not n.endswith("#2")}


def _paired(rounds: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(a / b for a, b in zip(rounds["netdsl"], v, strict=True))
            for k, v in rounds.items()}


def _to_torch(net):  # -> torch.nn.Module
    to_torch = getattr(netdsl, "to_torch", None)
    if to_torch is None:  # before the public API re-exports it
        from netdsl.codegen.torch import to_torch
    return to_torch(net, aux=False)  # the inference network, like the ONNX


def _torchvision(name: str) -> torch.nn.Module:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.torchvision_oracle import import_torchvision  # the CPU wheel's import fix

    return getattr(import_torchvision().models, name)()


def kernel_profile(path: Path, x: np.ndarray, runs: int = 10) -> dict[str, float]:
    """onnxruntime's own profile: kernel milliseconds per run, summed by op type."""
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(path.with_suffix(".profile"))
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x}
    s.run(None, feed)
    for _ in range(runs):
        s.run(None, feed)
    events = json.loads(Path(s.end_profiling()).read_text())
    agg: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            agg[e["args"]["op_name"]] += e["dur"] / 1e3 / (runs + 1)
    return dict(agg.most_common())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", required=True)
    p.add_argument("--onnx", required=True, help="netdsl's compiled model")
    p.add_argument("--workdir", required=True)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--iters", type=int, default=1, help="timed calls per variant per round")
    p.add_argument("--profile-batch", type=int, help="batch of the kernel profile (default "
                   "the largest)")
    p.add_argument("--profile-runs", type=int, default=10)
    p.add_argument("--skip", nargs="*", default=[], choices=["eager-1t"],
                   help="variants not to time (a ViT-B at batch 8 takes seconds per call)")
    p.add_argument("--torchvision", metavar="MODEL",
                   help="export and run torchvision's MODEL (netdsl's weights loaded by name) "
                        "instead of netdsl's own PyTorch module")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    net = netdsl.load(args.spec)
    module = (_torchvision(args.torchvision) if args.torchvision else _to_torch(net)).eval()
    nd_model = onnx.load(args.onnx)
    weights = load_weights(module, nd_model)
    shape = tuple(int(d) for d in net.input_shape[1:])
    x1 = torch.randn(1, *shape)
    files = {"netdsl": Path(args.onnx)}
    export_s = {}
    skipped = {v: "not timed (--skip)" for v in args.skip}  # variant -> why it has no row
    for name, dynamo in (("torch-legacy", False), ("torch-dynamo", True)):
        if dynamo and importlib.util.find_spec("onnxscript") is None:
            skipped[name] = ("the dynamo exporter needs onnxscript (pip install "
                             "'netdsl[bench]')")
            continue
        files[name] = work / f"{name}.onnx"
        t = time.perf_counter()
        # dynamo specializes a batch of 1 to a constant when the model reads it (ViT's
        # class token expand): torchvision's models are exported from a batch of 2
        export(module, torch.randn(2, *shape) if args.torchvision else x1, files[name], dynamo)
        export_s[name] = time.perf_counter() - t

    # onnxruntime and eager PyTorch on the same number of intra-op threads: PyTorch's default
    threads = torch.get_num_threads()
    sessions, graphs, optimized = {}, {}, {}
    for name, f in files.items():
        opt_path = work / f"{name}.ort-optimized.onnx"
        sessions[name] = session(f, opt_path, threads)
        graphs[name] = op_counts(onnx.load(str(f), load_external_data=False))
        optimized[name] = op_counts(onnx.load(str(opt_path), load_external_data=False))

    # fresh sessions without the dump, to time: two per model (see twin_sessions)
    for name, pair in twin_sessions(files, threads).items():
        sessions[name], sessions[name + "#2"] = pair
    result: dict = {"weights": weights, "export_s": export_s, "nodes": graphs,
                    "ort_nodes": optimized, "batches": {},
                    "kernel_batch": args.profile_batch or max(args.batches),
                    "threads": threads, "skipped": skipped}
    xk = torch.randn(result["kernel_batch"], *shape).numpy()
    result["kernel_ms"] = {k: kernel_profile(f, xk, args.profile_runs) for k, f in files.items()}
    with torch.inference_mode():
        for batch in args.batches:
            x = torch.randn(batch, *shape)
            xn = x.numpy()
            ref = module(x).numpy()
            diffs = {}
            for name, s in sessions.items():
                if name.endswith("#2"):
                    continue
                out = s.run(None, {s.get_inputs()[0].name: xn})[0]
                diffs[name] = float(np.max(np.abs(out - ref)))
            feeds = {name: {s.get_inputs()[0].name: xn} for name, s in sessions.items()}
            calls = {name: functools.partial(s.run, None, feeds[name])
                     for name, s in sessions.items()}
            calls["eager"] = lambda x=x: module(x)
            # PyTorch's OpenMP threads wait for each other after every op: on cores shared
            # with other processes that stalls badly, so eager is also timed on one thread
            if "eager-1t" not in args.skip:
                calls["eager-1t"] = calls["eager"]
            for name in [n for n in calls if n.startswith("eager")]:
                calls[name + "#2"] = calls[name]  # one module: timed twice like the twins
            for f in calls.values():  # warm-up: first-run allocations, thread pools
                f()
                f()

            def threads_for(name: str) -> None:
                torch.set_num_threads(1 if name.startswith("eager-1t") else threads)

            per_round, cpu_round = timed_rounds(calls, args.rounds, args.iters, threads_for)
            per_round, cpu_round = joined(per_round), joined(cpu_round)
            torch.set_num_threads(threads)
            result["batches"][str(batch)] = {
                "max_abs_diff_vs_eager": diffs,
                "ms": {k: sorted(1e3 * t for t in v) for k, v in per_round.items()},
                "median_ms": {k: 1e3 * statistics.median(v) for k, v in per_round.items()},
                "cpu_median_ms": {k: 1e3 * statistics.median(v) for k, v in cpu_round.items()},
                # netdsl / variant per round, then the median: load drifting between rounds
                # cancels out of these, so they are steadier than a ratio of medians
                "paired_ratio": _paired(per_round),
                "paired_cpu_ratio": _paired(cpu_round),
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
