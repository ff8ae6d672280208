"""Source locations and the one error type netdsl raises.

Every message renders gcc-style so editors can jump to it::

    specs/cnn.net:4:14: error: unknown layer 'maxpol'
      4 | conv3-64 x2; maxpol; conv3-128
        |              ^~~~~~
      hint: did you mean 'maxpool'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_SNIPPET_WIDTH = 100  # longer source lines are shown as a window around the caret


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A spec's path (as the user wrote it) and its full text."""

    path: str
    text: str = field(repr=False)
    line_offset: int = 0  # for specs embedded in documents: lines before the spec's first line

    def line(self, n: int) -> str:
        lines = self.text.split("\n")  # as Lark counts lines: not at \f, \v or U+2028
        return lines[n - 1] if 0 < n <= len(lines) else ""


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """A span on one line of a source file (1-based line and columns, end exclusive)."""

    src: SourceFile
    line: int
    col: int
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.src.path}:{self.line + self.src.line_offset}:{self.col}"

    def snippet(self) -> str:
        text = visible(self.src.line(self.line).rstrip("\r\n").expandtabs(1))
        if not text.strip():
            return ""
        width = max(1, (self.end_col or self.col + 1) - self.col)
        width = min(width, max(1, len(text) - self.col + 1))
        num = str(self.line + self.src.line_offset)
        gutter = " " * len(num)
        col = self.col
        if len(text) > _SNIPPET_WIDTH:  # show a window around the caret, not the whole line
            start = max(0, min(col - 1 - _SNIPPET_WIDTH // 3, len(text) - _SNIPPET_WIDTH))
            end = start + _SNIPPET_WIDTH
            left, right = ("…" if start else ""), ("…" if end < len(text) else "")
            text = left + text[start:end] + right
            col += len(left) - start
            width = min(width, _SNIPPET_WIDTH - (col - 1 - len(left)))
        caret = "^" + "~" * (max(1, width) - 1)
        return f"  {num} | {text}\n  {gutter} | {' ' * (col - 1)}{caret}"


def visible(text: str) -> str:
    """``text`` with every non-printable character replaced by one printable stand-in (C0
    controls by their Control Pictures ␛ ␀, the rest by �), so columns and carets still line up
    and nothing reaches the terminal as a control sequence."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == "\t" else _stand_in(ch) for ch in text)


def _stand_in(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


class NetdslError(Exception):
    """The single error type of the library: a located message with an optional hint.

    Args:
        message: what is wrong, saying expected vs got where there is a comparison.
        loc: where in the spec; None for errors about files themselves.
        hint: one line telling the user what to do about it.
        path: the file concerned when there is no location (missing file, bad encoding).
    """

    severity = "error"

    def __init__(
        self,
        message: str,
        loc: SourceLoc | None = None,
        hint: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint
        self.path = path
        self.related: list[NetdslError] = []  # further independent errors, in source order
        self.notes: list[str] = []  # where a block body's error was reached from

    def render(self) -> str:
        where = str(self.loc) if self.loc else (self.path or "netdsl")
        out = f"{where}: {self.severity}: {self.message}"
        if self.loc and (snip := self.loc.snippet()):
            out += "\n" + snip
        if self.hint:
            out += f"\n  hint: {self.hint}"
        for note in self.notes:
            out += f"\n  note: {note}"
        return out

    def __str__(self) -> str:
        return "\n".join(e.render() for e in [self, *self.related])


class NetdslShapeError(NetdslError):
    """Inputs of a multi-input op disagree; ``operands`` are the two offending input indices.

    The op knows the shapes, the builder knows what the inputs are called (branch 2, the
    shortcut, ``from a``): it rewrites the message to name both.
    """

    def __init__(self, what: str, loc: SourceLoc | None, operands: tuple[int, int],
                 shapes: tuple[str, str], hint: str | None = None) -> None:
        super().__init__(f"{what}: {shapes[0]} and {shapes[1]}", loc, hint=hint)
        self.what = what
        self.operands = operands
        self.shapes = shapes


class NetdslCascadeError(NetdslError):
    """An error that only follows from one already reported (a param that failed): not shown."""


class NetdslLimitError(NetdslError):
    """A size or nesting limit was hit: checking stops here rather than reporting more."""


class NetdslWarning(NetdslError):
    """A located warning (dropped pixels, unused outputs); an error under --strict."""

    severity = "warning"


def did_you_mean(name: str, choices: Iterable[str] | Mapping[str, str],
                 typos_only: bool = False) -> str | None:
    """A 'did you mean' hint for an unknown name, or None when nothing is close.

    ``choices`` may map spellings (aliases) to the name to suggest, so that several aliases
    of one thing suggest it once. ``typos_only`` keeps only spellings a slip of the keyboard
    away (``maxpol``, ``layernrom``, ``bm``), not words that merely share letters
    (``upsample`` is not a misspelled ``scale``).
    """
    canon = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
    # two-letter names differ by one letter at a ratio of 0.5 ('bm' for 'bn')
    cutoff = 0.5 if len(name) <= 3 else 0.6
    close = difflib.get_close_matches(name.lower(), sorted(canon), n=6, cutoff=cutoff)
    if typos_only:
        slips = 1 if len(name) <= 4 else 2
        close = [c for c in close if edits(name.lower(), c.lower()) <= slips]
    names = list(dict.fromkeys(canon[c] for c in close))[:3]
    if not names:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in names) + "?"


def edits(a: str, b: str) -> int:
    """Typing slips between two words: letters inserted, deleted, replaced or swapped with
    their neighbour (optimal string alignment distance)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def misplaced_else(loc: SourceLoc) -> NetdslError:
    """``else`` starting a statement: the ``}`` before it ended the ``if`` (a new line
    separates statements), so it reads as a layer or construct named else."""
    return NetdslError("'else' without an 'if' before it",
                       SourceLoc(loc.src, loc.line, loc.col, loc.col + 4),
                       hint="write 'else' on the line of the '}' that closes the 'if' body: "
                            "'} else {'")
