"""Music: compose songs from a prompt or a composition plan, and plan them first."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConnectionFailedError, ServerError
from ..errors import TimeoutError as ElevenLabsTimeoutError
from ._common import (
    MUSIC_FORMATS,
    Destination,
    Resource,
    body,
    build,
    check_output_format,
    exactly_one,
    parse,
)
from ._streams import AudioStream, download_audio
from ._transport import (
    BodyInterrupted,
    ResponseMeta,
    StreamedResponse,
    write_atomically,
    write_to_handle,
)
from .models import (
    AudioDownload,
    CompositionPlan,
    DetailedComposition,
    MusicRequest,
    SongMetadata,
    WordTimestamp,
)

PlanInput = CompositionPlan | Mapping[str, Any]

# A JSON part larger than this is not metadata: refuse rather than buffer without bound.
_MAX_JSON_PART = 32 * 1024 * 1024


class Music(Resource):
    """``/v1/music``: compose music.

    Example:
        ```python
        song = await client.music.compose(
            prompt="calm lo-fi piano, 30 seconds", music_length_ms=30000, dest="calm.mp3"
        )
        print(song.song_id, song.bytes_written)
        ```
    """

    def _prepare(
        self,
        endpoint: str,
        output_format: str | None,
        enable_logging: bool | None,
        prompt: str | None,
        composition_plan: PlanInput | None,
        **fields: Any,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        exactly_one(prompt=prompt, composition_plan=composition_plan)
        check_output_format(output_format, MUSIC_FORMATS, endpoint)
        request = build(MusicRequest, prompt=prompt, composition_plan=composition_plan, **fields)
        return {"output_format": output_format, "enable_logging": enable_logging}, body(request)

    async def compose(
        self,
        *,
        dest: Destination,
        prompt: str | None = None,
        composition_plan: PlanInput | None = None,
        music_length_ms: int | None = None,
        model_id: str | None = None,
        seed: int | None = None,
        force_instrumental: bool | None = None,
        respect_sections_durations: bool | None = None,
        store_for_inpainting: bool | None = None,
        finetune_id: str | None = None,
        sign_with_c2pa: bool | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
    ) -> AudioDownload:
        """Composes from exactly one of ``prompt`` or ``composition_plan`` into ``dest``.

        The ``song-id`` response header is available as ``result.song_id``.
        """
        endpoint = "POST /v1/music"
        params, payload = self._prepare(
            endpoint,
            output_format,
            enable_logging,
            prompt,
            composition_plan,
            music_length_ms=music_length_ms,
            model_id=model_id,
            seed=seed,
            force_instrumental=force_instrumental,
            respect_sections_durations=respect_sections_durations,
            store_for_inpainting=store_for_inpainting,
            finetune_id=finetune_id,
            sign_with_c2pa=sign_with_c2pa,
        )
        return await download_audio(
            self._transport,
            "POST",
            "/v1/music",
            dest,
            params=params,
            json=payload,
            endpoint=endpoint,
        )

    def stream(
        self,
        *,
        prompt: str | None = None,
        composition_plan: PlanInput | None = None,
        music_length_ms: int | None = None,
        model_id: str | None = None,
        seed: int | None = None,
        force_instrumental: bool | None = None,
        store_for_inpainting: bool | None = None,
        finetune_id: str | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
    ) -> AudioStream:
        """Streams a composition from ``/v1/music/stream`` as it is generated."""
        endpoint = "POST /v1/music/stream"
        params, payload = self._prepare(
            endpoint,
            output_format,
            enable_logging,
            prompt,
            composition_plan,
            music_length_ms=music_length_ms,
            model_id=model_id,
            seed=seed,
            force_instrumental=force_instrumental,
            store_for_inpainting=store_for_inpainting,
            finetune_id=finetune_id,
        )
        return AudioStream(
            self._transport,
            "POST",
            "/v1/music/stream",
            params=params,
            json=payload,
            endpoint=endpoint,
        )

    async def create_plan(
        self,
        prompt: str,
        *,
        music_length_ms: int | None = None,
        source_composition_plan: PlanInput | None = None,
        model_id: str | None = None,
    ) -> CompositionPlan:
        """Drafts a composition plan from a prompt (free of credits; edit it, then compose)."""
        request = build(
            MusicRequest, prompt=prompt, music_length_ms=music_length_ms, model_id=model_id
        )
        payload = body(request)
        if source_composition_plan is not None:
            plan = (
                source_composition_plan
                if isinstance(source_composition_plan, CompositionPlan)
                else build(CompositionPlan, **dict(source_composition_plan))
            )
            payload["source_composition_plan"] = body(plan)
        data, meta = await self._transport.request_json(
            "POST", "/v1/music/plan", json=payload, endpoint="POST /v1/music/plan"
        )
        return parse(CompositionPlan, data, meta)

    async def compose_detailed(
        self,
        *,
        dest: Destination,
        prompt: str | None = None,
        composition_plan: PlanInput | None = None,
        music_length_ms: int | None = None,
        model_id: str | None = None,
        seed: int | None = None,
        force_instrumental: bool | None = None,
        respect_sections_durations: bool | None = None,
        store_for_inpainting: bool | None = None,
        with_timestamps: bool | None = None,
        with_waveform_visual: bool | None = None,
        sign_with_c2pa: bool | None = None,
        output_format: str | None = None,
        enable_logging: bool | None = None,
    ) -> DetailedComposition:
        """Composes and returns the plan and song metadata too, audio streamed to ``dest``.

        The response is ``multipart/mixed``: a JSON part (plan, metadata, optional word timings
        and waveform) and an audio part. The audio part is written to ``dest`` as it arrives;
        a transfer that fails part-way is retried as a whole.
        """
        endpoint = "POST /v1/music/detailed"
        params, payload = self._prepare(
            endpoint,
            output_format,
            enable_logging,
            prompt,
            composition_plan,
            music_length_ms=music_length_ms,
            model_id=model_id,
            seed=seed,
            force_instrumental=force_instrumental,
            respect_sections_durations=respect_sections_durations,
            store_for_inpainting=store_for_inpainting,
            with_timestamps=with_timestamps,
            with_waveform_visual=with_waveform_visual,
            sign_with_c2pa=sign_with_c2pa,
        )

        async def attempt() -> DetailedComposition:
            async with self._transport.stream(
                "POST", "/v1/music/detailed", params=params, json=payload, endpoint=endpoint
            ) as streamed:
                try:
                    return await _read_detailed(streamed, dest)
                except (ConnectionFailedError, ElevenLabsTimeoutError) as error:
                    if not isinstance(dest, (str, os.PathLike)) and not dest.seekable():
                        raise ConnectionFailedError(
                            f"{endpoint}: the song failed part-way into a non-seekable "
                            f"destination and cannot be retried safely ({error.message})",
                            request_id=error.request_id,
                        ) from error
                    # Cut short after the headers: the transport retries the whole request.
                    raise BodyInterrupted(error) from error

        result: DetailedComposition = await self._transport.retrying(endpoint, attempt)
        return result


class _Reader:
    """Pulls from a chunk iterator into a buffer, for parsing a multipart body on the fly."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.buffer = b""

    async def _fill(self) -> bool:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            return False
        self.buffer += chunk
        return True

    async def until(self, pattern: bytes, *, limit: int = _MAX_JSON_PART) -> bytes | None:
        """The bytes before ``pattern`` (which is consumed), or None at the end of the body."""
        while True:
            index = self.buffer.find(pattern)
            if index >= 0:
                data, self.buffer = self.buffer[:index], self.buffer[index + len(pattern) :]
                return data
            if len(self.buffer) > limit:
                raise ValueError(f"no {pattern!r} within {limit} bytes")
            if not await self._fill():
                return None

    async def stream_until(self, pattern: bytes) -> AsyncIterator[bytes]:
        """Yields bytes up to ``pattern`` or the end of the body, holding back a possible match."""
        keep = len(pattern) - 1
        while True:
            index = self.buffer.find(pattern)
            if index >= 0:
                if index:
                    yield self.buffer[:index]
                self.buffer = self.buffer[index + len(pattern) :]
                return
            if len(self.buffer) > keep:
                cut = len(self.buffer) - keep
                yield self.buffer[:cut]
                self.buffer = self.buffer[cut:]
            if not await self._fill():
                if self.buffer:
                    yield self.buffer
                self.buffer = b""
                return


async def _read_headers(reader: _Reader) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    while True:
        line = await reader.until(b"\n", limit=64 * 1024)
        if line is None:
            return None
        text = line.rstrip(b"\r").decode("latin-1")
        if not text:
            return headers
        name, _, value = text.partition(":")
        headers[name.strip().lower()] = value.strip()


def _boundary_from(content_type: str | None) -> bytes | None:
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    return match.group(1).encode() if match else None


async def _read_detailed(streamed: StreamedResponse, dest: Destination) -> DetailedComposition:
    meta = streamed.meta
    reader = _Reader(streamed.iter_bytes())

    def malformed(why: str) -> ServerError:
        return ServerError(
            f"{meta.endpoint}: the multipart/mixed response is malformed: {why}",
            status_code=meta.status_code,
            request_id=meta.request_id,
        )

    # Use the header's boundary if given; otherwise the body's first line is the delimiter,
    # which is what the official SDK relies on.
    boundary = _boundary_from(meta.content_type)
    first = await reader.until(b"\n", limit=4096)
    if first is None:
        raise malformed("empty body")
    first_line = first.rstrip(b"\r")
    if boundary is None:
        if not first_line.startswith(b"--"):
            raise malformed(f"the body does not start with a boundary line ({first_line[:40]!r})")
        boundary = first_line[2:]
    elif first_line != b"--" + boundary and (
        # A preamble before the first delimiter is allowed: skip to it.
        await reader.until(b"--" + boundary) is None or await reader.until(b"\n") is None
    ):
        raise malformed("the boundary named in Content-Type never appears")
    delimiter = b"\n--" + boundary
    # The line break before a delimiter belongs to it; binary audio must keep a trailing CR.
    audio_delimiter = (b"\r\n--" if first.endswith(b"\r") else b"\n--") + boundary

    info: dict[str, Any] = {}
    audio: AudioDownload | None = None
    filename: str | None = None
    while True:
        headers = await _read_headers(reader)
        if headers is None:
            break
        part_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if part_type == "application/json":
            raw = await reader.until(delimiter)
            if raw is None:
                raise malformed("the JSON part is not followed by another part")
            try:
                info.update(json.loads(raw.rstrip(b"\r")))
            except ValueError as exc:
                raise malformed(f"the JSON part does not parse: {exc}") from exc
        else:
            match = re.search(r'filename="?([^";]+)"?', headers.get("content-disposition", ""))
            filename = match.group(1) if match else filename
            chunks = reader.stream_until(audio_delimiter)
            if isinstance(dest, (str, os.PathLike)):
                written = await write_atomically(Path(dest), chunks)
            else:
                written = await write_to_handle(dest, chunks)
            audio = AudioDownload(
                path=Path(dest) if isinstance(dest, (str, os.PathLike)) else None,
                bytes_written=written,
                content_type=part_type or None,
                meta=meta,
            )
        rest = await reader.until(b"\n", limit=4096)
        if rest is None or rest.rstrip(b"\r").startswith(b"--"):
            break  # closing delimiter, or audio that ran to the end of the body
    if audio is None:
        raise malformed("it has no audio part")
    return _detailed(info, audio, filename, meta)


def _detailed(
    info: Mapping[str, Any], audio: AudioDownload, filename: str | None, meta: ResponseMeta
) -> DetailedComposition:
    plan = info.get("composition_plan", info.get("compositionPlan"))
    song = info.get("song_metadata", info.get("songMetadata"))
    words = info.get("words_timestamps", info.get("wordsTimestamps"))
    return DetailedComposition(
        audio=audio,
        composition_plan=CompositionPlan.model_validate(plan) if plan else None,
        song_metadata=SongMetadata.model_validate(song) if song else None,
        words_timestamps=[WordTimestamp.model_validate(w) for w in words] if words else None,
        waveform_visual=info.get("waveform_visual", info.get("waveformVisual")),
        filename=filename,
        song_id=meta.extra.get("song-id") or info.get("song_id"),
        meta=meta,
    )
