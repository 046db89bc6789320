"""Sound effects: ``POST /v1/sound-generation``.

A procedural synthesizer (:mod:`prefect_elevenlabs.local.engines.sfx`) renders the prompt:
it recognises sound categories (rain, footsteps, a door, an engine...) and modifiers
(distant, muffled, heavy...) and mixes a recipe for each. ``duration_seconds`` (0.5-30; null
lets the engine choose the sound's natural length) sets the length to the sample,
``loop=true`` crossfades the tail into the head so the clip repeats seamlessly, and
``prompt_influence`` (0-1) trades strict recipes for seeded variation.

Billing: ``character-cost`` is ``len(text)``, one character per prompt character. (The real
API prices sound effects in credits by duration; the local engine bills the prompt length so
that quotas and usage tables stay in characters.) Sound effects are not added to the history,
as with the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..audio import CONVERT_FORMATS, encode
from ..wire import RequestContext, api_error, authenticate
from ._common import GenerationResponse, admit, generation_headers, run_blocking
from ._common import output_format as parse_format_param

__all__ = ["SFX_MODELS", "SoundGenerationRequest", "router"]

router = APIRouter(tags=["sound-effects"])

SFX_MODELS = ("eleven_text_to_sound_v2", "eleven_text_to_sound_v3")
"""Model ids the route accepts (both are served by the same synthesizer)."""

_MAX_PROMPT_CHARS = 2000


class SoundGenerationRequest(BaseModel):
    """The JSON body of ``POST /v1/sound-generation``; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(max_length=_MAX_PROMPT_CHARS)
    duration_seconds: float | None = Field(None, ge=0.5, le=30.0)
    prompt_influence: float | None = Field(0.3, ge=0.0, le=1.0)
    loop: bool | None = False
    model_id: str | None = None


@router.post("/v1/sound-generation", summary="Generate a sound effect")
async def sound_generation(
    request: Request,
    body: SoundGenerationRequest,
    context: Annotated[RequestContext, Depends(authenticate)],
    output_format: Annotated[str | None, Query(description="codec_samplerate[_kbps]")] = None,
    enable_logging: bool = True,
) -> GenerationResponse:
    """The sound effect as audio in ``output_format`` (default ``mp3_44100_128``)."""
    from ..engines.sfx import generate

    fmt = parse_format_param(output_format, allowed=CONVERT_FORMATS)
    if body.model_id is not None and body.model_id not in SFX_MODELS:
        raise api_error(
            400,
            "model_not_found",
            f"The model_id {body.model_id!r} is not a sound-effects model. Use one of: "
            f"{', '.join(SFX_MODELS)}.",
            param="model_id",
        )
    if not body.text.strip():
        raise api_error(
            400, "invalid_parameters", "text is empty: describe the sound to generate.",
            param="text",
        )  # fmt: skip
    # Render at the output's rate (never below 22.05 kHz, where the synthesizer's noise
    # recipes would alias), so most formats need no resampling.
    rate = max(fmt.sample_rate, 22050)
    generation = await admit(request, context, characters=len(body.text))
    try:
        samples = await run_blocking(
            generate,
            body.text,
            duration_seconds=body.duration_seconds,
            loop=bool(body.loop),
            prompt_influence=body.prompt_influence,
            sample_rate=rate,
        )
        audio = await run_blocking(encode, samples, rate, fmt)
    except BaseException:
        await generation.finish(success=False)
        raise
    return GenerationResponse(
        audio,
        generation=generation,
        media_type=fmt.media_type,
        headers=generation_headers(generation, character_cost=len(body.text)),
    )
