"""The engine's own routes, which ElevenLabs does not have: text translation.

``POST /local/translate`` translates a batch of texts with Apertium in one call, keeping
their order and count; the ``dub`` flow's ``compose`` strategy uses it to translate
transcript segments before speaking them. ``GET /local/translate/pairs`` lists the installed
directions. Both follow the engine's error conventions (``{"detail": {...}}``) and bill
nothing.

Example::

    POST /local/translate {"texts": ["Good morning."], "source": "en", "target": "es"}
    -> {"texts": ["Buenos días."], "source": "en", "target": "es"}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ..wire import api_error
from ._common import run_blocking

__all__ = ["MAX_TRANSLATE_CHARACTERS", "TranslateRequest", "router"]

router = APIRouter(tags=["local"])

MAX_TRANSLATE_CHARACTERS = 200_000
"""Most characters one ``/local/translate`` call may carry in total."""


class TranslateRequest(BaseModel):
    """``{"texts": [...], "source": "en", "target": "es"}`` (ISO 639-1 or 639-3 codes)."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(max_length=5000)
    source: str = Field(min_length=2, max_length=16)
    target: str = Field(min_length=2, max_length=16)


@router.post("/local/translate", summary="Translate texts (engine extension, Apertium)")
async def translate_texts(request: Request, body: TranslateRequest) -> dict[str, Any]:
    """The texts translated, in order; an unsupported pair is a 400 naming the pairs."""
    from ..engines.translate import TranslationError, UnsupportedLanguagePairError, translate

    total = sum(len(text) for text in body.texts)
    if total > MAX_TRANSLATE_CHARACTERS:
        raise api_error(
            400,
            "invalid_parameters",
            f"The texts hold {total} characters; one call translates at most "
            f"{MAX_TRANSLATE_CHARACTERS}. Split them over several calls.",
            param="texts",
        )
    try:
        texts = await run_blocking(translate, body.texts, body.source, body.target)
    except UnsupportedLanguagePairError as exc:
        raise api_error(400, "unsupported_language_pair", str(exc), param="target") from exc
    except TranslationError as exc:
        raise api_error(500, "translation_failed", str(exc)) from exc
    return {"texts": texts, "source": body.source, "target": body.target}


@router.get("/local/translate/pairs", summary="Installed translation pairs (engine extension)")
async def translation_pairs(request: Request) -> dict[str, Any]:
    """``{"pairs": [{"source": "en", "target": "es"}, ...]}`` (ISO 639-1)."""
    from ..engines.translate import supported_pairs

    pairs = await run_blocking(supported_pairs)
    return {"pairs": [{"source": s, "target": t} for s, t in sorted(pairs)]}
