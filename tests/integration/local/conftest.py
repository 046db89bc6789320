"""Fixtures for testing the local engine over real HTTP, with the official SDK as the client.

Engines run in this process: uvicorn on an ephemeral loopback port in a daemon thread, each
with its own temporary data dir. Models load lazily and once per process, so every engine in
the session shares the same loaded piper/whisper models.

Fixtures (all reusable by other test modules in this package):

- ``engine`` (session): a default engine (no API keys, no modes); ``engine.base_url``.
- ``make_engine`` (session): factory ``make_engine(**config_fields) -> EngineHandle`` for
  engines with other settings (``api_keys=["k"]``, ``max_concurrency=2``, fault rates...).
  Each call starts a new engine with a fresh data dir; all stop at the end of the session.
- ``client`` / ``async_client``: ``ElevenLabs`` / ``AsyncElevenLabs`` pointed at ``engine``.
- ``sdk_for(handle, api_key="local")``: plain function building an SDK client for any engine.

Every engine started here also holds :data:`FAST_VOICE_ID`, a stored voice spoken by espeak-ng
with no pitch shift: it answers in a few milliseconds (piper and pitch-shifted voices take
100-400 ms on this machine), so tests that send many requests to exercise the wire or the modes
use it with :data:`FAST_TTS`.

Helpers (import from this module): :func:`read_audio` decodes returned bytes and reports
sample rate and duration; :func:`rms` measures loudness so tests can tell speech from silence.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from elevenlabs import AsyncElevenLabs, ElevenLabs

from prefect_elevenlabs.local.server import EngineHandle
from tests.integration.engines import (  # noqa: F401  (re-exported for the route tests)
    FAST_VOICE_ID,
    engine_factory,
    install_fast_voice,
)

RACHEL = "21m00Tcm4TlvDq8ikWAM"
ERIC = "cjVigY5qzO86Huf0OWal"

FAST_TTS: dict[str, Any] = {
    "text": "Hi there.",
    "model_id": "eleven_multilingual_v2",
    "output_format": "pcm_16000",
}
"""Arguments (after the voice id) of a cheap ``text_to_speech.convert`` call."""


@dataclass
class DecodedAudio:
    """Audio returned by the engine, decoded."""

    samples: np.ndarray
    sample_rate: int
    duration: float


def read_audio(data: bytes, output_format: str = "mp3_44100_128") -> DecodedAudio:
    """Decode engine output: raw ``pcm_*`` by its declared rate, anything else with soundfile."""
    if output_format.startswith("pcm_"):
        rate = int(output_format.split("_")[1])
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        return DecodedAudio(samples, rate, len(samples) / rate)
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return DecodedAudio(samples, int(rate), len(samples) / rate)


def rms(samples: np.ndarray) -> float:
    """Root mean square level (speech from the engine sits around 0.05-0.2; silence near 0)."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


def sdk_for(handle: EngineHandle, api_key: str | None = "local", **kwargs: Any) -> ElevenLabs:
    """An official SDK client for ``handle`` (``api_key=None`` sends no key)."""
    return ElevenLabs(api_key=api_key, base_url=handle.base_url, **kwargs)


def async_sdk_for(
    handle: EngineHandle, api_key: str | None = "local", **kwargs: Any
) -> AsyncElevenLabs:
    """An official async SDK client for ``handle``."""
    return AsyncElevenLabs(api_key=api_key, base_url=handle.base_url, **kwargs)


@pytest.fixture(scope="session")
def make_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EngineHandle]]:
    """Factory starting engines with any :class:`EngineConfig` fields; stopped at session end."""
    yield from engine_factory(tmp_path_factory, "engine")


@pytest.fixture(scope="session")
def engine(make_engine: Callable[..., EngineHandle]) -> EngineHandle:
    """The default engine shared by the session (no keys, no modes)."""
    return make_engine()


@pytest.fixture(scope="session")
def client(engine: EngineHandle) -> ElevenLabs:
    """The official sync SDK pointed at ``engine``."""
    return sdk_for(engine)


@pytest.fixture
async def async_client(engine: EngineHandle) -> AsyncIterator[AsyncElevenLabs]:
    """The official async SDK pointed at ``engine``."""
    yield async_sdk_for(engine)
