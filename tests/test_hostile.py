"""Hostile input: every bad spec in tests/bad/ gives its golden message; nothing crashes.

Each ``tests/bad/X.net`` has ``X.err``, the full stderr of ``netdsl check tests/bad/X.net``
run from the repository root (``pytest --update-golden`` rewrites them).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netdsl
from netdsl import cli
from netdsl.errors import NetdslError
from netdsl.fsutil import atomic_write, atomic_write_text

from .conftest import ROOT

BAD = ROOT / "tests" / "bad"
BAD_SPECS = sorted(BAD.glob("*.net"))


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", BAD_SPECS, ids=lambda p: p.stem)
def test_bad_spec_golden_error(spec: Path, update_golden: bool, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    t = time.process_time()
    code, out, err = check(capsys, str(spec.relative_to(ROOT)))
    assert time.process_time() - t < 1.0  # size bombs are refused, not built
    assert code == 1 and out == ""
    golden = spec.with_suffix(".err")
    if update_golden:
        golden.write_text(err, encoding="utf-8")
    assert err == golden.read_text(encoding="utf-8")
    first = err.splitlines()[0]
    assert re.match(r"tests/bad/[\w/.-]+\.net(:\d+:\d+)?: error: ", first), first
    assert "Traceback" not in err


def test_bad_specs_and_goldens_pair_one_to_one() -> None:
    assert {p.stem for p in BAD.glob("*.err")} == {p.stem for p in BAD_SPECS}


def test_bad_spec_through_a_real_process() -> None:
    r = subprocess.run([sys.executable, "-m", "netdsl", "check", "tests/bad/many_errors.net"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr == (BAD / "many_errors.err").read_text(encoding="utf-8")


def test_several_errors_come_in_source_order() -> None:
    with pytest.raises(NetdslError) as e:
        netdsl.load(BAD / "many_errors.net")
    lines = [err.loc.line for err in [e.value, *e.value.related] if err.loc]
    assert lines == sorted(lines) and len(lines) == 5


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: None, "error: no such file"),
    (lambda p: p.mkdir(), "error: is a directory, not a spec file"),
    (lambda p: p.write_bytes(b"input 3x8x8\x00\x01\x02"), "error: is a binary file, not a spec"),
    (lambda p: p.write_bytes(b"input 3x8x8\nconv3-\xe9\n"),
     "error: is not UTF-8 text (byte 0xe9 at offset 18, line 2)"),
    (lambda p: p.write_bytes(b"#" * (300 << 10)), "error: file is larger than 256 KiB"),
    (lambda p: os.mkfifo(p), "error: is not a regular file"),
], ids=["missing", "directory", "binary", "not-utf8", "huge", "fifo"])
def test_files_that_are_not_specs(tmp_path: Path, make, message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.net"
    make(p)
    code, _, err = check(capsys, str(p))
    assert code == 1
    assert err.startswith(f"{p}: {message}\n  hint: "), err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--no-such-flag", "x.net"]) == 2


def test_internal_errors_are_one_paragraph_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "load", boom)
    code, _, err = check(capsys, "specs/vgg16.net")
    assert code == cli.EXIT_INTERNAL
    assert err == ("netdsl: internal error: RuntimeError: boom (please report this with the "
                   "spec that caused it)\n")


def test_warnings_go_to_stderr_and_keep_exit_0_unless_strict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "dag.net"
    p.write_text("input 3x32x32\na = conv3-16\nb = conv3-32 from input; relu\n"
                 "c = conv3-8 from input\nz = conv3-8 from a\nFC-10\n")
    code, out, err = check(capsys, str(p))
    assert code == 0 and ": ok (" in out
    assert f"{p}:3:26: warning: dead branch: 2 layers ending at 'relu1' are never used" in err
    assert f"{p}:4:5: warning: the output of 'c' is never used" in err
    code, _, err = check(capsys, "--strict", str(p))
    assert code == 1 and "2 warning(s) treated as errors (--strict)" in err


def test_specs_warn_only_where_expected() -> None:
    for spec in sorted((ROOT / "specs").glob("*.net")):
        assert not [w for w in netdsl.load(spec).warnings if "never used" in w.message], spec


@pytest.mark.parametrize("text", [
    "input 3x32x32\n(relu ×100000) ×100000",
    "input 3x32x32\n" + "".join(f"block b{i}() {{ b{i - 1}() ×2; b{i - 1}() }}\n"
                                for i in range(1, 40)).replace("b0() ×2; b0()", "relu")
    + "b39()",
    "input 3x32x32\nparam n = 99999\nblock a() { relu ×n }\na() ×n",
])
def test_size_bombs_are_refused_in_milliseconds(text: str) -> None:
    t = time.process_time()
    with pytest.raises(NetdslError, match="more than the limit of 100,000"):
        netdsl.loads(text)
    assert time.process_time() - t < 0.1


def test_the_language_executes_no_code() -> None:
    """The spec path has no eval/exec: parameters are evaluated by netdsl's own arithmetic."""
    spec_path = [p for p in (ROOT / "netdsl").rglob("*.py") if "codegen" not in p.parts]
    for p in spec_path:
        assert not re.search(r"(?<!def )(?<![.\w])(eval|exec)\(", p.read_text()), p
    with pytest.raises(NetdslError):
        netdsl.loads('input 3x8x8\nparam n = __import__("os").system("true")\nrelu')


def test_include_paths_resolve_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.net").write_text('include "b.net"\nblock a() { b() }\n')
    (tmp_path / "lib" / "b.net").write_text("block b() { conv3-4 }\n")
    (tmp_path / "net.net").write_text('include "lib/a.net"\ninput 3x8x8\na()\n')
    assert netdsl.load(tmp_path / "net.net").output_shape == ("N", 4, 8, 8)


# ---- atomic output -----------------------------------------------------------------------------
def test_failure_during_serialization_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")

    def half_then_fail(f: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("serializer crashed")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_interrupt_during_serialization_leaves_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text("previous")

    def interrupted(f: object) -> None:
        f.write(b"class Net")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


def _default_sigint() -> None:
    """In the child: Ctrl-C raises KeyboardInterrupt even where the test runner ignores SIGINT
    (background jobs of a non-interactive shell do, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_killed_writer_process_leaves_the_previous_file(tmp_path: Path, sig: int) -> None:
    """A real process killed mid-write: the target is intact; Ctrl-C and SIGTERM also remove
    the temporary (SIGKILL cannot be caught: its hidden ``.NAME.*.tmp`` file stays)."""
    target = tmp_path / "out.txt"
    target.write_text("previous")
    code = ("import signal, time\nfrom netdsl import cli\nfrom netdsl.fsutil import atomic_write\n"
            "signal.signal(signal.SIGTERM, cli.on_sigterm)\n"
            "def slow(f):\n    f.write(b'x' * 1000); f.flush(); print('writing', flush=True)\n"
            "    time.sleep(60)\n"
            f"atomic_write({str(target)!r}, slow)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=_default_sigint)
    assert p.stdout is not None and p.stdout.readline() == "writing\n"
    p.send_signal(sig)
    p.wait(timeout=10)
    assert target.read_text() == "previous"
    left = sorted(q.name for q in tmp_path.iterdir())
    if sig != signal.SIGKILL:
        assert left == ["out.txt"]


@pytest.mark.parametrize(("target", "message"), [
    ("missing/dir/model.onnx", "output directory does not exist"),
    (".", "output path is a directory"),
])
def test_unwritable_output_paths_are_netdsl_errors(tmp_path: Path, target: str,
                                                   message: str) -> None:
    with pytest.raises(NetdslError, match=message) as e:
        atomic_write_text(tmp_path / target, "x")
    assert "hint: " in str(e.value)


# ---- the static size estimate and error recovery -------------------------------------------
@pytest.mark.parametrize("spec", sorted((ROOT / "specs").rglob("*.net")), ids=lambda p: p.stem)
def test_layer_estimate_never_exceeds_the_real_size(spec: Path) -> None:
    """The estimate is a lower bound, so a valid spec under the limit is never refused."""
    from netdsl.estimate import LayerEstimate
    from netdsl.expand import Expander
    from netdsl.network import _load_files
    from netdsl.parser import parse_text

    root = parse_text(spec.read_text(encoding="utf-8"), str(spec))
    if not root.body:
        return  # a block library
    b = Expander(root, _load_files(root), {})
    est = LayerEstimate(b.blocks, b.header.params, b.header.activation is not None)
    total = sum(n * per for n, per in (est.stmt(st, dict(b.header.params)) for st in root.body))
    graph = b.run()
    assert 0.5 * len(graph) <= total <= len(graph) - 1 + len(graph.outputs)


@pytest.mark.parametrize(("text", "lines"), [
    ("input 3x8x8\nblock b(c) {\n  conv3-c )\n  relu\n}\nb(4)\nmaxpol\n", [3]),  # one per line
    ("input 3x8x8\nconcat { conv3-4 ) | conv3-4 }\nFC-10 +\nrelu\n", [2, 3]),
    ("input 3x8x8\nconv3-4 {\nrelu\n", [2]),  # an unclosed brace is one error, not many
    ("input 3x8x8\nx = conv3-0\ny = conv3-4 from x\nz = add from x, y\nFC-10", [2]),
    ("input 3x8x8\nparam n = 1/0\nconv3-n\nrelu ×n\n", [2]),
    ("input 3x8x8\nconv3-0\nrelu\nconv3-0\n", [2, 4]),  # the same mistake twice: two errors
])
def test_errors_do_not_cascade(text: str, lines: list[int]) -> None:
    with pytest.raises(NetdslError) as e:
        netdsl.loads(text)
    assert [err.loc.line for err in [e.value, *e.value.related] if err.loc] == lines


def test_readme_error_examples_are_real_output() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"\$ netdsl check (tests/bad/\S+)\.net\n(.*?)(?=\n\$ |\n```|\n…)", readme,
                       re.S)
    assert len(shown) >= 3
    for stem, text in shown:
        assert (ROOT / f"{stem}.err").read_text(encoding="utf-8").startswith(text), stem


def _has_command(name: str) -> bool:
    return any(name in (a.choices or {}) for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))


@pytest.mark.skipif(not _has_command("compile"), reason="no `netdsl compile` on this branch")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_killed_compile_leaves_the_previous_model_and_no_temporary(tmp_path: Path,
                                                                   sig: int) -> None:
    """`netdsl compile` interrupted while it writes: the old model survives, no temp remains."""
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    p = subprocess.Popen([sys.executable, "-m", "netdsl", "compile", "specs/resnet50.net", "-o",
                          str(target)], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        if len(list(tmp_path.iterdir())) > 1:  # the temporary exists: it is writing now
            break
        time.sleep(0.005)
    if p.poll() is not None:
        pytest.skip("compile finished before it could be interrupted")
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err
    assert [q.name for q in tmp_path.iterdir()] == ["model.onnx"]
    data = target.read_bytes()
    if data == b"previous model":
        assert p.returncode != 0
    else:  # on a loaded machine the signal can land after the rename: then the model is whole
        onnx = pytest.importorskip("onnx")
        onnx.checker.check_model(onnx.load_from_string(data))


@pytest.mark.skipif(not _has_command("compile"), reason="no `netdsl compile` on this branch")
def test_compile_to_an_unwritable_path_is_a_one_paragraph_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "dir" / "model.onnx"
    code = cli.main(["compile", "specs/lenet5.net", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"{out}: error: ") and "Traceback" not in err
