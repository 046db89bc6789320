"""Speech to speech (voice changer) and audio isolation: audio in, audio out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ._common import (
    CONVERT_FORMATS,
    STREAMING_FORMATS,
    Destination,
    FileInput,
    Resource,
    build,
    check_output_format,
    file_part,
    form_fields,
    invalid,
    segment,
)
from ._streams import AudioStream, download_audio
from ._transport import Multipart
from .models import AudioDownload, VoiceSettings

FileFormat = Literal["pcm_s16le_16", "other"]


class SpeechToSpeech(Resource):
    """``/v1/speech-to-speech``: say the same words in another voice.

    Example:
        ```python
        await client.speech_to_speech.convert(
            "JBFqnCBsd6RMkjVDRZzb", audio="me.wav", dest="them.mp3", remove_background_noise=True
        )
        ```
    """

    def _prepare(
        self,
        voice_id: str,
        suffix: str,
        formats: frozenset[str],
        audio: FileInput,
        model_id: str | None,
        voice_settings: VoiceSettings | Mapping[str, Any] | None,
        seed: int | None,
        remove_background_noise: bool | None,
        file_format: FileFormat | None,
        output_format: str | None,
        enable_logging: bool | None,
        optimize_streaming_latency: int | None,
    ) -> tuple[str, str, dict[str, Any], Multipart]:
        path = f"/v1/speech-to-speech/{segment(voice_id, 'voice_id')}{suffix}"
        endpoint = f"POST /v1/speech-to-speech/{{voice_id}}{suffix}"
        check_output_format(output_format, formats, endpoint)
        if seed is not None and not 0 <= seed <= 4294967295:
            raise invalid(f"seed must be 0-4294967295, got {seed}", param="seed")
        settings = None
        if voice_settings is not None:
            checked = (
                voice_settings
                if isinstance(voice_settings, VoiceSettings)
                else build(VoiceSettings, **voice_settings)
            )
            # Sent as a JSON string in one form field, not as nested form fields.
            settings = checked.model_dump_json(exclude_none=True)
        fields = form_fields(
            {
                "model_id": model_id,
                "voice_settings": settings,
                "seed": seed,
                "remove_background_noise": remove_background_noise,
                "file_format": file_format,
            }
        )
        params = {
            "output_format": output_format,
            "enable_logging": enable_logging,
            "optimize_streaming_latency": optimize_streaming_latency,
        }
        files = [("audio", file_part(audio, "audio", default_filename="audio"))]
        return path, endpoint, params, Multipart(fields=fields, files=files)

    async def convert(
        self,
        voice_id: str,
        *,
        audio: FileInput,
        dest: Destination,
        model_id: str | None = None,
        voice_settings: VoiceSettings | Mapping[str, Any] | None = None,
        seed: int | None = None,
        remove_background_noise: bool | None = None,
        file_format: FileFormat | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
    ) -> AudioDownload:
        """Re-voices ``audio`` (path or bytes) with ``voice_id`` into ``dest``."""
        path, endpoint, params, multipart = self._prepare(
            voice_id,
            "",
            CONVERT_FORMATS,
            audio,
            model_id,
            voice_settings,
            seed,
            remove_background_noise,
            file_format,
            output_format,
            enable_logging,
            optimize_streaming_latency,
        )
        return await download_audio(
            self._transport,
            "POST",
            path,
            dest,
            params=params,
            multipart=multipart,
            endpoint=endpoint,
        )

    def stream(
        self,
        voice_id: str,
        *,
        audio: FileInput,
        model_id: str | None = None,
        voice_settings: VoiceSettings | Mapping[str, Any] | None = None,
        seed: int | None = None,
        remove_background_noise: bool | None = None,
        file_format: FileFormat | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
    ) -> AudioStream:
        """Re-voices ``audio`` via ``/stream``, yielding the result as it is generated."""
        path, endpoint, params, multipart = self._prepare(
            voice_id,
            "/stream",
            STREAMING_FORMATS,
            audio,
            model_id,
            voice_settings,
            seed,
            remove_background_noise,
            file_format,
            output_format,
            enable_logging,
            optimize_streaming_latency,
        )
        return AudioStream(
            self._transport, "POST", path, params=params, multipart=multipart, endpoint=endpoint
        )


class AudioIsolation(Resource):
    """``/v1/audio-isolation``: keep the voice, remove the background.

    Example:
        ```python
        await client.audio_isolation.convert(audio="noisy.wav", dest="clean.mp3")
        ```
    """

    def _multipart(self, audio: FileInput, file_format: FileFormat | None) -> Multipart:
        return Multipart(
            fields=form_fields({"file_format": file_format}),
            files=[("audio", file_part(audio, "audio", default_filename="audio"))],
        )

    async def convert(
        self, *, audio: FileInput, dest: Destination, file_format: FileFormat | None = None
    ) -> AudioDownload:
        """Isolates the voice in ``audio`` (path or bytes) and writes it to ``dest``."""
        return await download_audio(
            self._transport,
            "POST",
            "/v1/audio-isolation",
            dest,
            multipart=self._multipart(audio, file_format),
            endpoint="POST /v1/audio-isolation",
        )

    def stream(self, *, audio: FileInput, file_format: FileFormat | None = None) -> AudioStream:
        """Isolates the voice via ``/stream``, yielding the result as it is generated."""
        return AudioStream(
            self._transport,
            "POST",
            "/v1/audio-isolation/stream",
            multipart=self._multipart(audio, file_format),
            endpoint="POST /v1/audio-isolation/stream",
        )
