"""Music: ``POST /v1/music``, ``/v1/music/stream``, ``/v1/music/detailed`` and ``/v1/music/plan``.

The offline composer (:mod:`prefect_elevenlabs.local.engines.music`) turns a prompt into a
composition plan (tempo, key, genre, instruments, sections) and renders it with fluidsynth
and a General MIDI soundfont. Every response carries a ``song-id`` header. Lengths are exact:
``music_length_ms`` (3000-600000) for a prompt, the sum of the sections for a plan.

Plans come in the two API shapes: ``music_v1`` takes the ``sections`` shape (``MusicPrompt``),
``music_v2``/``music_v2_5`` the ``chunks`` shape (``CompositionPlan``); sending one model the
other's shape is a 422, as with the API. ``output_format=auto`` (the default) means
``mp3_44100_128`` for ``music_v1`` and ``mp3_48000_192`` for the v2 models.

``/v1/music/detailed`` answers ``multipart/mixed``: a JSON part on a single line (plan, song
metadata and, on request, word timings and a waveform) and then the audio part running to the
end of the body, which is the layout the official SDK's parser expects. The local engine plays
lyrics as an instrumental lead line rather than singing them, so ``words_timestamps`` spread
each section's lyric words evenly over the section.

Music is not billed in characters (the API prices it by duration) and is not added to the
history; each generation is counted in ``/local/stats``. Plans are free.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from ..audio import MUSIC_FORMATS, OutputFormat, encode, iter_encode
from ..state import new_id
from ..wire import RequestContext, api_error, authenticate
from ._common import (
    GenerationResponse,
    admit,
    generation_headers,
    iterate_blocking,
    run_blocking,
)
from ._common import output_format as parse_format_param

__all__ = [
    "MUSIC_MODELS",
    "ComposeRequest",
    "PlanRequest",
    "detailed_body",
    "router",
    "to_chunks_plan",
]

router = APIRouter(tags=["music"])

MusicModel = Literal["music_v1", "music_v2", "music_v2_5"]
MUSIC_MODELS: tuple[str, ...] = ("music_v1", "music_v2", "music_v2_5")
"""Model ids the music routes accept."""

_OutputFormatQuery = Annotated[str | None, Query(description="codec_samplerate[_kbps] or auto")]
_WAVEFORM_PER_SECOND = 4
_STREAM_CHUNK_SECONDS = 1.0


class ComposeRequest(BaseModel):
    """The JSON body of the compose routes; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = Field(None, max_length=4100)
    composition_plan: dict[str, Any] | None = None
    music_length_ms: int | None = Field(None, ge=3000, le=600_000)
    model_id: MusicModel | None = None
    seed: int | None = Field(None, ge=0, le=4_294_967_295)
    force_instrumental: bool | None = None
    respect_sections_durations: bool | None = None
    store_for_inpainting: bool | None = None
    finetune_id: str | None = None
    sign_with_c2pa: bool | None = None
    with_timestamps: bool | None = None
    with_waveform_visual: bool | None = None


class PlanRequest(BaseModel):
    """The JSON body of ``POST /v1/music/plan``."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(max_length=4100)
    music_length_ms: int | None = Field(None, ge=3000, le=600_000)
    source_composition_plan: dict[str, Any] | None = None
    model_id: MusicModel | None = None


def _model(model_id: str | None) -> str:
    return model_id or "music_v1"


def _plan_error(message: str, field: str = "composition_plan") -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def _check_shape(plan: Mapping[str, Any], model_id: str, field: str) -> None:
    chunks = "chunks" in plan
    if model_id == "music_v1" and chunks:
        raise _plan_error(
            "music_v1 takes the sections shape (positive_global_styles, negative_global_styles, "
            "sections); for a chunks plan use model_id music_v2 or music_v2_5",
            field,
        )
    if model_id != "music_v1" and not chunks:
        raise _plan_error(
            f"{model_id} takes the chunks shape ({{'chunks': [{{'text', 'duration_ms', "
            "'positive_styles'}]}); for a sections plan use model_id music_v1",
            field,
        )


def to_chunks_plan(plan: Mapping[str, Any]) -> dict[str, Any]:
    """A ``music_v1`` plan (``sections``) in the ``music_v2`` shape (``chunks``).

    Each section becomes a chunk whose text is ``[Section name]`` and its lyrics, with the
    global styles folded into every chunk's styles.

    Example::

        to_chunks_plan(plan_from_prompt("calm piano", length_ms=6000))["chunks"][0]["text"]
        # "[Intro]"
    """
    positive = list(plan.get("positive_global_styles") or [])
    negative = list(plan.get("negative_global_styles") or [])
    chunks = []
    for section in plan.get("sections") or []:
        lines = [line for line in section.get("lines") or [] if line]
        chunks.append(
            {
                "text": "\n".join([f"[{section['section_name']}]", *lines]),
                "duration_ms": int(section["duration_ms"]),
                "positive_styles": positive + list(section.get("positive_local_styles") or []),
                "negative_styles": negative + list(section.get("negative_local_styles") or []),
            }
        )
    return {"chunks": chunks}


def _sections_of(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Section structure (name, duration, lyrics, local styles) of a plan in either shape."""
    if "chunks" not in plan:
        return [dict(section) for section in plan.get("sections") or []]
    sections = []
    for index, chunk in enumerate(plan.get("chunks") or []):
        text = str(chunk.get("text") or "")
        header = re.match(r"\s*\[([^\]]{1,100})\]\s*", text)
        body = text[header.end() :] if header else text
        sections.append(
            {
                "section_name": header.group(1).strip() if header else f"Part {index + 1}",
                "positive_local_styles": list(chunk.get("positive_styles") or []),
                "negative_local_styles": list(chunk.get("negative_styles") or []),
                "duration_ms": chunk.get("duration_ms"),
                "lines": [line.strip() for line in body.splitlines() if line.strip()],
            }
        )
    return sections


def _output_format(raw: str | None, model_id: str) -> OutputFormat:
    auto = "mp3_44100_128" if model_id == "music_v1" else "mp3_48000_192"
    name = (raw or "").strip() or "auto"
    fmt: OutputFormat = parse_format_param(name, allowed=MUSIC_FORMATS, default=auto)
    return fmt


def _validate(body: ComposeRequest) -> str:
    model_id = _model(body.model_id)
    if (body.prompt is None) == (body.composition_plan is None):
        raise api_error(
            400,
            "invalid_parameters",
            "Send exactly one of 'prompt' and 'composition_plan'.",
            param="prompt",
        )
    if body.prompt is not None and not body.prompt.strip():
        raise api_error(400, "invalid_parameters", "prompt is empty: describe the music.",
                        param="prompt")  # fmt: skip
    if body.composition_plan is not None:
        _check_shape(body.composition_plan, model_id, "composition_plan")
        if body.music_length_ms is not None:
            raise api_error(
                400,
                "invalid_parameters",
                "music_length_ms applies to prompts only; with a composition_plan set each "
                "section's duration_ms instead.",
                param="music_length_ms",
            )
    if body.finetune_id:
        raise api_error(
            400,
            "not_supported_locally",
            "finetune_id: the local engine has no fine-tuned music models. Leave it unset.",
            param="finetune_id",
        )
    return model_id


def _compose(body: ComposeRequest, rate: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Blocking: render the request; plan errors become 422s naming the field."""
    from ..engines.music import MusicEngineUnavailableError, compose

    field = "composition_plan" if body.composition_plan is not None else "prompt"
    try:
        return compose(
            body.prompt,
            composition_plan=body.composition_plan,
            length_ms=body.music_length_ms,
            seed=body.seed,
            force_instrumental=bool(body.force_instrumental),
            sample_rate=rate,
        )
    except MusicEngineUnavailableError as exc:
        raise api_error(500, "music_engine_unavailable", str(exc)) from exc
    except ValueError as exc:
        raise _plan_error(str(exc), field) from exc


def _word_timings(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    timings = []
    start = 0
    for section in plan["sections"]:
        words = [word for line in section["lines"] for word in line.split()]
        duration = int(section["duration_ms"])
        if words:
            step = duration / len(words)
            for i, word in enumerate(words):
                timings.append(
                    {
                        "word": word,
                        "start_ms": round(start + i * step),
                        "end_ms": round(start + (i + 1) * step),
                    }
                )
        start += duration
    return timings


def _waveform(audio: np.ndarray, rate: int) -> list[int]:
    """Signed peak of every quarter second, scaled to -1000..1000."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    count = max(1, math.ceil(mono.size * _WAVEFORM_PER_SECOND / rate - 1e-6))
    edges = np.linspace(0, mono.size, count + 1).round().astype(int)
    values = []
    for lo, hi in itertools.pairwise(edges):
        window = mono[lo:hi]
        peak = float(window[np.abs(window).argmax()]) if window.size else 0.0
        values.append(int(np.clip(round(peak * 1000.0), -1000, 1000)))
    return values


def detailed_body(
    info: Mapping[str, Any], audio: bytes, *, media_type: str, filename: str, boundary: str
) -> bytes:
    """The ``multipart/mixed`` body of ``/v1/music/detailed``.

    The JSON sits on one line two lines below its ``Content-Type`` header and the audio runs
    to the end of the body (no closing delimiter), as the official SDK's parser requires.
    """
    line = json.dumps(info, ensure_ascii=False, separators=(",", ":"))
    head = (
        f"--{boundary}\r\n"
        "Content-Type: application/json\r\n"
        "\r\n"
        f"{line}\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: {media_type}\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "\r\n"
    )
    return head.encode("utf-8") + audio


def _render_rate(fmt: OutputFormat) -> int:
    # fluidsynth renders 22.05-96 kHz well; lower output rates are resampled by the encoder.
    return max(fmt.sample_rate, 22050)


async def _generate(
    request: Request, context: RequestContext, body: ComposeRequest, raw_format: str | None
) -> tuple[Any, OutputFormat, np.ndarray, dict[str, Any], int, str]:
    model_id = _validate(body)
    fmt = _output_format(raw_format, model_id)
    rate = _render_rate(fmt)
    generation = await admit(request, context, characters=0)
    try:
        audio, plan = await run_blocking(_compose, body, rate)
    except BaseException:
        await generation.finish(success=False)
        raise
    return generation, fmt, audio, plan, rate, model_id


@router.post("/v1/music", summary="Compose music")
async def compose_music(
    request: Request,
    body: ComposeRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
) -> GenerationResponse:
    """The whole song as audio; the ``song-id`` header names it."""
    generation, fmt, audio, _plan, rate, _model_id = await _generate(
        request, context, body, output_format
    )
    try:
        data = await run_blocking(encode, audio, rate, fmt)
    except BaseException:
        await generation.finish(success=False)
        raise
    return GenerationResponse(
        data,
        generation=generation,
        media_type=fmt.media_type,
        headers=generation_headers(generation, extra={"song-id": new_id()}),
    )


def _pieces(audio: np.ndarray, rate: int) -> Iterator[np.ndarray]:
    step = int(rate * _STREAM_CHUNK_SECONDS)
    for start in range(0, len(audio), step):
        yield audio[start : start + step]


@router.post("/v1/music/stream", summary="Compose music, streamed")
async def stream_music(
    request: Request,
    body: ComposeRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
) -> GenerationResponse:
    """The song as chunked audio, encoded a second at a time."""
    generation, fmt, audio, _plan, rate, _model_id = await _generate(
        request, context, body, output_format
    )

    async def chunks() -> AsyncIterator[bytes]:
        async for data in iterate_blocking(iter_encode(_pieces(audio, rate), rate, fmt)):
            yield data

    return GenerationResponse(
        chunks(),
        generation=generation,
        media_type=fmt.media_type,
        headers=generation_headers(generation, extra={"song-id": new_id()}),
    )


@router.post("/v1/music/detailed", summary="Compose music with its plan and metadata")
async def compose_detailed(
    request: Request,
    body: ComposeRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _OutputFormatQuery = None,
    enable_logging: bool = True,
) -> GenerationResponse:
    """``multipart/mixed``: plan, song metadata (+ timings, waveform) and the audio."""
    from ..engines.music import song_metadata

    generation, fmt, audio, plan, rate, model_id = await _generate(
        request, context, body, output_format
    )
    try:
        data = await run_blocking(encode, audio, rate, fmt)
        info: dict[str, Any] = {
            "composition_plan": plan if model_id == "music_v1" else to_chunks_plan(plan),
            "song_metadata": await run_blocking(song_metadata, plan),
        }
        if body.with_timestamps:
            info["words_timestamps"] = _word_timings(plan)
        if body.with_waveform_visual:
            info["waveform_visual"] = _waveform(audio, rate)
        song_id = new_id()
        boundary = "music-" + secrets.token_hex(12)
        payload = detailed_body(
            info,
            data,
            media_type=fmt.media_type,
            filename=f"{song_id}{fmt.extension}",
            boundary=boundary,
        )
    except BaseException:
        await generation.finish(success=False)
        raise
    return GenerationResponse(
        payload,
        generation=generation,
        media_type=f"multipart/mixed; boundary={boundary}",
        headers=generation_headers(generation, extra={"song-id": song_id}),
    )


def _plan(body: PlanRequest) -> dict[str, Any]:
    """Blocking: a plan for the prompt, shaped like the source plan when one is given."""
    from ..engines.music import plan_from_prompt, song_metadata

    model_id = _model(body.model_id)
    if not body.prompt.strip():
        raise api_error(400, "invalid_parameters", "prompt is empty: describe the music.",
                        param="prompt")  # fmt: skip
    source = body.source_composition_plan
    try:
        if source is None:
            plan = plan_from_prompt(body.prompt, length_ms=body.music_length_ms)
        else:
            sections = _sections_of(source)
            if not sections:
                raise ValueError("source_composition_plan has no sections or chunks")
            styled = plan_from_prompt(body.prompt, length_ms=body.music_length_ms)
            plan = {
                "positive_global_styles": styled["positive_global_styles"],
                "negative_global_styles": styled["negative_global_styles"],
                "sections": sections,
            }
        song_metadata(plan)  # validates the result
    except ValueError as exc:
        field = "prompt" if source is None else "source_composition_plan"
        raise _plan_error(str(exc), field) from exc
    return plan if model_id == "music_v1" else to_chunks_plan(plan)


@router.post("/v1/music/plan", summary="Create a composition plan (free)")
async def create_plan(request: Request, body: PlanRequest) -> dict[str, Any]:
    """A composition plan for the prompt: sections shape for music_v1, chunks for v2."""
    return await run_blocking(_plan, body)
