"""Reduced precision of netdsl's ONNX on onnxruntime CPU: int8 (static QDQ) and fp16.

    python benchmarks/children/precision.py --onnx resnet50.onnx --workdir DIR \
        [--batches 1 8] [--rounds 4] [--iters 2] [--calibration 8] [--eval 16]

int8: ``quant_pre_process`` (folds BN into the convs), then
``onnxruntime.quantization.quantize_static`` (QDQ, per-channel int8 weights, uint8
activations) calibrated on random inputs, the only inputs this suite has; the drift against
fp32 is therefore measured on other random inputs (max and mean |Δ logit|, top-1 agreement).
fp16: every float tensor of the fp32 model cast to fp16 (what a GPU runs); onnxruntime's CPU
provider may lack fp16 kernels, which is then reported, not hidden. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from gpu import cast_fp16


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--onnx", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--calibration", type=int, default=8, help="random calibration images")
    p.add_argument("--eval", type=int, default=16, help="random images for the drift")
    args = p.parse_args()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    fp32 = session(Path(args.onnx))
    inp = fp32.get_inputs()[0]
    shape = [int(d) for d in inp.shape[1:]]
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = args.calibration

        def get_next(self) -> dict | None:
            if self.left == 0:
                return None
            self.left -= 1
            return {inp.name: rng.standard_normal((1, *shape), dtype=np.float32)}

    result: dict = {"variants": {}}
    t = time.perf_counter()
    int8_path = work / "int8.onnx"
    pre_path = work / "fp32-preprocessed.onnx"  # BN folded into the convs, shapes inferred
    quant_pre_process(str(args.onnx), str(pre_path), skip_symbolic_shape=True)
    quantize_static(str(pre_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8)
    result["int8_quantize_s"] = time.perf_counter() - t
    fp16_path = work / "fp16.onnx"
    cast_fp16(Path(args.onnx), fp16_path)

    sessions = {"fp32": fp32}
    dtypes = {"fp32": np.float32, "int8": np.float32, "fp16": np.float16}
    for name, path in (("int8", int8_path), ("fp16", fp16_path)):
        try:
            sessions[name] = session(path)
        except Exception as e:  # noqa: BLE001  (reported in RESULTS.md, not hidden)
            result["variants"][name] = {"error": str(e).splitlines()[0][:300]}
    for name in sessions:
        result["variants"].setdefault(name, {})["file_bytes"] = \
            (Path(args.onnx) if name == "fp32" else work / f"{name}.onnx").stat().st_size

    x = rng.standard_normal((args.eval, *shape), dtype=np.float32)
    ref = fp32.run(None, {inp.name: x})[0]
    for name, s in list(sessions.items())[1:]:
        try:
            out = s.run(None, {inp.name: x.astype(dtypes[name])})[0].astype(np.float32)
        except Exception as e:  # noqa: BLE001
            result["variants"][name]["error"] = str(e).splitlines()[0][:300]
            del sessions[name]
            continue
        d = np.abs(out - ref)
        result["variants"][name].update(
            max_abs_diff=float(d.max()), mean_abs_diff=float(d.mean()),
            ref_mean_abs=float(np.abs(ref).mean()),
            top1_agreement=float(np.mean(out.argmax(1) == ref.argmax(1))))

    result["batches"] = {}
    for batch in args.batches:
        xb = {k: {inp.name: x[:1].repeat(batch, 0).astype(dtypes[k])} for k in sessions}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for k, s in sessions.items():
            s.run(None, xb[k])
        for _ in range(args.rounds):
            for k, s in sessions.items():
                for _ in range(args.iters):
                    t = time.perf_counter()
                    s.run(None, xb[k])
                    times[k].append(time.perf_counter() - t)
        result["batches"][str(batch)] = {k: sorted(1e3 * v for v in ts)
                                         for k, ts in times.items()}
        result["batches"][str(batch)]["median_ms"] = {k: 1e3 * statistics.median(ts)
                                                      for k, ts in times.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
