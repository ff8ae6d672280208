"""Characters a spec may not hide: control codes are errors, Trojan Source tricks are warnings.

A spec is shown to people (error snippets, ``fmt``, summary titles, editors) and read by
netdsl; the two must agree. Terminal escapes (ESC, OSC) would let a spec rewrite the terminal
that shows it, so control characters other than tab, form feed and line ends are refused.
Bidirectional overrides and U+2028 reorder or break what an editor shows without changing what
netdsl reads (CVE-2021-42574): they are legitimate in right-to-left prose, so they are warned
about, with their code points, rather than refused.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import NetdslError, NetdslWarning, SourceFile, SourceLoc

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")  # \t \n \f \r are layout
_TROJAN = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def describe(ch: str) -> str:
    """``'с' (U+0441 CYRILLIC SMALL LETTER ES)``: a character named so that no look-alike,
    invisible or control character can pass for another."""
    name = unicodedata.name(ch, "")
    if not name and ord(ch) < 0x20:  # C0 controls have no name; their pictures do
        name = unicodedata.name(chr(0x2400 + ord(ch))).removeprefix("SYMBOL FOR ")
    shown = repr(ch) if ch.isprintable() else ascii(ch)
    return f"{shown} (U+{ord(ch):04X}{' ' + name if name else ''})"


def _loc(src: SourceFile, offset: int) -> SourceLoc:
    line = src.text.count("\n", 0, offset) + 1
    col = offset - (src.text.rfind("\n", 0, offset) + 1) + 1
    return SourceLoc(src, line, col, col + 1)


def check_controls(src: SourceFile) -> None:
    """Refuse control characters (ESC, NUL, C1 codes) anywhere in a spec, comments included."""
    m = _CONTROL.search(src.text)
    if m:
        raise NetdslError(f"control character {describe(m.group())} in the spec",
                          _loc(src, m.start()),
                          hint="remove it: specs are plain text (terminal escape sequences "
                               "would be replayed wherever the spec is shown)")


def trojan_warnings(src: SourceFile) -> list[NetdslWarning]:
    """One warning per line holding bidirectional controls or a Unicode line separator."""
    out: list[NetdslWarning] = []
    last_line = 0
    for m in _TROJAN.finditer(src.text):
        loc = _loc(src, m.start())
        if loc.line == last_line:
            continue
        last_line = loc.line
        ch = m.group()
        if ch in "\u2028\u2029":
            what = "a line separator: editors show a line break that netdsl does not read"
            hint = "replace it by a real line break or a space"
        else:
            what = ("a bidirectional control: editors may show this line in another order "
                    "than netdsl reads it")
            hint = "remove it unless right-to-left text needs it"
        out.append(NetdslWarning(f"{describe(ch)} is {what}", loc,
                                 hint=hint + " (Trojan Source, CVE-2021-42574)"))
    return out
