"""Sound effects from a text prompt (``/v1/sound-generation``)."""

from __future__ import annotations

from typing import Any

from ._common import (
    CONVERT_FORMATS,
    Destination,
    Resource,
    body,
    build,
    check_output_format,
)
from ._streams import AudioStream, download_audio
from .models import AudioDownload, SoundEffectRequest

_PATH = "/v1/sound-generation"
_ENDPOINT = "POST /v1/sound-generation"


class TextToSoundEffects(Resource):
    """``/v1/sound-generation``: generate a sound effect from a description.

    Example:
        ```python
        await client.text_to_sound_effects.convert(
            "rain on a tin roof", duration_seconds=5, dest="rain.mp3"
        )
        ```
    """

    def _prepare(
        self,
        text: str,
        duration_seconds: float | None,
        prompt_influence: float | None,
        loop: bool | None,
        model_id: str | None,
        output_format: str | None,
        enable_logging: bool | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        check_output_format(output_format, CONVERT_FORMATS, _ENDPOINT)
        request = build(
            SoundEffectRequest,
            text=text,
            duration_seconds=duration_seconds,
            prompt_influence=prompt_influence,
            loop=loop,
            model_id=model_id,
        )
        return {"output_format": output_format, "enable_logging": enable_logging}, body(request)

    async def convert(
        self,
        text: str,
        *,
        dest: Destination,
        duration_seconds: float | None = None,
        prompt_influence: float | None = None,
        loop: bool | None = None,
        model_id: str | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
    ) -> AudioDownload:
        """Generates the effect into ``dest``; ``duration_seconds`` 0.5-30 or None (model picks)."""
        params, payload = self._prepare(
            text, duration_seconds, prompt_influence, loop, model_id, output_format, enable_logging
        )
        return await download_audio(
            self._transport, "POST", _PATH, dest, params=params, json=payload, endpoint=_ENDPOINT
        )

    def iter_convert(
        self,
        text: str,
        *,
        duration_seconds: float | None = None,
        prompt_influence: float | None = None,
        loop: bool | None = None,
        model_id: str | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
    ) -> AudioStream:
        """Like :meth:`convert` but yields the audio as it arrives."""
        params, payload = self._prepare(
            text, duration_seconds, prompt_influence, loop, model_id, output_format, enable_logging
        )
        return AudioStream(
            self._transport, "POST", _PATH, params=params, json=payload, endpoint=_ENDPOINT
        )
