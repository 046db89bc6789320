"""Text-to-speech tasks: plain, with timestamps, and streamed; any length of text.

Texts longer than the model's per-request limit (read from ``/v1/models``) are split on sentence
boundaries and generated in order with request stitching (``previous_request_ids`` and
``next_text``), then joined; timestamps are shifted so the result looks like one request's.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError
from ..results import AudioAsset, SpeechWithTimestamps, Usage
from . import _audio, _storage
from ._policy import RETRY_OPTIONS, api_call, generation_cache, run_logger
from ._task import task
from ._text import split_text

DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", a premade voice on every account
DEFAULT_MODEL_ID = "eleven_multilingual_v2"
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
FALLBACK_TEXT_LIMIT = 5000
_STITCH_CONTEXT = 3  # the API accepts at most three previous/next request ids

_limits: dict[tuple[str, str], int] = {}
_limits_lock = threading.Lock()


def _settings_dict(voice_settings: Any) -> dict[str, Any] | None:
    if voice_settings is None:
        return None
    if hasattr(voice_settings, "model_dump"):
        return dict(voice_settings.model_dump(exclude_none=True))
    return dict(voice_settings)


def speech_file_name(
    text: str,
    *,
    voice_id: str,
    model_id: str,
    output_format: str,
    voice_settings: Any = None,
    language_code: str | None = None,
    seed: int | None = None,
    filename: str | None = None,
    kind: str = "speech",
) -> str:
    """The file name of a speech output: ``filename`` if given, else derived from the inputs."""
    ext = _audio.extension(output_format)
    if filename:
        _storage.safe_name(filename, what="filename")
        return filename if filename.endswith(f".{ext}") else f"{filename}.{ext}"
    digest = _storage.content_hash(
        kind,
        text,
        voice_id,
        model_id,
        output_format,
        _settings_dict(voice_settings),
        language_code,
        seed,
    )
    return f"{_storage.slug(text)}-{digest}.{ext}"


def _expected_uri(inputs: dict[str, Any], kind: str) -> str:
    name = speech_file_name(
        inputs["text"],
        voice_id=inputs.get("voice_id", DEFAULT_VOICE_ID),
        model_id=inputs.get("model_id", DEFAULT_MODEL_ID),
        output_format=inputs.get("output_format", DEFAULT_OUTPUT_FORMAT),
        voice_settings=inputs.get("voice_settings"),
        language_code=inputs.get("language_code"),
        seed=inputs.get("seed"),
        filename=inputs.get("filename"),
        kind=kind,
    )
    return _storage.OutputDir(inputs.get("output_dir")).uri_of(name)


async def text_limit(client: Any, model_id: str) -> int:
    """The model's per-request character limit, read once per API origin and cached."""
    key = (client.transport.base_url, model_id)
    with _limits_lock:
        if key in _limits:
            return _limits[key]
    limit = FALLBACK_TEXT_LIMIT
    models = await client.models.list()
    for model in models:
        if model.model_id == model_id and model.maximum_text_length_per_request:
            limit = int(model.maximum_text_length_per_request)
    with _limits_lock:
        _limits[key] = limit
    return limit


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError(
            "text is empty: give the words to speak", status="invalid_parameters", param="text"
        )
    return text


def _usage(meta: Any, characters: int | None = None) -> Usage:
    return Usage(
        endpoint=meta.endpoint,
        characters=meta.character_cost if meta.character_cost is not None else (characters or 0),
        request_id=meta.request_id,
        attempts=meta.attempts,
        latency_s=meta.latency_s,
    )


class _Speaker:
    """Generates one text, chunk by chunk, into a local file."""

    def __init__(self, client: Any, voice_id: str, options: dict[str, Any]) -> None:
        self.client = client
        self.voice_id = voice_id
        self.options = options
        self.usage: list[Usage] = []
        self.request_ids: list[str] = []
        self.characters: list[str] = []
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.history_item_id: str | None = None

    def _stitching(self, chunks: list[str], index: int) -> dict[str, Any]:
        if len(chunks) == 1:
            return {}
        context: dict[str, Any] = {}
        if self.request_ids:
            context["previous_request_ids"] = self.request_ids[-_STITCH_CONTEXT:]
        elif index > 0:
            context["previous_text"] = chunks[index - 1]
        if index + 1 < len(chunks):
            context["next_text"] = chunks[index + 1]
        return context

    def _record(self, meta: Any, text: str) -> None:
        self.usage.append(_usage(meta, len(text)))
        if meta.request_id:
            self.request_ids.append(meta.request_id)
        self.history_item_id = meta.history_item_id or self.history_item_id

    async def plain(self, chunk: str, dest: Path, context: dict[str, Any]) -> None:
        result = await self.client.text_to_speech.convert(
            self.voice_id, text=chunk, dest=dest, **self.options, **context
        )
        self._record(result.meta, chunk)

    async def timed(self, chunk: str, dest: Path, context: dict[str, Any], offset: float) -> None:
        result = await self.client.text_to_speech.convert_with_timestamps(
            self.voice_id, text=chunk, **self.options, **context
        )
        dest.write_bytes(base64.b64decode(result.audio_base64))
        self._record(result.meta, chunk)
        alignment = result.alignment
        if alignment is not None:
            if self.characters:
                # Chunks were split at whitespace that the API never saw: put one back.
                self.characters.append(" ")
                self.starts.append(offset)
                self.ends.append(offset)
            self.characters.extend(alignment.characters)
            self.starts.extend(t + offset for t in alignment.character_start_times_seconds)
            self.ends.extend(t + offset for t in alignment.character_end_times_seconds)

    async def streamed(
        self, chunk: str, out: Any, context: dict[str, Any], clock: dict[str, float]
    ) -> None:
        async with self.client.text_to_speech.stream(
            self.voice_id, text=chunk, **self.options, **context
        ) as stream:
            async for piece in stream.iter_bytes():
                if "first_byte" not in clock:
                    clock["first_byte"] = time.monotonic() - clock["start"]
                out.write(piece)
            self._record(stream.meta, chunk)

    async def speak(self, chunks: list[str], dest: Path, output_format: str, timed: bool) -> None:
        if len(chunks) == 1:
            if timed:
                await self.timed(chunks[0], dest, {}, 0.0)
            else:
                await self.plain(chunks[0], dest, {})
            return
        with tempfile.TemporaryDirectory(prefix="elevenlabs-tts-") as tmp:
            parts: list[Path] = []
            offset = 0.0
            for index, chunk in enumerate(chunks):
                part = Path(tmp, f"part-{index:04d}.{_audio.extension(output_format)}")
                context = self._stitching(chunks, index)
                if timed:
                    await self.timed(chunk, part, context, offset)
                else:
                    await self.plain(chunk, part, context)
                duration, _ = _audio.audio_facts(part, output_format)
                offset += duration or 0.0
                parts.append(part)
            _audio.join_audio(parts, dest, output_format)


def _asset(
    uri: str,
    staged: Path,
    speaker: _Speaker,
    *,
    text: str,
    voice_id: str,
    model_id: str,
    output_format: str,
) -> AudioAsset:
    duration, sample_rate = _audio.audio_facts(staged, output_format)
    return AudioAsset(
        uri=uri,
        format=output_format,
        sample_rate=sample_rate,
        duration_s=duration,
        size_bytes=staged.stat().st_size,
        characters=sum(u.characters for u in speaker.usage),
        request_id=speaker.request_ids[-1] if speaker.request_ids else None,
        request_ids=speaker.request_ids,
        history_item_id=speaker.history_item_id,
        voice_id=voice_id,
        model_id=model_id,
        text=text,
        usage=speaker.usage,
    )


def _plan(
    kind: str,
    text: str,
    voice_id: str,
    model_id: str,
    output_format: str,
    voice_settings: Any,
    language_code: str | None,
    seed: int | None,
    output_dir: str | os.PathLike[str] | None,
    filename: str | None,
) -> tuple[str, _storage.OutputDir, dict[str, Any]]:
    """Checks the text; returns the output's name, its folder and the request options."""
    _check_text(text)
    name = speech_file_name(
        text,
        voice_id=voice_id,
        model_id=model_id,
        output_format=output_format,
        voice_settings=voice_settings,
        language_code=language_code,
        seed=seed,
        filename=filename,
        kind=kind,
    )
    options = {
        "model_id": model_id,
        "output_format": output_format,
        "voice_settings": _settings_dict(voice_settings),
        "language_code": language_code,
        "seed": seed,
    }
    return name, _storage.OutputDir(output_dir), options


async def generate_speech(
    text: str,
    credentials: ElevenLabsCredentials,
    *,
    voice_id: str = DEFAULT_VOICE_ID,
    model_id: str = DEFAULT_MODEL_ID,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
    voice_settings: Any = None,
    language_code: str | None = None,
    seed: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    with_timestamps: bool = False,
) -> AudioAsset | SpeechWithTimestamps:
    """Speaks ``text`` of any length into one file; the engine behind the speech tasks."""
    kind = "timestamps" if with_timestamps else "speech"
    name, target, options = _plan(
        kind,
        text,
        voice_id,
        model_id,
        output_format,
        voice_settings,
        language_code,
        seed,
        output_dir,
        filename,
    )
    async with api_call(credentials) as client:
        chunks = split_text(text, await text_limit(client, model_id))
        if len(chunks) > 1:
            run_logger().info(
                "text of %d characters split into %d requests", len(text), len(chunks)
            )
        speaker = _Speaker(client, voice_id, options)
        with target.staged(name) as staged:
            await speaker.speak(chunks, staged, output_format, with_timestamps)
            asset = _asset(
                target.uri_of(name),
                staged,
                speaker,
                text=text,
                voice_id=voice_id,
                model_id=model_id,
                output_format=output_format,
            )
    if not with_timestamps:
        return asset
    return SpeechWithTimestamps(
        audio=asset,
        characters=speaker.characters,
        character_start_times_seconds=speaker.starts,
        character_end_times_seconds=speaker.ends,
    )


@task(
    name="ElevenLabs text to speech",
    cache_policy=generation_cache(lambda inputs: _expected_uri(inputs, "speech")),
    **RETRY_OPTIONS,
)
async def text_to_speech(
    text: str,
    credentials: ElevenLabsCredentials,
    voice_id: str = DEFAULT_VOICE_ID,
    model_id: str = DEFAULT_MODEL_ID,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
    voice_settings: dict[str, Any] | None = None,
    language_code: str | None = None,
    seed: int | None = None,
    output_dir: str | None = None,
    filename: str | None = None,
) -> AudioAsset:
    """Speaks ``text`` with a voice and writes the audio to ``output_dir``.

    Text of any length works: over the model's limit it is split on sentences and stitched. The
    result is cached on the inputs (not the credentials), so a re-run spends no characters.

    Args:
        text: What to say.
        credentials: The ElevenLabs credentials block (``base_url="local"`` works offline).
        voice_id: A voice id; the default is the premade voice "Rachel".
        model_id: The TTS model, e.g. eleven_multilingual_v2 or eleven_flash_v2_5.
        output_format: codec_samplerate[_kbps], e.g. mp3_44100_128, wav_44100, pcm_16000.
        voice_settings: stability, similarity_boost, style, use_speaker_boost, speed.
        language_code: ISO 639-1 code to force a language, for models that support it.
        seed: Best-effort determinism.
        output_dir: A folder or fsspec URL; defaults to $PREFECT_ELEVENLABS_OUTPUT_DIR,
            else ./elevenlabs-output.
        filename: The file name; derived from the text and settings when omitted.

    Example:
        ```python
        from prefect import flow
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.tasks import text_to_speech

        @flow
        def greet():
            return text_to_speech("Hello from Prefect.", ElevenLabsCredentials(base_url="local"))
        ```
    """
    # The task's parameters are generate_speech's; locals() holds exactly them at this point.
    result = await generate_speech(**locals())
    assert isinstance(result, AudioAsset)
    return result


@task(
    name="ElevenLabs text to speech with timestamps",
    cache_policy=generation_cache(lambda inputs: _expected_uri(inputs, "timestamps")),
    **RETRY_OPTIONS,
)
async def text_to_speech_with_timestamps(
    text: str,
    credentials: ElevenLabsCredentials,
    voice_id: str = DEFAULT_VOICE_ID,
    model_id: str = DEFAULT_MODEL_ID,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
    voice_settings: dict[str, Any] | None = None,
    language_code: str | None = None,
    seed: int | None = None,
    output_dir: str | None = None,
    filename: str | None = None,
) -> SpeechWithTimestamps:
    """Speaks ``text`` and returns the audio with character timings, word timings and subtitles.

    Example:
        ```python
        speech = text_to_speech_with_timestamps("Subtitles for free.", credentials)
        Path("speech.srt").write_text(speech.to_srt())
        ```
    """
    result = await generate_speech(**locals(), with_timestamps=True)
    assert isinstance(result, SpeechWithTimestamps)
    return result


@task(name="ElevenLabs stream text to speech", **RETRY_OPTIONS)
async def stream_text_to_speech(
    text: str,
    credentials: ElevenLabsCredentials,
    voice_id: str = DEFAULT_VOICE_ID,
    model_id: str = DEFAULT_MODEL_ID,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
    voice_settings: dict[str, Any] | None = None,
    language_code: str | None = None,
    seed: int | None = None,
    output_dir: str | None = None,
    filename: str | None = None,
) -> AudioAsset:
    """Streams speech to a file as it is generated, for the lowest time to first audio.

    The time to the first audio byte is logged. Not cached: streaming is for freshness.

    Example:
        ```python
        asset = await stream_text_to_speech("News.", credentials, output_format="pcm_16000")
        ```
    """
    if output_format.startswith("wav_"):
        raise InvalidRequestError(
            "streaming does not offer wav_* formats: "
            "use pcm_*, mp3_*, ulaw_8000, alaw_8000 or opus_*",
            status="invalid_output_format",
            param="output_format",
        )
    name, target, options = _plan(
        "stream",
        text,
        voice_id,
        model_id,
        output_format,
        voice_settings,
        language_code,
        seed,
        output_dir,
        filename,
    )
    async with api_call(credentials) as client:
        chunks = split_text(text, await text_limit(client, model_id))
        speaker = _Speaker(client, voice_id, options)
        clock = {"start": time.monotonic()}
        with target.staged(name) as staged:
            with open(staged, "wb") as out:
                for index, chunk in enumerate(chunks):
                    await speaker.streamed(chunk, out, speaker._stitching(chunks, index), clock)
            asset = _asset(
                target.uri_of(name),
                staged,
                speaker,
                text=text,
                voice_id=voice_id,
                model_id=model_id,
                output_format=output_format,
            )
    asset.first_byte_s = clock.get("first_byte")
    run_logger().info("first audio byte after %.3fs", asset.first_byte_s or float("nan"))
    return asset
