"""The Pygments lexer: every spec tokenizes without error tokens; the entry point is declared."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pygments = pytest.importorskip("pygments", reason="pygments is in the dev and docs extras")
from pygments.token import Error, Keyword, Name, Number, Operator  # noqa: E402

from netdsl.lexer import NetdslLexer  # noqa: E402

from .conftest import ROOT  # noqa: E402

ALL = sorted((ROOT / "specs").rglob("*.net"))


@pytest.mark.parametrize("spec", ALL, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_spec_tokenizes_without_errors(spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    toks = list(NetdslLexer().get_tokens(text))
    assert not [t for t in toks if t[0] in Error]
    assert "".join(v for _, v in toks) == text  # nothing dropped (specs end with a newline)


def test_token_classes() -> None:
    text = "input 3x224x224\nfc = FC-4096 +relu; conv1x7-128 ×2; residual { bn } shortcut=B\n"
    toks = [(t, v) for t, v in NetdslLexer().get_tokens(text) if v.strip()]
    kinds = dict((v, t) for t, v in toks)
    assert kinds["input"] in Keyword.Declaration and kinds["3x224x224"] in Number
    assert kinds["fc"] in Name.Variable and kinds["FC"] in Name.Builtin
    assert kinds["conv1x7"] in Name.Builtin and kinds["relu"] in Name.Builtin
    assert kinds["×"] in Operator and kinds["residual"] in Keyword
    assert kinds["shortcut"] in Name.Attribute


def test_entry_point_is_declared() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ep = meta["project"]["entry-points"]["pygments.lexers"]["netdsl"]
    module, _, cls = ep.partition(":")
    assert (module, cls) == ("netdsl.lexer", "NetdslLexer")
    assert any("pygments" in d for d in meta["project"]["optional-dependencies"]["dev"])


def test_highlights_through_pygments() -> None:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    html = highlight("conv3-64 ×2; maxpool  # stage 1\n", NetdslLexer(), HtmlFormatter())
    assert 'class="nb">conv3<' in html and 'class="c1"># stage 1<' in html
