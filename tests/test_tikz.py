"""TikZ figures: the text for every spec, folds and labels, and pdflatex where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import netdsl
from netdsl.errors import NetdslError
from netdsl.tikz import to_tikz

from .conftest import ROOT, SPECS

needs_tex = pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex is not installed (apt-get install texlive-latex-base texlive-pictures)")


def load(stem: str) -> netdsl.Network:
    return netdsl.load(ROOT / "specs" / f"{stem}.net")


def pdflatex(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.tex").write_text(text, encoding="utf-8")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", f"{name}.tex"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    return tmp_path / f"{name}.pdf"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_spec_gives_a_balanced_picture(spec: Path) -> None:
    tex = to_tikz(netdsl.load(spec), 1)
    assert tex.count("{") == tex.count("}")
    assert tex.count(r"\begin{tikzpicture}") == tex.count(r"\end{tikzpicture}") == 1
    assert tex.startswith(r"\documentclass{article}") and tex.endswith("\\end{document}\n")


def test_labels_are_the_papers_notation_with_shapes_on_edges() -> None:
    tex = to_tikz(load("resnet18"))
    assert r"\textbf{conv7-64/2}\\ +BN\\ +relu" in tex
    assert r"{64$\times$56$\times$56}" in tex  # an edge's tensor shape
    # the 5 identity shortcuts arc over their block: up from its input, down into the add; the
    # 3 projection shortcuts (downsample) run in a lane below
    skips = [x for x in tex.splitlines() if " |- " in x and " -| " in x]
    assert len(skips) == 5
    assert len(re.findall(r"\(n\d+\) at \([-\d.]+,-", tex)) == 3


def test_repeated_blocks_fold_and_branches_get_lanes() -> None:
    tex = to_tikz(load("resnet152"), 2)
    assert r"\textbf{layer3.1 \ldots{} layer3.35 $\times$35}" in tex
    g = to_tikz(load("googlenet"), 2)
    ys = {float(m[1]) for m in re.finditer(r"\(n\d+\) at \([-\d.]+,([-\d.]+)\)", g)}
    assert len(ys) >= 4  # four inception branches side by side
    frames = re.findall(r"north west:([^}]*)\}", g)
    assert frames.count("inception3a") == 1 and frames.count("aux1") == 1


def test_flat_style_fragment_and_no_aux() -> None:
    net = load("googlenet")
    flat = to_tikz(net, 1, style="flat", standalone=False, aux=False)
    assert not flat.startswith(r"\documentclass") and r"\usetikzlibrary{fit,backgrounds}" in flat
    assert "rotate=90" in flat and "aux" not in flat
    with pytest.raises(NetdslError, match="style"):
        to_tikz(net, style="round")


def test_hostile_names_are_escaped() -> None:
    net = netdsl.loads('network "x\\" "T^^5c{}$~\\input{a}"\ninput 4\nFC-2\n')
    tex = to_tikz(net)
    assert "^^5c" not in tex and r"\input{a}" not in tex and "x\\\n" not in tex


def test_cli_writes_tex(tmp_path: Path) -> None:
    from netdsl.cli import main

    out = tmp_path / "fig.tex"
    assert main(["draw", str(ROOT / "specs" / "lenet5.net"), "-o", str(out)]) == 0
    assert out.read_text().startswith(r"\documentclass")
    frag = tmp_path / "fig.txt"
    assert main(["draw", str(ROOT / "specs" / "lenet5.net"), "--format", "tikz", "--fragment",
                 "--style", "flat", "-o", str(frag)]) == 0
    assert frag.read_text().startswith("% \\input")


@needs_tex
@pytest.mark.parametrize("stem, depth, style", [("resnet18", None, "blocks"),
                                                ("googlenet", 2, "blocks"),
                                                ("densenet121", 1, "flat")])
def test_standalone_figure_compiles(tmp_path: Path, stem: str, depth: int | None,
                                    style: str) -> None:
    pdf = pdflatex(tmp_path, stem, to_tikz(load(stem), depth, style=style))
    assert pdf.read_bytes().startswith(b"%PDF")


@needs_tex
def test_fragment_inputs_into_a_document(tmp_path: Path) -> None:
    (tmp_path / "fig.tex").write_text(to_tikz(load("lenet5"), standalone=False))
    doc = (r"\documentclass{article}\usepackage{tikz}\begin{document}"
           r"\begin{figure}\input{fig}\caption{LeNet-5}\end{figure}\end{document}")
    assert pdflatex(tmp_path, "doc", doc).stat().st_size > 1000


def test_readme_figure_is_current() -> None:
    """The README's TikZ figure: its .tex is what the README's command writes today."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^netdsl draw (\S+) (.*)-o (docs/\S+\.tex)$", readme, re.M)
    assert m, "README lost its TikZ figure command"
    spec, args, out = m[1], m[2].split(), m[3]
    net = netdsl.load(ROOT / spec)
    depth = int(args[args.index("--depth") + 1]) if "--depth" in args else None
    assert (ROOT / out).read_text(encoding="utf-8") == to_tikz(net, depth).replace(
        str(ROOT / spec), spec)
    assert (ROOT / out).with_suffix(".png").stat().st_size > 10_000
    assert f"]({Path(out).with_suffix('.png').as_posix()})" in readme



def test_sample_papers_figure_is_current() -> None:
    net = netdsl.load(f"{ROOT}/docs/paper.tex#1")
    tex = to_tikz(net, standalone=False).replace(f"{ROOT}/", "")
    assert (ROOT / "docs" / "vgg11-figure.tex").read_text(encoding="utf-8") == tex


def test_tikz_format_without_output_writes_tex(tmp_path: Path, monkeypatch) -> None:
    """The default file of `--format tikz` is TeX source, named so that pdflatex takes it."""
    from netdsl.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["draw", str(ROOT / "specs" / "lenet5.net"), "--format", "tikz"]) == 0
    assert (tmp_path / "lenet5.tex").read_text().startswith(r"\documentclass")
