"""Calling the async tasks the way a sync flow author writes them: ``text_to_speech(...)``."""

from __future__ import annotations

import asyncio
import inspect
import os
import stat

import pytest
from prefect import flow, task

from prefect_elevenlabs.results import AudioAsset
from prefect_elevenlabs.tasks import text_to_speech

from .conftest import FAST_VOICE, decode, fresh_credentials

pytestmark = pytest.mark.usefixtures("prefect_server")


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def test_a_direct_call_from_a_sync_flow_returns_the_asset_not_a_coroutine(engine, tmp_path):
    credentials = fresh_credentials(engine)
    quick = text_to_speech.with_options(retries=0)

    @flow
    def narrate(output_dir: str):
        first = text_to_speech("Called directly.", credentials, voice_id=FAST_VOICE,
                               output_dir=output_dir)
        # with_options copies keep the behaviour.
        second = quick("Called through a copy.", credentials, voice_id=FAST_VOICE,
                       output_dir=output_dir)
        return first, second

    first, second = narrate(str(tmp_path))

    for asset in (first, second):
        assert isinstance(asset, AudioAsset)
        assert decode(asset.uri).duration > 0.3
        mode = stat.S_IMODE(os.stat(asset.uri).st_mode)
        assert mode == 0o666 & ~_umask(), oct(mode)


def test_a_sync_flow_called_from_async_code_still_gets_the_asset(engine, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    def narrate(output_dir: str):
        return text_to_speech("From inside a loop.", credentials, voice_id=FAST_VOICE,
                              output_dir=output_dir)

    async def caller():
        return narrate(str(tmp_path))

    asset = asyncio.run(caller())
    assert isinstance(asset, AudioAsset)


def test_calls_that_can_be_awaited_stay_coroutines(engine, tmp_path):
    credentials = fresh_credentials(engine)

    @flow
    async def narrate_all(output_dir: str):
        calls = [text_to_speech(t, credentials, voice_id=FAST_VOICE, output_dir=output_dir)
                 for t in ("one", "two")]
        assert all(inspect.iscoroutine(c) for c in calls)
        return await asyncio.gather(*calls)

    @flow
    def sync_flow_running_a_loop(output_dir: str):
        async def both():
            call = text_to_speech("three", credentials, voice_id=FAST_VOICE,
                                  output_dir=output_dir)
            assert inspect.iscoroutine(call)
            return await call

        return asyncio.run(both())

    assets = asyncio.run(narrate_all(str(tmp_path)))
    assert [a.text for a in assets] == ["one", "two"]
    assert sync_flow_running_a_loop(str(tmp_path)).text == "three"


def test_a_sync_task_may_call_an_async_task_directly(engine, tmp_path):
    credentials = fresh_credentials(engine)

    @task
    def speak(text: str, output_dir: str) -> AudioAsset:
        return text_to_speech(text, credentials, voice_id=FAST_VOICE, output_dir=output_dir)

    @flow
    def narrate(output_dir: str):
        return speak("Nested in a task.", output_dir)

    assert isinstance(narrate(str(tmp_path)), AudioAsset)
