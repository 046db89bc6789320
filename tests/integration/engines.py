"""Local engines for the integration tests: started in this process, stopped at session end."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.local.config import EngineConfig
from prefect_elevenlabs.local.server import EngineHandle, start_in_thread
from prefect_elevenlabs.local.state import EngineState, StoredVoice

FAST_VOICE_ID = "fastEspeakTestVoice"
"""A cloned voice backed by plain espeak-ng: the quickest speech the engine makes."""


def install_fast_voice(handle: EngineHandle) -> str:
    """Store :data:`FAST_VOICE_ID` (espeak-ng, unshifted) in the engine; return its id."""
    state: EngineState = handle.app.state.engine_state  # type: ignore[attr-defined]
    state.add_voice(StoredVoice.plain_espeak(FAST_VOICE_ID, "Fast test voice", use_case="tests"))
    return FAST_VOICE_ID


def engine_factory(
    tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[Callable[..., EngineHandle]]:
    """Yields a starter of engines with any :class:`EngineConfig` fields; stops them all after.

    Each engine gets its own data dir (unless ``data_dir`` is given) and the fast test voice.
    """
    started: list[EngineHandle] = []

    def start(**fields: Any) -> EngineHandle:
        data_dir: Path = fields.pop("data_dir", None) or tmp_path_factory.mktemp(prefix)
        handle = start_in_thread(EngineConfig(data_dir=data_dir, port=0, **fields))
        started.append(handle)
        install_fast_voice(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


def fresh_credentials(
    handle: EngineHandle, prefix: str = "test", **fields: Any
) -> ElevenLabsCredentials:
    """Credentials for ``handle`` with a key of their own, so their usage starts at zero.

    The engine accepts any key and bills each one separately.
    """
    fields.setdefault("api_key", f"{prefix}-{uuid.uuid4().hex[:12]}")
    return ElevenLabsCredentials(base_url=handle.base_url, **fields)
