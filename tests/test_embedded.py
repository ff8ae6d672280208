"""Specs embedded in Markdown and LaTeX documents: found, checked, addressed as doc#N."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import netdsl
from netdsl.embedded import extract, specs_of, split_ref
from netdsl.errors import NetdslError

from .conftest import ROOT


def netdsl_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netdsl", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize("doc", ["docs/paper.md", "docs/paper.tex"])
def test_sample_papers_pass_check(doc: str) -> None:
    r = netdsl_cli("check", doc)
    assert r.returncode == 0, r.stderr
    n = len(specs_of(str(ROOT / doc)))
    assert n >= 1 and r.stdout.count(": ok (") == n
    assert f"{doc}#1: ok" in r.stdout


def test_sample_paper_specs_are_the_networks_they_name() -> None:
    vgg = netdsl.load(ROOT / "docs" / "paper.md#1")
    assert vgg.params == netdsl.load(ROOT / "specs" / "vgg16.net").params
    resnet = netdsl.load(ROOT / "docs" / "paper.md#2")  # includes ../specs/lib/resnet.net
    assert resnet.params == netdsl.load(ROOT / "specs" / "resnet20.net").params


def test_summary_addresses_the_nth_spec() -> None:
    r = netdsl_cli("summary", "docs/paper.md#2")
    assert r.returncode == 0 and r.stdout.startswith("ResNet-20 (CIFAR-10)")
    r = netdsl_cli("summary", "docs/paper.md")
    assert r.returncode == 1 and "say which" in r.stderr and "docs/paper.md#1" in r.stderr
    r = netdsl_cli("summary", "docs/paper.md#9")
    assert r.returncode == 1 and "no embedded spec #9" in r.stderr


MD = """\
# Paper

Some text.

```netdsl
input 3x32x32
conv3-16; FC-10
```

```python
not a spec {{{
```

~~~ netdsl title="second"
input 3x32x32
conv3-16
maxpol
~~~
"""


def test_markdown_errors_carry_document_line_numbers(tmp_path: Path) -> None:
    doc = tmp_path / "p.md"
    doc.write_text(MD)
    specs = extract(MD, str(doc))
    assert [s.line_offset for s in specs] == [5, 14]
    r = netdsl_cli("check", str(doc))
    assert r.returncode == 1
    assert f"{doc}#1: ok" in r.stdout
    assert f"{doc}:17:1: error: unknown layer 'maxpol'" in r.stderr
    assert "  17 | maxpol" in r.stderr


TEX = r"""\documentclass{article}
\begin{document}
% \begin{netdsl} in a comment is not a listing
\begin{netdsl}
input 3x32x32
conv3-16; FC-10
\end{netdsl}
\begin{minted}[fontsize=\small]{netdsl}
input 3x32x32
conv3-16 groups 5; FC-10
\end{minted}
\begin{minted}{python}
x = 1
\end{minted}
\end{document}
"""


def test_latex_environments_and_minted(tmp_path: Path) -> None:
    doc = tmp_path / "p.tex"
    doc.write_text(TEX)
    specs = extract(TEX, str(doc))
    assert len(specs) == 2 and specs[1].text.startswith("input 3x32x32\nconv3-16 groups 5")
    r = netdsl_cli("check", str(doc))
    assert r.returncode == 1 and f"{doc}#1: ok" in r.stdout
    assert f"{doc}:10:" in r.stderr  # the minted listing's second line


def test_includes_resolve_relative_to_the_document(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.net").write_text("block two(c) { conv3-c; conv3-c }\n")
    doc = tmp_path / "sub.md"
    doc.write_text('```netdsl\ninclude "lib/blocks.net"\ninput 3x8x8\ntwo(4)\n```\n')
    net = netdsl.load(f"{doc}#1")
    assert net.params == (3 * 9 * 4 + 4) + (4 * 9 * 4 + 4)
    assert netdsl.load(doc).params == net.params  # one spec: no #N needed


def test_unclosed_listing_and_no_specs(tmp_path: Path) -> None:
    doc = tmp_path / "u.md"
    doc.write_text("text\n```netdsl\ninput 3x8x8\n")
    with pytest.raises(NetdslError, match="no closing fence"):
        specs_of(str(doc))
    empty = tmp_path / "e.md"
    empty.write_text("# nothing here\n")
    r = netdsl_cli("check", str(empty))
    assert r.returncode == 0 and "no embedded netdsl specs" in r.stderr
    with pytest.raises(NetdslError, match="no embedded netdsl spec"):
        netdsl.load(empty)


def test_split_ref() -> None:
    assert split_ref("docs/paper.md#2") == ("docs/paper.md", 2)
    assert split_ref("a.tex#10") == ("a.tex", 10)
    assert split_ref("specs/x#1.net") == ("specs/x#1.net", None)
    assert split_ref("paper.md") == ("paper.md", None)


def test_readme_listings_are_checked() -> None:
    r = netdsl_cli("check", "README.md")
    assert r.returncode == 0, r.stderr
    assert "README.md#1: ok" in r.stdout


def test_fragments_and_foreign_fences_are_skipped() -> None:
    doc = ("````markdown\n```netdsl\nnot checked: shown inside a Markdown example\n```\n````\n"
           "```netdsl fragment\nconv3-64 ×2  # an excerpt\n```\n"
           "```{.netdsl}\ninput 3x8x8\nconv3-4\n```\n")
    specs = extract(doc, "x.md")
    assert [s.text for s in specs] == ["input 3x8x8\nconv3-4\n"]
    assert specs[0].line_offset == 9
