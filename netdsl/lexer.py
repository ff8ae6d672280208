"""A Pygments lexer for netdsl specs, so minted (LaTeX), Sphinx and MkDocs highlight listings.

Registered as the ``pygments.lexers`` entry point ``netdsl`` in pyproject.toml: once netdsl is
installed, ``pygmentize -l netdsl spec.net``, ``\\begin{minted}{netdsl}`` and fenced
````` ```netdsl ````` blocks just work. No list of layers or constructs is kept here: layer
keywords come from the op registry (``conv3``, ``conv1x7``, ``FC`` and every alias) and
construct keywords from the construct table, so a new op or construct is highlighted as soon as
it is registered. A construct keyword counts as one only where it opens a body (``dense { … }``):
``dense-10`` is a layer (an FC alias) and ``concat from a, b`` the op. Only the grammar's own
fixed words (``HEADER``, ``WORDS``) are listed, and a test checks them against the grammar.

Pygments is optional: this module is imported only by Pygments itself and by the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pygments.lexer import RegexLexer, bygroups
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

HEADER = ("network", "input", "param", "cite", "init", "activation", "include", "default",
          "block")
WORDS = ("from", "on", "off")
CONTROL = ("if", "else", "and", "or", "not")  # conditions in blocks
# After a construct keyword: its options (no -C or /S suffix), then the '{' of its body.
_OPENS_BODY = re.compile(r"(?![-/])(?:[^;\n{}|\\]|\\\r?\n)*\{")


def _word(lexer: Any, match: Any) -> Iterator[tuple[int, Any, str]]:
    """An identifier: a construct (per the construct table), a layer keyword (per the op
    registry), or a plain name."""
    from . import ops  # lazy: Pygments loads lexers by entry point, before anything else
    from .constructs import CONSTRUCTS

    word = match.group(0)
    low = word.lower()
    heads = low in CONSTRUCTS or any(low == c.follower for c in CONSTRUCTS.values())
    if heads and _OPENS_BODY.match(match.string, match.end()):
        kind = Keyword
    elif word in CONTROL:
        kind = Keyword
    elif low in WORDS:
        kind = Keyword.Pseudo
    elif ops.lookup(word)[0] is not None:
        kind = Name.Builtin
    else:
        kind = Name
    yield match.start(), kind, word


def _called(lexer: Any, match: Any) -> Iterator[tuple[int, Any, str]]:
    """A name before '(': a built-in function of arithmetic (per the evaluator's table) or a
    block call or definition."""
    from .evaluate import FUNCTIONS

    word = match.group(0)
    yield match.start(), Name.Builtin if word in FUNCTIONS else Name.Function, word


class NetdslLexer(RegexLexer):
    """Lexer for netdsl network specs (``conv3-64 ×2; maxpool; FC-4096; soft-max``)."""

    name = "netdsl"
    aliases = ["netdsl"]
    filenames = ["*.net"]
    mimetypes = ["text/x-netdsl"]
    url = "https://github.com/netdsl/netdsl"

    tokens = {
        "root": [
            (r"[ \t\f]+", Whitespace),
            (r"\\\r?\n", Whitespace),  # line continuation
            (r"\r?\n", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"[^"\n]*"', String.Double),
            (r"^(\s*)(input)(\s+)([0-9]+(?:\s*[x×]\s*[0-9]+)*)",  # input 3x224x224
             bygroups(Whitespace, Keyword.Declaration, Whitespace, Number)),
            (r"(^|;)(\s*)([A-Za-z_]\w*)(\s*)(=)(?!=)",  # a statement's target: fc = FC-10
             bygroups(Punctuation, Whitespace, Name.Variable, Whitespace, Operator)),
            (r"^(\s*)(" + "|".join(HEADER) + r")\b", bygroups(Whitespace, Keyword.Declaration)),
            (r"(?!(?:if|else|not|and|or)\()[A-Za-z_]\w*(?=\()", _called),  # a block call, min(…)
            (r"[A-Za-z_]\w*(?=\s*=(?!=))", Name.Attribute),  # an option: bias=off, shortcut=B
            (r"(?i)soft-max\b", Name.Builtin),
            (r"(×|x(?=\s*[0-9(]))", Operator),  # repetition: ×3, x3
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"[A-Za-z_]\w*", _word),
            (r"//|==|!=|<=|>=|[-+*/%=|<>]", Operator),
            (r"[;,{}()\[\]]", Punctuation),
            (r".", Text),  # anything else is the parser's business, not an error token
        ],
    }
