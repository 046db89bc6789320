"""Sound-effect and music tasks in real flow runs: real audio, caching, plans, bad input."""

from __future__ import annotations

import os

import fsspec
import pytest
from prefect import flow

from prefect_elevenlabs.errors import InvalidRequestError
from prefect_elevenlabs.tasks import compose_music, create_composition_plan, generate_sound_effect

from .conftest import decode, fresh_credentials, outcome, rms, subscription, task_run_by_id

pytestmark = pytest.mark.usefixtures("prefect_server")


async def test_sound_effect_has_the_asked_length_and_is_cached_on_rerun(engine, tmp_path):
    credentials = fresh_credentials(engine)
    text = "heavy rain on a tin roof"

    @flow
    async def sfx(output_dir: str):
        state = await generate_sound_effect(
            text, credentials, duration_seconds=2.5, output_dir=output_dir,
            output_format="wav_44100", return_state=True,
        )
        return await outcome(state)

    first = await sfx(str(tmp_path))
    billed = subscription(engine, credentials)["character_count"]
    second = await sfx(str(tmp_path))
    os.remove(first.value.uri)
    third = await sfx(str(tmp_path))

    assert [first.name, second.name, third.name] == ["Completed", "Cached", "Completed"]
    assert billed == first.value.characters > 0
    audio = decode(first.value.uri)
    assert audio.sample_rate == 44100
    assert audio.duration == pytest.approx(2.5, abs=0.1)
    assert rms(audio.samples) > 0.005
    assert subscription(engine, credentials)["character_count"] == 2 * billed


def test_sound_effect_to_fsspec_memory_from_a_sync_flow(engine):
    credentials = fresh_credentials(engine)

    @flow
    def sfx():
        return generate_sound_effect.submit(
            "a door creaks open slowly", credentials, duration_seconds=1.5, loop=True,
            output_dir="memory://sfx", filename="door",
        ).result()

    asset = sfx()

    assert asset.uri == "memory:///sfx/door.mp3"
    assert fsspec.filesystem("memory").exists("/sfx/door.mp3")
    audio = decode(asset.uri)
    assert audio.duration == pytest.approx(1.5, abs=0.15)
    assert rms(audio.samples) > 0.005


async def test_music_from_a_prompt_and_from_an_edited_plan(engine, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    async def score(output_dir: str):
        from_prompt = await compose_music(
            "calm lo-fi piano", credentials=credentials, music_length_ms=6000,
            force_instrumental=True, output_dir=output_dir,
        )
        plan = await create_composition_plan(
            "upbeat synth-pop jingle", credentials, music_length_ms=8000
        )
        plan["sections"] = [
            {**plan["sections"][0], "duration_ms": 3000},
            {**plan["sections"][0], "section_name": "Outro", "duration_ms": 3000},
        ]
        from_plan = await compose_music(
            credentials=credentials, composition_plan=plan, output_dir=output_dir
        )
        cached = await compose_music(
            credentials=credentials, composition_plan=plan, output_dir=output_dir,
            return_state=True,
        )
        return from_prompt, plan, from_plan, cached.name

    from_prompt, plan, from_plan, cached_name = await score(str(tmp_path))

    assert plan["sections"] and all("duration_ms" in s for s in plan["sections"])
    prompt_audio = decode(from_prompt.uri)
    assert prompt_audio.duration == pytest.approx(6.0, abs=0.3)
    assert rms(prompt_audio.samples) > 0.005
    assert decode(from_plan.uri).duration == pytest.approx(6.0, abs=0.3)
    assert from_plan.uri != from_prompt.uri
    assert cached_name == "Cached"


async def test_music_needs_exactly_one_of_prompt_and_plan(engine, recorder):
    credentials = fresh_credentials(engine)

    @flow
    async def score():
        state = await compose_music(
            "a prompt", credentials=credentials, composition_plan={"sections": []},
            return_state=True,
        )
        return await outcome(state)

    result = await score()

    assert isinstance(result.error, InvalidRequestError)
    assert "exactly one of prompt" in str(result.error)
    assert (await task_run_by_id(result.task_run_id)).run_count == 1
    assert not [r for r in recorder if r.path == "/v1/music"]
