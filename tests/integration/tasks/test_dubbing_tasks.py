"""Dubbing tasks in real flow runs: create, wait, download; failures and timeouts."""

from __future__ import annotations

import pickle

import fsspec
import pytest
from prefect import flow

from prefect_elevenlabs.tasks import (
    DubbingFailedError,
    DubbingTimeoutError,
    create_dubbing,
    download_dubbing,
    speech_to_text,
    wait_for_dubbing,
)

from .conftest import (
    decode,
    fresh_credentials,
    outcome,
    outcome_sync,
    rms,
    task_run_by_id,
    wer,
)

pytestmark = pytest.mark.usefixtures("prefect_server")


async def test_video_is_dubbed_into_spanish_with_subtitles(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    async def dub(path: str):
        job = await create_dubbing(path, "es", credentials, source_lang="en", num_speakers=1)
        done = await wait_for_dubbing(job.dubbing_id, credentials, poll_interval_seconds=0.5)
        dubbed = await download_dubbing(
            job.dubbing_id, "es", credentials, output_dir="memory://dubs"
        )
        source = await download_dubbing(
            job.dubbing_id, "source", credentials, output_dir="memory://dubs",
            subtitles_format="webvtt",
        )
        heard = await speech_to_text(dubbed.media.uri, credentials, language_code="es")
        return job, done, dubbed, source, heard

    job, done, dubbed, source, heard = await dub(str(material["video"]))

    assert job.status == "dubbing" and job.target_languages == ["es"]
    assert done.status == "dubbed" and done.error is None
    assert dubbed.media.uri.endswith(f"dub-{job.dubbing_id}-es.mp4")
    assert dubbed.media.format == "mp4"
    source_duration = decode(material["paused"]).duration
    assert dubbed.media.duration_s == pytest.approx(source_duration, abs=1.0)
    subtitles = fsspec.open(dubbed.subtitles_uri, "r").open().read()
    assert dubbed.subtitles_uri.endswith(".srt") and "-->" in subtitles
    assert "tren" in subtitles.lower()
    vtt = fsspec.open(source.subtitles_uri, "r").open().read()
    assert source.subtitles_uri.endswith(".vtt") and vtt.startswith("WEBVTT")
    assert "morning train" in vtt.lower()
    # The dub speaks Spanish that a recogniser hears back as the subtitles' words.
    subtitle_text = " ".join(
        line for line in subtitles.splitlines() if line and "-->" not in line
        and not line.strip().isdigit()
    )
    subtitle_text = subtitle_text.replace("[speaker_0]", "")
    assert wer(subtitle_text, heard.text) <= 0.5


def test_a_failed_job_raises_its_reason_from_a_sync_flow(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    def dub(path: str):
        job = create_dubbing.submit(path, "de", credentials).result()
        future = wait_for_dubbing.submit(job.dubbing_id, credentials, poll_interval_seconds=0.5)
        future.wait()
        return job, outcome_sync(future.state)

    job, result = dub(str(material["sentence0"]))

    error = result.error
    assert isinstance(error, DubbingFailedError)
    assert error.dubbing_id == job.dubbing_id
    assert "cannot be translated" in error.job_error
    assert job.dubbing_id in str(error)
    # Typed errors survive pickling (Prefect persists and ships them between processes).
    assert pickle.loads(pickle.dumps(error)).job_error == error.job_error


async def test_waiting_too_little_raises_a_timeout_naming_the_job(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    async def dub(path: str):
        job = await create_dubbing(path, "es", credentials, source_lang="en")
        state = await wait_for_dubbing(
            job.dubbing_id, credentials, timeout_seconds=0, poll_interval_seconds=0.1,
            return_state=True,
        )
        return job, await outcome(state)

    job, result = await dub(str(material["paused"]))

    error = result.error
    assert isinstance(error, DubbingTimeoutError)
    assert error.dubbing_id == job.dubbing_id
    assert error.last_status == "dubbing"
    assert job.dubbing_id in str(error) and "timeout_seconds=0" in str(error)
    assert (await task_run_by_id(result.task_run_id)).run_count == 1


async def test_dubbed_audio_input_downloads_as_mp3(engine, material, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    async def dub(path: str, output_dir: str):
        job = await create_dubbing(path, "es", credentials, source_lang="en", num_speakers=1)
        await wait_for_dubbing(job.dubbing_id, credentials, poll_interval_seconds=0.5)
        return await download_dubbing(
            job.dubbing_id, "es", credentials, output_dir=output_dir, subtitles_format=None,
            filename="greeting-es",
        )

    dubbed = await dub(str(material["sentence0"]), str(tmp_path))

    assert dubbed.media.uri == str(tmp_path / "greeting-es.mp3")
    assert dubbed.subtitles_uri is None
    audio = decode(dubbed.media.uri)
    assert audio.duration > 1.0 and rms(audio.samples) > 0.01
