"""Long text is split on sentence boundaries under the model's limit."""

from __future__ import annotations

import pytest

from prefect_elevenlabs.tasks._text import split_text

STORY = (
    "The lighthouse keeper climbed the stairs at dusk. He lit the lamp, as he had every night "
    "for thirty years! Did the ships still need him? Perhaps not; but the sea, restless and "
    "grey, had never once asked whether it was needed. He sat and watched the beam sweep the water."
)


def _words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("limit", [60, 80, 120, 500])
def test_chunks_fit_and_lose_nothing(limit):
    chunks = split_text(STORY, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert _words(" ".join(chunks)) == _words(STORY)


def test_breaks_fall_between_sentences_when_sentences_fit():
    chunks = split_text(STORY, 110)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.rstrip()[-1] in ".!?", chunk


def test_a_sentence_over_the_limit_breaks_between_clauses_then_words():
    sentence = "alpha beta, gamma delta, epsilon zeta eta theta iota kappa lambda mu."
    chunks = split_text(sentence, 20)
    assert all(len(c) <= 20 for c in chunks)
    assert chunks[0] == "alpha beta,"
    assert _words(" ".join(chunks)) == _words(sentence)


def test_a_word_longer_than_the_limit_is_cut():
    chunks = split_text("a " + "x" * 25 + " b", 10)
    assert all(len(c) <= 10 for c in chunks)
    assert "".join(chunks).replace(" ", "") == "a" + "x" * 25 + "b"


def test_short_and_empty_text():
    assert split_text("  Hello there.  ", 100) == ["Hello there."]
    assert split_text("   ", 100) == []
    with pytest.raises(ValueError):
        split_text("text", 0)
