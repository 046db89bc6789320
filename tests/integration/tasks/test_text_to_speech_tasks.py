"""Text-to-speech tasks in real flow runs: audio, caching, long text, retries, concurrency."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from prefect import flow, unmapped
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.errors import (
    ConfigurationError,
    NotFoundError,
    ServerError,
)
from prefect_elevenlabs.results import AudioAsset
from prefect_elevenlabs.tasks import (
    speech_to_text,
    stream_text_to_speech,
    text_to_speech,
    text_to_speech_with_timestamps,
)
from prefect_elevenlabs.tasks import text_to_speech as tts_module_task
from prefect_elevenlabs.tasks._policy import retry_unless_permanent

from .conftest import (
    FAST_VOICE,
    SENTENCES,
    decode,
    fresh_credentials,
    outcome,
    outcome_sync,
    rms,
    state_names_by_id,
    stats,
    subscription,
    task_run_by_id,
    wer,
)

pytestmark = pytest.mark.usefixtures("prefect_server")

LONG_TEXT = " ".join(SENTENCES)
MODEL = "eleven_multilingual_v2"


def tts_module():
    import importlib

    return importlib.import_module("prefect_elevenlabs.tasks.text_to_speech")


def lower_text_limit(monkeypatch: pytest.MonkeyPatch, base_url: str, limit: int) -> None:
    """Makes the model's per-request limit ``limit`` for one engine, as /v1/models would."""
    monkeypatch.setitem(tts_module()._limits, (base_url, MODEL), limit)


@pytest.fixture
def speech_task():
    return text_to_speech


async def test_speech_is_real_and_a_rerun_is_cached_with_no_characters_billed(
    engine, tmp_path, speech_task
):
    credentials = fresh_credentials(engine)
    text = "Caching saves credits on every rerun."

    @flow
    async def narrate(output_dir: str):
        return await speech_task(text, credentials, output_dir=output_dir, return_state=True)

    first = await narrate(str(tmp_path))
    billed = subscription(engine, credentials)["character_count"]
    second = await narrate(str(tmp_path))

    assert first.name == "Completed"
    assert second.name == "Cached"
    assert billed == len(text)
    assert subscription(engine, credentials)["character_count"] == billed
    asset = await second.result()
    assert isinstance(asset, AudioAsset)
    assert asset.uri == (await first.result()).uri
    audio = decode(asset.uri)
    assert audio.duration > 1.0
    assert rms(audio.samples) > 0.01
    assert asset.characters == len(text)


def test_a_deleted_output_is_generated_again_from_a_sync_flow(engine, tmp_path, speech_task):
    credentials = fresh_credentials(engine)
    text = "This file will be deleted and made again."

    @flow
    def narrate(output_dir: str):
        future = speech_task.submit(text, credentials, output_dir=output_dir)
        future.wait()
        return future.state

    first = narrate(str(tmp_path))
    path = first.result().uri
    os.remove(path)
    second = narrate(str(tmp_path))
    third = narrate(str(tmp_path))

    assert [first.name, second.name, third.name] == ["Completed", "Completed", "Cached"]
    assert narrate(str(tmp_path)).name == "Cached"
    assert os.path.exists(path)
    assert decode(path).duration > 1.0
    assert subscription(engine, credentials)["character_count"] == 2 * len(text)


async def test_long_text_is_split_stitched_and_transcribes_back(
    engine, tmp_path, monkeypatch, recorder
):
    lower_text_limit(monkeypatch, engine.base_url, 60)
    credentials = fresh_credentials(engine)

    @flow
    async def long_read(output_dir: str):
        speech = await text_to_speech(LONG_TEXT, credentials, output_dir=output_dir)
        transcript = await speech_to_text(speech.uri, credentials, language_code="en")
        return speech, transcript

    speech, transcript = await long_read(str(tmp_path))

    bodies = [r.json for r in recorder if r.path == f"/v1/text-to-speech/{speech.voice_id}"]
    assert len(bodies) == len(SENTENCES) == len(speech.request_ids)
    assert [b["text"] for b in bodies] == list(SENTENCES)
    assert "previous_request_ids" not in bodies[0]
    assert bodies[0]["next_text"] == SENTENCES[1]
    assert bodies[1]["previous_request_ids"] == speech.request_ids[:1]
    assert bodies[2]["previous_request_ids"] == speech.request_ids[:2]
    assert "next_text" not in bodies[2]
    assert speech.characters == sum(len(s) for s in SENTENCES)
    assert decode(speech.uri).duration == pytest.approx(speech.duration_s, abs=0.1)
    assert wer(LONG_TEXT, transcript.text) <= 0.15


async def test_timestamps_of_split_text_are_offset_and_monotonic(engine, tmp_path, monkeypatch):
    lower_text_limit(monkeypatch, engine.base_url, 60)
    credentials = fresh_credentials(engine)

    @flow
    async def timed(output_dir: str):
        return await text_to_speech_with_timestamps(
            LONG_TEXT, credentials, output_dir=output_dir, output_format="wav_22050"
        )

    speech = await timed(str(tmp_path))

    starts = speech.character_start_times_seconds
    ends = speech.character_end_times_seconds
    assert "".join(speech.characters) == LONG_TEXT
    assert len(starts) == len(ends) == len(LONG_TEXT)
    assert all(b >= a for a, b in itertools.pairwise(starts))
    assert all(e >= s for s, e in zip(starts, ends, strict=True))
    duration = decode(speech.audio.uri).duration
    # The third sentence starts after the first two chunks' audio, not back at zero.
    third = LONG_TEXT.index(SENTENCES[2])
    assert starts[third] > duration / 3
    assert ends[-1] <= duration + 0.05
    words = speech.transcript.words
    assert [w.text for w in words][:3] == ["The", "morning", "train"]
    assert all(b.start >= a.start for a, b in itertools.pairwise(words))


async def test_streamed_speech_records_time_to_first_byte(engine, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    async def stream(output_dir: str):
        return await stream_text_to_speech(
            SENTENCES[0], credentials, output_format="pcm_16000", output_dir=output_dir
        )

    asset = await stream(str(tmp_path))

    assert asset.first_byte_s is not None and asset.first_byte_s >= 0
    audio = decode(asset.uri, "pcm_16000")
    assert audio.duration == pytest.approx(asset.duration_s, abs=0.01)
    assert rms(audio.samples) > 0.01


async def test_unknown_voice_fails_after_one_attempt(engine, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    async def bad_voice(output_dir: str):
        state = await text_to_speech(
            "Nobody speaks this.",
            credentials,
            voice_id="noSuchVoice000000000",
            output_dir=output_dir,
            return_state=True,
        )
        return await outcome(state)

    result = await bad_voice(str(tmp_path))

    assert result.name == "Failed"
    assert isinstance(result.error, NotFoundError)
    assert result.error.status == "voice_not_found"
    assert (await task_run_by_id(result.task_run_id)).run_count == 1
    assert not list(Path(tmp_path).glob("*.mp3"))


@pytest.fixture
def retry_rule():
    return retry_unless_permanent


async def test_server_faults_are_retried_visibly_until_the_server_recovers(
    make_engine, tmp_path, retry_rule
):
    faulty = make_engine(fault_rate_503=1.0)
    credentials = fresh_credentials(faulty, max_retries=0)

    def heal_then_decide(task, task_run, state):
        faulty.config.fault_rate_503 = 0.0  # the outage ends after the first failed attempt
        return retry_rule(task, task_run, state)

    resilient = text_to_speech.with_options(
        retries=2, retry_delay_seconds=0, retry_condition_fn=heal_then_decide
    )

    @flow
    async def narrate(output_dir: str):
        state = await resilient(
            "Second time lucky.", credentials, voice_id=FAST_VOICE, output_dir=output_dir,
            return_state=True,
        )
        return await outcome(state)

    result = await narrate(str(tmp_path))

    assert result.name == "Completed"
    assert (await task_run_by_id(result.task_run_id)).run_count == 2
    names = await state_names_by_id(result.task_run_id)
    assert names.count("Retrying") == 1
    assert names[-1] == "Completed"
    assert stats(faulty)["faults"]["503"] == 1
    assert decode(result.value.uri).duration > 0.3


def test_retries_stop_after_the_limit_with_the_server_error(make_engine, tmp_path, retry_rule):
    faulty = make_engine(fault_rate_503=1.0)
    credentials = fresh_credentials(faulty, max_retries=0)
    stubborn = text_to_speech.with_options(
        retries=2, retry_delay_seconds=0, retry_condition_fn=retry_rule
    )

    @flow
    def narrate(output_dir: str):
        future = stubborn.submit("Never works.", credentials, output_dir=output_dir)
        future.wait()
        return outcome_sync(future.state)

    result = narrate(str(tmp_path))

    assert result.name == "Failed"
    assert isinstance(result.error, ServerError)
    assert result.error.status_code == 503
    assert stats(faulty)["faults"]["503"] == 3


def test_map_over_fifty_texts_never_exceeds_the_concurrency_cap(make_engine, tmp_path):
    slow = make_engine(latency_ms=100)
    credentials = fresh_credentials(slow, max_concurrency=3)
    texts = [f"Line number {i}." for i in range(50)]

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=12))
    def batch(output_dir: str):
        futures = text_to_speech.map(
            texts,
            credentials=unmapped(credentials),
            voice_id=unmapped(FAST_VOICE),
            output_format=unmapped("pcm_16000"),
            output_dir=unmapped(output_dir),
        )
        return futures.result()

    assets = batch(str(tmp_path))

    counters = stats(slow)
    assert len({a.uri for a in assets}) == 50
    assert counters["completed"] == 50
    assert 2 <= counters["peak_concurrency"] <= 3
    assert counters["rejected"]["too_many_concurrent_requests"] == 0


async def test_missing_global_concurrency_limit_is_a_clear_configuration_error(engine, tmp_path):
    credentials = fresh_credentials(engine, concurrency_limit_name="no-such-limit-here")

    @flow
    async def narrate(output_dir: str):
        state = await text_to_speech(
            "Unthrottled is not allowed.", credentials, output_dir=output_dir, return_state=True
        )
        return await outcome(state)

    result = await narrate(str(tmp_path))

    assert isinstance(result.error, ConfigurationError)
    assert "prefect gcl create no-such-limit-here" in str(result.error)
    assert (await task_run_by_id(result.task_run_id)).run_count == 1
    assert subscription(engine, credentials)["character_count"] == 0


async def test_an_existing_global_concurrency_limit_is_held_and_released(engine, tmp_path):
    name = "elevenlabs-tasks-test"
    async with get_client() as client:
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=1)
        )
    credentials = fresh_credentials(engine, concurrency_limit_name=name)

    @flow
    async def narrate(output_dir: str):
        return await text_to_speech("Throttled politely.", credentials, output_dir=output_dir)

    asset = await narrate(str(tmp_path))

    assert decode(asset.uri).duration > 0.5
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(name)
    assert limit.active_slots == 0


def test_embedded_engine_serves_a_sync_flow(tmp_path):
    credentials = ElevenLabsCredentials(base_url="local")

    @flow
    def offline(output_dir: str):
        return tts_module_task.submit(
            "Offline and embedded.", credentials, output_format="wav_16000", output_dir=output_dir
        ).result()

    asset = offline(str(tmp_path))

    audio = decode(asset.uri)
    assert audio.sample_rate == 16000
    assert rms(audio.samples) > 0.01
