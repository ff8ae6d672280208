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


def cmd_check(args: argparse.Namespace) -> int:
    failed = 0
    for spec in args.specs:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="netdsl", description="Compile network specs written in "
                                "the papers' notation into checked, runnable models.")
    p.add_argument("--version", action="version", version=f"netdsl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_cmd(name: str, func: Callable[[argparse.Namespace], int], help: str,
                 many: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        if many:
            sp.add_argument("specs", nargs="+", metavar="SPEC", help=".net spec files")
        else:
            sp.add_argument("spec", metavar="SPEC", help="a .net spec file")
        sp.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a 'param' of the spec, e.g. classes=10")
        sp.add_argument("--strict", action="store_true", help="treat warnings as errors")
        sp.set_defaults(func=func)
        return sp

    sp = spec_cmd("check", cmd_check, "check specs for syntax and shape errors", many=True)
    sp.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    sp = spec_cmd("summary", cmd_summary, "per-layer shapes, parameters, multiply-adds")
    sp.add_argument("--format", choices=("table", "json", "markdown", "latex"), default="table")
    sp.add_argument("--training", action="store_true",
                    help="include auxiliary heads (training form)")
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
