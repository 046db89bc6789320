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

from .conftest import decode, fresh_credentials, outcome, outcome_sync, rms, task_run_by_id

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
        heard = await speech_to_text(dubbed.media.uri, credentials)
        return job, done, dubbed, source, heard

    job, done, dubbed, source, heard = await dub(str(material["short_video"]))

    assert job.status == "dubbing" and job.target_languages == ["es"]
    assert done.status == "dubbed" and done.error is None
    assert dubbed.media.uri.endswith(f"dub-{job.dubbing_id}-es.mp4")
    assert dubbed.media.format == "mp4"
    source_duration = decode(material["sentence0"]).duration
    assert dubbed.media.duration_s == pytest.approx(source_duration, abs=1.0)
    subtitles = fsspec.open(dubbed.subtitles_uri, "r").open().read()
    assert dubbed.subtitles_uri.endswith(".srt") and "-->" in subtitles
    assert "tren" in subtitles.lower()
    vtt = fsspec.open(source.subtitles_uri, "r").open().read()
    assert source.subtitles_uri.endswith(".vtt") and vtt.startswith("WEBVTT")
    assert "morning train" in vtt.lower()
    # The dub speaks Spanish: a recogniser left to detect the language hears Spanish.
    assert heard.language in ("es", "spa")
    assert len(heard.words) >= 4


def test_a_failed_job_raises_its_reason_from_a_sync_flow(engine, material):
    # French speech is accepted (the language is detected later) but cannot be translated.
    credentials = fresh_credentials(engine)

    @flow
    def dub(path: str):
        job = create_dubbing.submit(path, "es", credentials).result()
        future = wait_for_dubbing.submit(job.dubbing_id, credentials, poll_interval_seconds=0.5)
        future.wait()
        return job, outcome_sync(future.state)

    job, result = dub(str(material["french"]))

    error = result.error
    assert isinstance(error, DubbingFailedError)
    assert error.dubbing_id == job.dubbing_id
    assert "cannot be translated" in error.job_error
    assert job.dubbing_id in str(error)
    # Typed errors survive pickling (Prefect persists and ships them between processes).
    assert pickle.loads(pickle.dumps(error)).job_error == error.job_error


async def test_a_timed_out_wait_can_be_resumed_and_audio_dubs_download_as_mp3(
    engine, material, tmp_path
):
    credentials = fresh_credentials(engine)

    @flow
    async def dub(path: str, output_dir: str):
        job = await create_dubbing(path, "es", credentials, source_lang="en", num_speakers=1)
        impatient = await wait_for_dubbing(
            job.dubbing_id, credentials, timeout_seconds=0, poll_interval_seconds=0.1,
            return_state=True,
        )
        # The job goes on server-side: waiting again picks it up where it is.
        await wait_for_dubbing(job.dubbing_id, credentials, poll_interval_seconds=0.5)
        dubbed = await download_dubbing(
            job.dubbing_id, "es", credentials, output_dir=output_dir, subtitles_format=None,
            filename="greeting-es",
        )
        return job, await outcome(impatient), dubbed

    job, timed_out, dubbed = await dub(str(material["sentence0"]), str(tmp_path))

    error = timed_out.error
    assert isinstance(error, DubbingTimeoutError)
    assert error.dubbing_id == job.dubbing_id
    assert error.last_status == "dubbing"
    assert job.dubbing_id in str(error) and "timeout_seconds=0" in str(error)
    assert (await task_run_by_id(timed_out.task_run_id)).run_count == 1
    assert dubbed.media.uri == str(tmp_path / "greeting-es.mp3")
    assert dubbed.subtitles_uri is None
    audio = decode(dubbed.media.uri)
    assert audio.duration > 1.0 and rms(audio.samples) > 0.01
