"""The transcribe flow against the local engine: real media in, parsable transcripts out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prefect_elevenlabs.flows import ItemsFailedError, TranscriptionOptions, transcribe
from prefect_elevenlabs.results import Transcript
from prefect_elevenlabs.subtitles import parse_srt, parse_vtt

from .conftest import SAMPLE_CLIP, speak

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.engine]


def test_every_format_for_each_input_and_a_missing_input_fails_alone(
    engine, credentials, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(SAMPLE_CLIP, media / "clip.mp4")
    speak(engine, "The morning train leaves the station at seven.", media / "train.wav")
    out = tmp_path / "out"

    with pytest.raises(ItemsFailedError) as caught:
        transcribe(
            [str(media / "*.mp4"), str(media / "train.wav"), str(media / "absent.mp3")],
            output_dir=str(out),
            options=TranscriptionOptions(language_code="en"),
            credentials=credentials,
        )

    error = caught.value
    assert error.failed == [str(media / "absent.mp3")]
    assert "absent.mp3" in str(error) and "does not exist" in str(error)
    summary = error.summary
    assert [item.status for item in summary.items] == ["completed", "completed", "failed"]

    for stem, expected in (("clip", "small studio"), ("train", "train leaves the station")):
        transcript = Transcript.model_validate_json((out / f"{stem}.json").read_text())
        assert expected in transcript.text.lower()
        assert transcript.words and all(w.end >= w.start for w in transcript.words)
        cues = parse_srt((out / f"{stem}.srt").read_text())
        assert cues and expected.split()[0] in " ".join(c.text for c in cues).lower()
        assert cues[-1].end <= (transcript.duration_s or 99) + 0.5
        assert len(parse_vtt((out / f"{stem}.vtt").read_text())) == len(cues)
        assert expected in (out / f"{stem}.txt").read_text().lower()
        # A single speaker: no speaker labels cluttering the subtitles.
        assert "[speaker_" not in (out / f"{stem}.srt").read_text()


def test_chosen_formats_and_speakers_in_the_text(engine, credentials, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = transcribe(
        [str(SAMPLE_CLIP)],
        output_dir=str(out),
        formats=["txt", "json"],
        options=TranscriptionOptions(language_code="en", diarize=True, num_speakers=1),
        credentials=credentials,
    )

    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "sample_clip.json",
        "sample_clip.txt",
    ]
    item = summary.items[0]
    assert item.status == "completed"
    assert item.details["speakers"] == ["speaker_0"]
    document = json.loads((out / "sample_clip.json").read_text())
    assert {w["speaker_id"] for w in document["words"]} == {"speaker_0"}
    assert (out / "sample_clip.txt").read_text().strip().startswith("Hello and welcome")
