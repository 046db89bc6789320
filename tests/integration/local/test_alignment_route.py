"""Forced alignment over HTTP with the official SDK, checked against the synthesizer's timings."""

from __future__ import annotations

import base64
import itertools

import httpx
import numpy as np
import pytest
from elevenlabs import ElevenLabs

from prefect_elevenlabs.local.server import EngineHandle
from prefect_elevenlabs.subtitles import words_from_alignment

from .conftest import ERIC

TEXT = "Please send the quarterly report to the finance team by Friday afternoon."


@pytest.fixture(scope="module")
def spoken(client: ElevenLabs) -> tuple[bytes, list[dict]]:
    """WAV audio of TEXT and the synthesizer's own word timings for it."""
    result = client.text_to_speech.convert_with_timestamps(
        ERIC, text=TEXT, output_format="wav_16000"
    )
    assert result.alignment is not None
    words = words_from_alignment(
        result.alignment.characters,
        result.alignment.character_start_times_seconds,
        result.alignment.character_end_times_seconds,
    )
    return base64.b64decode(result.audio_base_64), words


def test_words_land_where_they_were_spoken(
    client: ElevenLabs, spoken: tuple[bytes, list[dict]]
) -> None:
    audio, truth = spoken
    result = client.forced_alignment.create(file=("report.wav", audio), text=TEXT)
    assert [w.text for w in result.words] == TEXT.split()
    starts = np.array([w.start for w in result.words])
    errors = np.abs(starts - np.array([w["start"] for w in truth]))
    assert float(errors.mean()) < 0.15, errors
    assert float(errors.max()) < 0.35, errors
    assert all(w.start <= w.end for w in result.words)
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(result.words))
    assert "".join(c.text for c in result.characters) == TEXT
    assert 0.0 <= result.loss < 1.0


def test_unspoken_words_are_placed_between_their_neighbours(
    client: ElevenLabs, spoken: tuple[bytes, list[dict]]
) -> None:
    audio, _ = spoken
    text = TEXT.replace("quarterly report", "quarterly sales report")
    result = client.forced_alignment.create(file=("report.wav", audio), text=text)
    words = {w.text: w for w in result.words}
    extra = words["sales"]
    assert words["quarterly"].end <= extra.start <= extra.end <= words["report"].start
    assert extra.loss > max(w.loss for w in result.words if w.text != "sales")
    assert result.loss > 0


@pytest.mark.parametrize(
    ("fields", "files", "status", "expected"),
    [
        ({"text": "hello"}, {"file": ("a.txt", b"not audio at all")}, 400, "not audio"),
        ({"text": "hello"}, {"other": ("a.wav", b"RIFF")}, 400, "file is required"),
        ({"text": "..."}, {"file": ("a.wav", b"RIFF")}, 400, "no words"),
        ({}, {"file": ("a.wav", b"RIFF")}, 422, "text"),
    ],
)
def test_bad_requests_are_refused(
    engine: EngineHandle, fields: dict, files: dict, status: int, expected: str
) -> None:
    response = httpx.post(f"{engine.base_url}/v1/forced-alignment", data=fields, files=files)
    assert response.status_code == status, response.text
    assert expected in response.text
