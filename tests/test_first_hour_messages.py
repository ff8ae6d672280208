"""Messages and document handling a newcomer tripped over (issue 14), as CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def netdsl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def test_form_feed_and_line_separator_in_prose_keep_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "paper.md").write_text("Intro\fpage two\u2028same line\x85still\n\n```netdsl\n"
                                       "input 3x8x8\nconv3-4; maxpol\n```\n", encoding="utf-8")
    r = netdsl("check", "paper.md", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("paper.md:5:10: error: unknown layer 'maxpol'"), r.stderr


def test_fmt_keeps_a_fenced_spec_indented_inside_a_list_item(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("- the network:\n\n    ```netdsl\n    input 3x8x8\n    conv3-4  ;  relu\n"
                   "    ```\n\nmore text\n")
    r = netdsl("fmt", "-w", "notes.md", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert doc.read_text() == ("- the network:\n\n    ```netdsl\n    input 3x8x8\n"
                               "    conv3-4; relu\n    ```\n\nmore text\n")
    assert netdsl("fmt", "--check", "notes.md", cwd=tmp_path).returncode == 0
    r = netdsl("check", "notes.md", cwd=tmp_path)
    assert r.returncode == 0 and "notes.md#1: ok (2 layers" in r.stdout


def test_fmt_keeps_windows_line_endings(tmp_path: Path) -> None:
    spec, doc = tmp_path / "w.net", tmp_path / "w.md"
    spec.write_bytes(b"input 3x8x8\r\nconv3-4  ;relu\r\n")
    doc.write_bytes(b"Text\r\n\r\n```netdsl\r\ninput 3x8x8\r\nconv3-4  ;relu\r\n```\r\n")
    r = netdsl("fmt", "-w", "w.net", "w.md", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert spec.read_bytes() == b"input 3x8x8\r\nconv3-4; relu\r\n"
    assert doc.read_bytes() == b"Text\r\n\r\n```netdsl\r\ninput 3x8x8\r\nconv3-4; relu\r\n```\r\n"
    assert netdsl("fmt", "--check", "w.net", "w.md", cwd=tmp_path).returncode == 0


def test_an_unclosed_fence_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "open.md").write_text("```netdsl\ninput 3x8x8\n")
    r = netdsl("check", "open.md", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.count("has no closing fence") == 1, r.stderr


def test_a_look_alike_letter_is_named_by_its_code_point(tmp_path: Path) -> None:
    (tmp_path / "c.net").write_text("input 3x8x8\n\u0441onv3-4\n", encoding="utf-8")
    r = netdsl("check", "c.net", cwd=tmp_path)
    assert r.returncode == 1
    assert "unexpected character 'с' (U+0441 CYRILLIC SMALL LETTER ES)" in r.stderr
    assert "hint: retype it in ASCII" in r.stderr


def test_check_quiet_prints_errors_only(tmp_path: Path) -> None:
    r = netdsl("check", "-q", "specs/examples/alexnet-224.net", cwd=ROOT)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    r = netdsl("check", "-q", "--strict", "specs/examples/alexnet-224.net", cwd=ROOT)
    assert r.returncode == 1 and "warning: conv drops input pixels" in r.stderr
    assert "treated as errors (--strict)" in r.stderr


def test_weights_that_are_not_a_regular_file(tmp_path: Path) -> None:
    r = netdsl("compile", "specs/lenet5.net", "--weights", "/dev/zero", "-o",
               str(tmp_path / "m.onnx"), cwd=ROOT)
    assert r.returncode == 1
    assert "/dev/zero: error: the weights file is not a regular file" in r.stderr


def test_nesting_is_counted_in_the_levels_a_person_sees(tmp_path: Path) -> None:
    (tmp_path / "g32.net").write_text("input 3x8x8\n" + "(" * 32 + "relu" + ")" * 32 + "\n")
    r = netdsl("check", "g32.net", cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # 32 groups once counted as 'more than 100 levels'
    (tmp_path / "g101.net").write_text("input 3x8x8\n" + "(" * 101 + "relu" + ")" * 101 + "\n")
    r = netdsl("check", "g101.net", cwd=tmp_path)
    assert r.returncode == 1 and "g101.net:2:102: error: nested more than 100 levels" in r.stderr


def test_a_long_flat_sum_is_not_called_nesting(tmp_path: Path) -> None:
    terms = " + ".join(["1"] * 10_000)  # within the 64 Ki-character spec limit
    (tmp_path / "sum.net").write_text(f"param a = {terms}\ninput 3x8x8\nrelu\n")
    r = netdsl("check", "sum.net", cwd=tmp_path)
    assert r.returncode == 1 and "nested" not in r.stderr
    assert "sum.net:1:11: error: an expression of more than 100 terms" in r.stderr
    (tmp_path / "ok.net").write_text(f"param a = {' + '.join(['1'] * 100)}\ninput 3x8x8\nrelu\n")
    assert netdsl("check", "ok.net", cwd=tmp_path).returncode == 0


def test_a_missing_brace_is_reported_where_indentation_shows_it(tmp_path: Path) -> None:
    (tmp_path / "b.net").write_text("block b(c) {\n    residual {\n        conv3-c\n    relu\n}\n"
                                    "input 3x8x8\nb(4)\n")
    r = netdsl("check", "b.net", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("b.net:2:14: error: '{' is never closed"), r.stderr
    (tmp_path / "ok.net").write_text("block b(c) { residual {\n    conv3-c\n} }\ninput 3x8x8\n"
                                     "b(4)\n")  # two braces closed on one line: no complaint
    assert netdsl("check", "ok.net", cwd=tmp_path).returncode == 0


def test_near_misses_of_short_names_and_missing_values_read_naturally(tmp_path: Path) -> None:
    (tmp_path / "bm.net").write_text("input 3x8x8\nconv3-16 +bm\n")
    r = netdsl("check", "bm.net", cwd=tmp_path)
    assert "unknown layer 'bm'" in r.stderr and "hint: did you mean 'bn'?" in r.stderr
    (tmp_path / "conv.net").write_text("input 3x8x8\nconv\n")
    r = netdsl("check", "conv.net", cwd=tmp_path)
    assert "error: conv needs its output channels" in r.stderr, r.stderr


def test_builder_messages_point_at_the_mistake(tmp_path: Path) -> None:
    (tmp_path / "fc.net").write_text("input 3x8x8\nFC10\n")
    r = netdsl("check", "fc.net", cwd=tmp_path)
    assert "hint: fc takes no kernel size in its name: did you mean 'FC-10'?" in r.stderr
    (tmp_path / "kw.net").write_text('include "resnet"\ninput 3x32x32\nconv3-64\n'
                                     "r3 = basic(64, strid=2)\n")
    r = netdsl("check", "kw.net", cwd=tmp_path)
    assert "kw.net:4:16: error: block 'basic' has no parameter 'strid'" in r.stderr, r.stderr
    assert "    |                ^~~~~\n" in r.stderr  # under 'strid', not under '2'


def test_each_call_with_a_bad_argument_is_reported(tmp_path: Path) -> None:
    (tmp_path / "two.net").write_text('include "resnet"\ninput 3x32x32\nconv3-64\n'
                                      "r0 = basic(32.5)\nr3 = basic(64, 0)\n")
    r = netdsl("check", "two.net", cwd=tmp_path)
    assert r.returncode == 1
    assert "got 32.5, expected a whole number" in r.stderr
    assert "invalid stride for conv: got 0" in r.stderr and "called at two.net:5:6" in r.stderr
    (tmp_path / "rep.net").write_text('include "resnet"\ninput 3x32x32\nconv3-64\n'
                                      "basic(32.5) ×3\n")  # one mistake: one report
    r = netdsl("check", "rep.net", cwd=tmp_path)
    assert r.stderr.count("error:") == 1, r.stderr


def test_an_unknown_layer_in_a_default_line_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d.net").write_text("input 3x8x8\ndefault cnov bias=off\nconv3-4\n")
    r = netdsl("check", "d.net", cwd=tmp_path)
    assert r.returncode == 1
    assert "d.net:2:1: error: unknown layer 'cnov' in a default line" in r.stderr
    assert "hint: did you mean 'conv'?" in r.stderr
    (tmp_path / "ok.net").write_text("input 3x8x8\ndefault conv bias=off\n"
                                     "default residual shortcut=A\nconv3-4\n")
    r = netdsl("check", "ok.net", cwd=tmp_path)
    assert r.returncode == 0 and "(1 layer, 108 params" in r.stdout, r.stderr
