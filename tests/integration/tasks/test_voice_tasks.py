"""Voice tasks in real flow runs: listing, cloning, designing, keeping and deleting voices."""

from __future__ import annotations

import pytest
from prefect import flow

from prefect_elevenlabs.errors import InvalidRequestError, NotFoundError
from prefect_elevenlabs.tasks import (
    clone_voice,
    create_voice_from_preview,
    delete_voice,
    design_voice,
    list_voices,
    text_to_speech,
)

from .conftest import RACHEL, decode, fresh_credentials, outcome, rms, task_run_by_id

pytestmark = pytest.mark.usefixtures("prefect_server")

DESCRIPTION = "A calm, deep male narrator with a slight British accent, unhurried."


async def test_list_voices_follows_every_page(engine):
    credentials = fresh_credentials(engine)

    @flow
    async def catalogue():
        everything = await list_voices(credentials, page_size=100)
        paged = await list_voices(credentials, page_size=3)
        premade = await list_voices(credentials, category="premade")
        rachel = await list_voices(credentials, search="Rachel")
        return everything, paged, premade, rachel

    everything, paged, premade, rachel = await catalogue()

    assert len(everything) > 3
    assert [v.voice_id for v in paged] == [v.voice_id for v in everything]
    assert RACHEL in {v.voice_id for v in premade}
    assert {v.category for v in premade} == {"premade"}
    assert [v.voice_id for v in rachel] == [RACHEL]
    assert rachel[0].labels.get("gender") == "female"


def test_clone_speak_with_and_delete_a_voice_from_a_sync_flow(engine, material, tmp_path):
    credentials = fresh_credentials(engine)
    samples = [str(material["sentence0"]), str(material["sentence1"])]

    @flow
    def clone_and_use(output_dir: str):
        voice = clone_voice.submit(
            "Test clone",
            samples,
            credentials,
            description="cloned from two sentences",
            labels={"accent": "american"},
        ).result()
        speech = text_to_speech.submit(
            "A cloned voice says hello.", credentials, voice_id=voice.voice_id,
            output_dir=output_dir,
        ).result()
        listed = list_voices.submit(credentials, category="cloned").result()
        delete_voice.submit(voice.voice_id, credentials).result()
        after = list_voices.submit(credentials, category="cloned").result()
        return voice, speech, listed, after

    voice, speech, listed, after = clone_and_use(str(tmp_path))

    assert voice.name == "Test clone"
    assert voice.category == "cloned"
    assert voice.labels.get("accent") == "american"
    assert voice.voice_id in {v.voice_id for v in listed}
    assert voice.voice_id not in {v.voice_id for v in after}
    audio = decode(speech.uri)
    assert audio.duration > 1.0 and rms(audio.samples) > 0.01


async def test_deleting_an_unknown_voice_fails_once(engine):
    credentials = fresh_credentials(engine)

    @flow
    async def remove():
        state = await delete_voice("noSuchVoice000000000", credentials, return_state=True)
        return await outcome(state)

    result = await remove()

    assert isinstance(result.error, NotFoundError)
    assert (await task_run_by_id(result.task_run_id)).run_count == 1


async def test_design_writes_three_previews_once_and_a_preview_becomes_a_voice(engine):
    credentials = fresh_credentials(engine)
    output_dir = "memory://voice-design"

    @flow
    async def design():
        first = await design_voice(
            DESCRIPTION, credentials, output_dir=output_dir, seed=7, return_state=True
        )
        again = await design_voice(
            DESCRIPTION, credentials, output_dir=output_dir, seed=7, return_state=True
        )
        previews = await first.aresult()
        voice = await create_voice_from_preview(
            previews[0].generated_voice_id,
            "Designed narrator",
            "A calm, deep male narrator voice",
            credentials,
            labels={"use_case": "narration"},
        )
        generated = await list_voices(credentials, category="generated")
        return first.name, again.name, previews, await again.aresult(), voice, generated

    first_name, again_name, previews, again, voice, generated = await design()

    assert (first_name, again_name) == ("Completed", "Cached")
    assert len(previews) == 3
    assert [p.audio.uri for p in again] == [p.audio.uri for p in previews]
    assert len({p.generated_voice_id for p in previews}) == 3
    for preview in previews:
        assert preview.audio.uri.startswith("memory:///voice-design/")
        audio = decode(preview.audio.uri)
        assert audio.duration > 1.0 and rms(audio.samples) > 0.01
    assert voice.name == "Designed narrator"
    assert voice.voice_id in {v.voice_id for v in generated}


async def test_a_short_description_is_refused_before_any_request(engine, recorder):
    credentials = fresh_credentials(engine)

    @flow
    async def design():
        state = await design_voice("too short", credentials, return_state=True)
        return await outcome(state)

    result = await design()

    assert isinstance(result.error, InvalidRequestError)
    assert "20 characters" in str(result.error)
    assert not [r for r in recorder if r.path.startswith("/v1/text-to-voice")]
