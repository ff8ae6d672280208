"""User text (network names, titles, labels) reaches every output format as literal text."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import netdsl
from netdsl import draw as D
from netdsl import escape, summary
from netdsl.table import config_table

HOSTILE = r"a|b <script>x</script> ^^5c{}$^~_%#&\input{/etc/passwd} *c* [l](u) `t` \ "
TEX_SPECIALS = set("\\{}$&#^_%~")


def hostile_net(name: str = HOSTILE.rstrip()) -> netdsl.Network:
    """A network whose name and title hold the text (a name ending in a backslash)."""
    return netdsl.loads(f'network "{name}" "{name}"\ninput 1x8x8\nconv3-4\nFC-2\n')


def test_markdown_keeps_the_table_shape_and_shows_no_markup() -> None:
    net = hostile_net()
    for text in (summary.to_markdown(net), config_table([net, net], "markdown")):
        rows = [x for x in text.splitlines() if x.startswith("|")]
        cells = {len(re.findall(r"(?<!\\)\|", x)) for x in rows}  # unescaped pipes per row
        assert len(cells) == 1, text
        assert "<script>" not in text and "&lt;script&gt;" in text
        assert "`t`" not in text and "*c*" not in text and "[l](u)" not in text


def test_latex_leaves_no_special_character_active() -> None:
    tex = escape.latex(HOSTILE)
    assert "^^" not in tex and r"\input" not in tex
    # Every backslash starts one of the printing commands; every special char is escaped.
    commands = "textbackslash|textasciicircum|textasciitilde|textless|textgreater|textbar"
    assert re.sub(rf"\\({commands})\{{\}}|\\[{{}}$&#_%]", "", tex).count("\\") == 0
    bare = re.sub(r"\\[a-z]+\{\}|\\[{}$&#_%]", "", tex)
    assert not TEX_SPECIALS & set(bare)


@pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
                    reason="pdflatex and pdftotext are not installed (texlive-latex-base, "
                           "poppler-utils)")
def test_latex_table_prints_the_name_literally(tmp_path: Path) -> None:
    net = hostile_net("n^^5c{x}$~ &#_%\\")
    body = config_table([net], "latex")
    doc = (r"\documentclass{article}\usepackage[T1]{fontenc}\usepackage{booktabs}"
           r"\begin{document}" + body + r"\end{document}")
    (tmp_path / "t.tex").write_text(doc)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-no-shell-escape", "t.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    text = subprocess.run(["pdftotext", "t.pdf", "-"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout
    assert "n^^5c{x}$~ &#_%\\" in text.replace("\u02dc", "~")


def test_html_escapes_names() -> None:
    net = hostile_net()
    for text in (summary.to_html(net), config_table([net], "html")):
        assert "<script>" not in text and "&lt;script&gt;" in text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydot's parser on new pyparsing
def test_dot_text_stays_valid_with_a_trailing_backslash() -> None:
    import pydot

    net = hostile_net("evil\\")
    text = D.to_dot(net).to_string()
    assert text.startswith('digraph "evil\\\\" {')
    graphs = pydot.graph_from_dot_data(text)
    assert graphs and len(graphs[0].get_nodes()) >= 3
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=True)


def test_control_characters_are_visible_everywhere() -> None:
    s = "x\x1b[31m\ry\u2028"
    for f in (escape.markdown, escape.latex, escape.html, escape.dot_html):
        out = f(s)
        assert "\x1b" not in out and "\r" not in out and "\u2028" not in out
        assert "\\x1b" in out.replace("\\textbackslash{}", "\\").replace("\\\\", "\\")
