"""Speech to speech (voice changer) and audio isolation.

``POST /v1/speech-to-speech/{voice_id}`` and ``/v1/voice-changer/{voice_id}`` (older and newer
SDKs use one each; both, plus ``/stream``, are served) re-voice a recording. The local engine
has no neural voice conversion, so it does the honest equivalent: it transcribes the input
(Whisper), speaks each phrase again with the target voice (piper / espeak-ng) and fits every
phrase into the time span it had in the original (faster when needed, never cut), so the
output lasts as long as the input and its phrases start where the original ones did. Words,
pacing and timing survive; the original's intonation, emotion, laughs and non-speech sounds
do not. ``eleven_english_sts_v*`` treat the input as English; ``eleven_multilingual_sts_v2``
detects the language and speaks in it. ``remove_background_noise`` denoises the input before
recognition; ``voice_settings`` (a JSON string part) adjusts speed, stability and style.
Results are recorded in the history with source ``STS`` (text: the transcript). The API
prices voice changing by audio duration, not characters, so nothing is billed in characters;
requests are counted in ``/local/stats``.

``POST /v1/audio-isolation`` (+ ``/stream``) is noise reduction, not source separation:
spectral noise gating against a noise profile measured from the recording's quietest moments,
plus a speech-band filter (80 Hz - 8 kHz). It removes steady noise such as hiss, hum and fans
(about 16-18 dB less white noise), but not music or other voices. The result is mp3
(``audio/mpeg``), 44.1 kHz mono. Nothing is billed; requests are counted in ``/local/stats``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from ..audio import CONVERT_FORMATS, STREAM_FORMATS, OutputFormat, encode, iter_encode
from ..state import EngineState, new_id
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
from ._common import output_format as parse_format_param
from .stt import (
    STT_SAMPLE_RATE,
    TranscriptOptions,
    UploadForm,
    decode_upload,
    invalid_field,
    read_form,
    saved_upload,
    transcribe_samples,
)

__all__ = [
    "STS_MODELS",
    "denoise",
    "isolate_file",
    "revoice",
    "router",
]

router = APIRouter(tags=["speech-to-speech"])

STS_MODELS = ("eleven_english_sts_v2", "eleven_multilingual_sts_v2", "eleven_english_sts_v1")
"""Model ids the voice changer accepts."""


_SPEECH_BAND = (80.0, 8000.0)
_DENOISE_BLOCK = 2048
_P20_OF_MEAN = -math.log(0.8)
_ISOLATION_RATE = 44100
_ISOLATION_FORMAT = "mp3_44100_128"
_PHRASE_GAP_SECONDS = 0.5
_PHRASE_MAX_SECONDS = 15.0
_STREAM_CHUNK_SECONDS = 1.0


def _frames_of(padded: np.ndarray, size: int, hop: int, first: int, count: int) -> np.ndarray:
    view = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]
    return view[first : first + count]


def denoise(samples: np.ndarray, sample_rate: int, *, reduction_db: float = 24.0) -> np.ndarray:
    """Blocking: reduce steady background noise in mono float samples (same rate and length).

    Spectral noise gating: the noise spectrum is measured from the quietest moments of the
    recording (the 20th percentile of every frequency's power, scaled to a mean), each short
    frame keeps what rises above it (over-subtracted twice, at most ``reduction_db`` taken
    away, smoothed over neighbouring frames to avoid warbling), and everything outside the
    speech band (80 Hz - 8 kHz) is lowered by ``reduction_db``. Processed in blocks, so memory
    stays bounded; about 16-18 dB less white noise, with speech within 1-2 dB.

    Example::

        cleaned = denoise(noisy, 16000)
    """
    signal = np.asarray(samples, dtype=np.float32)
    if signal.size == 0:
        return signal.copy()
    size = 1 << round(math.log2(0.025 * sample_rate))
    hop = size // 4
    window = np.hanning(size + 1)[:-1].astype(np.float32)
    padded = np.concatenate([np.zeros(size, np.float32), signal, np.zeros(size + hop, np.float32)])
    count = 1 + (padded.size - size) // hop
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    outside = (freqs < _SPEECH_BAND[0]) | (freqs > _SPEECH_BAND[1])
    floor = 10.0 ** (-reduction_db / 20.0)
    profiles = []
    for first in range(0, count, _DENOISE_BLOCK):
        block = _frames_of(padded, size, hop, first, _DENOISE_BLOCK)
        power = np.abs(np.fft.rfft(block * window, axis=1)) ** 2
        # The 20th percentile of exponentially distributed power is 0.223 of its mean.
        profiles.append(np.percentile(power, 20, axis=0) / _P20_OF_MEAN)
    noise = np.median(np.array(profiles), axis=0)
    hops = np.zeros((count + 4, hop), dtype=np.float32)
    for first in range(0, count, _DENOISE_BLOCK):
        block = _frames_of(padded, size, hop, first, _DENOISE_BLOCK)
        spectrum = np.fft.rfft(block * window, axis=1)
        power = np.abs(spectrum) ** 2
        gain = np.clip(1.0 - 2.0 * noise / np.maximum(power, 1e-12), floor, 1.0)
        smoothed = gain.copy()
        smoothed[1:-1] = (gain[:-2] + gain[1:-1] + gain[2:]) / 3.0
        smoothed[:, outside] = floor
        frames = (np.fft.irfft(spectrum * smoothed, n=size, axis=1) * window).astype(np.float32)
        pieces = frames.reshape(len(frames), 4, hop)
        for k in range(4):
            hops[first + k : first + k + len(frames)] += pieces[:, k, :]
    # Hann windows applied twice at 75% overlap sum to a constant 1.5.
    output = hops.reshape(-1) / 1.5
    return output[size : size + signal.size].astype(np.float32)


def isolate_file(path: Path, *, param: str = "audio") -> np.ndarray:
    """Blocking: decode an uploaded file and denoise it; 44.1 kHz mono float samples."""
    samples = decode_upload(path, param=param, sample_rate=_ISOLATION_RATE)
    return denoise(samples, _ISOLATION_RATE)


# -- speech to speech -------------------------------------------------------------------------


@dataclass
class _StsJob:
    voice: VoiceRecord
    model_id: str
    settings: dict[str, Any]
    seed: int | None
    remove_noise: bool
    file_format: str | None
    fmt: OutputFormat
    log: bool


@dataclass
class _Revoiced:
    samples: np.ndarray
    sample_rate: int
    text: str


def _fit(samples: np.ndarray, rate: int, target: float, scratch: Path, index: int) -> np.ndarray:
    """Time-stretch ``samples`` to ``target`` seconds (pitch kept) through ffmpeg's atempo."""
    import soundfile as sf

    from ...media import fit_to_duration

    natural = len(samples) / rate
    if abs(natural - target) < 0.01:
        return samples
    raw = scratch / f"phrase_{index:04d}.wav"
    fitted = scratch / f"fitted_{index:04d}.wav"
    sf.write(str(raw), samples, rate, subtype="FLOAT")
    fit_to_duration(raw, fitted, target, min_tempo=0.5, max_tempo=2.0, pad=False)
    data, _ = sf.read(str(fitted), dtype="float32", always_2d=False)
    return np.asarray(data, dtype=np.float32)


def revoice(
    samples16: np.ndarray,
    *,
    profile: Any,
    multilingual: bool,
    settings: dict[str, Any],
    seed: int | None,
    scratch: Path,
) -> _Revoiced:
    """Blocking: speak the words of 16 kHz mono ``samples16`` with ``profile``, phrase by
    phrase at the original times; the output has the input's duration (22.05 kHz)."""
    from ...subtitles import segments
    from ..dubbing_pipeline import fit_target, join_words, speech_onset
    from ..engines.tts import SAMPLE_RATE, synthesize

    duration = len(samples16) / STT_SAMPLE_RATE
    result = transcribe_samples(
        samples16, TranscriptOptions(language=None if multilingual else "en")
    )
    language = result.language if multilingual else None
    output = np.zeros(max(1, round(duration * SAMPLE_RATE)), dtype=np.float32)
    phrases = segments(
        result.words,
        segment_on_silence_longer_than_s=_PHRASE_GAP_SECONDS,
        max_segment_duration_s=_PHRASE_MAX_SECONDS,
    )
    for index, phrase in enumerate(phrases):
        start = speech_onset(
            samples16, STT_SAMPLE_RATE, float(phrase["start_time"]), float(phrase["end_time"])
        )
        following = (
            float(phrases[index + 1]["start_time"]) if index + 1 < len(phrases) else duration
        )
        slot = max(following - start, float(phrase["end_time"]) - start, 0.05)
        speech = synthesize(
            join_words([word["text"] for word in phrase["words"]]),
            profile=profile,
            language=language,
            speed=float(settings.get("speed", 1.0)),
            stability=float(settings.get("stability", 0.5)),
            style=float(settings.get("style", 0.0)),
            seed=seed,
        )
        audio = _fit(speech.samples, SAMPLE_RATE, fit_target(speech.duration, slot, max_tempo=2.0),
                     scratch, index)  # fmt: skip
        begin = round(start * SAMPLE_RATE)
        room = max(0, min(len(audio), len(output) - begin))
        output[begin : begin + room] += audio[:room]
    return _Revoiced(np.clip(output, -1.0, 1.0), SAMPLE_RATE, result.text)


def _settings(form: UploadForm, state: EngineState, voice_id: str) -> dict[str, Any]:
    from .tts import VoiceSettingsModel

    settings = voice_settings_for(state, voice_id)
    raw = form.json("voice_settings")
    if raw is None:
        return settings
    if not isinstance(raw, dict):
        raise invalid_field("voice_settings", "voice_settings must be a JSON object", raw)
    try:
        parsed = VoiceSettingsModel.model_validate(raw)
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise invalid_field("voice_settings", message, raw) from None
    settings.update(parsed.model_dump(exclude_none=True))
    return settings


def _parse_sts(
    form: UploadForm, state: EngineState, voice_id: str, fmt: OutputFormat, log: bool
) -> _StsJob:
    model_id = form.text("model_id") or "eleven_english_sts_v2"
    if model_id not in STS_MODELS:
        raise api_error(
            400,
            "model_not_found",
            f"The model_id {model_id!r} is not a speech-to-speech model. Use one of: "
            f"{', '.join(STS_MODELS)}.",
            param="model_id",
        )
    voice = lookup_voice(state, voice_id)
    return _StsJob(
        voice=voice,
        model_id=model_id,
        settings=_settings(form, state, voice.voice_id),
        seed=form.integer("seed", ge=0, le=4_294_967_295),
        remove_noise=form.boolean("remove_background_noise", False),
        file_format=form.choice("file_format", ("pcm_s16le_16", "other"), "other"),
        fmt=fmt,
        log=log,
    )


def _run_sts(state: EngineState, job: _StsJob, upload: Any) -> _Revoiced:
    scratch_root = state.data_dir / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with saved_upload(state, upload, param="audio") as path:
        samples = decode_upload(path, param="audio", file_format=job.file_format)
    if job.remove_noise:
        samples = denoise(samples, STT_SAMPLE_RATE)
    with tempfile.TemporaryDirectory(prefix="sts-", dir=scratch_root) as scratch:
        return revoice(
            samples,
            profile=job.voice.profile,
            multilingual=job.model_id == "eleven_multilingual_sts_v2",
            settings=job.settings,
            seed=job.seed,
            scratch=Path(scratch),
        )


def _pieces(samples: np.ndarray, rate: int) -> Iterator[np.ndarray]:
    step = int(rate * _STREAM_CHUNK_SECONDS)
    for start in range(0, len(samples), step):
        yield samples[start : start + step]


async def _speech_to_speech(
    request: Request,
    context: RequestContext,
    voice_id: str,
    raw_format: str | None,
    enable_logging: bool,
    *,
    stream: bool,
) -> GenerationResponse:
    state = engine_state(request)
    fmt = parse_format_param(raw_format, allowed=STREAM_FORMATS if stream else CONVERT_FORMATS)
    async with read_form(request) as form:
        job = _parse_sts(form, state, voice_id, fmt, enable_logging)
        upload = form.upload("audio")
        if upload is None:
            raise api_error(400, "invalid_parameters",
                            "audio is required: upload the recording to re-voice.",
                            param="audio")  # fmt: skip
        generation = await admit(request, context, characters=0)
        try:
            revoiced = await run_blocking(_run_sts, state, job, upload)
            audio = await run_blocking(encode, revoiced.samples, revoiced.sample_rate, fmt)
            history_id = new_id() if job.log and revoiced.text else None
            if history_id:
                await record_history(
                    request, context, voice=job.voice, model_id=job.model_id,
                    text=revoiced.text, audio=audio, content_type=fmt.media_type,
                    output_format=fmt.name, settings=job.settings, source="STS",
                    history_item_id=history_id,
                )  # fmt: skip
        except BaseException:
            await generation.finish(success=False)
            raise
    headers = generation_headers(generation, history_item_id=history_id)
    if not stream:
        return GenerationResponse(
            audio, generation=generation, media_type=fmt.media_type, headers=headers
        )

    async def chunks() -> AsyncIterator[bytes]:
        pieces = iter_encode(_pieces(revoiced.samples, revoiced.sample_rate),
                             revoiced.sample_rate, fmt)  # fmt: skip
        async for data in iterate_blocking(pieces):
            yield data

    return GenerationResponse(
        chunks(), generation=generation, media_type=fmt.media_type, headers=headers
    )


_FormatQuery = Annotated[str | None, Query(description="codec_samplerate[_kbps]")]
_LatencyQuery = Annotated[int | None, Query(ge=0, le=4, description="deprecated, ignored")]


@router.post("/v1/speech-to-speech/{voice_id}", summary="Re-voice a recording")
@router.post("/v1/voice-changer/{voice_id}", summary="Re-voice a recording")
async def speech_to_speech(
    request: Request,
    voice_id: str,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _FormatQuery = None,
    enable_logging: bool = True,
    optimize_streaming_latency: _LatencyQuery = None,
) -> GenerationResponse:
    """The recording's words spoken by ``voice_id`` at their original times."""
    return await _speech_to_speech(
        request, context, voice_id, output_format, enable_logging, stream=False
    )


@router.post("/v1/speech-to-speech/{voice_id}/stream", summary="Re-voice a recording, streamed")
@router.post("/v1/voice-changer/{voice_id}/stream", summary="Re-voice a recording, streamed")
async def speech_to_speech_stream(
    request: Request,
    voice_id: str,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _FormatQuery = None,
    enable_logging: bool = True,
    optimize_streaming_latency: _LatencyQuery = None,
) -> GenerationResponse:
    """As the non-streaming route, sent as chunked audio (21 formats: no ``wav_*``)."""
    return await _speech_to_speech(
        request, context, voice_id, output_format, enable_logging, stream=True
    )


# -- audio isolation --------------------------------------------------------------------------


def _run_isolation(state: EngineState, upload: Any, file_format: str | None) -> np.ndarray:
    with saved_upload(state, upload, param="audio") as path:
        if file_format == "pcm_s16le_16":
            from ..audio import resample

            pcm = decode_upload(path, param="audio", file_format=file_format)
            return denoise(resample(pcm, 16000, _ISOLATION_RATE), _ISOLATION_RATE)
        return isolate_file(path)


async def _isolate(
    request: Request, context: RequestContext, *, stream: bool
) -> GenerationResponse:
    from ..audio import parse_output_format

    state = engine_state(request)
    fmt = parse_output_format(_ISOLATION_FORMAT)
    async with read_form(request) as form:
        upload = form.upload("audio")
        if upload is None:
            raise api_error(400, "invalid_parameters",
                            "audio is required: upload the recording to clean up.",
                            param="audio")  # fmt: skip
        file_format = form.choice("file_format", ("pcm_s16le_16", "other"), "other")
        generation = await admit(request, context, characters=0)
        try:
            cleaned = await run_blocking(_run_isolation, state, upload, file_format)
            audio = None if stream else await run_blocking(encode, cleaned, _ISOLATION_RATE, fmt)
        except BaseException:
            await generation.finish(success=False)
            raise
    headers = generation_headers(generation)
    if audio is not None:
        return GenerationResponse(
            audio, generation=generation, media_type=fmt.media_type, headers=headers
        )

    async def chunks() -> AsyncIterator[bytes]:
        pieces = iter_encode(_pieces(cleaned, _ISOLATION_RATE), _ISOLATION_RATE, fmt)
        async for data in iterate_blocking(pieces):
            yield data

    return GenerationResponse(
        chunks(), generation=generation, media_type=fmt.media_type, headers=headers
    )


@router.post("/v1/audio-isolation", summary="Reduce background noise")
async def audio_isolation(
    request: Request, context: Annotated[RequestContext, Depends(authenticate)]
) -> GenerationResponse:
    """The recording with steady background noise reduced, as mp3."""
    return await _isolate(request, context, stream=False)


@router.post("/v1/audio-isolation/stream", summary="Reduce background noise, streamed")
async def audio_isolation_stream(
    request: Request, context: Annotated[RequestContext, Depends(authenticate)]
) -> GenerationResponse:
    """As ``/v1/audio-isolation``, sent as chunked mp3."""
    return await _isolate(request, context, stream=True)
