"""onnxruntime CUDA latency and throughput of netdsl's ONNX vs PyTorch eager CUDA.

    python benchmarks/children/gpu.py --spec specs/resnet50.net --onnx resnet50.onnx \
        --workdir DIR [--onnx-fp16 resnet50-fp16.onnx] [--batches 1 64] [--iters 20]

Inputs and outputs stay on the GPU (onnxruntime I/O binding; torch tensors created on the
device), so host-device copies are not what is timed. fp16: the ``--onnx-fp16`` model when
given (``netdsl compile --precision fp16``), else netdsl's fp32 ONNX with its float tensors cast
to fp16 here; eager fp16 is ``module.half()``. Where CUDA is unavailable it prints
``{"skipped": reason}`` and exits 0, so the suite reports the row as not run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def unavailable() -> str | None:
    try:
        import onnxruntime as ort
    except ImportError as e:
        return f"onnxruntime not importable ({e})"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return ("no GPU in this environment: onnxruntime has no CUDAExecutionProvider "
                f"(providers: {', '.join(ort.get_available_providers())})")
    import torch

    if not torch.cuda.is_available():
        return "no GPU in this environment: torch.cuda.is_available() is False"
    return None


def cast_fp16(src: Path, dst: Path) -> None:
    """netdsl's fp32 ONNX with every float tensor, input and output made fp16."""
    import onnx
    from onnx import TensorProto, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    for i, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT:
            a = numpy_helper.to_array(t).astype(np.float16)
            g.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
    for v in [*g.input, *g.output, *g.value_info]:
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                arr = numpy_helper.to_array(a.t).astype(np.float16)
                a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
            if n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    onnx.save(m, str(dst))


def time_calls(f, sync, iters: int) -> list[float]:
    for _ in range(5):  # warm-up: cuDNN algorithm search, allocator growth
        f()
    sync()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        f()
        sync()
        out.append(time.perf_counter() - t)
    return out


def _to_torch(net):  # -> torch.nn.Module
    import netdsl

    to_torch = getattr(netdsl, "to_torch", None)
    if to_torch is None:  # before the public API re-exports it
        from netdsl.codegen.torch import to_torch
    return to_torch(net)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--onnx-fp16")
    p.add_argument("--workdir", required=True)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--iters", type=int, default=20)
    args = p.parse_args()
    reason = unavailable()
    if reason:
        print(json.dumps({"skipped": reason}))
        return

    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    import netdsl

    torch.backends.cudnn.benchmark = True
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    fp16_path = Path(args.onnx_fp16) if args.onnx_fp16 else work / "netdsl-fp16.onnx"
    fp16_note = "netdsl compile --precision fp16" if args.onnx_fp16 else "fp32 ONNX cast to fp16"
    if not args.onnx_fp16:
        cast_fp16(Path(args.onnx), fp16_path)

    net = netdsl.load(args.spec)
    module = _to_torch(net).eval()
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(args.onnx).graph.initializer}
    module.load_state_dict({k: torch.from_numpy(inits[k].copy()) for k in module.state_dict()
                            if k in inits}, strict=False)
    module = module.cuda()
    shape = tuple(int(d) for d in net.input_shape[1:])
    result: dict = {"device": torch.cuda.get_device_name(0), "fp16_model": fp16_note,
                    "rows": []}
    for prec, path, dtype in (("fp32", Path(args.onnx), np.float32),
                              ("fp16", fp16_path, np.float16)):
        sess = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider"])
        assert sess.get_providers()[0] == "CUDAExecutionProvider", sess.get_providers()
        m = module.half() if prec == "fp16" else module.float()
        for batch in args.batches:
            x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(dtype)
            io = sess.io_binding()
            xo = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
            io.bind_ortvalue_input(sess.get_inputs()[0].name, xo)
            io.bind_output(sess.get_outputs()[0].name, "cuda", 0)
            ort_t = time_calls(lambda io=io, sess=sess: sess.run_with_iobinding(io),
                               io.synchronize_outputs, args.iters)
            xt = torch.from_numpy(x).cuda()
            with torch.inference_mode():
                eager_t = time_calls(lambda m=m, xt=xt: m(xt), torch.cuda.synchronize,
                                     args.iters)
                ref = m(xt).float().cpu().numpy()
            got = io.copy_outputs_to_cpu()[0].astype(np.float32)
            for name, ts in (("onnxruntime CUDA", ort_t), ("PyTorch eager CUDA", eager_t)):
                med = statistics.median(ts)
                result["rows"].append({"precision": prec, "batch": batch, "runtime": name,
                                       "median_ms": 1e3 * med, "min_ms": 1e3 * min(ts),
                                       "max_ms": 1e3 * max(ts), "images_per_s": batch / med,
                                       "max_abs_diff": float(np.max(np.abs(got - ref)))})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
