"""Artifacts published from real flow runs, read back through the Prefect client."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_elevenlabs.results import AudioAsset, TimedWord, Transcript, Usage
from prefect_elevenlabs.tasks import (
    Progress,
    apublish_outputs,
    apublish_usage,
    artifact_key,
    publish_outputs,
    publish_transcript,
    publish_usage,
    speech_to_text,
    text_to_speech,
)

from .conftest import FAST_VOICE, fresh_credentials

pytestmark = pytest.mark.usefixtures("prefect_server")


async def latest(key: str):
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        )
    assert found, f"no artifact with key {key!r}"
    return max(found, key=lambda a: a.created)


def test_keys_are_slugified():
    assert artifact_key("Episode 12: Intro!") == "episode-12-intro"
    assert artifact_key("  ") is None
    assert artifact_key(None) is None


def test_transcript_usage_outputs_and_progress_from_a_sync_flow(engine, material, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    def report(output_dir: str):
        speech = text_to_speech.submit(
            "Artifacts make runs readable.", credentials, voice_id=FAST_VOICE,
            output_dir=output_dir,
        ).result()
        transcript = speech_to_text.submit(
            str(material["sentence0"]), credentials, language_code="en"
        ).result()
        progress = Progress(4, key="Tasks Test Progress")
        progress.advance()
        progress.advance(3, description="all done")
        ids = (
            publish_transcript(transcript, key="Tasks Test Transcript"),
            publish_usage([speech, Usage(endpoint="GET /v1/extra", characters=5)],
                          key="tasks test usage"),
            publish_outputs([speech, "s3://bucket/remote.mp3"], key="tasks-test-outputs"),
        )
        return speech, ids, progress.percent

    speech, ids, percent = report(str(tmp_path))

    assert all(ids)
    assert percent == 100.0

    import asyncio

    async def check():
        shown = await latest("tasks-test-transcript")
        assert shown.type == "markdown"
        assert "The morning train" in shown.data
        assert "| 1 | 0:00:" in shown.data
        usage = await latest("tasks-test-usage")
        assert usage.type == "table"
        assert "POST /v1/text-to-speech/{voice_id}" in usage.data
        assert "TOTAL (2 calls)" in usage.data
        assert str(speech.characters + 5) in usage.data
        outputs = await latest("tasks-test-outputs")
        assert speech.uri in outputs.data
        assert "[remote.mp3](s3://bucket/remote.mp3)" in outputs.data
        progress = await latest("tasks-test-progress")
        assert progress.type == "progress" and float(progress.data) == 100.0
        assert progress.flow_run_id is not None

    asyncio.run(check())


def test_progress_updates_are_spaced_out_but_the_last_value_always_lands():
    @flow
    def batch():
        full = Progress(50, key="spaced-progress", min_interval=60).start()
        for _ in range(50):
            full.advance()
        halted = Progress(10, key="halted-progress", min_interval=60)
        for _ in range(3):
            halted.advance(description="3 done, then the batch stopped")
        held_back = halted.published
        halted.flush()
        halted.flush()  # nothing more is pending: no second update
        return full.published, held_back, halted.published

    # The creation and the update that completes the batch; the 48 in between are held back.
    assert batch() == (2, 1, 2)

    import asyncio

    async def check():
        assert float((await latest("spaced-progress")).data) == 100.0
        halted = await latest("halted-progress")
        assert float(halted.data) == 30.0
        assert halted.description == "3 done, then the batch stopped"

    asyncio.run(check())


async def test_async_twins_from_an_async_flow():
    assets = [
        AudioAsset(uri="/tmp/a.mp3", format="mp3_44100_128", characters=12, duration_s=1.5,
                   usage=[Usage(endpoint="POST /v1/sound-generation", characters=12,
                                request_id="req-a", attempts=2, latency_s=0.25)]),
    ]

    @flow
    async def report():
        progress = await Progress(3, key="async-progress", min_interval=60).astart()
        await progress.aadvance(1)  # held back by min_interval
        assert await progress.aflush() == pytest.approx(100 / 3)
        await progress.aadvance(2)
        assert progress.published == 3
        return (
            await apublish_usage(assets, key="async usage"),
            await apublish_outputs(assets, key="async outputs"),
        )

    ids = await report()

    assert all(ids)
    usage = await latest("async-usage")
    assert "req-a" in usage.data and "0.25" in usage.data
    assert "/tmp/a.mp3" in (await latest("async-outputs")).data
    assert float((await latest("async-progress")).data) == 100.0


def test_publishing_without_a_reachable_api_warns_instead_of_failing():
    transcript = Transcript(
        text="Nothing to see.", words=[TimedWord(text="Nothing", start=0.0, end=0.4)]
    )
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert publish_transcript(transcript, key="nowhere") is None
        progress = Progress(1, key="nowhere")
        assert progress.advance() == 100.0
        assert progress.artifact_id is None
