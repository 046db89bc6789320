"""Splitting long text into request-sized chunks on sentence boundaries."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or their CJK forms) plus closing quotes/brackets, then whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])[\"'”’)\]]*\s+")  # noqa: RUF001
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")  # noqa: RUF001


def split_text(text: str, limit: int) -> list[str]:
    """Splits ``text`` into chunks of at most ``limit`` characters.

    Chunks break between sentences; a single sentence longer than the limit breaks between
    clauses, then between words, and only a word longer than the limit is cut inside. Joining
    the chunks with single spaces gives back the text with its whitespace runs normalised.

    >>> split_text("One. Two three. Four!", 12)
    ['One.', 'Two three.', 'Four!']
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    for sentence in _split_keep(text, _SENTENCE_END):
        if len(sentence) <= limit:
            pieces.append(sentence)
            continue
        for clause in _split_keep(sentence, _CLAUSE_END):
            if len(clause) <= limit:
                pieces.append(clause)
            else:
                pieces.extend(_split_words(clause, limit))
    return _pack(pieces, limit)


def _split_keep(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [part.strip() for part in pattern.split(text) if part.strip()]


def _split_words(text: str, limit: int) -> list[str]:
    out: list[str] = []
    for word in text.split():
        while len(word) > limit:
            out.append(word[:limit])
            word = word[limit:]
        if word:
            out.append(word)
    return out


def _pack(pieces: list[str], limit: int) -> list[str]:
    """Greedily joins consecutive pieces while they fit, so requests stay few and natural."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks
