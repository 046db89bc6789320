"""Tests for Apertium translation, run against the installed apertium-eng-spa pair."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from prefect_elevenlabs.local.engines import translate as translate_module
from prefect_elevenlabs.local.engines.translate import (
    UnsupportedLanguagePairError,
    supported_pairs,
    translate,
)

pytestmark = pytest.mark.engine

# Each sentence with a word its translation must contain, to prove order is kept.
ENGLISH = [
    ("The cat sleeps on the sofa.", "gato"),
    ("My sister works in a big hospital.", "hermana"),
    ("We bought bread and cheese at the market", "pan"),
    ("Where is the train station?", "tren"),
    ("The children played in the park until it began to rain.", "niños"),
]
SPANISH = [
    ("Los niños jugaron en el parque.", "park"),
    ("El perro come carne.", "dog"),
    ("Mi hermano vive en una casa grande", "brother"),
    ("¿Dónde está el tren?", "train"),
    ("Mañana vamos a la playa con mis amigos.", "beach"),
]


@pytest.fixture
def apertium_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records every command the module runs, still running it for real."""
    calls: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        calls.append(list(args))
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(translate_module.subprocess, "run", recording_run)
    return calls


def test_installed_pairs_use_iso639_1() -> None:
    pairs = supported_pairs()
    assert {("en", "es"), ("es", "en")} <= pairs
    assert all(len(source) == 2 and len(target) == 2 for source, target in pairs)


@pytest.mark.parametrize(
    ("sentences", "source", "target"),
    [(ENGLISH, "en", "es"), (SPANISH, "es", "en"), (ENGLISH, "eng", "spa")],
)
def test_batch_keeps_count_and_order(
    sentences: list[tuple[str, str]], source: str, target: str, apertium_calls: list[list[str]]
) -> None:
    supported_pairs()  # discovery may run once; count only translation processes below
    apertium_calls.clear()
    texts = [text for text, _ in sentences]
    result = translate(texts, source, target)
    assert len(apertium_calls) == 1
    assert "-u" in apertium_calls[0]
    assert len(result) == len(texts)
    for original, translated, (_, expected_word) in zip(texts, result, sentences, strict=True):
        assert translated and translated != original
        assert expected_word in translated.lower(), result
        assert "*" not in translated


def test_segment_boundaries_survive_awkward_input() -> None:
    texts = [
        "I am",
        "",
        "going home.\n\nTomorrow we travel.",
        "  the   red  car ",
        "$5 ^ 2 / 3 @ #",
    ]
    result = translate(texts, "en", "es")
    assert len(result) == 5
    assert result[1] == ""
    assert result[0].lower() in {"soy", "estoy"}
    assert "\n\n" not in result[2] and "viajamos" in result[2].lower()
    # A fragment that starts in lower case is not capitalised as if it began a sentence.
    assert result[3] == "el coche rojo"
    assert result[4] == "$5 ^ 2 / 3 @ #"


def test_same_language_returns_texts_unchanged(apertium_calls: list[list[str]]) -> None:
    texts = ["Hello there.", "Unchanged *text*"]
    assert translate(texts, "en", "eng") == texts
    assert apertium_calls == []


def test_all_empty_texts_skip_apertium(apertium_calls: list[list[str]]) -> None:
    supported_pairs()
    apertium_calls.clear()
    assert translate(["", "   "], "en", "es") == ["", ""]
    assert apertium_calls == []


def test_unsupported_pair_lists_available_pairs() -> None:
    with pytest.raises(UnsupportedLanguagePairError) as info:
        translate(["Bonjour"], "fr", "de")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'fr'" in message and "'de'" in message
    assert "en->es" in message and "es->en" in message


def test_unknown_language_code_lists_available_pairs() -> None:
    with pytest.raises(UnsupportedLanguagePairError, match="en->es"):
        translate(["Hello"], "english", "es")


def test_single_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="list of strings"):
        translate("Hello", "en", "es")  # type: ignore[arg-type]
