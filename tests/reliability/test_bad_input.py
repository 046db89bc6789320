"""Bad input of every kind gets a typed error that says what to fix, and writes nothing.

Each case runs against a real engine (an in-process one requiring a key, with a 1 MB upload
limit) through the public tasks, flows and credentials block, into an output folder holding one
file beforehand; after the error the folder must hold exactly that file.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.exceptions import ParameterTypeError
from pydantic import SecretStr

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.client import ElevenLabsClient
from prefect_elevenlabs.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    InvalidRequestError,
    MediaError,
    NotFoundError,
)
from prefect_elevenlabs.flows import (
    DubbingApiOptions,
    ItemsFailedError,
    ScriptError,
    dub,
    narrate,
    transcribe,
)
from prefect_elevenlabs.local.server import EngineHandle
from prefect_elevenlabs.tasks import (
    DubbingFailedError,
    DubbingTimeoutError,
    create_dubbing,
    speech_to_text,
    text_to_speech,
    wait_for_dubbing,
)

from .report import FAST_VOICE_ID, audio_duration, files_under, free_port, measure_unreachable

pytestmark = pytest.mark.usefixtures("prefect_server")

KEY = "bad-input-key"
SENTINEL = "keep.txt"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@dataclass
class Ctx:
    """What a case needs: the engine, credentials, the output folder and sample media."""

    engine: EngineHandle
    credentials: ElevenLabsCredentials
    out: Path
    media: Path

    def tts(self, text: str = "A short line.", **options: Any) -> Awaitable[Any]:
        options.setdefault("voice_id", FAST_VOICE_ID)
        options.setdefault("output_dir", str(self.out))
        return text_to_speech.with_options(retries=0)(text, self.credentials, **options)

    def stt(self, name: str, **options: Any) -> Awaitable[Any]:
        return speech_to_text.with_options(retries=0)(
            str(self.media / name), self.credentials, **options
        )

    async def narrate(self, scripts: Any, **options: Any) -> Any:
        options.setdefault("voice_id", FAST_VOICE_ID)
        options.setdefault("output_dir", str(self.out))
        options.setdefault("credentials", self.credentials)
        return await asyncio.to_thread(lambda: narrate(scripts, **options))


@pytest.fixture(scope="module")
def engine(start_engine: Callable[..., EngineHandle]) -> EngineHandle:
    return start_engine(api_keys=[KEY], max_upload_mb=1)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample inputs: good speech-like audio, and files that are not usable media."""
    folder = Path(tmp_path_factory.mktemp("media"))
    (folder / "corrupt.mp3").write_bytes(b"ID3\x03\x00" + os.urandom(6000))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "letter.wav").write_text("Dear reader, this is not audio.\n" * 40)
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(folder / "cover.png"))
    _ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x64:d=1", "-an", str(folder / "mute.mp4"))
    # 8 s of 44.1 kHz stereo PCM: about 1.4 MB, over the engine's 1 MB upload limit.
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=8",
        "-ac",
        "2",
        "-ar",
        "44100",
        str(folder / "long.wav"),
    )
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=2", str(folder / "tone.wav"))
    (folder / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me, s'il vous pla\xeet.".encode("latin-1"))
    (folder / "columns.csv").write_text("name,words\nintro,Hello there.\n", encoding="utf-8")
    (folder / "broken.jsonl").write_text(
        '{"id": "one", "text": "Fine."}\n{"id": "two", "text": \n', encoding="utf-8"
    )
    return folder


@pytest.fixture
def ctx(engine: EngineHandle, media: Path, tmp_path: Path) -> Ctx:
    out = tmp_path / "out"
    out.mkdir()
    (out / SENTINEL).write_text("already here\n")
    credentials = ElevenLabsCredentials(
        base_url=engine.base_url, api_key=SecretStr(KEY), max_retries=0
    )
    return Ctx(engine=engine, credentials=credentials, out=out, media=media)


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("ELEVENLABS_BASE_URL", raising=False)
    yield


@dataclass(frozen=True)
class Case:
    """A bad input: how to send it, the error class expected and words its message must hold."""

    error: type[BaseException]
    says: str
    send: Callable[[Ctx], Awaitable[Any]]


async def _unreachable(ctx: Ctx) -> Any:
    closed = ElevenLabsCredentials(
        base_url=f"http://127.0.0.1:{free_port()}", api_key=SecretStr(KEY), max_retries=1
    )
    return await text_to_speech.with_options(retries=0)(
        "Hello.", closed, voice_id=FAST_VOICE_ID, output_dir=str(ctx.out)
    )


async def _missing_key(ctx: Ctx) -> Any:
    keyless = ElevenLabsCredentials(base_url=ctx.engine.base_url)
    return await text_to_speech.with_options(retries=0)(
        "Hello.", keyless, voice_id=FAST_VOICE_ID, output_dir=str(ctx.out)
    )


async def _wrong_key(ctx: Ctx) -> Any:
    wrong = ElevenLabsCredentials(base_url=ctx.engine.base_url, api_key=SecretStr("not-the-key"))
    return await text_to_speech.with_options(retries=0)(
        "Hello.", wrong, voice_id=FAST_VOICE_ID, output_dir=str(ctx.out)
    )


async def _versioned_base_url(ctx: Ctx) -> Any:
    async with ElevenLabsClient(KEY, base_url=f"{ctx.engine.base_url}/v1"):
        return None


async def _malformed_base_url(ctx: Ctx) -> Any:
    return ElevenLabsCredentials(base_url="htp:/api.elevenlabs.io", api_key=SecretStr(KEY))


CASES: dict[str, Case] = {
    # Text
    "empty text": Case(ScriptError, "has no text", lambda c: c.narrate([{"id": "a", "text": ""}])),
    "blank text": Case(
        ScriptError, "has no text", lambda c: c.narrate([{"id": "a", "text": " \n\t "}])
    ),
    "blank text to the task": Case(InvalidRequestError, "text is empty", lambda c: c.tts("   ")),
    # Voices, models, formats, settings, languages
    "unknown voice": Case(
        NotFoundError,
        "voice_id nobodyHere404 was not found",
        lambda c: c.tts(voice_id="nobodyHere404"),
    ),
    "unknown model": Case(
        InvalidRequestError,
        "'eleven_imaginary_v9' is not a text-to-speech model",
        lambda c: c.tts(model_id="eleven_imaginary_v9"),
    ),
    "invalid output_format": Case(
        InvalidRequestError,
        "output_format 'mp3_1000_1' is not accepted",
        lambda c: c.tts(output_format="mp3_1000_1"),
    ),
    "voice_settings out of range (task)": Case(
        InvalidRequestError,
        "stability",
        lambda c: c.tts(voice_settings={"stability": 1.5}),
    ),
    "voice_settings out of range (flow)": Case(
        ParameterTypeError,
        "stability",
        lambda c: c.narrate([{"id": "a", "text": "Hi."}], voice_settings={"stability": 2}),
    ),
    "unknown language code (speech)": Case(
        InvalidRequestError,
        "cannot speak language 'xx'",
        lambda c: c.tts(language_code="xx"),
    ),
    "headerless format with loudness": Case(
        InvalidRequestError,
        "headerless",
        lambda c: c.narrate([{"id": "a", "text": "Hi."}], output_format="pcm_16000"),
    ),
    "zero concurrency": Case(
        InvalidRequestError,
        "max_concurrency must be 1 or more",
        lambda c: c.narrate([{"id": "a", "text": "Hi."}], max_concurrency=0),
    ),
    # Media
    "corrupt media": Case(MediaError, "not a media file", lambda c: c.stt("corrupt.mp3")),
    "zero-byte media": Case(MediaError, "empty (0 bytes)", lambda c: c.stt("empty.wav")),
    "text posing as audio": Case(MediaError, "not a media file", lambda c: c.stt("letter.wav")),
    "image instead of media": Case(MediaError, "no audio", lambda c: c.stt("cover.png")),
    "video without sound": Case(MediaError, "no audio", lambda c: c.stt("mute.mp4")),
    "upload over the server's limit": Case(
        InvalidRequestError, "larger than this engine accepts", lambda c: c.stt("long.wav")
    ),
    "unknown language code (transcription)": Case(
        InvalidRequestError,
        "unknown language code 'zz'",
        lambda c: c.stt("tone.wav", language_code="zz"),
    ),
    # Credentials and connection
    "missing API key": Case(ConfigurationError, "three ways", _missing_key),
    "wrong API key": Case(AuthenticationError, "invalid api key", _wrong_key),
    "malformed base_url": Case(ValueError, "must be an http(s) origin", _malformed_base_url),
    "base_url with the API version": Case(
        ConfigurationError, "ends with an API version", _versioned_base_url
    ),
    "unreachable server": Case(ConnectionFailedError, "could not get a response", _unreachable),
    # Where outputs go and what they are called
    "output directory blocked by a file": Case(
        ConfigurationError,
        "cannot be created",
        lambda c: c.narrate([{"id": "a", "text": "Hi."}], output_dir=str(c.out / SENTINEL / "x")),
    ),
    "output directory that cannot exist": Case(
        ConfigurationError,
        "cannot be created",
        lambda c: c.tts(output_dir="/proc/elevenlabs-output"),
    ),
    "id with a path separator": Case(
        ScriptError, "cannot name a file", lambda c: c.narrate([{"id": "a/b", "text": "Hi."}])
    ),
    "id with ..": Case(
        ScriptError, "cannot name a file", lambda c: c.narrate([{"id": "..", "text": "Hi."}])
    ),
    "file name escaping the folder": Case(
        InvalidRequestError,
        "cannot be used as a file name",
        lambda c: c.tts(filename="../escaped"),
    ),
    # Script files
    "non-UTF-8 script": Case(
        ScriptError, "not UTF-8: byte 3", lambda c: c.narrate(str(c.media / "latin1.txt"))
    ),
    "CSV without its columns": Case(
        ScriptError,
        "lacks the column(s) id, text",
        lambda c: c.narrate(str(c.media / "columns.csv")),
    ),
    "broken JSONL line": Case(
        ScriptError, "line 2 is not valid JSON", lambda c: c.narrate(str(c.media / "broken.jsonl"))
    ),
    "duplicate ids": Case(
        ScriptError,
        "duplicate id 'a'",
        lambda c: c.narrate([{"id": "a", "text": "One."}, {"id": "a", "text": "Two."}]),
    ),
    "script file that does not exist": Case(
        ScriptError, "does not exist", lambda c: c.narrate(str(c.media / "missing.csv"))
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_gets_a_typed_error_and_writes_nothing(name: str, ctx: Ctx) -> None:
    case = CASES[name]
    before = files_under(ctx.out)
    with pytest.raises(case.error) as caught:
        await case.send(ctx)
    assert case.says.lower() in str(caught.value).lower()
    assert files_under(ctx.out) == before == {SENTINEL}


async def test_text_over_the_model_limit_is_split_not_refused(ctx: Ctx) -> None:
    # eleven_v3 takes 3000 characters a request; this is ~3,400, so two stitched requests.
    sentence = "The river ran quietly past the old mill at dawn. "
    text = (sentence * 70).strip()
    asset = await ctx.tts(text, model_id="eleven_v3", output_format="mp3_22050_32")
    assert len(asset.request_ids) == 2
    assert len(text) - 2 <= sum(u.characters for u in asset.usage) <= len(text)
    assert audio_duration(Path(asset.uri)) > 30
    assert files_under(ctx.out) == {SENTINEL, Path(asset.uri).name}


async def test_media_over_the_upload_limit_goes_through_in_pieces(ctx: Ctx) -> None:
    transcript = await ctx.stt("long.wav", max_chunk_bytes=512 * 1024)
    assert transcript.duration_s is not None and transcript.duration_s >= 7.5


def test_a_batch_of_unusable_media_names_each_file_and_writes_nothing(ctx: Ctx) -> None:
    names = ["corrupt.mp3", "empty.wav", "letter.wav", "mute.mp4"]
    with pytest.raises(ItemsFailedError) as caught:
        transcribe(
            [str(ctx.media / n) for n in names],
            output_dir=str(ctx.out),
            credentials=ctx.credentials,
        )
    failed = {Path(item.id).name: item.error or "" for item in caught.value.summary.failed}
    assert set(failed) == set(names)
    assert "empty (0 bytes)" in failed["empty.wav"]
    assert "no audio" in failed["mute.mp4"]
    assert files_under(ctx.out) == {SENTINEL}


# --------------------------------------------------------------------------------------------
# Dubbing: a job the server cannot do, and a wait that runs out


@pytest.fixture(scope="module")
def french_speech(engine: EngineHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """French speech: the engine can only dub between English and Spanish, so its job fails."""
    import httpx

    response = httpx.post(
        f"{engine.base_url}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM",
        params={"output_format": "mp3_44100_128"},
        json={
            "text": "Bonjour à tous. Nous parlons aujourd'hui de cuisine et de fromage.",
            "model_id": "eleven_multilingual_v2",
            "language_code": "fr",
        },
        headers={"xi-api-key": KEY},
        timeout=120,
    )
    response.raise_for_status()
    path = Path(tmp_path_factory.mktemp("french")) / "bonjour.mp3"
    path.write_bytes(response.content)
    return path


@pytest.mark.slow
async def test_a_dubbing_wait_that_runs_out_and_a_job_that_fails(
    ctx: Ctx, french_speech: Path
) -> None:
    job = await create_dubbing.with_options(retries=0)(str(french_speech), "es", ctx.credentials)
    with pytest.raises(DubbingTimeoutError) as timed_out:
        await wait_for_dubbing.with_options(retries=0)(
            job.dubbing_id, ctx.credentials, timeout_seconds=0.3, poll_interval_seconds=0.1
        )
    assert job.dubbing_id in str(timed_out.value)
    assert timed_out.value.last_status == "dubbing"

    with pytest.raises(DubbingFailedError) as failed:
        await wait_for_dubbing.with_options(retries=0)(
            job.dubbing_id, ctx.credentials, timeout_seconds=600, poll_interval_seconds=0.5
        )
    assert "cannot be translated to 'es'" in str(failed.value)
    assert failed.value.dubbing_id == job.dubbing_id
    assert files_under(ctx.out) == {SENTINEL}


@pytest.mark.slow
def test_a_failed_dub_names_the_reason_and_writes_nothing(ctx: Ctx, french_speech: Path) -> None:
    with pytest.raises(ItemsFailedError) as caught:
        dub(
            str(french_speech),
            ["es"],
            output_dir=str(ctx.out),
            strategy="dubbing_api",
            dubbing_api=DubbingApiOptions(poll_interval_s=0.5),
            credentials=ctx.credentials,
        )
    assert "cannot be translated to 'es'" in str(caught.value)
    assert files_under(ctx.out) == {SENTINEL}


async def test_the_language_error_lists_only_real_language_codes(ctx: Ctx) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await ctx.tts(language_code="a")
    listed = str(caught.value).split("e.g. ", 1)[1].split(" (HTTP", 1)[0].split(", ")
    assert len(listed) >= 20
    assert [code for code in listed if not re.fullmatch(r"[a-z]{2,3}", code)] == []


def test_an_unreachable_server_ends_in_a_clear_error_after_the_default_retries() -> None:
    run = measure_unreachable()
    assert run.error.startswith("ConnectionFailedError"), run.error
    assert run.url in run.error and "could not get a response" in run.error
    assert run.attempts == run.expected_attempts
    assert run.shortfalls() == []
