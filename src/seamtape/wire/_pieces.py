"""Cutting text into the pieces a stream sends, deterministically."""

from __future__ import annotations

import re

_WORD = re.compile(r"\s*\S+|\s+")


def words(text: str, size: int = 16) -> list[str]:
    """Pieces of about ``size`` characters that end at word boundaries; they join to ``text``."""
    pieces: list[str] = []
    current = ""
    for token in _WORD.findall(text):
        current += token
        if len(current) >= size:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def slices(text: str, size: int = 24) -> list[str]:
    """Fixed-size slices, as providers stream partial tool-call JSON."""
    return [text[i : i + size] for i in range(0, len(text), size)]
