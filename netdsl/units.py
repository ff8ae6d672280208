"""Numbers for people: ``0.42 MMACs`` for LeNet-5 and ``4.09 GMACs`` for ResNet-50 (never
``0.00 GMACs``), ``25.6M`` parameters, ``1 layer`` but ``2 layers``."""

from __future__ import annotations


def scaled(n: float, suffix: str = "", digits: int = 2) -> str:
    """``n`` in the largest of G, M, K that leaves it at least 0.1 (K: at least 1):
    ``0.42 M``, ``4.09 G``, ``120``."""
    for unit, div, least in (("G", 1e9, 1e8), ("M", 1e6, 1e5), ("K", 1e3, 1e3)):
        if abs(n) >= least:
            return f"{n / div:.{digits}f} {unit}{suffix}"
    return f"{n:,.0f} {suffix}".rstrip()


def macs(n: int) -> str:
    """Multiply-adds: ``0.42 MMACs``, ``15.47 GMACs``, ``120 MACs``."""
    return scaled(n, "MACs")


def plural(n: int, word: str) -> str:
    """``1 layer``, ``3 layers``, ``4 branches``."""
    if n == 1:
        return f"1 {word}"
    return f"{n:,} {word}{'es' if word.endswith(('s', 'sh', 'ch', 'x')) else 's'}"
