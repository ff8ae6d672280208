"""The usual path to ONNX, in a fresh process: import torch, build the model, torch.onnx.export.

    python benchmarks/children/torch_export.py --spec specs/resnet152.net -o out.onnx \
        --exporter legacy|dynamo [--source model.py | --torchvision resnet152]

The model is the PyTorch module netdsl generates for the spec: by default the file written by
``netdsl emit`` (``--source``, plain torch code: nothing of netdsl is imported in the timed
process), else ``netdsl.to_torch``; or a torchvision model of the same architecture. The batch
axis is dynamic, as in netdsl's ONNX. Prints the phases' times as one JSON line.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402


def build(args: argparse.Namespace):  # -> torch.nn.Module
    if args.torchvision:
        import torchvision

        return getattr(torchvision.models, args.torchvision)(weights=None)
    if args.source:
        spec = importlib.util.spec_from_file_location("netdsl_emitted", args.source)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        import torch

        # the one nn.Module class the file defines, built with PyTorch's default init
        classes = [c for c in vars(mod).values() if isinstance(c, type)
                   and issubclass(c, torch.nn.Module) and c.__module__ == mod.__name__]
        assert len(classes) == 1, classes
        return classes[0]()
    import netdsl

    return netdsl.to_torch(netdsl.load(args.spec))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spec", required=True, help="the .net spec (input shape, to_torch)")
    p.add_argument("--source", help="a model.py written by `netdsl emit`")
    p.add_argument("--torchvision", help="a torchvision.models constructor name")
    p.add_argument("--exporter", choices=("legacy", "dynamo"), required=True)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()

    import torch

    t_import = time.perf_counter()
    model = build(args).eval()
    t_build = time.perf_counter()
    shape = _input_shape(args.spec)
    x = torch.randn(1, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        if args.exporter == "legacy":
            torch.onnx.export(model, (x,), args.output, dynamo=False, input_names=["input"],
                              output_names=["output"],
                              dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
        else:
            batch = torch.export.Dim("N")
            torch.onnx.export(model, (x,), args.output, dynamo=True, input_names=["input"],
                              output_names=["output"], dynamic_shapes=({0: batch},),
                              verbose=False)
    t_export = time.perf_counter()
    print(json.dumps({"import_s": t_import - T0, "build_s": t_build - t_import,
                      "export_s": t_export - t_build}))


def _input_shape(spec: str) -> tuple[int, ...]:
    """The spec's ``input C×H×W`` line, read without importing netdsl (kept off the clock)."""
    import re

    with open(spec, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*input\s+(\d+)(?:\s*[x×]\s*(\d+)\s*[x×]\s*(\d+))?", line)
            if m:
                return tuple(int(g) for g in m.groups() if g)
    raise SystemExit(f"{spec}: no input line")


if __name__ == "__main__":
    main()
