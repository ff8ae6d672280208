"""Syntax errors: Lark's exceptions as located NetdslErrors, and recovery after each one.

Lark's LALR parser calls ``Recovery`` (its ``on_error`` hook) at every syntax error; like
yacc's ``error`` token, it skips to the next separator and pops parser states until one
accepts it, so the parse goes on and independent errors are reported together.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from lark import Token, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .charset import describe
from .errors import NetdslError, SourceFile, SourceLoc, misplaced_else
from .limits import MAX_ERRORS

_SEPARATORS = ("_NL", "SEMICOLON")
_CLOSERS = {"}": "RBRACE", ")": "RPAR", "]": "RSQB", "|": "VBAR"}

# What users call the grammar's terminals in error messages.
_TERMINAL_NAMES = {
    "NAME": "a name", "NETNAME": "a network name", "CALLNAME": "a block call",
    "NUMBER": "a number", "SHAPE": "a shape like 3x224x224",
    "STRING": "a quoted string", "TIMES": "'×N'", "_NL": "a new line", "SEMICOLON": "';'",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "VBAR": "'|'",
    "LSQB": "'['", "RSQB": "']'", "COMPARE": "a comparison (==, !=, <, <=, >, >=)",
    "MINUS": "'-'", "SLASH": "'/'", "PLUS": "'+'", "EQUAL": "'='", "COMMA": "','",
    "$END": "the end of the file", "SOFTMAX": "soft-max",
}


def collect(errors: list[NetdslError], dropped: int = 0, stopped: bool = False) -> NetdslError:
    """Several independent errors as one: the first, with the others ``related``, in order."""
    files: dict[str, int] = {}
    for e in errors:
        files.setdefault(e.loc.src.path if e.loc else e.path or "", len(files))

    def key(e: NetdslError) -> tuple[int, int, int]:
        path = e.loc.src.path if e.loc else e.path or ""
        return (files[path], e.loc.line, e.loc.col) if e.loc else (files[path], 0, 0)

    errors = sorted(errors, key=key)
    first, rest = errors[0], errors[1:MAX_ERRORS]
    dropped += len(errors[MAX_ERRORS:])
    first.related = [*first.related, *rest]
    if dropped or stopped:
        where = first.loc.src.path if first.loc else first.path
        first.related.append(NetdslError(f"more errors not shown: checking stops after "
                                         f"{MAX_ERRORS}", path=where, hint="fix these first"))
    return first


class Recovery:
    """Lark ``on_error`` handler: record the error, then resynchronize at a separator.

    Like yacc's ``error`` token: the text up to the next ``;``/new line at bracket depth 0
    (or an unmatched ``}``, ``)``, ``|``) is skipped, and parser states are popped until one
    accepts that separator. Skipping whole bracketed regions keeps a broken line from
    leaving an unbalanced ``{`` behind, which would report bogus follow-on errors.
    """

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.errors: list[NetdslError] = []
        self.dropped = 0
        self._last: tuple[int, int] = (-1, -1)

    def record(self, e: UnexpectedInput) -> None:
        key = (e.line or 0, e.column or 0)
        if key == self._last:  # the final re-raise of an error we already recorded
            return
        self._last = key
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(syntax_error(e, self.src))
        else:
            self.dropped += 1

    def __call__(self, e: UnexpectedInput) -> bool:
        if (e.line or 0, e.column or 0) == self._last:
            return False  # no progress since the last error: stop rather than loop
        self.record(e)
        ip = getattr(e, "interactive_parser", None)
        if ip is None or len(self.errors) >= MAX_ERRORS:
            return False
        if isinstance(e, UnexpectedToken) and e.token.type == "$END":
            return False
        state = ip.lexer_thread.state
        text = state.text.text if hasattr(state.text, "text") else state.text
        pos = state.line_ctr.char_pos
        if isinstance(e, UnexpectedToken) and e.token.type in _SEPARATORS:
            return self._resync(ip, e.token.type, feed=e.token)
        depth = 1 if isinstance(e, UnexpectedToken) and e.token.type in ("LBRACE", "LPAR", "LSQB",
                                                                         "CALLNAME") else 0
        start = pos + 1 if isinstance(e, UnexpectedCharacters) else pos
        stop, kind = _skip(text, start, depth)
        if kind is None:
            return False
        state.line_ctr.feed(text[pos:stop])
        return self._resync(ip, kind)

    @staticmethod
    def _resync(ip: Any, kind: str, feed: Token | None = None) -> bool:
        """Pop parser states until one accepts a ``kind`` token (and feed it, if given)."""
        ps = ip.parser_state
        probe = Token(kind, "\n" if kind == "_NL" else "")
        while len(ps.state_stack) > 1:
            trial = ip.copy(deepcopy_values=False)
            try:
                trial.feed_token(probe)
            except UnexpectedInput:
                ps.state_stack.pop()
                ps.value_stack.pop()
                continue
            if feed is not None:
                ip.feed_token(feed)
            return True
        return False


def _skip(text: str, i: int, depth: int) -> tuple[int, str | None]:
    """Where skipping from ``i`` stops: the next separator at depth 0, or an unmatched closer."""
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            i = n if j < 0 else (j + 1 if nl < 0 or j < nl else nl)
            continue
        if ch in "{([":
            depth += 1
        elif ch in "})]|":
            if depth == 0:
                return i, _CLOSERS[ch]
            if ch != "|":
                depth -= 1
        elif ch in ";\n" and depth == 0:
            return i, "SEMICOLON" if ch == ";" else "_NL"
        i += 1
    return n, None


# Other languages' spellings, by the text where the error is: a hint that names netdsl's own
_SLIPS = [
    (re.compile(r"=[<>]"), "write '>=' or '<=' (the '=' second)"),
    (re.compile(r"<>"), "write '!=' for 'not equal'"),
    (re.compile(r"&&?"), "write 'and'"),
    (re.compile(r"\|\|"), "write 'or'"),
    (re.compile(r"!(?!=)"), "write 'not'"),
    (re.compile(r"elif\b"), "write 'else if'"),
    (re.compile(r"\*\*|\^"), "there is no power operator: write the product, 'c*c'"),
]
_IF = re.compile(r"\s*(?:[;}]\s*)*(?:else\s+)?if\b")


def _slip(src: SourceFile, line: int, col: int, expected: Any) -> str | None:
    """A hint for another language's spelling at ``line``:``col`` (``if c = 1``, ``&&``)."""
    text = src.line(line)
    rest = text[col - 1:]
    before = text[col - 2:] if col > 1 else ""  # the error can be at a pair's second sign
    for pattern, hint in _SLIPS:
        if pattern.match(rest) or (before[:2] in ("<>", "**") and pattern.match(before)):
            return hint
    if re.match(r"\s*(?:[;}]\s*)*elif\b", text):
        return "write 'else if'"
    m = _IF.match(text)
    if m and m.end() < col - 1 and "{" not in text[:col - 1]:  # in an if's condition
        if rest.startswith("="):
            return "compare with '==': 'if s == 1 { … }'"
        if rest.startswith(":") or (expected and "LBRACE" in expected):
            return "the body of 'if' is in braces: 'if s == 1 { relu } else { … }'"
    return None


def syntax_error(e: UnexpectedInput, src: SourceFile) -> NetdslError:
    line, col = max(1, e.line or 1), max(1, e.column or 1)
    error = _syntax_error(e, src, line, col)
    slip = _slip(src, line, col, getattr(e, "expected", None) or getattr(e, "allowed", None))
    if slip is not None and error.loc is not None and (error.loc.line, error.loc.col) == \
            (line, col):  # not an error placed elsewhere (a misplaced else)
        error.hint = slip
    return error


def _syntax_error(e: UnexpectedInput, src: SourceFile, line: int, col: int) -> NetdslError:
    if isinstance(e, UnexpectedCharacters):
        ch = src.line(line)[col - 1: col] or "?"
        hint = _expect_hint(e.allowed)
        if ch.isdecimal() and not ch.isascii():  # ৪ looks like 8 and is 4: never guess
            hint = f"numbers are written in ASCII digits: this is {unicodedata.digit(ch)}"
        elif ch.isalpha() and not ch.isascii():  # a look-alike (Cyrillic с for c)
            hint = "retype it in ASCII: netdsl's words are ASCII, and letters of other " \
                   "alphabets only look alike"
        return NetdslError(f"unexpected character {describe(ch)}",
                           SourceLoc(src, line, col, col + 1), hint=hint)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            return _eof_error(src, e.expected)
        if tok.type == "_NL":
            return NetdslError("unexpected end of line", SourceLoc(src, line, col, col + 1),
                               hint=_expect_hint(e.expected))
        text = str(tok) or tok.type
        m = re.match(r"\s*(?:[;}]\s*)*else\b", src.line(line))
        if m and m.end() - 4 < col - 1:  # `else if …` read as a layer named else
            return misplaced_else(SourceLoc(src, line, m.end() - 3))
        end = col + max(1, len(str(tok).splitlines()[0]) if str(tok).strip() else 1)
        return NetdslError(f"unexpected {text!r}", SourceLoc(src, line, col, end),
                           hint=_expect_hint(e.expected))
    if isinstance(e, UnexpectedEOF):
        return _eof_error(src, e.expected)
    return NetdslError("syntax error", SourceLoc(src, line, col))


def _eof_error(src: SourceFile, expected: Any) -> NetdslError:
    opener = _unclosed(src.text)
    if opener is not None:
        line, col, ch = opener
        close = {"{": "}", "(": ")", "[": "]"}[ch]
        return NetdslError(f"'{ch}' is never closed", SourceLoc(src, line, col, col + 1),
                           hint=f"add the matching '{close}'")
    lines = src.text.splitlines() or [""]
    line, col = len(lines), len(lines[-1]) + 1
    return NetdslError("unexpected end of file", SourceLoc(src, line, col, col + 1),
                       hint=_expect_hint(expected))


def _unclosed(text: str) -> tuple[int, int, str] | None:
    """The bracket left open (line, column, bracket): where indentation shows it, the one a
    closing bracket at the start of a line skips to reach the opener indented like it (a
    missing ``}`` of ``residual {`` inside ``block … {``); else the innermost one still open
    at the end of ``text``."""
    stack: list[tuple[int, int, str, int]] = []  # line, column, bracket, its line's indent
    indents = [len(ln) - len(ln.lstrip(" \t")) for ln in text.split("\n")]
    line, col, i, n = 1, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            col += j - i
            i = j
            continue
        if ch == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            j = n if j < 0 else (j + 1 if nl < 0 or j < nl else nl)
            col += j - i
            i = j
            continue
        if ch in "{([":
            stack.append((line, col, ch, indents[line - 1]))
        elif ch in "})]" and stack:
            if col == indents[line - 1] + 1 and stack[-1][3] != col - 1:  # first on its line
                match = [k for k, s in enumerate(stack) if s[3] == col - 1]
                if match:
                    return stack[-1][:3]  # the openers above match[-1] were never closed
            stack.pop()
        if ch == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    return stack[-1][:3] if stack else None


def _expect_hint(expected: Any) -> str:
    value = expected and "NUMBER" in expected  # an expression: CALLNAME is a function there
    if expected and "CALLNAME" in expected and "NAME" in expected and not value:
        return "expected a statement: a layer like conv3-64, a block call like basic(64), or '('"
    terms = dict(_TERMINAL_NAMES, CALLNAME="a function like max(a, b)") if value else \
        _TERMINAL_NAMES
    names = sorted({terms.get(t, f"'{t.lower()}'") for t in (expected or ())
                    if not t.startswith("__")})
    if not names:
        return "check the spelling and the separators (';' or a new line)"
    if len(names) > 6:
        names = names[:6] + ["…"]
    return "expected " + ", ".join(names)
