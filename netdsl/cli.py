"""The ``netdsl`` command: each subcommand is one library call plus printing.

Exit codes: 0 success (warnings allowed), 1 a spec or model error, 2 a usage error,
3 an internal error (a bug: reported in one line, never as a traceback).
Only this module prints and exits; the library raises NetdslError.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import NetdslError
from .network import Network, load

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _params(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise _Usage(f"--param expects NAME=VALUE, got {p!r}")
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                raise _Usage(f"--param {key}: {value!r} is not a number") from None
    return out


class _Usage(Exception):
    pass


def _load(args: argparse.Namespace, spec: str) -> Network:
    net = load(spec, _params(args.param))
    for w in net.warnings:
        print(w.render(), file=sys.stderr)
    if args.strict and net.warnings:
        raise NetdslError(f"{len(net.warnings)} warning(s) treated as errors (--strict)",
                          path=spec)
    return net


def _expand_documents(specs: Sequence[str]) -> list[str]:
    """Spec paths, with each Markdown/LaTeX document replaced by its embedded specs (doc#N)."""
    from .embedded import is_document, specs_of

    out: list[str] = []
    for spec in specs:
        if not is_document(spec):
            out.append(spec)
            continue
        try:
            found = specs_of(spec)
        except NetdslError as e:
            print(str(e), file=sys.stderr)
            out.append(spec)  # reported again (and counted) by the check loop
            continue
        if not found:
            print(f"{spec}: warning: no embedded netdsl specs", file=sys.stderr)
        out += [f.ref for f in found]
    return out


def cmd_check(args: argparse.Namespace) -> int:
    failed = 0
    for spec in _expand_documents(args.specs):
        try:
            net = _load(args, spec)
        except NetdslError as e:
            print(str(e), file=sys.stderr)
            failed += 1
            continue
        if not args.quiet:
            print(f"{spec}: ok ({len(net.layers())} layers, {net.params:,} params, "
                  f"{net.macs / 1e9:.2f} GMACs, output {'×'.join(map(str, net.output_shape[1:]))})")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import FORMATS

    net = _load(args, args.spec)
    sys.stdout.write(FORMATS[args.format](net, args.training))
    if args.format == "json":
        sys.stdout.write("\n")
    return EXIT_OK


def cmd_draw(args: argparse.Namespace) -> int:
    from .draw import draw

    draw(_load(args, args.spec), args.output, args.depth, args.rankdir)
    return EXIT_OK


def cmd_table(args: argparse.Namespace) -> int:
    from .table import config_table

    nets = [_load(args, spec) for spec in args.specs]
    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != len(nets):
        raise _Usage(f"--labels has {len(labels)} labels for {len(nets)} specs")
    sys.stdout.write(config_table(nets, args.format, labels, args.title))
    return EXIT_OK


def cmd_fmt(args: argparse.Namespace) -> int:
    from .fmt import format_source
    from .fsutil import atomic_write_text
    from .network import read_spec

    status = EXIT_OK
    for spec in args.specs:
        text = read_spec(spec)
        pretty = format_source(text, spec)
        if args.check:
            if pretty != text:
                print(f"{spec}: not formatted (netdsl fmt -w {spec})", file=sys.stderr)
                status = EXIT_ERROR
        elif args.write:
            if pretty != text:
                atomic_write_text(spec, pretty)
        else:
            sys.stdout.write(pretty)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netdsl", description="Compile network specs written in "
                                "the papers' notation into checked, runnable models.")
    p.add_argument("--version", action="version", version=f"netdsl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        sp.set_defaults(func=func)
        return sp

    sp = spec_cmd("check", cmd_check, "check specs for syntax and shape errors", many=True)
    sp.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    sp = spec_cmd("summary", cmd_summary, "per-layer shapes, parameters, multiply-adds")
    sp.add_argument("--format", choices=("table", "json", "markdown", "latex", "html"),
                    default="table")
    sp.add_argument("--training", action="store_true",
                    help="include auxiliary heads (training form)")
    sp = spec_cmd("draw", cmd_draw, "draw the network (.svg, .png, .pdf need Graphviz; .dot)")
    sp.add_argument("-o", "--output", required=True, metavar="FILE",
                    help="output file: *.svg, *.png, *.pdf or *.dot")
    sp.add_argument("--depth", type=int, default=None, metavar="N",
                    help="draw scopes N levels deep as single nodes (default: every layer)")
    sp.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                    help="top to bottom (default) or left to right")
    sp = spec_cmd("table", cmd_table, "networks side by side, aligned by stage (VGG's Table 1)",
                  many=True)
    sp.add_argument("--format", choices=("markdown", "latex", "html"), default="markdown")
    sp.add_argument("--labels", metavar="A,B,…", help="column headings (default: network names)")
    sp.add_argument("--title", default="ConvNet Configuration",
                    help="heading over the columns (LaTeX, HTML)")
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
    """SIGTERM unwinds like Ctrl-C, so atomic writes remove their temporary files."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        signal.signal(signal.SIGTERM, on_sigterm)
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
