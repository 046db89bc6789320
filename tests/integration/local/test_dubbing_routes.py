"""Dubbing jobs end to end: real speech in, a Spanish dub out, checked by the engine's own STT."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf
from elevenlabs import ElevenLabs, SpeechToTextChunkResponseModel
from elevenlabs.core.api_error import ApiError
from elevenlabs.errors import NotFoundError, TooEarlyError

from prefect_elevenlabs.local.routes.stt import SOURCE_URL_ROOTS_ENV
from prefect_elevenlabs.local.server import EngineHandle
from prefect_elevenlabs.local.state import DubbingJob, EngineState
from prefect_elevenlabs.media import ffmpeg_binary, probe

from .conftest import ERIC, read_audio, rms, sdk_for

TEXT = "Good morning. The children played in the park until it began to rain."
POLL_LIMIT_SECONDS = 300


def normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.fixture(scope="module")
def dub_engine(make_engine: Callable[..., EngineHandle]) -> EngineHandle:
    """An engine of its own, so its jobs and data dir are this module's alone."""
    return make_engine()


@pytest.fixture(scope="module")
def dub_client(dub_engine: EngineHandle) -> ElevenLabs:
    return sdk_for(dub_engine)


@pytest.fixture(scope="module")
def clip(dub_client: ElevenLabs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """English speech as wav, and as a small mp4 (test pattern + that speech)."""
    folder = tmp_path_factory.mktemp("clip")
    wav = folder / "speech.wav"
    wav.write_bytes(
        b"".join(dub_client.text_to_speech.convert(ERIC, text=TEXT, output_format="wav_22050"))
    )
    seconds = sf.info(str(wav)).duration
    video = folder / "speech.mp4"
    subprocess.run(
        [
            ffmpeg_binary(), "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-i", str(wav),
            "-t", f"{seconds:.3f}", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
            str(video),
        ],
        check=True,
    )  # fmt: skip
    # Speech, then a 220 Hz tone the dub must drop when asked to drop the background.
    speech, rate = sf.read(str(wav), dtype="float32")
    tone = 0.2 * np.sin(2 * np.pi * 220 * np.arange(3 * rate) / rate).astype(np.float32)
    with_tone = folder / "with_tone.wav"
    sf.write(str(with_tone), np.concatenate([speech, tone]), rate)
    return {"wav": wav, "video": video, "with_tone": with_tone}


def wait_until_done(client: ElevenLabs, dubbing_id: str):
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        metadata = client.dubbing.get(dubbing_id)
        if metadata.status != "dubbing":
            return metadata
        time.sleep(0.5)
    raise AssertionError(f"dubbing {dubbing_id} did not finish within {POLL_LIMIT_SECONDS} s")


@pytest.fixture(scope="module")
def video_dub(dub_client: ElevenLabs, clip: dict[str, Path]):
    created = dub_client.dubbing.create(
        file=("speech.mp4", clip["video"].read_bytes(), "video/mp4"),
        target_lang="es",
        source_lang="en",
        name="Morning news",
    )
    assert created.expected_duration_sec > 0
    return wait_until_done(dub_client, created.dubbing_id)


def test_video_is_dubbed_into_spanish(
    dub_client: ElevenLabs, video_dub, clip: dict[str, Path], tmp_path: Path
) -> None:
    assert video_dub.status == "dubbed", video_dub.error
    assert video_dub.name == "Morning news"
    assert video_dub.source_language == "en" and video_dub.target_languages == ["es"]
    assert video_dub.media_metadata.content_type == "video/mp4"
    source_seconds = probe(clip["video"]).duration
    assert video_dub.media_metadata.duration == pytest.approx(source_seconds, abs=0.3)

    dubbed = tmp_path / "dubbed.mp4"
    dubbed.write_bytes(b"".join(dub_client.dubbing.audio.get(video_dub.dubbing_id, "es")))
    info = probe(dubbed)
    assert info.has_video and info.has_audio
    assert info.duration == pytest.approx(source_seconds, abs=0.3)

    heard = dub_client.speech_to_text.convert(
        model_id="scribe_v1", file=("dubbed.mp4", dubbed.read_bytes(), "video/mp4")
    )
    assert isinstance(heard, SpeechToTextChunkResponseModel)
    assert heard.language_code == "spa", heard.text
    assert len(heard.text.split()) >= 4


def test_transcripts_in_every_format(dub_client: ElevenLabs, video_dub) -> None:
    dubbing_id = video_dub.dubbing_id
    srt = dub_client.dubbing.transcript.get_transcript_for_dub(dubbing_id, "es")
    assert isinstance(srt, str) and "-->" in srt and "," in srt.split("-->")[0]
    vtt = dub_client.dubbing.transcript.get_transcript_for_dub(
        dubbing_id, "es", format_type="webvtt"
    )
    assert vtt.startswith("WEBVTT")
    spanish = dub_client.dubbing.transcript.get_transcript_for_dub(
        dubbing_id, "es", format_type="json"
    )
    assert spanish.language == "es" and spanish.utterances
    assert "parque" in " ".join(u.text for u in spanish.utterances).lower()
    assert all(u.speaker_id and u.start_s <= u.end_s for u in spanish.utterances)

    source = dub_client.dubbing.transcripts.get(dubbing_id, "source", "json")
    assert source.transcript_format == "json" and source.srt is None
    original = " ".join(u.text for u in source.json_.utterances)
    assert jiwer.wer(normalise(TEXT), normalise(original)) <= 0.15
    words = [w for u in source.json_.utterances for w in u.words]
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in itertools.pairwise(words))
    newer_srt = dub_client.dubbing.transcripts.get(dubbing_id, "es", "srt")
    assert newer_srt.srt == srt and newer_srt.json_ is None


def test_audio_dub_from_source_url_drops_the_background(
    dub_engine: EngineHandle,
    dub_client: ElevenLabs,
    clip: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SOURCE_URL_ROOTS_ENV, str(clip["with_tone"].parent))
    response = httpx.post(
        f"{dub_engine.base_url}/v1/dubbing",
        data={
            "source_url": f"file://{clip['with_tone']}",
            "target_lang": "spa",
            "num_speakers": "1",
            "drop_background_audio": "true",
            "watermark": "true",
        },
    )
    assert response.status_code == 200, response.text
    metadata = wait_until_done(dub_client, response.json()["dubbing_id"])
    assert metadata.status == "dubbed", metadata.error
    assert metadata.source_language == "en"
    assert metadata.media_metadata.content_type == "audio/mpeg"
    with httpx.stream(
        "GET", f"{dub_engine.base_url}/v1/dubbing/{metadata.dubbing_id}/audio/es"
    ) as download:
        assert download.headers["content-type"] == "audio/mpeg"
        audio = read_audio(download.read())
    source_seconds = sf.info(str(clip["with_tone"])).duration
    assert audio.duration == pytest.approx(source_seconds, abs=0.15)
    # The Spanish may run a little into the tone; its last second is background only.
    tail = audio.samples[-int(1.0 * audio.sample_rate) :]
    assert rms(tail) < 0.005  # the tone is gone
    assert rms(audio.samples) > 0.01  # the speech is there


def test_jobs_are_listed_a_page_at_a_time_and_deleted(
    dub_engine: EngineHandle, dub_client: ElevenLabs, video_dub, clip: dict[str, Path]
) -> None:
    created = dub_client.dubbing.create(
        file=("speech.wav", clip["wav"].read_bytes(), "audio/wav"),
        target_lang="es",
        source_lang="en",
        num_speakers=1,
    )
    first = dub_client.dubbing.list(page_size=1)
    assert len(first.dubs) == 1 and first.has_more and first.next_cursor
    second = dub_client.dubbing.list(page_size=1, cursor=first.next_cursor)
    assert second.dubs[0].dubbing_id != first.dubs[0].dubbing_id
    everything = dub_client.dubbing.list(page_size=200)
    assert {created.dubbing_id, video_dub.dubbing_id} <= {d.dubbing_id for d in everything.dubs}
    done = dub_client.dubbing.list(dubbing_status="dubbed", page_size=200)
    assert all(d.status == "dubbed" for d in done.dubs)

    # Deleting a job that may still be running cancels it.
    assert dub_client.dubbing.delete(created.dubbing_id).status == "ok"
    with pytest.raises(ApiError) as raised:
        dub_client.dubbing.get(created.dubbing_id)
    assert raised.value.status_code == 404
    gone = httpx.get(f"{dub_engine.base_url}/v1/dubbing/{created.dubbing_id}/audio/es")
    assert gone.status_code == 404
    assert created.dubbing_id not in {
        d.dubbing_id for d in dub_client.dubbing.list(page_size=200).dubs
    }


def test_state_survives_a_restart(
    make_engine: Callable[..., EngineHandle], dub_engine: EngineHandle, video_dub
) -> None:
    again = make_engine(data_dir=dub_engine.config.data_dir)
    client = sdk_for(again)
    metadata = client.dubbing.get(video_dub.dubbing_id)
    assert metadata.status == "dubbed"
    assert metadata.media_metadata == video_dub.media_metadata
    assert len(b"".join(client.dubbing.audio.get(video_dub.dubbing_id, "es"))) > 10_000


def test_unfinished_jobs_answer_425(make_engine: Callable[..., EngineHandle]) -> None:
    quiet = make_engine()
    client = sdk_for(quiet)
    client.dubbing.list()  # starts the job runner before the job below exists
    state: EngineState = quiet.app.state.engine_state  # type: ignore[attr-defined]
    state.save_dubbing(
        DubbingJob(
            dubbing_id="pending0001",
            name="pending",
            status="dubbing",
            source_language=None,
            target_languages=["es"],
        )
    )
    assert client.dubbing.get("pending0001").status == "dubbing"
    with pytest.raises(TooEarlyError):
        b"".join(client.dubbing.audio.get("pending0001", "es"))
    with pytest.raises(TooEarlyError):
        client.dubbing.transcript.get_transcript_for_dub("pending0001", "es")
    with pytest.raises(NotFoundError):
        b"".join(client.dubbing.audio.get("pending0001", "fr"))
    with pytest.raises(ApiError) as raised:
        client.dubbing.get("no_such_job")
    assert raised.value.status_code == 404


@pytest.mark.parametrize(
    ("fields", "with_media", "expected"),
    [
        ({"target_lang": "fr", "source_lang": "en"}, True, "en->es"),
        ({"target_lang": "de"}, True, "en->es"),
        ({"target_lang": "xx-nope"}, True, "language code"),
        ({"source_lang": "en"}, True, "target_lang is required"),
        ({"target_lang": "es", "mode": "manual"}, True, "manual (CSV)"),
        ({"target_lang": "es"}, False, "exactly one"),
    ],
)
def test_bad_jobs_are_refused_at_creation(
    dub_engine: EngineHandle, clip: dict[str, Path], fields: dict, with_media: bool, expected: str
) -> None:
    media = ("speech.wav", clip["wav"].read_bytes(), "audio/wav")
    # Without media, a text part still makes the body multipart.
    upload = {"file": media} if with_media else {"name": (None, "no media")}
    response = httpx.post(f"{dub_engine.base_url}/v1/dubbing", data=fields, files=upload)
    assert response.status_code == 400, response.text
    assert expected in response.json()["detail"]["message"]


def test_non_media_upload_is_refused(dub_engine: EngineHandle) -> None:
    response = httpx.post(
        f"{dub_engine.base_url}/v1/dubbing",
        data={"target_lang": "es"},
        files={"file": ("notes.txt", io.BytesIO(json.dumps({"a": 1}).encode()))},
    )
    assert response.status_code == 400
    assert "not audio or video" in response.json()["detail"]["message"]
