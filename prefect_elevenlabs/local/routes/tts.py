"""Text-to-speech routes: convert, stream, with-timestamps and stream/with-timestamps.

Speech comes from piper (English) or espeak-ng (other languages, chosen by ``language_code``
when the model lists that language). Each successful request bills ``len(text)`` characters
(``character-cost`` header) and is recorded in the history with its audio, unless
``enable_logging=false``.

The stream routes synthesize one sentence at a time and encode as they go, so the first audio
leaves after the first sentence. ``/stream/with-timestamps`` answers strict NDJSON: one
``{"audio_base64", "alignment", "normalized_alignment"}`` object per line, with character
times measured from the start of the whole audio (not of the chunk).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..audio import CONVERT_FORMATS, STREAM_FORMATS, OutputFormat, encode, iter_encode
from ..models import ModelInfo, require_tts_model
from ..modes import Generation
from ..state import new_id
from ..wire import RequestContext, api_error, authenticate
from ._common import (
    GenerationResponse,
    VoiceRecord,
    admit,
    engine_state,
    generation_headers,
    iterate_blocking,
    lookup_voice,
    record_history,
    run_blocking,
    voice_settings_for,
)
from ._common import (
    output_format as parse_format_param,
)

__all__ = ["TextToSpeechRequest", "VoiceSettingsModel", "router"]

router = APIRouter(tags=["text-to-speech"])


class VoiceSettingsModel(BaseModel):
    """Per-request voice settings; unset fields fall back to the voice's saved settings."""

    model_config = ConfigDict(extra="ignore")

    stability: float | None = Field(None, ge=0.0, le=1.0)
    similarity_boost: float | None = Field(None, ge=0.0, le=1.0)
    style: float | None = Field(None, ge=0.0, le=1.0)
    use_speaker_boost: bool | None = None
    speed: float | None = Field(None, ge=0.7, le=1.2)
    clone_strength: float | None = Field(None, ge=0.0, le=1.0)


class PronunciationDictionaryLocator(BaseModel):
    """Reference to a pronunciation dictionary (accepted; the local engine has none)."""

    model_config = ConfigDict(extra="ignore")

    pronunciation_dictionary_id: str
    version_id: str | None = None


class AudioEffects(BaseModel):
    """Post-processing effects (accepted and validated; not applied by the local engine)."""

    model_config = ConfigDict(extra="ignore")

    filter_preset_id: str | None = None
    distance: float | None = Field(None, ge=0.0, le=1.0)
    environment_id: str | None = None
    background_noise_id: str | None = None
    send_level: float | None = Field(None, ge=0.0, le=1.0)
    pan: float | None = Field(None, ge=-1.0, le=1.0)


class TextToSpeechRequest(BaseModel):
    """The JSON body shared by the four text-to-speech routes; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    text: str
    model_id: str | None = None
    language_code: str | None = None
    voice_settings: VoiceSettingsModel | None = None
    pronunciation_dictionary_locators: list[PronunciationDictionaryLocator] | None = Field(
        None, max_length=3
    )
    seed: int | None = Field(None, ge=0, le=4_294_967_295)
    previous_text: str | None = None
    next_text: str | None = None
    previous_request_ids: list[str] | None = Field(None, max_length=3)
    next_request_ids: list[str] | None = Field(None, max_length=3)
    use_pvc_as_ivc: bool | None = False
    apply_text_normalization: Literal["auto", "on", "off"] | None = "auto"
    apply_language_text_normalization: bool | None = False
    audio_effects: AudioEffects | None = None


@dataclass
class _Job:
    """A validated request, ready to synthesize."""

    voice: VoiceRecord
    model: ModelInfo
    text: str
    language: str | None
    settings: dict[str, Any]
    seed: int | None
    fmt: OutputFormat
    log: bool

    def engine_kwargs(self) -> dict[str, Any]:
        return {
            "profile": self.voice.profile,
            "language": self.language,
            "speed": float(self.settings["speed"]),
            "stability": float(self.settings["stability"]),
            "style": float(self.settings["style"]),
            "seed": self.seed,
        }


_OutputFormatQuery = Annotated[str | None, Query(description="codec_samplerate[_kbps]")]
_LatencyQuery = Annotated[int | None, Query(ge=0, le=4, description="deprecated, ignored")]


def _prepare(
    request: Request,
    voice_id: str,
    body: TextToSpeechRequest,
    raw_format: str | None,
    *,
    allowed: frozenset[str],
    enable_logging: bool,
) -> _Job:
    fmt = parse_format_param(raw_format, allowed=allowed)
    model = require_tts_model(body.model_id)
    if not body.text.strip():
        raise api_error(
            400,
            "invalid_parameters",
            "text is empty: send the words to speak in the 'text' field.",
            param="text",
        )
    limit = model.maximum_text_length_per_request
    if len(body.text) > limit:
        raise api_error(
            400,
            "max_character_limit_exceeded",
            f"The text has {len(body.text)} characters; {model.model_id} accepts at most "
            f"{limit} per request. Split the text into smaller requests.",
            param="text",
        )
    state = engine_state(request)
    voice = lookup_voice(state, voice_id)
    settings = voice_settings_for(state, voice.voice_id)
    if body.voice_settings is not None:
        settings.update(body.voice_settings.model_dump(exclude_none=True))
    return _Job(
        voice=voice,
        model=model,
        text=body.text,
        language=_language(model, body.language_code),
        settings=settings,
        seed=body.seed,
        fmt=fmt,
        log=enable_logging,
    )


def _language(model: ModelInfo, language_code: str | None) -> str | None:
    """The language to speak (ISO 639-1 or 639-3), or None for English.

    English-only models ignore the code, as the API does; the others pass it to the engine,
    which answers 400 ``unsupported_language`` when it has no voice for it.
    """
    if not language_code or not language_code.strip():
        return None
    if model.languages == ("en",):
        return None
    return language_code.strip()


def _unsupported_language(exc: Exception, job: _Job) -> Exception:
    return api_error(
        400,
        "unsupported_language",
        f"The local engine cannot speak language {job.language!r}: {exc}",
        param="language_code",
    )


def _is_language_error(exc: Exception) -> bool:
    from ..engines.tts import UnsupportedLanguageError

    return isinstance(exc, UnsupportedLanguageError)


async def _record(
    request: Request, context: RequestContext, job: _Job, audio: bytes, history_id: str
) -> None:
    await record_history(
        request,
        context,
        voice=job.voice,
        model_id=job.model.model_id,
        text=job.text,
        audio=audio,
        content_type=job.fmt.media_type,
        output_format=job.fmt.name,
        settings=job.settings,
        history_item_id=history_id,
    )


def _headers(job: _Job, generation: Generation, history_id: str | None) -> dict[str, str]:
    return generation_headers(
        generation,
        character_cost=len(job.text),
        history_item_id=history_id if job.log else None,
    )


async def _synthesize_whole(job: _Job) -> Any:
    from ..engines.tts import synthesize

    try:
        return await run_blocking(synthesize, job.text, **job.engine_kwargs())
    except Exception as exc:
        if _is_language_error(exc):
            raise _unsupported_language(exc, job) from exc
        raise


async def _first_sentence(job: _Job) -> tuple[Any, Iterator[Any]]:
    """Start sentence-by-sentence synthesis; errors in the first sentence become HTTP errors."""
    from ..engines.tts import iter_synthesize

    sentences = iter_synthesize(job.text, **job.engine_kwargs())
    try:
        first = await run_blocking(next, sentences, None)
    except Exception as exc:
        if _is_language_error(exc):
            raise _unsupported_language(exc, job) from exc
        raise
    return first, sentences


def _alignment(speech: Any, offset: float = 0.0) -> dict[str, list[Any]]:
    alignment: dict[str, list[Any]] = speech.alignment(offset)
    return alignment


def _merge(alignments: list[dict[str, list[Any]]]) -> dict[str, list[Any]] | None:
    if not alignments:
        return None
    merged: dict[str, list[Any]] = {
        "characters": [],
        "character_start_times_seconds": [],
        "character_end_times_seconds": [],
    }
    for alignment in alignments:
        for key, values in alignment.items():
            merged[key].extend(values)
    return merged


@router.post("/v1/text-to-speech/{voice_id}", summary="Convert text to speech")
async def convert(
    request: Request,
    voice_id: str,
    body: TextToSpeechRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
    optimize_streaming_latency: _LatencyQuery = None,
) -> GenerationResponse:
    """The whole audio in one response, in ``output_format`` (default ``mp3_44100_128``)."""
    job = _prepare(
        request, voice_id, body, output_format, allowed=CONVERT_FORMATS,
        enable_logging=enable_logging,
    )  # fmt: skip
    generation = await admit(request, context, characters=len(job.text))
    try:
        speech = await _synthesize_whole(job)
        audio = await run_blocking(encode, speech.samples, speech.sample_rate, job.fmt)
        history_id = new_id() if job.log else None
        if history_id:
            await _record(request, context, job, audio, history_id)
    except BaseException:
        await generation.finish(success=False)
        raise
    return GenerationResponse(
        audio,
        generation=generation,
        media_type=job.fmt.media_type,
        headers=_headers(job, generation, history_id),
    )


@router.post(
    "/v1/text-to-speech/{voice_id}/with-timestamps",
    summary="Convert text to speech with character timings",
)
async def convert_with_timestamps(
    request: Request,
    voice_id: str,
    body: TextToSpeechRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
    optimize_streaming_latency: _LatencyQuery = None,
) -> GenerationResponse:
    """JSON with ``audio_base64``, ``alignment`` and ``normalized_alignment``."""
    job = _prepare(
        request, voice_id, body, output_format, allowed=CONVERT_FORMATS,
        enable_logging=enable_logging,
    )  # fmt: skip
    generation = await admit(request, context, characters=len(job.text))
    try:
        speech = await _synthesize_whole(job)
        audio = await run_blocking(encode, speech.samples, speech.sample_rate, job.fmt)
        history_id = new_id() if job.log else None
        if history_id:
            await _record(request, context, job, audio, history_id)
        alignment = _alignment(speech)
        payload = {
            "audio_base64": base64.b64encode(audio).decode("ascii"),
            "alignment": alignment,
            "normalized_alignment": alignment,
        }
    except BaseException:
        await generation.finish(success=False)
        raise
    return GenerationResponse(
        json.dumps(payload, separators=(",", ":")).encode(),
        generation=generation,
        media_type="application/json",
        headers=_headers(job, generation, history_id),
    )


def _encoded_sentences(first: Any, rest: Iterator[Any], fmt: OutputFormat) -> Iterator[bytes]:
    """Blocking: encode the sentences as one continuous stream."""
    speeches = itertools.chain([first], rest)
    try:
        yield from iter_encode((s.samples for s in speeches), first.sample_rate, fmt)
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def _timed_chunks(
    first: Any, rest: Iterator[Any], fmt: OutputFormat
) -> Iterator[tuple[bytes, dict[str, list[Any]] | None]]:
    """Blocking: encoded audio pieces, each with the timings of the sentences it completes.

    The encoder pulls sentences (possibly from its own feeding thread); the timings of the
    sentences pulled so far ride on the next piece of output, with absolute times.
    """
    pending: list[dict[str, list[Any]]] = []
    lock = threading.Lock()
    offset = 0.0

    def samples() -> Iterator[Any]:
        nonlocal offset
        for speech in itertools.chain([first], rest):
            with lock:
                pending.append(_alignment(speech, offset))
            offset += len(speech.samples) / speech.sample_rate
            yield speech.samples

    def take() -> dict[str, list[Any]] | None:
        with lock:
            merged = _merge(pending)
            pending.clear()
        return merged

    try:
        for data in iter_encode(samples(), first.sample_rate, fmt):
            if data:
                yield data, take()
        tail = take()
        if tail is not None:
            yield b"", tail
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


async def _start_stream(
    request: Request,
    context: RequestContext,
    voice_id: str,
    body: TextToSpeechRequest,
    raw_format: str | None,
    enable_logging: bool,
) -> tuple[_Job, Generation, Any, Iterator[Any]]:
    job = _prepare(
        request, voice_id, body, raw_format, allowed=STREAM_FORMATS,
        enable_logging=enable_logging,
    )  # fmt: skip
    generation = await admit(request, context, characters=len(job.text))
    try:
        first, rest = await _first_sentence(job)
    except BaseException:
        await generation.finish(success=False)
        raise
    if first is None:
        await generation.finish(success=False)
        raise api_error(
            400, "invalid_parameters", "The text contains nothing to speak.", param="text"
        )
    return job, generation, first, rest


@router.post("/v1/text-to-speech/{voice_id}/stream", summary="Stream text as speech")
async def stream(
    request: Request,
    voice_id: str,
    body: TextToSpeechRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
    optimize_streaming_latency: _LatencyQuery = None,
) -> GenerationResponse:
    """Chunked audio, produced sentence by sentence (21 formats: no ``wav_*``)."""
    job, generation, first, rest = await _start_stream(
        request, context, voice_id, body, output_format, enable_logging
    )
    history_id = new_id() if job.log else None

    async def chunks() -> AsyncIterator[bytes]:
        collected = bytearray()
        async for data in iterate_blocking(_encoded_sentences(first, rest, job.fmt)):
            collected.extend(data)
            yield data
        if history_id:
            await _record(request, context, job, bytes(collected), history_id)

    return GenerationResponse(
        chunks(),
        generation=generation,
        media_type=job.fmt.media_type,
        headers=_headers(job, generation, history_id),
    )


@router.post(
    "/v1/text-to-speech/{voice_id}/stream/with-timestamps",
    summary="Stream speech with character timings (NDJSON)",
)
async def stream_with_timestamps(
    request: Request,
    voice_id: str,
    body: TextToSpeechRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
    optimize_streaming_latency: _LatencyQuery = None,
) -> GenerationResponse:
    """One JSON object per line: ``audio_base64`` plus absolute character timings."""
    job, generation, first, rest = await _start_stream(
        request, context, voice_id, body, output_format, enable_logging
    )
    history_id = new_id() if job.log else None

    async def lines() -> AsyncIterator[bytes]:
        collected = bytearray()
        async for data, alignment in iterate_blocking(_timed_chunks(first, rest, job.fmt)):
            collected.extend(data)
            line = {
                "audio_base64": base64.b64encode(data).decode("ascii"),
                "alignment": alignment,
                "normalized_alignment": alignment,
            }
            yield json.dumps(line, separators=(",", ":")).encode() + b"\n"
        if history_id:
            await _record(request, context, job, bytes(collected), history_id)

    return GenerationResponse(
        lines(),
        generation=generation,
        media_type="application/x-ndjson",
        headers=_headers(job, generation, history_id),
    )
