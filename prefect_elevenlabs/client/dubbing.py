"""Dubbing: translate and re-voice audio or video, then fetch the dubbed media and subtitles."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from ..errors import ConnectionFailedError
from ..errors import TimeoutError as ElevenLabsTimeoutError
from ._common import (
    Destination,
    FileInput,
    Resource,
    as_list,
    exactly_one,
    file_part,
    form_fields,
    invalid,
    parse,
    segment,
)
from ._streams import AudioStream, download_audio
from ._transport import BodyInterrupted, FileSpec, Multipart
from .models import (
    AudioDownload,
    DubbingCreated,
    DubbingMetadata,
    DubbingPage,
    StatusResponse,
)

TranscriptFormat = Literal["srt", "webvtt", "json"]


class Dubbing(Resource):
    """``/v1/dubbing``: create dubbing jobs, poll them, download results.

    Example:
        ```python
        job = await client.dubbing.create("talk.mp4", target_lang="es")
        while not (meta := await client.dubbing.get(job.dubbing_id)).is_done:
            await asyncio.sleep(10)
        await client.dubbing.get_audio(job.dubbing_id, "es", dest="talk.es.mp4")
        ```
    """

    async def create(
        self,
        file: FileInput | None = None,
        *,
        target_lang: str,
        source_url: str | None = None,
        source_lang: str | None = None,
        name: str | None = None,
        num_speakers: int | None = None,
        watermark: bool | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        highest_resolution: bool | None = None,
        drop_background_audio: bool | None = None,
        use_profanity_filter: bool | None = None,
        dubbing_studio: bool | None = None,
        disable_voice_cloning: bool | None = None,
        target_accent: str | None = None,
        mode: Literal["automatic", "manual"] | None = None,
        csv_file: FileInput | None = None,
        foreground_audio_file: FileInput | None = None,
        background_audio_file: FileInput | None = None,
        csv_fps: float | None = None,
    ) -> DubbingCreated:
        """Dubs exactly one of ``file`` (path or bytes) or ``source_url`` into ``target_lang``.

        Returns at once with the job id; poll :meth:`get` until ``status`` is ``dubbed``.
        """
        exactly_one(file=file, source_url=source_url)
        if not target_lang or not target_lang.strip():
            raise invalid("target_lang is required, e.g. 'es' or 'de'", param="target_lang")
        if num_speakers is not None and num_speakers < 0:
            raise invalid("num_speakers must be 0 (detect) or more", param="num_speakers")
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise invalid(
                f"end_time ({end_time}) must be after start_time ({start_time})", param="end_time"
            )
        fields = form_fields(
            {
                "name": name,
                "source_url": source_url,
                "source_lang": source_lang,
                "target_lang": target_lang,
                "target_accent": target_accent,
                "num_speakers": num_speakers,
                "watermark": watermark,
                "start_time": start_time,
                "end_time": end_time,
                "highest_resolution": highest_resolution,
                "drop_background_audio": drop_background_audio,
                "use_profanity_filter": use_profanity_filter,
                "dubbing_studio": dubbing_studio,
                "disable_voice_cloning": disable_voice_cloning,
                "mode": mode,
                "csv_fps": csv_fps,
            }
        )
        files: list[tuple[str, FileSpec]] = []
        for part_name, value in (
            ("file", file),
            ("csv_file", csv_file),
            ("foreground_audio_file", foreground_audio_file),
            ("background_audio_file", background_audio_file),
        ):
            if value is not None:
                files.append((part_name, file_part(value, part_name, default_filename=part_name)))
        data, meta = await self._transport.request_json(
            "POST",
            "/v1/dubbing",
            multipart=Multipart(fields=fields, files=files),
            endpoint="POST /v1/dubbing",
        )
        return parse(DubbingCreated, data, meta)

    async def get(self, dubbing_id: str) -> DubbingMetadata:
        """The job's status, languages and media facts."""
        data, meta = await self._transport.request_json(
            "GET",
            f"/v1/dubbing/{segment(dubbing_id, 'dubbing_id')}",
            endpoint="GET /v1/dubbing/{dubbing_id}",
        )
        return parse(DubbingMetadata, data, meta)

    async def list(
        self,
        *,
        cursor: str | None = None,
        page_size: int | None = None,
        dubbing_status: str | None = None,
        dubbing_statuses: str | Sequence[str] | None = None,
        dubbing_models: str | Sequence[str] | None = None,
        target_language_codes: str | Sequence[str] | None = None,
        creation_sources: str | Sequence[str] | None = None,
        filter_by_creator: Literal["personal", "others", "all"] | None = None,
        order_by: Literal["created_at", "name"] | None = None,
        order_direction: Literal["DESCENDING", "ASCENDING"] | None = None,
    ) -> DubbingPage:
        """One page of dubbing jobs; pass ``next_cursor`` back as ``cursor`` for the next."""
        data, meta = await self._transport.request_json(
            "GET",
            "/v1/dubbing",
            params={
                "cursor": cursor,
                "page_size": page_size,
                "dubbing_status": dubbing_status,
                "dubbing_statuses": as_list(dubbing_statuses),
                "dubbing_models": as_list(dubbing_models),
                "target_language_codes": as_list(target_language_codes),
                "creation_sources": as_list(creation_sources),
                "filter_by_creator": filter_by_creator,
                "order_by": order_by,
                "order_direction": order_direction,
            },
            endpoint="GET /v1/dubbing",
        )
        return parse(DubbingPage, data, meta)

    async def iter_all(
        self, *, page_size: int | None = None, dubbing_status: str | None = None
    ) -> AsyncIterator[DubbingMetadata]:
        """Every dubbing job, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(
                cursor=cursor, page_size=page_size, dubbing_status=dubbing_status
            )
            for dub in page.dubs:
                yield dub
            if not page.has_more or not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def delete(self, dubbing_id: str) -> StatusResponse:
        """Deletes a dubbing job and its media."""
        data, meta = await self._transport.request_json(
            "DELETE",
            f"/v1/dubbing/{segment(dubbing_id, 'dubbing_id')}",
            endpoint="DELETE /v1/dubbing/{dubbing_id}",
        )
        return parse(StatusResponse, data or {}, meta)

    def _audio_path(self, dubbing_id: str, language_code: str) -> str:
        return (
            f"/v1/dubbing/{segment(dubbing_id, 'dubbing_id')}"
            f"/audio/{segment(language_code, 'language_code')}"
        )

    async def get_audio(
        self, dubbing_id: str, language_code: str, dest: Destination
    ) -> AudioDownload:
        """Downloads the dubbed audio or video for ``language_code`` to ``dest``.

        Raises :class:`NotReadyError` (425) while the job is still dubbing.
        """
        return await download_audio(
            self._transport,
            "GET",
            self._audio_path(dubbing_id, language_code),
            dest,
            endpoint="GET /v1/dubbing/{dubbing_id}/audio/{language_code}",
        )

    def iter_audio(self, dubbing_id: str, language_code: str) -> AudioStream:
        """The dubbed media as a stream of chunks."""
        return AudioStream(
            self._transport,
            "GET",
            self._audio_path(dubbing_id, language_code),
            endpoint="GET /v1/dubbing/{dubbing_id}/audio/{language_code}",
        )

    async def get_transcript(
        self, dubbing_id: str, language_code: str, format_type: TranscriptFormat = "srt"
    ) -> str:
        """The subtitles of one language (``source`` for the original) as text.

        The API sends the subtitles as a JSON string; some servers send the raw text instead.
        Both come back as the plain subtitle text (for ``json``, the JSON document as text).
        """
        if format_type not in ("srt", "webvtt", "json"):
            raise invalid(
                f"format_type must be 'srt', 'webvtt' or 'json', got {format_type!r}",
                param="format_type",
            )
        endpoint = "GET /v1/dubbing/{dubbing_id}/transcript/{language_code}"
        path = (
            f"/v1/dubbing/{segment(dubbing_id, 'dubbing_id')}"
            f"/transcript/{segment(language_code, 'language_code')}"
        )

        async def attempt() -> str:
            async with self._transport.stream(
                "GET", path, params={"format_type": format_type}, endpoint=endpoint
            ) as streamed:
                try:
                    content = b"".join([chunk async for chunk in streamed.iter_bytes()])
                except (ConnectionFailedError, ElevenLabsTimeoutError) as error:
                    # Cut short after the headers: the transport retries the whole request.
                    raise BodyInterrupted(error) from error
            return content.decode("utf-8", "replace")

        text: str = await self._transport.retrying(endpoint, attempt)
        return _transcript_text(text)


def _transcript_text(text: str) -> str:
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    if isinstance(decoded, str):
        return decoded
    return text
