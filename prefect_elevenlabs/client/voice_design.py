"""Voice design (text to voice): previews from a description, then keep the one you like."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._common import (
    STREAMING_FORMATS,
    Destination,
    Resource,
    body,
    build,
    check_output_format,
    parse,
    segment,
)
from ._streams import AudioStream, download_audio
from .models import (
    AudioDownload,
    CreateVoiceRequest,
    Voice,
    VoiceDesignRequest,
    VoiceDesignResult,
)


class TextToVoice(Resource):
    """``/v1/text-to-voice``: design voices from a text description.

    Example:
        ```python
        design = await client.text_to_voice.design(
            "A warm, slow narrator with a slight Scottish accent, in his sixties.",
            auto_generate_text=True,
        )
        design.save_previews("previews/")
        voice = await client.text_to_voice.create(
            voice_name="Narrator", voice_description="Warm Scottish narrator",
            generated_voice_id=design.previews[0].generated_voice_id,
        )
        ```
    """

    async def _design(
        self, path: str, endpoint: str, output_format: str | None, payload: dict[str, Any]
    ) -> VoiceDesignResult:
        check_output_format(output_format, STREAMING_FORMATS, endpoint)
        data, meta = await self._transport.request_json(
            "POST", path, params={"output_format": output_format}, json=payload, endpoint=endpoint
        )
        return parse(VoiceDesignResult, data, meta)

    async def design(
        self,
        voice_description: str,
        *,
        model_id: str | None = None,
        text: str | None = None,
        auto_generate_text: bool | None = None,
        loudness: float | None = None,
        seed: int | None = None,
        guidance_scale: float | None = None,
        quality: float | None = None,
        stream_previews: bool | None = None,
        should_enhance: bool | None = None,
        remixing_session_id: str | None = None,
        remixing_session_iteration_id: str | None = None,
        reference_audio_base64: str | None = None,
        prompt_strength: float | None = None,
        output_format: str | None = None,
    ) -> VoiceDesignResult:
        """Generates voice previews for ``voice_description`` (give ``text`` or auto-generate)."""
        request = build(
            VoiceDesignRequest,
            voice_description=voice_description,
            model_id=model_id,
            text=text,
            auto_generate_text=auto_generate_text,
            loudness=loudness,
            seed=seed,
            guidance_scale=guidance_scale,
            quality=quality,
            stream_previews=stream_previews,
            should_enhance=should_enhance,
            remixing_session_id=remixing_session_id,
            remixing_session_iteration_id=remixing_session_iteration_id,
            reference_audio_base64=reference_audio_base64,
            prompt_strength=prompt_strength,
        )
        return await self._design(
            "/v1/text-to-voice/design",
            "POST /v1/text-to-voice/design",
            output_format,
            body(request),
        )

    async def create_previews(
        self,
        voice_description: str,
        *,
        text: str | None = None,
        auto_generate_text: bool | None = None,
        loudness: float | None = None,
        quality: float | None = None,
        seed: int | None = None,
        guidance_scale: float | None = None,
        output_format: str | None = None,
    ) -> VoiceDesignResult:
        """The legacy form of :meth:`design` (``/v1/text-to-voice/create-previews``)."""
        request = build(
            VoiceDesignRequest,
            voice_description=voice_description,
            text=text,
            auto_generate_text=auto_generate_text,
            loudness=loudness,
            quality=quality,
            seed=seed,
            guidance_scale=guidance_scale,
        )
        return await self._design(
            "/v1/text-to-voice/create-previews",
            "POST /v1/text-to-voice/create-previews",
            output_format,
            body(request),
        )

    async def remix(
        self,
        voice_id: str,
        voice_description: str,
        *,
        text: str | None = None,
        auto_generate_text: bool | None = None,
        loudness: float | None = None,
        seed: int | None = None,
        guidance_scale: float | None = None,
        stream_previews: bool | None = None,
        remixing_session_id: str | None = None,
        remixing_session_iteration_id: str | None = None,
        prompt_strength: float | None = None,
        output_format: str | None = None,
    ) -> VoiceDesignResult:
        """Previews of an existing voice changed as ``voice_description`` says."""
        request = build(
            VoiceDesignRequest,
            voice_description=voice_description,
            text=text,
            auto_generate_text=auto_generate_text,
            loudness=loudness,
            seed=seed,
            guidance_scale=guidance_scale,
            stream_previews=stream_previews,
            remixing_session_id=remixing_session_id,
            remixing_session_iteration_id=remixing_session_iteration_id,
            prompt_strength=prompt_strength,
        )
        return await self._design(
            f"/v1/text-to-voice/{segment(voice_id, 'voice_id')}/remix",
            "POST /v1/text-to-voice/{voice_id}/remix",
            output_format,
            body(request),
        )

    async def create(
        self,
        *,
        voice_name: str,
        voice_description: str,
        generated_voice_id: str,
        labels: Mapping[str, str | None] | None = None,
        played_not_selected_voice_ids: Sequence[str] | None = None,
    ) -> Voice:
        """Keeps a generated preview as a voice in the account; returns the new voice."""
        request = build(
            CreateVoiceRequest,
            voice_name=voice_name,
            voice_description=voice_description,
            generated_voice_id=generated_voice_id,
            labels=dict(labels) if labels is not None else None,
            played_not_selected_voice_ids=(
                list(played_not_selected_voice_ids)
                if played_not_selected_voice_ids is not None
                else None
            ),
        )
        data, meta = await self._transport.request_json(
            "POST", "/v1/text-to-voice", json=body(request), endpoint="POST /v1/text-to-voice"
        )
        return parse(Voice, data, meta)

    def stream(self, generated_voice_id: str) -> AudioStream:
        """The audio of one preview (for designs made with ``stream_previews=True``)."""
        return AudioStream(
            self._transport,
            "GET",
            f"/v1/text-to-voice/{segment(generated_voice_id, 'generated_voice_id')}/stream",
            endpoint="GET /v1/text-to-voice/{generated_voice_id}/stream",
        )

    async def download_preview(self, generated_voice_id: str, dest: Destination) -> AudioDownload:
        """Writes one preview's streamed audio to ``dest``."""
        return await download_audio(
            self._transport,
            "GET",
            f"/v1/text-to-voice/{segment(generated_voice_id, 'generated_voice_id')}/stream",
            dest,
            endpoint="GET /v1/text-to-voice/{generated_voice_id}/stream",
        )
