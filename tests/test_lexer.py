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


def _kinds(text: str) -> list[tuple[str, object]]:
    return [(v, t) for t, v in NetdslLexer().get_tokens(text) if v.strip()]


@pytest.mark.parametrize(("text", "word", "want"), [
    ("dense-10\n", "dense", Name.Builtin),  # an FC alias, not the construct
    ("dense 10\n", "dense", Name.Builtin),
    ("dense { bn-relu; conv3-32 } ×6\n", "dense", Keyword),
    ("concat from a, b\n", "concat", Name.Builtin),  # the op
    ("concat { conv1-64 | conv3-64 }\n", "concat", Keyword),  # the construct
    ("residual shortcut=A { conv3-16 }\n", "residual", Keyword),
    ("residual { bn } shortcut { conv1-64 }\n", "shortcut", Keyword),
    ("scale = FC-10\n", "scale", Name.Variable),
])
def test_constructs_only_where_they_open_a_body(text: str, word: str, want: object) -> None:
    assert dict(_kinds(text))[word] is want


def test_keywords_come_from_the_registry_and_the_construct_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from netdsl import ops
    from netdsl.constructs import CONSTRUCTS

    for key in ops.REGISTRY:
        assert dict(_kinds(f"{key}\n"))[key] is Name.Builtin, key
    for key in CONSTRUCTS:
        assert dict(_kinds(f"{key} {{ relu }}\n"))[key] is Keyword, key
    # a new op or construct is highlighted once registered, without touching the lexer
    assert dict(_kinds("zzlayer-8\n"))["zzlayer"] is Name
    monkeypatch.setitem(ops.REGISTRY, "zzlayer", ops.OPS["relu"])
    monkeypatch.setitem(CONSTRUCTS, "zzblock", CONSTRUCTS["scale"])
    assert dict(_kinds("zzlayer-8\n"))["zzlayer"] is Name.Builtin
    assert dict(_kinds("zzblock { relu }\n"))["zzblock"] is Keyword


def test_fixed_words_are_the_grammars() -> None:
    import re

    from netdsl.lexer import CONTROL, HEADER, WORDS
    from netdsl.parser import grammar_text

    literals = set(re.findall(r'"([a-z]+)"', grammar_text()))
    assert set(HEADER) | set(WORDS) | set(CONTROL) == literals
