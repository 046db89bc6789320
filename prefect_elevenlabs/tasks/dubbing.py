"""Dubbing tasks: start a job, wait for it, download the dubbed media and its subtitles.

Dubbing is long-running work on the server, so it is three tasks: :func:`create_dubbing`
uploads the media and returns at once, :func:`wait_for_dubbing` polls until the job is done
(failing with :class:`DubbingFailedError` or :class:`DubbingTimeoutError`), and
:func:`download_dubbing` streams each language's result to ``output_dir``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Literal

from .. import media as _media
from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError, MediaError
from ..results import AudioAsset, DubbedMedia, DubbingJob, Usage
from . import _storage
from ._dubbing_errors import DubbingFailedError, DubbingTimeoutError
from ._policy import RETRY_OPTIONS, api_call, run_logger
from ._task import task
from .media import media_input

__all__ = [
    "DubbingFailedError",
    "DubbingTimeoutError",
    "create_dubbing",
    "download_dubbing",
    "wait_for_dubbing",
]

SubtitleFormat = Literal["srt", "webvtt"]
_SUBTITLE_SUFFIX = {"srt": "srt", "webvtt": "vtt"}
_MEDIA_SUFFIX = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
}
# How often progress is logged while a job keeps the same status.
_LOG_EVERY_S = 60.0


def _job(metadata: object, fallback_id: str) -> DubbingJob:
    media = getattr(metadata, "media_metadata", None)
    return DubbingJob(
        dubbing_id=getattr(metadata, "dubbing_id", None) or fallback_id,
        name=getattr(metadata, "name", None),
        status=getattr(metadata, "status", None) or "dubbing",
        source_language=getattr(metadata, "source_language", None),
        target_languages=list(getattr(metadata, "target_languages", None) or []),
        expected_duration_s=getattr(media, "duration", None) if media else None,
        error=getattr(metadata, "error", None),
    )


@task(name="ElevenLabs create dubbing", **RETRY_OPTIONS)
async def create_dubbing(
    media: str,
    target_lang: str,
    credentials: ElevenLabsCredentials,
    source_lang: str = "auto",
    num_speakers: int = 0,
    name: str | None = None,
    drop_background_audio: bool = False,
    start_time: int | None = None,
    end_time: int | None = None,
    disable_voice_cloning: bool = False,
    highest_resolution: bool = False,
    watermark: bool = False,
) -> DubbingJob:
    """Uploads audio or video and starts dubbing it into ``target_lang``; returns at once.

    Not cached: every call starts (and is billed for) a new job. Follow with
    :func:`wait_for_dubbing` and :func:`download_dubbing`.

    Args:
        media: A local path or fsspec URL of the audio or video to dub.
        target_lang: ISO 639-1/639-3 code of the dub, e.g. "es".
        credentials: The ElevenLabs credentials block.
        source_lang: The spoken language, or "auto" to detect it.
        num_speakers: Speakers to separate; 0 detects them.
        name: A label for the job; the file name when omitted.
        drop_background_audio: Leave out music and ambience (better for speech-only media).
        start_time: Dub from this second on.
        end_time: Dub up to this second.
        disable_voice_cloning: Use library voices instead of clones of the speakers.
        highest_resolution: Keep the source's full video resolution.
        watermark: Add a watermark to the video.

    Example:
        ```python
        job = create_dubbing("talk.mp4", "es", credentials)
        job = wait_for_dubbing(job.dubbing_id, credentials)
        dub = download_dubbing(job.dubbing_id, "es", credentials, output_dir="dubs")
        ```
    """
    if not target_lang or not target_lang.strip():
        raise InvalidRequestError(
            "target_lang is required, e.g. 'es' or 'de'",
            status="invalid_parameters",
            param="target_lang",
        )
    label = name or PurePosixPath(os.fspath(media)).name
    with media_input(media) as local:
        async with api_call(credentials) as client:
            created = await client.dubbing.create(
                local,
                target_lang=target_lang,
                source_lang=source_lang,
                name=label,
                num_speakers=num_speakers,
                drop_background_audio=drop_background_audio or None,
                start_time=start_time,
                end_time=end_time,
                disable_voice_cloning=disable_voice_cloning or None,
                highest_resolution=highest_resolution or None,
                watermark=watermark or None,
            )
    run_logger().info(
        "dubbing %s started: %s -> %s (expected %.0f s)",
        created.dubbing_id,
        source_lang,
        target_lang,
        created.expected_duration_sec or float("nan"),
    )
    return DubbingJob(
        dubbing_id=created.dubbing_id,
        name=label,
        status="dubbing",
        source_language=None if source_lang == "auto" else source_lang,
        target_languages=[target_lang],
        expected_duration_s=created.expected_duration_sec,
    )


async def poll_dubbing(
    dubbing_id: str,
    credentials: ElevenLabsCredentials,
    *,
    timeout_seconds: float = 3600.0,
    poll_interval_seconds: float = 10.0,
) -> DubbingJob:
    """Polls a job until it is done; the engine behind :func:`wait_for_dubbing`."""
    if timeout_seconds < 0 or poll_interval_seconds <= 0:
        raise InvalidRequestError(
            "timeout_seconds must be >= 0 and poll_interval_seconds > 0",
            status="invalid_parameters",
        )
    logger = run_logger()
    loop = asyncio.get_running_loop()
    started = loop.time()
    last_status: str | None = None
    last_log = started
    async with api_call(credentials) as client:
        while True:
            job = _job(await client.dubbing.get(dubbing_id), dubbing_id)
            waited = loop.time() - started
            if job.status != last_status or loop.time() - last_log >= _LOG_EVERY_S:
                logger.info("dubbing %s: %s after %.0f s", dubbing_id, job.status, waited)
                last_status, last_log = job.status, loop.time()
            if job.status == "dubbed":
                return job
            if job.status == "failed":
                raise DubbingFailedError(
                    f"dubbing {dubbing_id} failed: {job.error or 'the server gave no reason'}",
                    dubbing_id=dubbing_id,
                    job_error=job.error,
                )
            if waited >= timeout_seconds:
                raise DubbingTimeoutError(
                    f"dubbing {dubbing_id} was still {job.status!r} after waiting {waited:.0f} s "
                    f"(timeout_seconds={timeout_seconds:g}); the job goes on on the server: wait "
                    "again with a longer timeout_seconds",
                    dubbing_id=dubbing_id,
                    waited_s=waited,
                    last_status=job.status,
                )
            remaining = timeout_seconds - waited
            await asyncio.sleep(min(poll_interval_seconds, max(remaining, 0.0)))


@task(name="ElevenLabs wait for dubbing", **RETRY_OPTIONS)
async def wait_for_dubbing(
    dubbing_id: str,
    credentials: ElevenLabsCredentials,
    timeout_seconds: float = 3600.0,
    poll_interval_seconds: float = 10.0,
) -> DubbingJob:
    """Waits until a dubbing job is done, logging its progress.

    Args:
        dubbing_id: From :func:`create_dubbing`.
        credentials: The ElevenLabs credentials block.
        timeout_seconds: How long to wait before giving up (the job itself continues).
        poll_interval_seconds: Seconds between status checks.

    Returns:
        The finished job (status ``dubbed``).

    Raises:
        DubbingFailedError: The job failed; the message holds the server's reason.
        DubbingTimeoutError: Still running after ``timeout_seconds``.

    Example:
        ```python
        job = wait_for_dubbing(job.dubbing_id, credentials, timeout_seconds=1800)
        ```
    """
    return await poll_dubbing(
        dubbing_id,
        credentials,
        timeout_seconds=timeout_seconds,
        poll_interval_seconds=poll_interval_seconds,
    )


@task(name="ElevenLabs download dubbing", **RETRY_OPTIONS)
async def download_dubbing(
    dubbing_id: str,
    language_code: str,
    credentials: ElevenLabsCredentials,
    output_dir: str | None = None,
    subtitles_format: SubtitleFormat | None = "srt",
    filename: str | None = None,
) -> DubbedMedia:
    """Downloads the dubbed audio or video of one language, and its subtitles beside it.

    The media is streamed to disk (video for video input, MP3 otherwise) as
    ``dub-<dubbing_id>-<language>.<ext>`` unless ``filename`` names it; the subtitles get the
    same stem with ``.srt`` or ``.vtt``. A job still running answers ``NotReadyError``, which
    is retried.

    Args:
        dubbing_id: From :func:`create_dubbing`.
        language_code: The dub's language (``source`` for the original).
        credentials: The ElevenLabs credentials block.
        output_dir: A folder or fsspec URL.
        subtitles_format: "srt", "webvtt", or None for no subtitles.
        filename: The media file's stem (its extension follows the content type).

    Example:
        ```python
        dub = download_dubbing(job.dubbing_id, "es", credentials, output_dir="dubs")
        print(dub.media.uri, dub.subtitles_uri)
        ```
    """
    if subtitles_format is not None and subtitles_format not in _SUBTITLE_SUFFIX:
        raise InvalidRequestError(
            f"subtitles_format must be 'srt', 'webvtt' or None, got {subtitles_format!r}",
            status="invalid_parameters",
            param="subtitles_format",
        )
    # Ids are case-sensitive, so keep their case; only characters unsafe in names are replaced.
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "-", dubbing_id)[:64]
    stem = filename or f"dub-{safe_id}-{_storage.slug(language_code, 16)}"
    _storage.safe_name(stem, what="filename")
    if PurePosixPath(stem).suffix[1:] in _MEDIA_SUFFIX.values():
        stem = stem.rsplit(".", 1)[0]  # the content type decides the extension
    target = _storage.OutputDir(output_dir)
    subtitles_uri: str | None = None
    with tempfile.TemporaryDirectory(prefix="elevenlabs-dub-") as tmp:
        scratch = Path(tmp, "media")
        async with api_call(credentials) as client:
            download = await client.dubbing.get_audio(dubbing_id, language_code, dest=scratch)
            subtitles = (
                await client.dubbing.get_transcript(
                    dubbing_id, language_code, format_type=subtitles_format
                )
                if subtitles_format
                else None
            )
        content_type = (download.content_type or "").split(";")[0].strip().lower()
        ext = _MEDIA_SUFFIX.get(content_type, "mp4" if content_type.startswith("video/") else "mp3")
        name = f"{stem}.{ext}"
        with target.staged(name) as staged:
            shutil.move(scratch, staged)
            asset = _media_asset(target.uri_of(name), staged, ext, download)
        if subtitles is not None and subtitles_format is not None:
            sub_name = f"{stem}.{_SUBTITLE_SUFFIX[subtitles_format]}"
            with target.staged(sub_name) as staged_subs:
                staged_subs.write_text(subtitles, encoding="utf-8")
            subtitles_uri = target.uri_of(sub_name)
    run_logger().info(
        "dubbing %s (%s) -> %s%s",
        dubbing_id,
        language_code,
        asset.uri,
        f" + {subtitles_uri}" if subtitles_uri else "",
    )
    return DubbedMedia(
        dubbing_id=dubbing_id, language=language_code, media=asset, subtitles_uri=subtitles_uri
    )


def _media_asset(uri: str, path: Path, ext: str, download: object) -> AudioAsset:
    meta = getattr(download, "meta", None)
    duration: float | None = None
    rate: int | None = None
    try:
        info = _media.probe(path)
        duration, rate = info.duration, info.sample_rate
    except MediaError:
        pass
    usage = (
        [
            Usage(
                endpoint=meta.endpoint,
                characters=meta.character_cost or 0,
                request_id=meta.request_id,
                attempts=meta.attempts,
                latency_s=meta.latency_s,
            )
        ]
        if meta is not None
        else []
    )
    return AudioAsset(
        uri=uri,
        format=ext,
        sample_rate=rate,
        duration_s=duration,
        size_bytes=path.stat().st_size,
        request_id=meta.request_id if meta else None,
        request_ids=[meta.request_id] if meta and meta.request_id else [],
        usage=usage,
    )
