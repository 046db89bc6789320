"""Fixtures for the flow tests: a local engine over HTTP, per-test keys, media inspection.

Every flow test runs real flow runs on the session's Prefect test server (``prefect_server``)
against a local engine on loopback, through the same client path as the real API. Each test
that counts characters uses credentials with a key of its own: the engine bills every key
separately, so ``/v1/user/subscription`` shows exactly what that test spent.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.local.server import EngineHandle
from tests.integration.engines import engine_factory
from tests.integration.engines import fresh_credentials as engine_credentials

SAMPLE_CLIP = Path(__file__).parents[3] / "prefect_elevenlabs" / "assets" / "sample_clip.mp4"
SAMPLE_TEXT = (
    "Hello and welcome to our small studio. This short video was made on a computer with no "
    "network. Thank you very much for watching."
)


@pytest.fixture(scope="session", autouse=True)
def _embedded_engine_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keeps the embedded engine (``base_url="local"``) out of the home directory."""
    key = "ELEVENLABS_LOCAL_DATA_DIR"
    previous = os.environ.get(key)
    os.environ[key] = str(tmp_path_factory.mktemp("embedded-engine"))
    yield
    if previous is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = previous


@pytest.fixture(scope="session")
def make_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EngineHandle]]:
    """Factory for engines with any :class:`EngineConfig` fields; all stop at session end."""
    yield from engine_factory(tmp_path_factory, "flows-engine")


@pytest.fixture(scope="session")
def engine(make_engine: Callable[..., EngineHandle]) -> EngineHandle:
    """The engine shared by the flow tests."""
    return make_engine()


def fresh_credentials(handle: EngineHandle, **fields: Any) -> ElevenLabsCredentials:
    """Credentials for ``handle`` with a key of their own, so their usage starts at zero."""
    return engine_credentials(handle, "flows", **fields)


@pytest.fixture
def credentials(engine: EngineHandle) -> ElevenLabsCredentials:
    """Fresh-key credentials for the shared engine."""
    return fresh_credentials(engine)


def characters_spent(handle: EngineHandle, credentials: ElevenLabsCredentials) -> int:
    """Characters the engine has billed to these credentials' key."""
    key = credentials.api_key.get_secret_value() if credentials.api_key else "local"
    response = httpx.get(f"{handle.base_url}/v1/user/subscription", headers={"xi-api-key": key})
    response.raise_for_status()
    return int(response.json()["character_count"])


def engine_stats(handle: EngineHandle) -> dict[str, Any]:
    """The engine's counters (``GET /local/stats``)."""
    response = httpx.get(f"{handle.base_url}/local/stats", headers={"xi-api-key": "stats"})
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def speak(handle: EngineHandle, text: str, dest: Path, language: str | None = None) -> Path:
    """Speech from the engine's HTTP API as a WAV file (test material)."""
    body: dict[str, Any] = {"text": text, "model_id": "eleven_multilingual_v2"}
    if language:
        body["language_code"] = language
    response = httpx.post(
        f"{handle.base_url}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM",
        params={"output_format": "wav_22050"},
        json=body,
        headers={"xi-api-key": "material"},
        timeout=120,
    )
    response.raise_for_status()
    dest.write_bytes(response.content)
    return dest


def ffprobe(path: str | Path) -> dict[str, Any]:
    """ffprobe's JSON description of a media file: format, streams and chapters."""
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-show_chapters",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def duration_of(path: str | Path) -> float:
    """Decoded duration in seconds, per ffprobe."""
    return float(ffprobe(path)["format"]["duration"])


def streams_of(path: str | Path) -> dict[str, dict[str, Any]]:
    """The first stream of each kind (video, audio, subtitle), by kind."""
    found: dict[str, dict[str, Any]] = {}
    for stream in ffprobe(path)["streams"]:
        found.setdefault(stream["codec_type"], stream)
    return found


def transcribe_with_engine(handle: EngineHandle, path: str | Path) -> dict[str, Any]:
    """The engine's own speech-to-text of a file, with language detection."""
    with open(path, "rb") as handle_file:
        response = httpx.post(
            f"{handle.base_url}/v1/speech-to-text",
            data={"model_id": "scribe_v1"},
            files={"file": (Path(path).name, handle_file)},
            headers={"xi-api-key": "checks"},
            timeout=300,
        )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data
