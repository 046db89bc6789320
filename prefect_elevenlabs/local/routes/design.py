"""Voice design (text-to-voice): previews from a description, and voices from previews.

``POST /v1/text-to-voice/design`` turns the description into three local voice profiles
(``design_profiles``), speaks the preview text with each and returns them inline
(``audio_base_64``, with an underscore, unlike TTS). A preview's ``generated_voice_id`` is a
digest of description, seed and position, so the same request with the same seed gives the same
ids and the same voices. Previews are stored; ``POST /v1/text-to-voice`` turns one into a voice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ..audio import STREAM_FORMATS, OutputFormat, encode
from ..state import EngineState, StoredPreview, StoredVoice, new_id
from ..wire import RequestContext, api_error, authenticate
from ._common import (
    GenerationResponse,
    VoiceRecord,
    admit,
    engine_state,
    generation_headers,
    run_blocking,
    voice_settings_for,
)
from ._common import output_format as parse_format_param
from .voices import copy_sample_files, voice_to_api

__all__ = ["CreateVoiceRequest", "DesignRequest", "generated_voice_id", "router"]

router = APIRouter(tags=["text-to-voice"])

DESIGN_MODELS = ("eleven_multilingual_ttv_v2", "eleven_ttv_v3")
_PREVIEW_COUNT = 3
_DEFAULT_FORMAT = "mp3_44100_192"
_ALPHABET = string.ascii_letters + string.digits


class DesignRequest(BaseModel):
    """Body of ``/v1/text-to-voice/design`` (and the legacy ``create-previews``)."""

    model_config = ConfigDict(extra="ignore")

    voice_description: str = Field(min_length=20, max_length=1000)
    model_id: str | None = None
    text: str | None = Field(None, min_length=100, max_length=1000)
    auto_generate_text: bool = False
    loudness: float = Field(0.5, ge=-1.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2_147_483_647)
    guidance_scale: float = Field(5.0, ge=0.0, le=100.0)
    quality: float | None = Field(None, ge=-1.0, le=1.0)
    stream_previews: bool = False
    should_enhance: bool = False
    remixing_session_id: str | None = None
    remixing_session_iteration_id: str | None = None
    reference_audio_base64: str | None = None
    prompt_strength: float | None = Field(None, ge=0.0, le=1.0)


class CreateVoiceRequest(BaseModel):
    """Body of ``POST /v1/text-to-voice``: keep one preview as a voice."""

    model_config = ConfigDict(extra="ignore")

    voice_name: str = Field(min_length=1)
    voice_description: str = Field(min_length=20, max_length=1000)
    generated_voice_id: str
    labels: dict[str, str | None] | None = None
    played_not_selected_voice_ids: list[str] | None = None


def generated_voice_id(description: str, seed: int, index: int) -> str:
    """The stable id of preview ``index`` for ``description`` and ``seed`` (20 characters)."""
    digest = hashlib.sha256(f"{description}\x00{seed}\x00{index}".encode()).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(20):
        number, rest = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return "".join(chars)


def _auto_text(description: str) -> str:
    """A short preview script (100 to 200 characters) that fits any description."""
    summary = description.strip().split(".")[0].strip().rstrip(",;:")
    if len(summary) > 80:
        summary = summary[:80].rsplit(" ", 1)[0]
    text = f"Hello! This is how I sound: {summary}. I can read anything you need, clearly."
    if len(text) < 100:
        text += " Thank you for listening to me."
    return text


def _loudness_gain(loudness: float) -> float:
    # 0.5 is the API's default; each unit away from it is worth 12 dB.
    return float(10 ** ((loudness - 0.5) * 12 / 20))


def _render_previews(
    state: EngineState,
    description: str,
    text: str,
    seed: int,
    loudness: float,
    fmt: OutputFormat,
) -> list[dict[str, Any]]:
    """Blocking: design, speak, encode and store the previews."""
    from ..engines.tts import synthesize
    from ..engines.voices import design_profiles

    profiles = design_profiles(description, seed=seed, count=_PREVIEW_COUNT)
    gain = _loudness_gain(loudness)
    previews = []
    for index, profile in enumerate(profiles):
        speech = synthesize(text, profile=profile, seed=seed)
        samples = np.clip(np.asarray(speech.samples, dtype=np.float32) * gain, -1.0, 1.0)
        audio = encode(samples, speech.sample_rate, fmt)
        voice_id = generated_voice_id(description, seed, index)
        duration = round(len(samples) / speech.sample_rate, 3)
        state.write_file("previews", voice_id, audio)
        state.save_preview(
            StoredPreview(
                generated_voice_id=voice_id,
                voice_description=description,
                text=text,
                profile=profile.to_dict(),
                media_type=fmt.media_type,
                output_format=fmt.name,
                duration_secs=duration,
                language="en",
                seed=seed,
                index=index,
            )
        )
        previews.append(
            {
                "audio_base_64": base64.b64encode(audio).decode("ascii"),
                "generated_voice_id": voice_id,
                "media_type": fmt.media_type,
                "duration_secs": duration,
                "language": "en",
            }
        )
    return previews


async def _design(
    request: Request,
    context: RequestContext,
    body: DesignRequest,
    raw_format: str | None,
) -> GenerationResponse:
    fmt = parse_format_param(raw_format, allowed=STREAM_FORMATS, default=_DEFAULT_FORMAT)
    if body.model_id is not None and body.model_id not in DESIGN_MODELS:
        raise api_error(
            400,
            "model_not_found",
            f"The model_id {body.model_id!r} cannot design voices; use one of: "
            f"{', '.join(DESIGN_MODELS)}.",
            param="model_id",
        )
    if body.auto_generate_text:
        text = _auto_text(body.voice_description)
    elif body.text is not None:
        text = body.text
    else:
        raise api_error(
            400,
            "invalid_parameters",
            "Send a preview text of 100 to 1000 characters in 'text', or set "
            "auto_generate_text to true.",
            param="text",
        )
    seed = body.seed if body.seed is not None else random.randrange(2_147_483_648)
    state = engine_state(request)
    generation = await admit(request, context, characters=len(text))
    try:
        previews = await run_blocking(
            _render_previews, state, body.voice_description, text, seed, body.loudness, fmt
        )
    except BaseException:
        await generation.finish(success=False)
        raise
    if body.stream_previews:
        # Ids only: the audio is fetched from /v1/text-to-voice/{id}/stream.
        for preview in previews:
            preview["audio_base_64"] = ""
    payload = {"previews": previews, "text": text}
    return GenerationResponse(
        json.dumps(payload, separators=(",", ":")).encode(),
        generation=generation,
        media_type="application/json",
        headers=generation_headers(
            generation,
            character_cost=len(text),
            extra={"generated-voice-ids": ",".join(p["generated_voice_id"] for p in previews)},
        ),
    )


_FormatQuery = Annotated[str | None, Query(description="default mp3_44100_192")]


@router.post("/v1/text-to-voice/design", summary="Design voice previews from a description")
async def design(
    request: Request,
    body: DesignRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _FormatQuery = None,
) -> GenerationResponse:
    """Three previews: ``{"previews": [{audio_base_64, generated_voice_id, ...}], "text"}``."""
    return await _design(request, context, body, output_format)


@router.post("/v1/text-to-voice/create-previews", summary="Design voice previews (legacy route)")
async def create_previews(
    request: Request,
    body: DesignRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: _FormatQuery = None,
) -> GenerationResponse:
    """Same as ``/v1/text-to-voice/design``."""
    return await _design(request, context, body, output_format)


def _preview_not_found(generated_voice_id: str) -> Exception:
    return api_error(
        404,
        "voice_not_found",
        f"No voice preview with the generated_voice_id {generated_voice_id} was found; "
        "design previews first with POST /v1/text-to-voice/design.",
        param="generated_voice_id",
    )


@router.post("/v1/text-to-voice", summary="Create a voice from a preview")
async def create_voice(request: Request, body: CreateVoiceRequest) -> dict[str, Any]:
    """Keep a designed preview as a ``generated`` voice; returns the full voice object."""
    state = engine_state(request)
    preview = state.get_preview(body.generated_voice_id)
    if preview is None:
        raise _preview_not_found(body.generated_voice_id)
    sample_id = await run_blocking(copy_sample_files, state, "previews", preview.generated_voice_id)
    size = state.safe_path("samples", sample_id).stat().st_size
    sample = {
        "sample_id": sample_id,
        "file_name": f"preview{_extension(preview.output_format)}",
        "mime_type": preview.media_type,
        "size_bytes": size,
        "hash": None,
        "duration_secs": preview.duration_secs,
        "remove_background_noise": False,
        "has_isolated_audio": False,
        "has_isolated_audio_preview": False,
        "speaker_separation": None,
        "trim_start": None,
        "trim_end": None,
    }
    labels = {key: value for key, value in (body.labels or {}).items() if value is not None}
    voice = StoredVoice(
        voice_id=new_id(),
        name=body.voice_name,
        category="generated",
        profile=preview.profile,
        description=body.voice_description,
        labels=labels,
        samples=[sample],
    )
    await run_blocking(state.add_voice, voice)
    record = VoiceRecord(
        voice_id=voice.voice_id,
        name=voice.name,
        category=voice.category,
        profile=voice.profile,
        description=voice.description,
        labels=voice.labels,
        samples=voice.samples,
        created_at=voice.created_at,
    )
    return voice_to_api(record, voice_settings_for(state, voice.voice_id))


def _extension(format_name: str) -> str:
    codec = format_name.split("_", 1)[0]
    return {"opus": ".ogg", "ulaw": ".ulaw", "alaw": ".alaw"}.get(codec, f".{codec}")


@router.get("/v1/text-to-voice/{generated_voice_id}/stream", summary="Audio of a designed preview")
async def stream_preview(request: Request, generated_voice_id: str) -> FileResponse:
    """The stored preview audio, in the format it was designed in."""
    state = engine_state(request)
    preview = state.get_preview(generated_voice_id)
    if preview is None:
        raise _preview_not_found(generated_voice_id)
    return FileResponse(
        state.safe_path("previews", generated_voice_id), media_type=preview.media_type
    )
