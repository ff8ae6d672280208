"""``netdsl fmt``: print a spec in the canonical layout, comments kept.

The formatter works on the token stream of a full parse (Lark ``keep_all_tokens``), so it knows
what every token is (``x2`` a repetition, ``3x224x224`` a shape) and which rule holds it;
comments come from a lexer callback. The author's line structure is kept, as gofmt keeps it:
one output line per input line (``conv3-64 ×2; maxpool`` stays a stage on one line). What
changes is whitespace only:

* four spaces per open ``{`` or ``(``; a line starting with ``|`` (the next concat branch)
  sits two spaces left of its branch body;
* the papers' compact suffixes without spaces (``conv3-64/2``, ``conv1-(4*c)``), ``key=value``
  options, ``×3`` repetitions and ``+bn`` chain links; ``; `` between statements and
  ``, `` between arguments; redundant ``;`` (at the end of a line, doubled) are dropped;
* at most one blank line in a row, none at either end of a file or just inside braces;
* trailing comments of consecutive code lines start in one column, two spaces after the
  longest code line that has one; full-line comments take their line's indentation.

Formatting is idempotent, and a formatted spec parses to the same network.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Tree, UnexpectedInput

from .errors import NetdslError
from .parser import grammar_text, parse_text

INDENT = 4
_OPEN = {"{", "(", "[", "LBRACE", "LPAR", "LSQB"}
_CLOSE = ("}", ")", "]")
_BINARY_RULES = {"add", "sub", "mul", "div", "mod"}
_TIGHT_RULES = {"channels", "stride"}  # conv3-64/2: the suffix is written without spaces
_KEYVAL_RULES = {"keyval", "kwarg", "param_decl"}


class _Comments:
    """Collects COMMENT tokens during a parse (Lark calls back for ignored terminals too)."""

    def __init__(self) -> None:
        self.items: list[Token] = []

    def __call__(self, tok: Token) -> Token:
        self.items.append(tok)
        return tok


_COMMENTS = _Comments()


@functools.cache
def _lark() -> Lark:
    return Lark(grammar_text(), parser="lalr", lexer="contextual", maybe_placeholders=False,
                keep_all_tokens=True, lexer_callbacks={"COMMENT": _COMMENTS})


@dataclass(frozen=True, slots=True)
class _Tok:
    """A token with the grammar rules that hold it (innermost first)."""

    text: str
    type: str
    rules: tuple[str, ...]
    line: int
    col: int

    def in_rule(self, names: set[str]) -> bool:
        return bool(names.intersection(self.rules))


def _tokens(tree: Tree[Token]) -> list[_Tok]:
    """The tree's tokens in order, each with its enclosing rules (iterative: no recursion)."""
    out: list[_Tok] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(tree, ())]
    while stack:
        node, rules = stack.pop()
        if isinstance(node, Tree):
            here = (str(node.data), *rules)
            stack += [(c, here) for c in reversed(node.children)]
        elif isinstance(node, Token):
            text = str(node)
            if node.type == "SHAPE":
                text = "".join(text.split())
            out.append(_Tok(text, node.type, rules, node.line or 0, node.column or 0))
    return out


def _space(p: _Tok, t: _Tok) -> bool:
    """Whether one space separates ``p`` and the next token ``t`` on a line."""
    if t.text in (",", ";", ")", "]") or p.text in ("(", "[") or p.type == "CALLNAME":
        return False
    if p.text == ",":
        return True
    if t.in_rule(_TIGHT_RULES) and t.rules[0] != "stmt":  # the suffix and its expression
        return False
    if p.type == "TIMES" or (p.text == "+" and p.rules[0] == "chain") or p.rules[0] == "neg":
        return False
    if (t.text == "=" and t.rules[0] in _KEYVAL_RULES) or \
            (p.text == "=" and p.rules[0] in _KEYVAL_RULES):
        return False
    if t.rules[0] in _BINARY_RULES and t.type != "NAME" and t.type != "NUMBER":
        return False  # expressions are written compactly: 4*c, c/16
    if p.rules[0] in _BINARY_RULES and p.type not in ("NAME", "NUMBER", "RPAR"):
        return False
    if t.rules[0] == "atom" and t.text == "(" and p.rules[0] in _BINARY_RULES:
        return False
    return True


def _is_sep(t: _Tok) -> bool:
    return t.text == ";"


def _line_code(toks: list[_Tok]) -> str:
    """One line's tokens joined with the spacing rules; redundant ``;`` dropped."""
    kept: list[_Tok] = []
    for i, t in enumerate(toks):
        if _is_sep(t):
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            prev = kept[-1] if kept else None
            if prev is None or nxt is None or _is_sep(nxt) or prev.text in ("{", "|", "(", "[") \
                    or nxt.text in ("}", "|", ")", "]"):
                continue
        kept.append(t)
    out = ""
    for i, t in enumerate(kept):
        if i and _space(kept[i - 1], t):
            out += " "
        out += t.text
    return out


def format_text(text: str, path: str = "<string>", line_offset: int = 0) -> str:
    """The spec ``text`` in canonical layout. Raises NetdslError on a syntax error."""
    parse_text(text, path, line_offset)  # the parser's own located errors for bad specs
    _COMMENTS.items = []
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:  # pragma: no cover - parse_text raised already
        raise NetdslError(f"syntax error at line {e.line}", path=path) from None
    comments = [_Tok(str(c).rstrip(), "COMMENT", (), c.line or 0, c.column or 0)
                for c in _COMMENTS.items]
    stream = sorted(_tokens(tree) + comments, key=lambda t: (t.line, t.col))

    # Logical lines: split at newline tokens (a backslash continuation joins physical lines).
    lines: list[list[_Tok]] = [[]]
    for t in stream:
        if t.type == "_NL":
            lines.append([])
        else:
            lines[-1].append(t)

    out: list[tuple[str, str, str | None]] = []  # (indent, code, trailing comment)
    depth = 0
    for toks in lines:
        comment = toks[-1].text if toks and toks[-1].type == "COMMENT" else None
        code = toks[:-1] if comment is not None else toks
        lead = 0
        while lead < len(code) and code[lead].text in _CLOSE:
            lead += 1
        level = max(0, depth - lead)
        for t in code:
            if t.text in _OPEN or t.type == "CALLNAME":
                depth += 1
            elif t.text in _CLOSE:
                depth = max(0, depth - 1)
        body = _line_code(code)
        indent = " " * (INDENT * level)
        if code and code[0].text == "|":
            indent = " " * max(0, INDENT * level - 2)
        out.append((indent, body, comment))
    return _layout(out)


def _layout(lines: list[tuple[str, str, str | None]]) -> str:
    """Blank-line rules and trailing-comment alignment; the final text."""
    kept: list[tuple[str, str, str | None]] = []
    for ind, code, com in lines:
        blank = not code and com is None
        if blank and (not kept or _is_blank(kept[-1]) or kept[-1][1].endswith("{")):
            continue
        if code.startswith("}") and kept and _is_blank(kept[-1]):
            kept.pop()
        kept.append((ind, code, com))
    while kept and _is_blank(kept[-1]):
        kept.pop()
    text: list[str] = []
    i = 0
    while i < len(kept):
        j = i
        while j < len(kept) and kept[j][1]:
            j += 1
        if j > i:  # a run of code lines: their trailing comments share one column
            col = max((len(ind) + len(code) for ind, code, com in kept[i:j] if com is not None),
                      default=0) + 2
            for ind, code, com in kept[i:j]:
                text.append(f"{ind}{code}" if com is None else
                            f"{ind}{code}".ljust(col) + com)
            i = j
            continue
        ind, code, com = kept[i]
        text.append(f"{ind}{code}" if code else (f"{ind}{com}" if com is not None else ""))
        i += 1
    return "\n".join(text) + "\n" if text else ""


def _is_blank(line: tuple[str, str, str | None]) -> bool:
    return not line[1] and line[2] is None


def format_document(text: str, path: str) -> str:
    """A Markdown or LaTeX document with each embedded spec formatted in place."""
    from .embedded import extract

    lines = re.split(r"(?<=\n)", text)  # numbered as extract numbers them: at \n only
    for spec in reversed(extract(text, path)):
        n = spec.text.count("\n")
        pretty = format_text(spec.text, path, spec.line_offset).split("\n")[:-1]
        # a fence inside a list item keeps its indentation
        lines[spec.line_offset:spec.line_offset + n] = [
            (spec.indent + ln if ln else ln) + "\n" for ln in pretty]
    return "".join(lines)


def format_source(text: str, path: str) -> str:
    """``format_document`` for Markdown/LaTeX paths, else ``format_text``; a file with
    Windows line endings (CRLF) keeps them."""
    from .embedded import is_document

    crlf = text.count("\r\n") * 2 > text.count("\n")  # a Windows file stays one
    text = text.replace("\r\n", "\n")
    out = format_document(text, path) if is_document(path) else format_text(text, path)
    return out.replace("\n", "\r\n") if crlf else out


def tokens_for_check(text: str) -> list[tuple[str, str]]:
    """The (type, text) tokens of a spec, without newlines and separators: what formatting
    must leave unchanged. Used by the tests."""
    _COMMENTS.items = []
    tree = _lark().parse(text)
    toks: list[Any] = [(t.type, t.text) for t in _tokens(tree) if t.type != "_NL"
                       and not _is_sep(t)]
    return toks + [("COMMENT", str(c).rstrip()) for c in _COMMENTS.items]
