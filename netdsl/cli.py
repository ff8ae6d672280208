"""The ``netdsl`` command: each subcommand is one library call plus printing.

Exit codes: 0 success (warnings allowed), 1 a spec or model error, 2 a usage error,
3 an internal error (a bug: reported in one line, never as a traceback).
Only this module prints and exits; the library raises NetdslError.
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import NetdslError
from .network import Network, load
from .units import macs, plural

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _params(pairs: Sequence[str]) -> dict[str, Any]:
    """--param NAME=VALUE pairs; values are written as in a spec (ASCII digits: ৪ is not 8)."""
    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise _Usage(f"--param expects NAME=VALUE, got {p!r}")
        if _INT.fullmatch(value):
            out[key] = int(value)
        elif _FLOAT.fullmatch(value) and math.isfinite(float(value)):
            out[key] = float(value)
        else:
            raise _Usage(f"--param {key}: {ascii(value)} is not a number (ASCII digits, "
                         "e.g. classes=10)")
    return out


class _Usage(Exception):
    pass


def _seed(text: str) -> int:
    """A --seed: a whole number ≥ 0 in ASCII digits (numpy's generators refuse negatives)."""
    if not re.fullmatch(r"[0-9]{1,30}", text):
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    """A --batch or --repeat: a whole number ≥ 1 in ASCII digits."""
    if not re.fullmatch(r"[0-9]{1,30}", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return int(text)


def _load(args: argparse.Namespace, spec: str) -> Network:
    if spec.lower().endswith(".onnx"):  # an ONNX model goes wherever a spec goes: imported
        if args.param:
            raise _Usage("--param applies to specs, not to ONNX models")
        from .importer import from_onnx

        imported = from_onnx(spec, verify=False)
        for w in imported.warnings:
            print(f"{spec}: warning: {w}", file=sys.stderr)
        return imported.network
    net = load(spec, _params(args.param), args.include_path)
    quiet = getattr(args, "quiet", False) and not args.strict  # --strict: they are errors
    for w in net.warnings if not quiet else ():
        print(w.render(), file=sys.stderr)
    if args.strict and net.warnings:
        raise NetdslError(f"{len(net.warnings)} warning(s) treated as errors (--strict)",
                          path=spec)
    return net


def default_output(spec: str, ext: str) -> str:
    """The output of a spec when no -o is given: a plain file name in the current directory,
    from the spec's file name (never from the spec's text, which could name any path).

    ``specs/cifar.net`` -> ``cifar.onnx``, ``paper.md#2`` -> ``paper-2.onnx``.
    """
    from .embedded import split_ref

    base, n = split_ref(spec)
    stem = Path(base).stem + (f"-{n}" if n is not None else "")
    stem = re.sub(r"[^\w.-]+|\.\.+", "_", stem.lstrip(".-"), flags=re.ASCII)
    return (stem or "model") + ext


def _output(args: argparse.Namespace, net: Network, ext: str, *inputs: str | None) -> str:
    """The file a writing command writes: ``-o`` or the default, checked before any work."""
    from .fsutil import refuse_inputs, resolve_target

    if args.output == "":
        raise _Usage("-o: the file name is empty")
    out = args.output if args.output is not None else default_output(args.spec, ext)
    if ext != ".py" and out == "-":
        raise _Usage(f"-o -: {ext} output is a file, not standard output")
    resolve_target(out)
    refuse_inputs(out, [*net.files, *(i for i in inputs if i)])
    return out


def _expand_documents(specs: Sequence[str]) -> tuple[list[str], int]:
    """Spec paths, with each Markdown/LaTeX document replaced by its embedded specs (doc#N),
    and the number of documents that could not be read (their errors printed here)."""
    from .embedded import is_document, specs_of

    out: list[str] = []
    failed = 0
    for spec in specs:
        if not is_document(spec):
            out.append(spec)
            continue
        try:
            found = specs_of(spec)
        except NetdslError as e:
            print(str(e), file=sys.stderr)
            failed += 1
            continue
        if not found:
            print(f"{spec}: warning: no embedded netdsl specs", file=sys.stderr)
        out += [f.ref for f in found]
    return out, failed


def cmd_check(args: argparse.Namespace) -> int:
    specs, failed = _expand_documents(args.specs)
    for spec in specs:
        try:
            net = _load(args, spec)
        except NetdslError as e:
            print(str(e), file=sys.stderr)
            failed += 1
            continue
        if not args.quiet:
            print(f"{spec}: ok ({plural(len(net.layers()), 'layer')}, {net.params:,} params, "
                  f"{macs(net.macs)}, output {net.output})")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import FORMATS

    net = _load(args, args.spec)
    if args.depth is not None and args.depth < 1:
        raise _Usage(f"--depth must be at least 1, got {args.depth}")
    sys.stdout.write(FORMATS[args.format](net, args.training, args.depth))
    if args.format == "json":
        sys.stdout.write("\n")
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from .codegen.onnx import compile_onnx
    from .codegen.weights import match_weights, read_checkpoint

    t0 = time.perf_counter()
    net = _load(args, args.spec)
    weights = None
    source = args.weights or args.weights_by_order
    out = _output(args, net, ".onnx", source)
    if source:
        weights = match_weights(net, read_checkpoint(source), by_order=bool(args.weights_by_order),
                                path=source)
    data = compile_onnx(net, out, weights, seed=args.seed)
    if data:
        print(f"netdsl: the weights exceed protobuf's 2 GB limit: stored as external data in "
              f"{data} (keep it next to {out})", file=sys.stderr)
    what = f"weights from {source}" if source else f"{net.header.init[0]} {net.header.init[1]} " \
        f"init, seed {args.seed}"
    print(f"wrote {out}: {net.params:,} params ({what}), opset 17, "
          f"{time.perf_counter() - t0:.2f} s")
    return EXIT_OK


def cmd_emit(args: argparse.Namespace) -> int:
    from .codegen.torch import to_torch_source
    from .fsutil import atomic_write_text

    net = _load(args, args.spec)
    out = None if args.output in (None, "-") else _output(args, net, ".py")
    src = to_torch_source(net, aux=not args.no_aux)
    if out is None:
        sys.stdout.write(src)
    else:
        atomic_write_text(out, src)
        print(f"wrote {out}: PyTorch source, {src.count(chr(10)):,} lines")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from .runtime import check_input, open_session, random_input, read_input, time_runs

    if args.batch < 1 or args.repeat < 1:
        raise _Usage("--batch and --repeat must be at least 1")
    status = _Status() if sys.stderr.isatty() else None
    model: Any = args.model
    if _is_spec(args.model):
        from .codegen.onnx import lower, serialize

        if status:
            status(f"compiling {args.model}…")
        from .codegen.memory import check_fits

        net = _load(args, args.model)
        check_fits(net, "run it", copies=3, batch=args.batch)  # ours, serialized, onnxruntime's
        model = serialize(*lower(net, seed=args.seed))
    else:
        given = [opt for opt, v in (("--param", args.param), ("--strict", args.strict)) if v]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise _Usage(f"{' and '.join(given)} {verb} to specs, and {args.model} is an ONNX "
                         "model: compile it again with them, or run the spec")
    if status:
        status("loading the model into onnxruntime…")
    s = open_session(model, args.device)
    x = read_input(args.input, s) if args.input else random_input(s, args.batch, args.seed)
    x = check_input(s, x)
    y, times = time_runs(s, x, args.repeat, status.runs if status else None)
    if status:
        status.clear()
    ms = np.asarray(times) * 1e3
    print(f"provider: {s.provider} ({s.note})")
    if s.weights and s.weights != "given":  # a newcomer reads top-5 logits of 1e10 as broken
        print(f"weights:  {s.weights}: untrained, so the outputs mean nothing yet")
    print(f"input:    {'×'.join(map(str, x.shape))}")
    print(f"output:   {'×'.join(map(str, y.shape))}")
    scores = y.reshape(len(y), -1)[0]
    top = np.argsort(-scores, kind="stable")[:5]
    print("top-5:    " + ", ".join(f"{i} ({scores[i]:.4g})" for i in top) + "  (first example)")
    print(f"latency:  median {np.median(ms):.2f} ms, min {ms.min():.2f}, max {ms.max():.2f}, "
          f"p10-p90 {np.percentile(ms, 10):.2f}-{np.percentile(ms, 90):.2f} "
          f"({args.repeat} runs, batch {len(x)})")
    return EXIT_OK


def _is_spec(model: str) -> bool:
    """Whether ``run``'s argument names a spec (file, document's spec, shipped name)."""
    from .embedded import is_document_ref
    from .shipped import find_spec

    if model.endswith(".net") or is_document_ref(model):
        return True
    if model.endswith(".onnx") or Path(model).exists():
        return False
    return find_spec(model) is not None


class _Status:
    """One self-overwriting line on a terminal's stderr: what ``run`` is doing right now."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, text: str) -> None:
        sys.stderr.write(f"\r\033[Knetdsl run: {text}")
        sys.stderr.flush()
        self.last = time.monotonic()

    def runs(self, done: int, total: int, times: list[float]) -> None:
        if done < 0:
            self("warm-up run…")
        elif done == 0 or time.monotonic() - self.last >= 0.2 or done == total - 1:
            so_far = f", median so far {statistics.median(times) * 1e3:.1f} ms" if times else ""
            self(f"timed run {done + 1}/{total}{so_far}")

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def cmd_draw(args: argparse.Namespace) -> int:
    from .draw import draw

    net = _load(args, args.spec)
    # TikZ is TeX source: `name.tex`, which pdflatex (standalone) or \input (--fragment) takes
    suffix = {None: "svg", "tikz": "tex"}.get(args.format, args.format)
    out = _output(args, net, "." + suffix)
    options: dict[str, Any] = {"aux": not args.no_aux}
    fmt = args.format or out.rpartition(".")[2].lower()
    if fmt in ("tex", "tikz"):
        options.update(style=args.style, standalone=not args.fragment)
    else:
        options.update(title=not args.no_title, dpi=args.dpi)
    draw(net, out, args.depth, args.rankdir, args.format, **options)
    print(f"wrote {out}: {len(net.layers())} layers"
          + (f", scopes {args.depth} deep as single nodes" if args.depth is not None else ""))
    return EXIT_OK


def cmd_table(args: argparse.Namespace) -> int:
    from .table import config_table

    nets = [_load(args, spec) for spec in args.specs]
    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != len(nets):
        raise _Usage(f"--labels has {len(labels)} labels for {len(nets)} specs")
    sys.stdout.write(config_table(nets, args.format, labels, args.title, args.layout))
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from .charset import trojan_warnings
    from .errors import SourceFile
    from .fmt import format_source
    from .fsutil import atomic_write_text
    from .network import read_spec

    status = EXIT_OK
    for spec in args.specs:
        text = read_spec(spec)
        pretty = format_source(text, spec)
        for w in trojan_warnings(SourceFile(spec, text)):  # fmt --check must not pass them
            print(w.render(), file=sys.stderr)
        if args.check:
            if pretty != text:
                print(f"{spec}: not formatted (netdsl fmt -w {spec})", file=sys.stderr)
                status = EXIT_ERROR
        elif args.write:
            if pretty != text:
                atomic_write_text(spec, pretty)
                print(f"wrote {spec}")
        else:
            sys.stdout.write(pretty)
    return status


def cmd_import(args: argparse.Namespace) -> int:
    from .fsutil import atomic_path, atomic_write_text, write_durably
    from .importer import import_model

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(d) for d in args.input_shape.lower().replace("×", "x").split("x"))
        except ValueError:
            raise _Usage(f"--input-shape expects C×H×W, e.g. 3x224x224, got "
                         f"{args.input_shape!r}") from None
    r = import_model(args.model, verify=not args.no_verify, input_shape=shape)
    for w in r.warnings:
        print(f"{args.model}: warning: {w}", file=sys.stderr)
    if args.output in (None, "-"):
        sys.stdout.write(r.text)
    else:
        atomic_write_text(args.output, r.text)
    if args.weights_out:
        from safetensors.numpy import save

        data = save(r.weights)
        with atomic_path(args.weights_out) as tmp:
            write_durably(tmp, lambda f: f.write(data), args.weights_out)
    net = r.network
    checked = "not verified (--no-verify)" if r.max_error is None else \
        f"verified: max |Δy| = {r.max_error:.2g} × max |y| under onnxruntime"
    where = f" to {args.output}" if args.output not in (None, "-") else ""
    print(f"imported {args.model}{where}: {r.onnx_nodes} ONNX nodes → {len(net.layers())} "
          f"layers in {len(r.text.splitlines())} lines, {net.params:,} params; {checked} "
          f"({r.seconds:.2f} s)", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netdsl", description="Compile network specs written in "
                                "the papers' notation into checked, runnable models.")
    p.add_argument("--version", action="version", version=f"netdsl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def include_path(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="a directory 'include' may read besides the spec's own directory "
                             "tree and netdsl's block libraries (repeatable)")

    def spec_cmd(name: str, func: Callable[[argparse.Namespace], int], help: str,
                 many: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        if many:
            sp.add_argument("specs", nargs="+", metavar="SPEC",
                            help=".net spec files, or Markdown/LaTeX documents embedding specs")
        else:
            sp.add_argument("spec", metavar="SPEC",
                            help="a .net spec file, or paper.md#N: a document's Nth spec")
        sp.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a 'param' of the spec, e.g. classes=10")
        sp.add_argument("--strict", action="store_true", help="treat warnings as errors")
        include_path(sp)
        sp.set_defaults(func=func)
        return sp

    sp = spec_cmd("check", cmd_check, "check specs for syntax and shape errors", many=True)
    sp.add_argument("-q", "--quiet", action="store_true",
                    help="print errors only (warnings too with --strict, as they are errors)")
    sp = spec_cmd("summary", cmd_summary, "per-layer shapes, parameters, multiply-adds")
    sp.add_argument("--format", choices=("table", "json", "markdown", "latex", "html"),
                    default="table")
    sp.add_argument("--training", action="store_true",
                    help="include auxiliary heads (training form)")
    sp.add_argument("--depth", type=int, default=None, metavar="N",
                    help="fold the layers of each scope N levels deep into one row with its "
                    "totals (layer1 is depth 1, layer1.0 depth 2)")
    sp = spec_cmd("compile", cmd_compile, "lower a spec to an ONNX model (inference form)")
    sp.add_argument("-o", "--output", metavar="MODEL.onnx",
                    help="default: the spec's file name with .onnx, in the current directory")
    w = sp.add_mutually_exclusive_group()
    w.add_argument("--weights", metavar="FILE",
                   help="a .pt state_dict or .safetensors file with netdsl's tensor names")
    w.add_argument("--weights-by-order", metavar="FILE",
                   help="a checkpoint of the same architecture with other names (another "
                        "library's), matched by order and refused when a shape differs")
    sp.add_argument("--seed", type=_seed, default=0,
                    help="seed of the initialization (default 0)")
    sp = spec_cmd("emit", cmd_emit, "write standalone PyTorch source for a spec")
    sp.add_argument("-o", "--output", metavar="MODEL.py", help="default: standard output")
    sp.add_argument("--no-aux", action="store_true", help="leave out auxiliary heads")
    help = "run an ONNX model (or a spec, compiled in memory) with onnxruntime"
    sp = sub.add_parser("run", help=help, description=help + ": provider, output, top-5, latency")
    sp.add_argument("model", metavar="MODEL.onnx|SPEC.net")
    sp.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a 'param' of a spec")
    sp.add_argument("--strict", action="store_true", help="treat a spec's warnings as errors")
    include_path(sp)
    sp.set_defaults(func=cmd_run)
    sp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="cuda fails rather than falling back to the CPU (default auto)")
    sp.add_argument("--batch", type=_count, default=1, help="batch size of the random input")
    sp.add_argument("--input", metavar="X.npy", help="input array instead of random data")
    sp.add_argument("--repeat", type=_count, default=10, help="timed runs (default 10)")
    sp.add_argument("--seed", type=_seed, default=0, help="seed of random input and weights")
    sp = spec_cmd("draw", cmd_draw, "draw the network (.svg, .png, .pdf need Graphviz; .dot; "
                  ".tex is a TikZ figure)")
    sp.add_argument("-o", "--output", metavar="FILE",
                    help="*.svg, *.png, *.pdf, *.dot or *.tex (default: the spec's file name "
                         "with the format's suffix, in the current directory)")
    sp.add_argument("--format", choices=("svg", "png", "pdf", "dot", "tex", "tikz"),
                    help="the output format (default: from the file's suffix)")
    sp.add_argument("--depth", type=int, default=None, metavar="N",
                    help="draw scopes N levels deep as single nodes (default: every layer)")
    sp.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                    help="Graphviz: top to bottom (default) or left to right")
    sp.add_argument("--no-aux", action="store_true", help="leave out auxiliary heads")
    sp.add_argument("--no-title", action="store_true",
                    help="Graphviz: no heading (name, parameters, multiply-adds)")
    sp.add_argument("--dpi", type=int, default=None, help="Graphviz: PNG resolution "
                    "(default 96)")
    sp.add_argument("--style", choices=("blocks", "flat"), default="blocks",
                    help="TikZ: boxes sized by their tensors (default) or flat equal boxes")
    sp.add_argument("--fragment", action="store_true",
                    help="TikZ: a tikzpicture to \\input into a paper (default: a standalone "
                    "document)")
    sp = spec_cmd("table", cmd_table, "networks side by side, aligned by stage (VGG's Table 1)",
                  many=True)
    sp.add_argument("--format", choices=("markdown", "latex", "html"), default="markdown")
    sp.add_argument("--labels", metavar="A,B,…", help="column headings (default: network names)")
    sp.add_argument("--title", default="ConvNet Configuration",
                    help="heading over the columns (LaTeX, HTML; config layout)")
    sp.add_argument("--layout", choices=("auto", "config", "stages", "vit"), default="auto",
                    help="config: VGG's Table 1; stages: ResNet's Table 1 (rows by resolution, "
                    "bracketed blocks); vit: ViT's Table 1; auto (default): vit for "
                    "transformers, stages when every spec is residual, else config")
    help = "write an ONNX model (or a PyTorch module) as a spec, repeated blocks folded"
    sp = sub.add_parser("import", help=help, description=help + ". pkg.module:factory "
                        "imports that Python module and calls factory() to build the model "
                        "(this runs its code), then exports it with PyTorch's ONNX exporter.")
    sp.add_argument("model", metavar="MODEL.onnx|pkg.module:factory")
    sp.add_argument("-o", "--output", metavar="SPEC.net", help="default: standard output")
    sp.add_argument("--weights-out", metavar="W.safetensors",
                    help="the model's weights under the spec's names (netdsl compile --weights)")
    sp.add_argument("--no-verify", action="store_true",
                    help="skip rebuilding the spec and comparing outputs under onnxruntime")
    sp.add_argument("--input-shape", metavar="CxHxW",
                    help="example input size for pkg.module:factory (default 3x224x224)")
    sp.set_defaults(func=cmd_import)
    sp = sub.add_parser("fmt", help="print specs in the canonical layout (comments kept)",
                        description="print specs in the canonical layout (comments kept); "
                        "in Markdown and LaTeX documents, the embedded specs")
    sp.add_argument("specs", nargs="+", metavar="SPEC", help=".net specs or documents")
    mode = sp.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="print nothing; exit 1 if a spec is not formatted")
    mode.add_argument("-w", "--write", action="store_true", help="rewrite the files in place")
    sp.set_defaults(func=cmd_fmt)
    return p


def on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so atomic writes remove their temporary files."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup: keep ignoring
                signal.signal(sig, on_sigterm)
    except ValueError:  # not the main thread: keep the default
        pass
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse prints usage and exits 2 on usage errors
        return int(e.code or 0)
    try:
        return int(args.func(args))
    except _Usage as e:
        print(f"netdsl: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except NetdslError as e:
        print(str(e), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("netdsl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # last resort: a bug in netdsl, never a traceback for the user
        print(f"netdsl: internal error: {type(e).__name__}: {e} (please report this with the "
              "spec that caused it)", file=sys.stderr)
        return EXIT_INTERNAL
