"""Specs embedded in documents: Markdown fenced blocks and LaTeX environments.

A paper keeps its architecture listings checkable::

    ```netdsl              \\begin{netdsl}          \\begin{minted}[fontsize=\\small]{netdsl}
    network vgg16 …        network vgg16 …         network vgg16 …
    ```                    \\end{netdsl}            \\end{minted}

``paper.md#2`` names the second embedded spec (1-based). Each spec is loaded with the
document as its path and its position as ``line_offset``, so errors carry the document's own
line numbers, and ``include`` resolves relative to the document. A Markdown block tagged
```` ```netdsl fragment ```` is an excerpt for the reader: highlighted, not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NetdslError
from .network import Network, loads, read_spec

MARKDOWN = (".md", ".markdown")
LATEX = (".tex", ".ltx")
DOCUMENTS = MARKDOWN + LATEX
FRAGMENT = "fragment"  # ```netdsl fragment: an excerpt, not a whole spec

# Markdown: ``` or ~~~ fences (three or more); the info string's first word is the language
# (``netdsl``, ``{.netdsl}``). Other fences are skipped whole: they may show netdsl fences.
# A fence may be indented (inside a list item): its indentation is removed from the spec's lines
# (as CommonMark does) and given back to them by fmt.
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\n]*)$")
_NETDSL_INFO = re.compile(r"^\{?\.?netdsl\b")
# LaTeX: \begin{netdsl}[opts] … \end{netdsl}; \begin{minted}[opts]{netdsl} … \end{minted}
_BEGIN = re.compile(r"\\begin\{(?P<env>netdsl)\}(\[[^\]\n]*\])?\s*$|"
                    r"\\begin\{(?P<menv>minted)\}(\[[^\]\n]*\])?\{netdsl\}\s*$")


@dataclass(frozen=True, slots=True)
class EmbeddedSpec:
    """One spec found in a document."""

    index: int  # 1-based position among the document's specs
    text: str
    line_offset: int  # document lines before the spec's first line
    path: str  # the document
    indent: str = ""  # the fence's indentation, removed from the spec's lines

    @property
    def ref(self) -> str:
        return f"{self.path}#{self.index}"


def is_document(path: str | Path) -> bool:
    """Whether a path (without a ``#N`` suffix) names a Markdown or LaTeX document."""
    return Path(str(path)).suffix.lower() in DOCUMENTS


def split_ref(ref: str) -> tuple[str, int | None]:
    """``paper.md#2`` -> ("paper.md", 2); anything else -> (ref, None)."""
    base, sep, frag = ref.rpartition("#")
    if sep and frag.isascii() and frag.isdigit() and is_document(base):
        return base, int(frag)
    return ref, None


def is_document_ref(ref: str) -> bool:
    return is_document(split_ref(ref)[0])


def lines_of(text: str) -> list[str]:
    """The document's lines as editors number them: split at \\n only (a form feed or U+2028
    in prose is no line break to an editor), a \\r before it dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def extract(text: str, path: str = "<document>") -> list[EmbeddedSpec]:
    """Every embedded spec of a Markdown or LaTeX document, in order."""
    latex = Path(path).suffix.lower() in LATEX
    lines = lines_of(text)
    out: list[EmbeddedSpec] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        end: re.Pattern[str] | None = None
        skip = False
        indent = ""
        if latex:
            m = _BEGIN.search(line)
            if m and not line.lstrip().startswith("%"):
                env = m["env"] or m["menv"]
                end = re.compile(r"^\s*\\end\{" + env + r"\}")
        else:
            m = _FENCE.match(line)
            if m:
                fence, indent = m["fence"], m["indent"]
                end = re.compile(r"^ *" + re.escape(fence[0]) + "{" + str(len(fence)) +
                                 r",}\s*$")
                skip = not _NETDSL_INFO.match(m["info"]) or FRAGMENT in m["info"].split()
        if end is None:
            i += 1
            continue
        start = i + 1
        j = start
        while j < len(lines) and not end.match(lines[j]):
            j += 1
        if j == len(lines) and skip:  # an unclosed foreign block runs to the end
            break
        if j == len(lines):
            kind = "\\end{…}" if latex else "closing fence"
            raise NetdslError(f"embedded spec {len(out) + 1} starting at line {i + 1} has no "
                              f"{kind}", path=path, hint="close the listing")
        if skip:
            i = j + 1
            continue
        body = "".join(_dedent(ln, indent) + "\n" for ln in lines[start:j])
        out.append(EmbeddedSpec(len(out) + 1, body, start, path, indent))
        i = j + 1
    return out


def _dedent(line: str, indent: str) -> str:
    """``line`` without up to ``indent``'s spaces (CommonMark's rule for indented fences)."""
    k = 0
    while k < len(indent) and k < len(line) and line[k] == " ":
        k += 1
    return line[k:]


def specs_of(ref: str) -> list[EmbeddedSpec]:
    """The specs a reference names: all of ``paper.md``, or just ``paper.md#2``."""
    path, index = split_ref(ref)
    found = extract(read_spec(path), path)
    if index is None:
        return found
    if not 1 <= index <= len(found):
        raise NetdslError(f"no embedded spec #{index} (the document has {len(found)})",
                          path=path, hint=f"use {path}#1 … {path}#{len(found)}" if found else
                          "tag listings ```netdsl (Markdown) or \\begin{netdsl} (LaTeX)")
    return [found[index - 1]]


def load_embedded(ref: str, params: dict[str, Any] | None = None,
                  include_path: Sequence[str | Path] = ()) -> Network:
    """Load the one spec ``ref`` names (``paper.md#2``, or ``paper.md`` holding one spec)."""
    specs = specs_of(ref)
    path = split_ref(ref)[0]
    if not specs:
        raise NetdslError("the document has no embedded netdsl spec", path=path,
                          hint="tag listings ```netdsl (Markdown) or \\begin{netdsl} (LaTeX)")
    if len(specs) > 1:
        raise NetdslError(f"the document has {len(specs)} embedded specs: say which",
                          path=path, hint=f"e.g. {path}#1 or {path}#{len(specs)}")
    return load_spec(specs[0], params, include_path)


def load_spec(spec: EmbeddedSpec, params: dict[str, Any] | None = None,
              include_path: Sequence[str | Path] = ()) -> Network:
    """Load one embedded spec; locations point into the document."""
    return loads(spec.text, spec.path, params, spec.line_offset, include_path)
