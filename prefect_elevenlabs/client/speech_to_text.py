"""Batch speech to text (Scribe): upload a file or point at a URL, get words with timings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ._common import (
    FileInput,
    Resource,
    build,
    exactly_one,
    file_part,
    form_fields,
    json_text,
    parse,
    segment,
)
from ._transport import FileSpec, Multipart
from .models import AdditionalFormatRequest, SpeechToTextRequest, SpeechToTextResult, StatusResponse

EntitySelection = str | Sequence[str] | None


class SpeechToText(Resource):
    """``/v1/speech-to-text``: transcribe audio or video.

    Example:
        ```python
        result = await client.speech_to_text.convert("meeting.mp3", diarize=True)
        for word in result.words:
            print(word.start, word.speaker_id, word.text)
        ```
    """

    async def convert(
        self,
        file: FileInput | None = None,
        *,
        source_url: str | None = None,
        cloud_storage_url: str | None = None,
        model_id: str = "scribe_v1",
        language_code: str | None = None,
        tag_audio_events: bool | None = None,
        num_speakers: int | None = None,
        diarize: bool | None = None,
        diarization_threshold: float | None = None,
        detect_speaker_roles: bool | None = None,
        use_speaker_library: bool | None = None,
        timestamps_granularity: Literal["none", "word", "character"] | None = None,
        additional_formats: Sequence[AdditionalFormatRequest | Mapping[str, Any]] | None = None,
        file_format: Literal["pcm_s16le_16", "other"] | None = None,
        webhook: bool | None = None,
        webhook_id: str | None = None,
        webhook_metadata: str | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        use_multi_channel: bool | None = None,
        multichannel_output_style: Literal["separate", "combined"] | None = None,
        entity_detection: EntitySelection = None,
        entity_redaction: EntitySelection = None,
        entity_redaction_mode: (
            Literal["redacted", "entity_type", "enumerated_entity_type"] | None
        ) = None,
        keyterms: Sequence[str] | None = None,
        secondary_language_codes: Sequence[str] | None = None,
        numbers_format: Literal["digits", "words"] | None = None,
        no_verbatim: bool | None = None,
        transcript_edit: str | None = None,
        enable_logging: bool | None = None,
    ) -> SpeechToTextResult:
        """Transcribes one of ``file`` (path or bytes), ``source_url`` or ``cloud_storage_url``.

        A file path is streamed from disk, and re-sent whole (with every field) if the upload
        is retried. ``keyterms`` and ``secondary_language_codes`` are sent as repeated parts;
        ``additional_formats`` as one ``application/json`` part; ``webhook_metadata``,
        ``entity_detection`` and ``entity_redaction`` as JSON text (the literal ``null`` when
        unset, as the official SDK sends them).
        """
        exactly_one(file=file, source_url=source_url, cloud_storage_url=cloud_storage_url)
        request = build(
            SpeechToTextRequest,
            model_id=model_id,
            language_code=language_code,
            tag_audio_events=tag_audio_events,
            num_speakers=num_speakers,
            diarize=diarize,
            diarization_threshold=diarization_threshold,
            detect_speaker_roles=detect_speaker_roles,
            use_speaker_library=use_speaker_library,
            timestamps_granularity=timestamps_granularity,
            file_format=file_format,
            webhook=webhook,
            webhook_id=webhook_id,
            temperature=temperature,
            seed=seed,
            use_multi_channel=use_multi_channel,
            multichannel_output_style=multichannel_output_style,
            entity_redaction_mode=entity_redaction_mode,
            keyterms=list(keyterms) if keyterms is not None else None,
            secondary_language_codes=(
                list(secondary_language_codes) if secondary_language_codes is not None else None
            ),
            numbers_format=numbers_format,
            no_verbatim=no_verbatim,
            transcript_edit=transcript_edit,
            additional_formats=list(additional_formats) if additional_formats is not None else None,
        )
        values = request.model_dump(exclude_none=True, exclude={"additional_formats"})
        values["source_url"] = source_url
        values["cloud_storage_url"] = cloud_storage_url
        values["webhook_metadata"] = json_text(webhook_metadata)
        values["entity_detection"] = json_text(_entities(entity_detection))
        values["entity_redaction"] = json_text(_entities(entity_redaction))
        files: list[tuple[str, FileSpec]] = []
        if file is not None:
            files.append(("file", file_part(file, "file", default_filename="audio")))
        if request.additional_formats:
            formats = [f.model_dump(exclude_none=True) for f in request.additional_formats]
            files.append(("additional_formats", FileSpec.json_part(json_text(formats))))
        data, meta = await self._transport.request_json(
            "POST",
            "/v1/speech-to-text",
            params={"enable_logging": enable_logging},
            multipart=Multipart(fields=form_fields(values), files=files),
            endpoint="POST /v1/speech-to-text",
        )
        return parse(SpeechToTextResult, data, meta)

    async def get_transcript(self, transcription_id: str) -> SpeechToTextResult:
        """Fetches a stored transcription (e.g. one delivered by webhook) by id."""
        data, meta = await self._transport.request_json(
            "GET",
            f"/v1/speech-to-text/transcripts/{segment(transcription_id, 'transcription_id')}",
            endpoint="GET /v1/speech-to-text/transcripts/{transcription_id}",
        )
        return parse(SpeechToTextResult, data, meta)

    async def delete_transcript(self, transcription_id: str) -> StatusResponse:
        """Deletes a stored transcription."""
        data, meta = await self._transport.request_json(
            "DELETE",
            f"/v1/speech-to-text/transcripts/{segment(transcription_id, 'transcription_id')}",
            endpoint="DELETE /v1/speech-to-text/transcripts/{transcription_id}",
        )
        return parse(StatusResponse, data or {}, meta)


def _entities(value: EntitySelection) -> Any:
    if value is None or isinstance(value, str):
        return value
    return list(value)
