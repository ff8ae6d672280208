"""Property tests: any text gives a Network or a NetdslError, never another exception, fast.

Three sources of text: (1) arbitrary text, (2) text generated from the grammar and from a
token-level generator of plausible statements, (3) mutations of every spec in specs/; and two of
hostile surroundings: (4) include trees with symlinks, loops, FIFOs and odd names, (5) command
lines with any flags and values (exit 0, 1 or 2, never 3). The normal suite runs a few hundred
examples; the long fuzz run (6 tests × 3,000 = 18,000 examples, each text example under a
second) is::

    NETDSL_FUZZ_EXAMPLES=3000 python -m pytest -q tests/test_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import re
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import netdsl
from netdsl import cli, ops
from netdsl.errors import NetdslError
from netdsl.parser import grammar_text

from .conftest import ROOT, SPECS

EXAMPLES = int(os.environ.get("NETDSL_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIBRARY = [p for p in SPECS] + sorted((ROOT / "specs").glob("*/*.net"))


def outcome(text: str, path: str = "fuzz.net") -> None:
    """The property: a Network or a NetdslError, within a second of CPU time.

    CPU time, not wall time, with the garbage collector paused: the budget is about netdsl's
    work, not about the machine's load or the test harness's memory.
    """
    gc.disable()  # a full collection of hypothesis's heap is not netdsl's time
    t = time.process_time()
    try:
        net = netdsl.loads(text, str(ROOT / "specs" / path))
        assert net.graph.outputs
        event("a network")
    except NetdslError as e:
        assert str(e)  # renders
        event("a netdsl error")
    finally:
        spent = time.process_time() - t
        gc.enable()
    assert spent < 1.0, "an example took over a second"


# ---- (1) arbitrary text --------------------------------------------------------------------
@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300) |
       st.text(alphabet="input 3x8\n;{}()|+-*/%=,#\"conv3-64×2 relu FC-10 residual concat",
               max_size=300))
def test_arbitrary_text(text: str) -> None:
    outcome(text)


# ---- (2) text from the grammar -----------------------------------------------------------------
NAMES = sorted(ops.REGISTRY) + ["concat", "residual", "scale", "dense", "aux", "shortcut", "c",
                                 "pad", "groups", "bias", "stride", "x", "n", "input"]
_GRAMMAR_TOKENS = {
    "TIMES": st.sampled_from(["×", " x"]),
    "SOFTMAX": st.just("soft-max"),
    # block calls, and arithmetic's functions (min(8) once crashed: one argument)
    "CALLNAME": st.sampled_from(["b(", "basic(", "bottleneck(", "inception(", "min(", "max(",
                                 "round(", "make_divisible("]),
    "NAME": st.sampled_from(NAMES),
    "NETNAME": st.sampled_from(["net", "vgg-16", "a.b"]),
    "SHAPE": st.sampled_from(["3x32x32", "1x8x8", "10", "3×224×224", "0x1x1"]),
    "NUMBER": st.sampled_from(["0", "1", "2", "3", "16", "64", "0.5", "1e9", "99999999"]),
    "STRING": st.sampled_from(['"t"', '"lib/resnet.net"', '""']),
    "_NL": st.just("\n"),
}


@FUZZ
@given(from_lark(Lark(grammar_text(), parser="lalr", lexer="contextual"),
                 explicit=_GRAMMAR_TOKENS))
def test_text_generated_from_the_grammar(text: str) -> None:
    outcome(text)


@st.composite
def statements(draw: st.DrawFn) -> str:
    """Plausible specs, token by token: a header, blocks and statements of real layer names."""
    word = st.sampled_from(NAMES + ["conv3", "conv1x7", "maxpool3", "avgpool5", "b"])
    num = st.sampled_from(["0", "1", "2", "3", "7", "16", "64", "1000", "-1", "0.5", "c",
                           "(c*2)", "2147483648", "10**40"])
    tok = st.one_of(word, num, st.sampled_from(
        ["-", "/", "+", "×", "x", "=", ";", "\n", "{", "}", "(", ")", "|", ",", "from",
         "b(", ")", "on", "off", "if", "else", "not", "and", "==", "<", "[", "]", "i",
         "min(", "floor(", "make_divisible(", "not("]))
    head = draw(st.sampled_from(["input 3x32x32\n", "input 16\n", "input 1x8x8\n", ""]))
    block = draw(st.sampled_from(["", "block b(c, s=1) { conv3-c/s +relu }\n",
                                  "block b(c) { residual { conv3-c; bn } }\n"]))
    lines = draw(st.lists(st.lists(tok, max_size=12).map(" ".join), max_size=8))
    return head + block + "\n".join(lines)


@FUZZ
@given(statements())
def test_token_level_statements(text: str) -> None:
    outcome(text)


# ---- (3) mutations of every spec -----------------------------------------------------------
TOKEN = re.compile(r"\s+|[A-Za-z_][\w.-]*\(?|\d+(?:\.\d+)?|\S")
NUMBERS = ["0", "1", "-1", "2", "3", "7", "1000", "99999", "2147483648", "1e308", "0.0001",
           "9" * 40, "100000", "(1<<40)"]


@st.composite
def mutated_specs(draw: st.DrawFn) -> tuple[str, str]:
    path = draw(st.sampled_from(LIBRARY))
    toks = TOKEN.findall(path.read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(toks) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "number"]))
        if kind == "delete":
            del toks[i]
        elif kind == "duplicate":
            toks.insert(i, toks[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(toks) - 1))
            toks[i], toks[j] = toks[j], toks[i]
        else:
            nums = [k for k, t in enumerate(toks) if t[0].isdigit()]
            if nums:
                toks[draw(st.sampled_from(nums))] = draw(st.sampled_from(NUMBERS))
    return str(path.relative_to(ROOT / "specs")), "".join(toks)


@FUZZ
@given(mutated_specs())
def test_mutated_specs(case: tuple[str, str]) -> None:
    path, text = case
    outcome(text, path)


# ---- (4) hostile file systems: includes through links, loops, odd names and non-files ------
SECRET = "SECRET-1234\n"
ODD_NAMES = ["lib.net", "a b.net", "x\r.net", "\u2028.net", "\u202ey.net", "-o.net", "..net",
             "deep/er/lib.net", "../outside.net", "outside.txt"]


@st.composite
def include_trees(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """(kind, name, target) entries: files, symlinks (to files, dirs, loops, outside), dirs,
    FIFOs, binary files; the spec includes some of them."""
    kinds = st.sampled_from(["file", "link", "dir", "fifo", "binary", "loop", "outside"])
    return draw(st.lists(st.tuples(kinds, st.sampled_from(ODD_NAMES),
                                   st.sampled_from(ODD_NAMES)), min_size=1, max_size=5))


def _make_tree(root: Path, entries: list[tuple[str, str, str]]) -> None:
    (root.parent / "outside.net").write_text(SECRET)
    (root.parent / "outside.txt").write_text(SECRET)
    for kind, name, target in entries:
        p = root / name
        if os.path.lexists(p):  # the first entry of a name wins: writing a file over a FIFO
            continue            # made earlier would wait for a reader forever (the test hung)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            if kind == "file":
                p.write_text("block b() { conv3-4 }\n" + (f'include "{target}"\n'
                                                          if target != name else ""))
            elif kind == "link":
                p.symlink_to(target)
            elif kind == "dir":
                p.mkdir()
            elif kind == "fifo":
                os.mkfifo(p)
            elif kind == "binary":
                p.write_bytes(b"\0\1" + SECRET.encode())
            elif kind == "loop":
                p.symlink_to(name.rsplit("/", 1)[-1])
            else:
                p.symlink_to(root.parent / "outside.net")
        except (OSError, ValueError):
            pass  # already there, or the file system refuses: the tree is what it is


@FUZZ
@given(include_trees(), st.lists(st.sampled_from(ODD_NAMES), max_size=3))
def test_hostile_include_trees(entries: list[tuple[str, str, str]], includes: list[str]) -> None:
    """Whatever the tree holds, loading gives a network or a netdsl error, reads nothing
    outside the spec's directory and never echoes it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        _make_tree(root, entries)
        text = "".join(f'include "{i}"\n' for i in includes) + "input 3x8x8\nrelu\n"
        try:
            net = netdsl.loads(text, str(root / "net.net"))
            assert net.graph.outputs
            event("a network")
        except NetdslError as e:
            assert SECRET.strip() not in str(e)
            event("a netdsl error")


# ---- (5) command lines: any flags and values give exit 0, 1 or 2, never a netdsl bug ----------
_VALUES = ["", "-", "0", "-1", "1e20", "৪", "99999999999999999999", "x.onnx", "x.dot", "x.py",
           "/dev/null", "DIR", "FIFO", "SPEC", "LOOP", "missing/x.onnx", "a=1", "classes=৪",
           "classes=1e999", "n=-5"]
_FLAGS = {"check": ["--param", "--strict", "-q", "--include-path"],
          "summary": ["--param", "--format", "--training"],
          "compile": ["-o", "--seed", "--param", "--weights", "--weights-by-order"],
          "emit": ["-o", "--no-aux", "--param"],
          "fmt": ["--check", "-w"],
          "run": ["--batch", "--repeat", "--seed", "--input", "--param", "--device"],
          "draw": ["-o", "--depth", "--rankdir"]}
_BOOL = {"--strict", "-q", "--training", "--no-aux", "--check", "-w"}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    cmd = draw(st.sampled_from(sorted(_FLAGS)))
    argv = [cmd, "SPEC"]
    for flag in draw(st.lists(st.sampled_from(_FLAGS[cmd]), max_size=3)):
        argv.append(flag)
        if flag not in _BOOL:
            argv.append(draw(st.sampled_from(_VALUES)))
    if cmd == "run":
        argv += ["--repeat", "1"]
    if cmd == "draw" and "-o" not in argv:
        argv += ["-o", "x.dot"]  # no Graphviz needed
    return argv


@FUZZ
@given(command_lines())
def test_hostile_command_lines(argv: list[str]) -> None:
    """Exit 0, 1 or 2 (never 3, never a traceback); the spec survives; nothing is written
    outside the working directory."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = work / "s.net"
        spec.write_text("input 1x8x8\nconv3-4\nrelu\nFC-10\n")
        (work / "DIR").mkdir()
        os.mkfifo(work / "FIFO")
        (work / "LOOP").symlink_to("LOOP")
        here = os.getcwd()
        os.chdir(work)
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = cli.main(argv)
        finally:
            os.chdir(here)
        assert code in (0, 1, 2), (argv, err.getvalue())
        assert "Traceback" not in err.getvalue()
        if "-w" not in argv:
            assert spec.read_text() == "input 1x8x8\nconv3-4\nrelu\nFC-10\n"
        assert Path("/dev/null").is_char_device()
        event(f"exit {code}")
