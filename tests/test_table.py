"""Configuration tables: VGG's Table 1 reproduced from the six specs, in three formats."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import netdsl
from netdsl.table import build_table, config_table, weight_depth

from .conftest import ROOT

VGG = ["vgg11", "vgg11-lrn", "vgg13", "vgg16-c", "vgg16", "vgg19"]
LABELS = ["A", "A-LRN", "B", "C", "D", "E"]
TABLE_ARGS = [*(f"specs/{s}.net" for s in VGG), "--labels", ",".join(LABELS)]

# The paper's Table 1 as the notes transcribe it: per stage, each column's layers; "*" = bold.
PAPER_STAGES = [
    ["conv3-64", "conv3-64 *LRN", "conv3-64 *conv3-64", "conv3-64 conv3-64",
     "conv3-64 conv3-64", "conv3-64 conv3-64"],
    ["conv3-128", "conv3-128", "conv3-128 *conv3-128", "conv3-128 conv3-128",
     "conv3-128 conv3-128", "conv3-128 conv3-128"],
    ["conv3-256 conv3-256", "conv3-256 conv3-256", "conv3-256 conv3-256",
     "conv3-256 conv3-256 *conv1-256", "conv3-256 conv3-256 *conv3-256",
     "conv3-256 conv3-256 conv3-256 *conv3-256"],
    ["conv3-512 conv3-512", "conv3-512 conv3-512", "conv3-512 conv3-512",
     "conv3-512 conv3-512 *conv1-512", "conv3-512 conv3-512 *conv3-512",
     "conv3-512 conv3-512 conv3-512 *conv3-512"],
    ["conv3-512 conv3-512", "conv3-512 conv3-512", "conv3-512 conv3-512",
     "conv3-512 conv3-512 *conv1-512", "conv3-512 conv3-512 *conv3-512",
     "conv3-512 conv3-512 conv3-512 *conv3-512"],
]


def netdsl_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=ROOT)


def vgg_nets() -> list[netdsl.Network]:
    return [netdsl.load(ROOT / "specs" / f"{s}.net") for s in VGG]


def test_vgg_table_is_the_papers_table_1() -> None:
    t = build_table(vgg_nets(), LABELS)
    assert t.weight_layers == (11, 11, 13, 16, 16, 19)
    assert t.input.span == "input (224 × 224 RGB image)"
    stages = [r for r in t.rows if r.span is None]
    got = [[" ".join(("*" if new else "") + s for s, new in cell) for cell in r.cells]
           for r in stages]
    assert got == PAPER_STAGES
    spans = [r.span for r in t.rows if r.span is not None]
    assert spans == ["maxpool"] * 5 + ["FC-4096", "FC-4096", "FC-1000", "soft-max"]
    # the row order: stage, maxpool, stage, maxpool, …, then the classifier
    assert [r.span or "stage" for r in t.rows][:10] == ["stage", "maxpool"] * 5
    # parameter footer: the paper's Table 2 (133, 133, 133, 134, 138, 144 million)
    assert [round(p / 1e6) for p in t.params] == [133, 133, 133, 134, 138, 144]


def test_markdown_table_matches_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = list(re.finditer(r"<!-- netdsl table (.*?) -->\n(.*?)<!-- /netdsl table -->",
                             readme, re.S))
    assert len(found) == 2, "README lost its generated VGG or ResNet table"
    for m in found:
        r = netdsl_cli("table", *m[1].split())
        assert r.returncode == 0, r.stderr
        assert m[2] == r.stdout, "README table is stale: regenerate it with the command it names"


@pytest.mark.parametrize("doc, args", [
    ("docs/vgg-table.tex", ["table", *TABLE_ARGS, "--format", "latex"]),
    ("docs/vgg11-layers.tex", ["summary", "docs/paper.tex#1", "--format", "latex"]),
])
def test_generated_latex_in_docs_is_current(doc: str, args: list[str]) -> None:
    r = netdsl_cli(*args)
    assert r.returncode == 0, r.stderr
    assert (ROOT / doc).read_text(encoding="utf-8") == r.stdout


def test_latex_uses_booktabs_and_is_balanced() -> None:
    tex = config_table(vgg_nets(), "latex", LABELS)
    assert tex.startswith(r"\begin{tabular}{cccccc}") and r"\toprule" in tex
    assert r"\bottomrule" in tex and r"\hline" not in tex
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}")
    assert tex.count("{") == tex.count("}")
    for line in tex.splitlines()[4:-2]:  # every row has 6 cells or spans all 6
        if line.endswith(r"\\") and r"\multicolumn{6}" not in line:
            assert line.count(" & ") == 5, line
    assert r"\textbf{LRN}" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (apt-get install texlive-latex-recommended)")
def test_sample_paper_compiles_with_pdflatex(tmp_path: Path) -> None:
    for f in (ROOT / "docs").glob("*.tex"):
        shutil.copy(f, tmp_path)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000


def test_html_table_is_well_formed() -> None:
    out = config_table(vgg_nets(), "html", LABELS)

    class Check(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag != "br":
                self.stack.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert self.stack.pop() == tag

    p = Check()
    p.feed(out)
    assert p.stack == []
    assert out.count("<tr>") + out.count("<tr ") == 4 + 5 + 5 + 4 + 1
    assert "<b>LRN</b>" in out and 'colspan="6"' in out


def test_markdown_rows_have_one_cell_per_network() -> None:
    md = config_table(vgg_nets()[:2], "markdown")
    lines = md.splitlines()
    assert lines[0] == "| vgg11 | vgg11-lrn |"
    assert all(line.count(" | ") == 1 for line in lines if not line.startswith("|:"))
    assert "conv3-64<br>**LRN**" in md


def test_networks_of_different_depth_and_scopes_align() -> None:
    nets = [netdsl.load(ROOT / "specs" / f"{s}.net") for s in ("lenet5", "resnet18")]
    t = build_table(nets)
    assert all(len(r.cells) == 2 for r in t.rows if r.span is None)
    md = config_table(nets, "markdown")
    assert r"layer1: \[conv3-64, conv3-64\] ×2" in md  # a named scope is one entry


def test_resnet_stages_read_like_the_papers_table_1() -> None:
    nets = [netdsl.load(ROOT / "specs" / f"resnet{d}.net") for d in (18, 34, 50, 101, 152)]
    t = build_table(nets)
    blocks = next(r for r in t.rows if r.span is None and len(r.cells[0]) == 4)
    layer3 = [cell[2][0] for cell in blocks.cells]
    assert layer3 == ["layer3: [conv3-256, conv3-256] ×2", "layer3: [conv3-256, conv3-256] ×6",
                      "layer3: [conv1-256, conv3-256, conv1-1024] ×6",
                      "layer3: [conv1-256, conv3-256, conv1-1024] ×23",
                      "layer3: [conv1-256, conv3-256, conv1-1024] ×36"]
    assert t.weight_layers == (18, 34, 50, 101, 152)  # the longest path: no shortcut convs


@pytest.mark.parametrize("stem, depth", [("googlenet", 22), ("densenet121", 121),
                                         ("resnet1202", 1202), ("alexnet", 8),
                                         ("preact-resnet1001", 1001), ("lenet5", 5)])
def test_weight_depth_is_the_papers_layer_count(stem: str, depth: int) -> None:
    assert weight_depth(netdsl.load(ROOT / "specs" / f"{stem}.net")) == depth


def test_table_cli_errors() -> None:
    r = netdsl_cli("table", "specs/vgg11.net", "specs/vgg13.net", "--labels", "A")
    assert r.returncode == 2 and "--labels" in r.stderr
    r = netdsl_cli("table", "specs/vgg11.net", "specs/nope.net")
    assert r.returncode == 1 and "no such file" in r.stderr
