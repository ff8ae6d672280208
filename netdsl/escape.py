"""Text from a spec rendered safely into each output format, one function per format.

Network names, titles and ``--labels`` are the user's text: ``network "a|b<script>\\"`` must
come out as that text, never as a broken table row, markup, a TeX command or invalid DOT.
Every renderer (summary, table, draw, TikZ) passes user text through these and nothing else.
Control characters (a carriage return, ANSI escapes) are shown as ``\\xNN`` in every format.
"""

from __future__ import annotations

import html as _html
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def visible(s: str) -> str:
    """Control characters (and line/paragraph separators) as ``\\xNN``: one line, no escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


# Markdown (CommonMark + GFM tables): every ASCII punctuation mark may be backslash-escaped;
# these are the ones that can start markup, break a table cell or open raw HTML or an entity.
_MD = {c: "\\" + c for c in "\\`*_[]|~$"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown(s: str) -> str:
    """Literal text inside a Markdown paragraph or a pipe-table cell."""
    return "".join(_MD.get(c, c) for c in visible(s))


def html(s: str) -> str:
    """Literal text inside an HTML element or a double-quoted attribute."""
    return _html.escape(visible(s), quote=True)


# LaTeX: the ten special characters, each replaced by a command that prints it. With ^ and \
# replaced no ^^xx sequence (TeX's hex escape) or control sequence survives.
_TEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&",
        "#": r"\#", "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%",
        "~": r"\textasciitilde{}", "×": r"$\times$", "·": r"$\cdot$", "…": r"\ldots{}",
        "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "−": "-"}


def latex(s: str) -> str:
    """Literal text in LaTeX's text mode (pdflatex, T1 or OT1 encoding)."""
    return "".join(_TEX.get(c, c) for c in visible(s))


def dot_html(s: str) -> str:
    """Literal text inside a Graphviz HTML-like label ``<...>``."""
    return _html.escape(visible(s), quote=True)


def dot_string(s: str) -> str:
    """A Graphviz double-quoted string, quotes included. Inside quotes only ``\\"`` is an
    escape to dot's parser, but a backslash before the closing quote would swallow it and
    labels read ``\\n``, ``\\N`` as escapes: backslashes are doubled."""
    return '"' + visible(s).replace("\\", "\\\\").replace('"', '\\"') + '"'
