"""Fixtures for the task tests: local engines over HTTP, credentials, audio, Prefect helpers.

Every task test runs real flow runs against the session's Prefect test server (the
``prefect_server`` fixture) and talks to a local engine over loopback HTTP, the same path a
flow takes against the real API. Engines run in this process (uvicorn in a daemon thread);
models load once per process and are shared.

Each test that counts characters uses its own API key: the engine accepts any key and bills
each one separately, so ``/v1/user/subscription`` shows exactly what that test spent.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import httpx
import jiwer
import numpy as np
import pytest
import soundfile as sf

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.local.server import EngineHandle
from tests.integration.engines import FAST_VOICE_ID, engine_factory
from tests.integration.engines import fresh_credentials as engine_credentials

FAST_VOICE = FAST_VOICE_ID

RACHEL = "21m00Tcm4TlvDq8ikWAM"
ADAM = "pNInz6obpgDQGcFmaJgB"

SENTENCES = (
    "The morning train leaves the station at seven.",
    "Please bring a warm coat and an umbrella.",
    "We will meet again by the old stone bridge.",
)
"""Short, plainly spoken sentences that Whisper transcribes reliably."""

# --------------------------------------------------------------------------------------------
# Engines


@pytest.fixture(scope="session")
def make_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EngineHandle]]:
    """Factory for engines with any :class:`EngineConfig` fields; all stop at session end."""
    yield from engine_factory(tmp_path_factory, "tasks-engine")


@pytest.fixture(scope="session")
def engine(make_engine: Callable[..., EngineHandle]) -> EngineHandle:
    """The shared default engine (no keys required, no faults)."""
    return make_engine()


def fresh_credentials(handle: EngineHandle, **fields: Any) -> ElevenLabsCredentials:
    """Credentials for ``handle`` with a key of their own, so their usage starts at zero."""
    return engine_credentials(handle, "test", **fields)


@pytest.fixture
def credentials(engine: EngineHandle) -> ElevenLabsCredentials:
    """Credentials with a fresh key for the shared engine."""
    return fresh_credentials(engine)


def stats(handle: EngineHandle) -> dict[str, Any]:
    """The engine's counters (``GET /local/stats``)."""
    response = httpx.get(f"{handle.base_url}/local/stats", headers={"xi-api-key": "stats"})
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def subscription(handle: EngineHandle, credentials: ElevenLabsCredentials) -> dict[str, Any]:
    """``/v1/user/subscription`` as the engine reports it for these credentials' key."""
    key = credentials.api_key.get_secret_value() if credentials.api_key else "local"
    response = httpx.get(f"{handle.base_url}/v1/user/subscription", headers={"xi-api-key": key})
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


# --------------------------------------------------------------------------------------------
# Audio


@dataclass
class Decoded:
    """Decoded audio: mono samples in [-1, 1], rate, duration."""

    samples: np.ndarray
    sample_rate: int
    duration: float


def decode(uri: str | Path, output_format: str | None = None) -> Decoded:
    """Decodes a local or fsspec file; raw ``pcm_*`` needs its ``output_format``."""
    with fsspec.open(str(uri), "rb") as handle:
        data = handle.read()
    if output_format and output_format.startswith("pcm_"):
        rate = int(output_format.split("_")[1])
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        return Decoded(samples, rate, len(samples) / rate)
    import io

    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return Decoded(samples, int(rate), len(samples) / rate)


def rms(samples: np.ndarray) -> float:
    """Root mean square level: engine speech sits around 0.05-0.2, silence near 0."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


_NORMALIZE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate, ignoring case and punctuation."""
    return float(
        jiwer.wer(
            reference,
            hypothesis,
            reference_transform=_NORMALIZE,
            hypothesis_transform=_NORMALIZE,
        )
    )


def speak(
    handle: EngineHandle,
    text: str,
    dest: Path,
    voice_id: str = RACHEL,
    language_code: str | None = None,
) -> Path:
    """Speech straight from the engine's HTTP API into a 16 kHz WAV (test material)."""
    body: dict[str, Any] = {"text": text, "model_id": "eleven_multilingual_v2"}
    if language_code:
        body["language_code"] = language_code
    response = httpx.post(
        f"{handle.base_url}/v1/text-to-speech/{voice_id}",
        params={"output_format": "wav_16000"},
        json=body,
        headers={"xi-api-key": "material"},
        timeout=120,
    )
    response.raise_for_status()
    dest.write_bytes(response.content)
    return dest


def ffmpeg(*args: str) -> None:
    """Runs ffmpeg to build test media, failing loudly."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def material(engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Spoken test media made once per session.

    ``sentence0``..``sentence2``: one sentence each (16 kHz WAV); ``paused``: the three joined
    with 1.2 s of silence between them; ``video``: a 320x240 video carrying ``paused`` as its
    soundtrack; ``short_video``: the same with ``sentence0``; ``two_voices``: the first
    sentence by Rachel then the third by Adam; ``french``: a French sentence (the engine has
    no French translation installed).
    """
    root = tmp_path_factory.mktemp("material")
    clips = {
        f"sentence{i}": speak(engine, text, root / f"sentence{i}.wav")
        for i, text in enumerate(SENTENCES)
    }
    silence = root / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1.2", "-c:a", "pcm_s16le",
           str(silence))  # fmt: skip
    listing = root / "list.txt"
    parts = [clips["sentence0"], silence, clips["sentence1"], silence, clips["sentence2"]]
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    paused = root / "paused.wav"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c:a", "pcm_s16le", str(paused))
    video = root / "paused.mp4"
    seconds = f"{sf.info(str(paused)).duration:.3f}"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-i", str(paused),
        "-t", seconds, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(video),
    )  # fmt: skip
    short_video = root / "short.mp4"
    seconds = f"{sf.info(str(clips['sentence0'])).duration:.3f}"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-i", str(clips["sentence0"]),
        "-t", seconds, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(short_video),
    )  # fmt: skip
    adam = speak(engine, SENTENCES[2], root / "adam.wav", voice_id=ADAM)
    pair = root / "pair.txt"
    pair.write_text(f"file '{clips['sentence0']}'\nfile '{silence}'\nfile '{adam}'\n")
    two_voices = root / "two_voices.wav"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(pair), "-c:a", "pcm_s16le", str(two_voices))
    french = speak(
        engine,
        "Bonjour, je m'appelle Marie et j'habite à Paris depuis dix ans.",
        root / "french.wav",
        language_code="fr",
    )
    return {**clips, "silence": silence, "paused": paused, "video": video,
            "two_voices": two_voices, "french": french, "short_video": short_video}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Prefect


@dataclass
class Outcome:
    """What a task run ended as, returned from a flow instead of the state itself.

    A flow that returns a failed state fails with it; tests that expect a task to fail
    return this instead, so the flow completes and the test can inspect the failure.
    """

    name: str
    task_run_id: Any
    value: Any

    @property
    def error(self) -> BaseException:
        assert isinstance(self.value, BaseException), f"the task did not fail: {self.value!r}"
        return self.value


async def outcome(state: Any) -> Outcome:
    """:class:`Outcome` of a task state, from an async flow."""
    value = await state.aresult(raise_on_failure=False)
    return Outcome(state.name, state.state_details.task_run_id, value)


def outcome_sync(state: Any) -> Outcome:
    """:class:`Outcome` of a task state, from a sync flow."""
    value = state.result(raise_on_failure=False)
    return Outcome(state.name, state.state_details.task_run_id, value)


async def task_run_by_id(task_run_id: Any) -> Any:
    """A task run read back from the Prefect API."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_task_run(task_run_id)


async def state_names_by_id(task_run_id: Any) -> list[str]:
    """Every state a task run went through, oldest first."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        states = await client.read_task_run_states(task_run_id)
    return [s.name for s in sorted(states, key=lambda s: s.timestamp)]


@dataclass
class Recorded:
    """One HTTP request a client sent to an engine."""

    method: str
    path: str
    json: Any


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list[Recorded]:
    """Records the JSON requests every httpx async client sends (they are still sent)."""
    calls: list[Recorded] = []
    original = httpx.AsyncClient.send

    async def send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        body: Any = None
        if request.headers.get("content-type", "").startswith("application/json"):
            import json

            try:
                body = json.loads(request.content or b"null")
            except ValueError:
                body = None
        calls.append(Recorded(request.method, request.url.path, body))
        return await original(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return calls


def words_of(text: str) -> list[str]:
    """Lowercase words without punctuation."""
    return re.findall(r"[a-z0-9']+", text.lower())
