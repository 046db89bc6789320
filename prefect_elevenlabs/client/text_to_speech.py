"""Text to speech over HTTP: whole files, streams, and both with character timings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

from ._common import (
    CONVERT_FORMATS,
    STREAMING_FORMATS,
    Destination,
    Resource,
    body,
    build,
    check_output_format,
    invalid,
    parse,
    segment,
)
from ._streams import AudioStream, TimestampStream, download_audio
from .models import (
    AudioDownload,
    AudioEffects,
    AudioWithTimestamps,
    PronunciationDictionaryLocator,
    TextToSpeechRequest,
    VoiceSettings,
)


class TextToSpeechOptions(TypedDict, total=False):
    """Optional body fields shared by every text-to-speech call (the API's own names)."""

    model_id: str | None
    language_code: str | None
    voice_settings: VoiceSettings | Mapping[str, Any] | None
    pronunciation_dictionary_locators: (
        Sequence[PronunciationDictionaryLocator | Mapping[str, Any]] | None
    )
    seed: int | None
    previous_text: str | None
    next_text: str | None
    previous_request_ids: Sequence[str] | None
    next_request_ids: Sequence[str] | None
    use_pvc_as_ivc: bool | None
    apply_text_normalization: Literal["auto", "on", "off"] | None
    apply_language_text_normalization: bool | None
    audio_effects: AudioEffects | Mapping[str, Any] | None


class TextToSpeech(Resource):
    """``/v1/text-to-speech``: speak text with a voice.

    Every method takes the voice id, ``text`` and the optional fields of
    :class:`TextToSpeechOptions`, plus the query options ``output_format``, ``enable_logging``
    and ``optimize_streaming_latency``. Unset options are not sent, so the server's (or the
    voice's) defaults apply.

    Example:
        ```python
        async with ElevenLabsClient() as client:
            result = await client.text_to_speech.convert(
                "21m00Tcm4TlvDq8ikWAM", text="Hello.", dest="hello.mp3", model_id="eleven_v3"
            )
            print(result.bytes_written, result.character_cost)
        ```
    """

    def _prepare(
        self,
        voice_id: str,
        suffix: str,
        text: str,
        formats: frozenset[str],
        output_format: str | None,
        enable_logging: bool | None,
        optimize_streaming_latency: int | None,
        options: Mapping[str, Any],
    ) -> tuple[str, dict[str, Any], dict[str, Any], str]:
        path = f"/v1/text-to-speech/{segment(voice_id, 'voice_id')}{suffix}"
        endpoint = f"POST /v1/text-to-speech/{{voice_id}}{suffix}"
        check_output_format(output_format, formats, endpoint)
        if optimize_streaming_latency is not None and not 0 <= optimize_streaming_latency <= 4:
            raise invalid(
                f"optimize_streaming_latency must be 0-4, got {optimize_streaming_latency}",
                param="optimize_streaming_latency",
            )
        request = build(TextToSpeechRequest, text=text, **options)
        params = {
            "output_format": output_format,
            "enable_logging": enable_logging,
            "optimize_streaming_latency": optimize_streaming_latency,
        }
        return path, params, body(request), endpoint

    async def convert(
        self,
        voice_id: str,
        *,
        text: str,
        dest: Destination,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
        **options: Unpack[TextToSpeechOptions],
    ) -> AudioDownload:
        """Speaks ``text`` into ``dest`` (a path, written atomically, or a binary file object).

        ``output_format`` is one of the 28 whole-file formats (``mp3_44100_128``, ``wav_16000``...).
        The download is retried as a whole on 429, 5xx and dropped connections.
        """
        path, params, payload, endpoint = self._prepare(
            voice_id,
            "",
            text,
            CONVERT_FORMATS,
            output_format,
            enable_logging,
            optimize_streaming_latency,
            options,
        )
        return await download_audio(
            self._transport, "POST", path, dest, params=params, json=payload, endpoint=endpoint
        )

    def iter_convert(
        self,
        voice_id: str,
        *,
        text: str,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
        **options: Unpack[TextToSpeechOptions],
    ) -> AudioStream:
        """Like :meth:`convert` but yields the audio as it arrives instead of writing a file."""
        path, params, payload, endpoint = self._prepare(
            voice_id,
            "",
            text,
            CONVERT_FORMATS,
            output_format,
            enable_logging,
            optimize_streaming_latency,
            options,
        )
        return AudioStream(
            self._transport, "POST", path, params=params, json=payload, endpoint=endpoint
        )

    def stream(
        self,
        voice_id: str,
        *,
        text: str,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
        **options: Unpack[TextToSpeechOptions],
    ) -> AudioStream:
        """Streams speech from ``/stream`` (lowest latency to first byte; 21 streaming formats).

        Example:
            ```python
            async with client.text_to_speech.stream(voice_id, text="Hi there") as audio:
                async for chunk in audio.iter_bytes():
                    sink.write(chunk)
            ```
        """
        path, params, payload, endpoint = self._prepare(
            voice_id,
            "/stream",
            text,
            STREAMING_FORMATS,
            output_format,
            enable_logging,
            optimize_streaming_latency,
            options,
        )
        return AudioStream(
            self._transport, "POST", path, params=params, json=payload, endpoint=endpoint
        )

    async def convert_with_timestamps(
        self,
        voice_id: str,
        *,
        text: str,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
        **options: Unpack[TextToSpeechOptions],
    ) -> AudioWithTimestamps:
        """Speaks ``text`` and returns base64 audio with per-character timings.

        Use :meth:`AudioWithTimestamps.save_audio` to write the decoded audio to a file.
        """
        path, params, payload, endpoint = self._prepare(
            voice_id,
            "/with-timestamps",
            text,
            CONVERT_FORMATS,
            output_format,
            enable_logging,
            optimize_streaming_latency,
            options,
        )
        data, meta = await self._transport.request_json(
            "POST", path, params=params, json=payload, endpoint=endpoint
        )
        return parse(AudioWithTimestamps, data, meta)

    def stream_with_timestamps(
        self,
        voice_id: str,
        *,
        text: str,
        output_format: str | None = None,
        enable_logging: bool | None = None,
        optimize_streaming_latency: int | None = None,
        **options: Unpack[TextToSpeechOptions],
    ) -> TimestampStream:
        """Streams :class:`TimestampChunk` objects (audio piece plus its alignment) as they arrive.

        Example:
            ```python
            async for chunk in client.text_to_speech.stream_with_timestamps(voice_id, text="Hi"):
                out.write(chunk.audio_bytes())
            ```
        """
        path, params, payload, endpoint = self._prepare(
            voice_id,
            "/stream/with-timestamps",
            text,
            STREAMING_FORMATS,
            output_format,
            enable_logging,
            optimize_streaming_latency,
            options,
        )
        return TimestampStream(
            self._transport, "POST", path, params=params, json=payload, endpoint=endpoint
        )
