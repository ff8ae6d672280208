"""netdsl fmt: canonical, idempotent, comment-preserving, and meaning-preserving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from netdsl.errors import NetdslError
from netdsl.fmt import format_document, format_text, tokens_for_check
from netdsl.summary import to_table

from .conftest import ROOT

ALL = sorted((ROOT / "specs").rglob("*.net"))

MESSY = """\


# leading comment
network  weird   "Weird"   # trailing
input 3 x 32 x 32
param n = 2 * 3
default conv   bias = off

block b(c,stride=1,w=c*2) {   # block comment

    residual{conv3 - c / stride +bn+relu;;conv3-(c*2/2) +bn ;}   shortcut { conv1-c/stride }

    # inside comment
    relu ;
}
block m(c) { concat { conv1-c | conv3-c
  |maxpool3/1 pad 1;conv1-c } }
conv3-16 x 2 ; conv3-16 \\
   +bn
stage = ( b(16) ; b(32, stride=2) ) ×(n/3)
a = conv1-32
y = add from a, stage
m(8)
gap; FC-10 bias=on ; soft-max ;


"""

MESSY_FORMATTED = """\
# leading comment
network weird "Weird"  # trailing
input 3x32x32
param n = 2*3
default conv bias=off

block b(c, stride=1, w=c*2) {  # block comment
    residual { conv3-c/stride +bn +relu; conv3-(c*2/2) +bn } shortcut { conv1-c/stride }

    # inside comment
    relu
}
block m(c) { concat { conv1-c | conv3-c
      | maxpool3/1 pad 1; conv1-c } }
conv3-16 x2; conv3-16 +bn
stage = (b(16); b(32, stride=2)) ×(n/3)
a = conv1-32
y = add from a, stage
m(8)
gap; FC-10 bias=on; soft-max
"""


@pytest.mark.parametrize("spec", ALL, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_fmt_is_idempotent_and_keeps_the_network(spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    once = format_text(text, str(spec))
    assert format_text(once, str(spec)) == once
    assert tokens_for_check(once) == tokens_for_check(text)  # comments included
    if spec.parent.name != "lib":  # a block library is not a network on its own
        assert to_table(netdsl.loads(once, str(spec))) == to_table(netdsl.load(spec))


def test_library_formatted_gives_the_same_networks(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    lib = (ROOT / "specs" / "lib" / "resnet.net").read_text(encoding="utf-8")
    (tmp_path / "lib" / "resnet.net").write_text(format_text(lib))
    for stem in ("resnet50", "se-resnet50", "preact-resnet1001", "resnext50-32x4d"):
        text = (ROOT / "specs" / f"{stem}.net").read_text(encoding="utf-8")
        (tmp_path / f"{stem}.net").write_text(text)
        assert to_table(netdsl.load(tmp_path / f"{stem}.net")) == \
            to_table(netdsl.load(ROOT / "specs" / f"{stem}.net"))


def test_messy_spec_canonical_layout() -> None:
    out = format_text(MESSY)
    assert out == MESSY_FORMATTED
    assert format_text(out) == out
    assert to_table(netdsl.loads(out)) == to_table(netdsl.loads(MESSY))


def test_comments_are_kept_verbatim() -> None:
    text = "# a\ninput 3x8x8  # b c\n# d\nconv3-4 ;  # e\n"
    out = format_text(text)
    for c in ("# a", "# b c", "# d", "# e"):
        assert c in out
    assert out == "# a\ninput 3x8x8  # b c\n# d\nconv3-4  # e\n"


def test_syntax_error_is_located() -> None:
    with pytest.raises(NetdslError) as e:
        format_text("input 3x8x8\nconv3-4 {{\n", "x.net")
    assert str(e.value).startswith("x.net:2:")


def test_document_specs_formatted_in_place() -> None:
    doc = "# Title\n\n```netdsl\ninput 3x8x8\nconv3-4 ;;  FC-2\n```\n\ntext ; x\n"
    out = format_document(doc, "paper.md")
    assert out == "# Title\n\n```netdsl\ninput 3x8x8\nconv3-4; FC-2\n```\n\ntext ; x\n"


def test_fmt_cli_check_and_write(tmp_path: Path) -> None:
    spec = tmp_path / "s.net"
    spec.write_text("input 3x8x8\nconv3-4 ;  FC-2   # head\n")
    run = [sys.executable, "-m", "netdsl", "fmt"]
    r = subprocess.run([*run, "--check", str(spec)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "not formatted" in r.stderr and r.stdout == ""
    r = subprocess.run([*run, str(spec)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout == "input 3x8x8\nconv3-4; FC-2  # head\n"
    r = subprocess.run([*run, "-w", str(spec)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and spec.read_text() == "input 3x8x8\nconv3-4; FC-2  # head\n"
    r = subprocess.run([*run, "--check", str(spec), "docs/paper.md"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def _respace(text: str, seed: int) -> str:
    """``text`` with random extra spaces and tabs before tokens, and random indentation and
    trailing blanks: the same tokens and line structure, a different layout."""
    import random

    from netdsl.fmt import _lark, _tokens

    rng = random.Random(seed)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    offsets = sorted({starts[t.line - 1] + t.col - 1 for t in _tokens(_lark().parse(text))
                      if t.type != "_NL"}, reverse=True)
    out = text
    for off in offsets:
        out = out[:off] + rng.choice(["", " ", "  ", "\t", " \t "]) + out[off:]
    lines = out.split("\n")
    return "\n".join(line + rng.choice(["", " ", "\t"]) if line.strip() else line
                     for line in lines)


@pytest.mark.parametrize("spec", ALL, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_layout_does_not_matter(spec: Path) -> None:
    """Canonical: any horizontal re-spacing of a spec formats to the same text."""
    text = spec.read_text(encoding="utf-8")
    want = format_text(text)
    for seed in range(3):
        messy = _respace(text, seed)
        assert messy != text
        assert format_text(messy) == want
