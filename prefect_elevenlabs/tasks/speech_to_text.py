"""Speech-to-text tasks: batch transcription of any length, and the realtime socket.

Batch transcription uploads audio as it is when it can; video is reduced to its audio first,
and media longer than ``max_chunk_seconds`` is cut in pauses, each piece transcribed, and the
pieces joined with their timings shifted back into place. The result is cached on the inputs
plus a fingerprint of the media file, so a re-run is free and an edited file is transcribed
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import uuid
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from .. import media as _media
from ..blocks import ElevenLabsCredentials
from ..client.realtime import (
    CommittedTranscript,
    CommittedTranscriptWithTimestamps,
    RealtimeError,
    connect_realtime,
)
from ..errors import ConnectionFailedError, InvalidRequestError, MediaError
from ..errors import TimeoutError as ElevenLabsTimeoutError
from ..results import TimedWord, Transcript
from . import _storage
from ._policy import RETRY_OPTIONS, api_call, generation_cache, run_logger
from ._task import task
from .media import media_input

__all__ = [
    "DEFAULT_MAX_CHUNK_SECONDS",
    "DEFAULT_STT_MODEL",
    "MediaFingerprint",
    "media_fingerprint",
    "realtime_speech_to_text",
    "speech_to_text",
    "transcribe",
    "transcribe_realtime",
]

DEFAULT_STT_MODEL = "scribe_v1"
DEFAULT_REALTIME_MODEL = "scribe_v2_realtime"
DEFAULT_MAX_CHUNK_SECONDS = 900.0
DEFAULT_MAX_CHUNK_BYTES = 1024 * 1024 * 1024
"""Uploads stay far below the API's 3 GB file limit; chunks of 16 kHz WAV are ~2 MB a minute."""

# Files up to this size are fingerprinted by content; larger ones by size and modification time,
# which is cheap for any storage and changes whenever the file is rewritten.
CONTENT_HASH_LIMIT = 64 * 1024 * 1024
_REALTIME_RATE = 16000


# --------------------------------------------------------------------------------------------
# Cache: inputs plus what the media file holds


def media_fingerprint(uri: str | os.PathLike[str]) -> str:
    """A string that changes whenever the file at ``uri`` (a path or fsspec URL) changes.

    Small files are hashed; large ones are identified by size and modification time (or the
    storage's ETag). A file that cannot be read gets a unique value, so it never hits the cache.
    """
    try:
        fs, path = fsspec.core.url_to_fs(os.fspath(uri))
        info = fs.info(path)
        size = int(info.get("size") or 0)
        if size <= CONTENT_HASH_LIMIT:
            digest = hashlib.sha256()
            with fs.open(path, "rb") as handle:
                while block := handle.read(1024 * 1024):
                    digest.update(block)
            return f"sha256:{digest.hexdigest()}"
        stamp = next(
            (
                str(info[key])
                for key in ("mtime", "LastModified", "last_modified", "updated", "ETag", "etag")
                if info.get(key) is not None
            ),
            "",
        )
        return f"size:{size}:stamp:{stamp}"
    except Exception:
        return f"unreadable:{uuid.uuid4().hex}"


@dataclass
class MediaFingerprint(CachePolicy):
    """Cache-key part made of the fingerprint of the file(s) named by an input."""

    parameter: str = "media"

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        value = inputs.get(self.parameter)
        if value is None:
            return None
        values = value if isinstance(value, (list, tuple)) else [value]
        return _storage.content_hash(*(media_fingerprint(v) for v in values), length=32)


def transcription_cache(parameter: str = "media") -> CachePolicy:
    """Inputs minus credentials, the cache version, and the media file's fingerprint."""
    return generation_cache() + MediaFingerprint(parameter=parameter)


# --------------------------------------------------------------------------------------------
# Batch


def _timed_words(words: Sequence[Any]) -> list[TimedWord]:
    """The API's words without the ``spacing`` items; audio events are kept like words."""
    timed = []
    for word in words:
        if getattr(word, "type", None) == "spacing" or not (word.text or "").strip():
            continue
        start = float(word.start) if word.start is not None else 0.0
        end = float(word.end) if word.end is not None else start
        timed.append(
            TimedWord(
                text=word.text.strip(),
                start=start,
                end=max(end, start),
                speaker_id=word.speaker_id,
                logprob=word.logprob,
            )
        )
    return timed


def _as_transcript(result: Any, source: str | None, duration: float | None) -> Transcript:
    meta = getattr(result, "meta", None)
    return Transcript(
        text=(result.text or "").strip(),
        language=result.language_code,
        language_probability=result.language_probability,
        words=_timed_words(result.words),
        duration_s=result.audio_duration_secs or duration,
        source=source,
        transcription_id=result.transcription_id,
        request_id=result.request_id or (meta.request_id if meta else None),
    )


@dataclass(frozen=True)
class _Piece:
    path: Path
    start: float
    duration: float


def _upload_pieces(
    local: Path, scratch: Path, max_chunk_seconds: float, max_chunk_bytes: int | None
) -> list[_Piece]:
    """The file(s) to upload: the media itself, its audio, or pieces of its audio."""
    info = _media.probe(local)
    if not info.has_audio:
        raise MediaError(
            f"{local.name} has no audio stream to transcribe", status="unsupported_media"
        )
    size_limit = max_chunk_bytes or DEFAULT_MAX_CHUNK_BYTES
    if info.duration > max_chunk_seconds or (info.size_bytes > size_limit and info.duration > 1):
        chunks = _media.split_on_silence(
            local,
            scratch / "chunks",
            max_duration=max_chunk_seconds,
            max_bytes=max_chunk_bytes,
            format="flac",
        )
        return [_Piece(c.path, c.start, c.duration) for c in chunks]
    if info.has_video:
        # Only the sound is needed: uploading the picture would waste time and bandwidth.
        audio = _media.extract_audio(local, scratch / f"{_storage.slug(local.stem)}.flac")
        return [_Piece(audio, 0.0, info.duration)]
    return [_Piece(local, 0.0, info.duration)]


async def transcribe(
    media: str | os.PathLike[str],
    credentials: ElevenLabsCredentials,
    *,
    model_id: str = DEFAULT_STT_MODEL,
    language_code: str | None = None,
    diarize: bool = False,
    num_speakers: int | None = None,
    keyterms: list[str] | None = None,
    tag_audio_events: bool | None = None,
    max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS,
    max_chunk_bytes: int | None = None,
) -> Transcript:
    """Transcribes audio or video of any length; the engine behind :func:`speech_to_text`."""
    if not max_chunk_seconds > 0:
        raise InvalidRequestError(
            f"max_chunk_seconds must be positive, got {max_chunk_seconds}",
            status="invalid_parameters",
            param="max_chunk_seconds",
        )
    source = os.fspath(media)
    options: dict[str, Any] = {
        "model_id": model_id,
        "language_code": language_code,
        "diarize": diarize or None,
        "num_speakers": num_speakers,
        "keyterms": keyterms or None,
        "tag_audio_events": tag_audio_events,
    }
    logger = run_logger()
    with media_input(source) as local, tempfile.TemporaryDirectory(prefix="elevenlabs-stt-") as tmp:
        pieces = await asyncio.to_thread(
            _upload_pieces, local, Path(tmp), max_chunk_seconds, max_chunk_bytes
        )
        if len(pieces) > 1:
            logger.info(
                "%s is %.0f s long: transcribing it in %d pieces cut at pauses",
                source,
                pieces[-1].start + pieces[-1].duration,
                len(pieces),
            )
        async with api_call(credentials) as client:

            async def one(piece: _Piece) -> Transcript:
                result = await client.speech_to_text.convert(piece.path, **options)
                return _as_transcript(result, source, piece.duration)

            # The client's concurrency cap decides how many pieces are in flight at once.
            parts = await asyncio.gather(*(one(piece) for piece in pieces))
    if len(parts) == 1:
        return parts[0]
    if diarize:
        logger.warning(
            "speaker ids are assigned per piece: the same person may get different ids in "
            "different pieces of %s",
            source,
        )
    return Transcript.join(
        [(piece.start, part) for piece, part in zip(pieces, parts, strict=True)], source=source
    )


@task(name="ElevenLabs speech to text", cache_policy=transcription_cache(), **RETRY_OPTIONS)
async def speech_to_text(
    media: str,
    credentials: ElevenLabsCredentials,
    model_id: str = DEFAULT_STT_MODEL,
    language_code: str | None = None,
    diarize: bool = False,
    num_speakers: int | None = None,
    keyterms: list[str] | None = None,
    tag_audio_events: bool | None = None,
    max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS,
    max_chunk_bytes: int | None = None,
) -> Transcript:
    """Transcribes an audio or video file into text with word timings (and speakers).

    Media longer than ``max_chunk_seconds`` is cut at pauses and the pieces transcribed
    (concurrently, within the credentials' concurrency cap) and joined with their timings
    shifted back. The result is cached on the inputs and the media file's content, so a re-run
    costs nothing while an edited file is transcribed again.

    Args:
        media: A local path or fsspec URL of an audio or video file.
        credentials: The ElevenLabs credentials block.
        model_id: The transcription model, e.g. scribe_v1 or scribe_v2.
        language_code: ISO 639-1/639-3 code, or None to detect the language.
        diarize: Label each word with the speaker who said it.
        num_speakers: Most speakers to expect (1-32) when diarizing.
        keyterms: Words and phrases to favour (names, jargon).
        tag_audio_events: Tag sounds such as (laughter); the API default when None.
        max_chunk_seconds: Longest piece sent in one request.
        max_chunk_bytes: Largest upload in one request (pieces are cut to fit).

    Returns:
        The transcript; ``to_srt()``/``to_vtt()`` render subtitles.

    Example:
        ```python
        from prefect import flow
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.tasks import speech_to_text

        @flow
        def subtitle(path: str):
            transcript = speech_to_text(path, ElevenLabsCredentials(base_url="local"))
            return transcript.to_srt()
        ```
    """
    return await transcribe(
        media,
        credentials,
        model_id=model_id,
        language_code=language_code,
        diarize=diarize,
        num_speakers=num_speakers,
        keyterms=keyterms,
        tag_audio_events=tag_audio_events,
        max_chunk_seconds=max_chunk_seconds,
        max_chunk_bytes=max_chunk_bytes,
    )


# --------------------------------------------------------------------------------------------
# Realtime


def _pcm_blocks(wav_path: Path, chunk_seconds: float) -> Iterator[bytes]:
    with wave.open(str(wav_path), "rb") as reader:
        frames = max(1, int(reader.getframerate() * chunk_seconds))
        while block := reader.readframes(frames):
            yield block


async def transcribe_realtime(
    media: str | os.PathLike[str],
    credentials: ElevenLabsCredentials,
    *,
    model_id: str = DEFAULT_REALTIME_MODEL,
    language_code: str | None = None,
    keyterms: list[str] | None = None,
    chunk_seconds: float = 0.25,
    commit_every_seconds: float = 30.0,
    pace: bool = False,
    response_timeout: float = 120.0,
) -> Transcript:
    """Streams a file through the realtime socket; the engine behind the realtime task."""
    if chunk_seconds <= 0 or commit_every_seconds <= 0:
        raise InvalidRequestError(
            "chunk_seconds and commit_every_seconds must be positive",
            status="invalid_parameters",
        )
    source = os.fspath(media)
    with media_input(source) as local, tempfile.TemporaryDirectory(prefix="elevenlabs-rt-") as tmp:
        wav = Path(tmp, "audio.wav")
        await asyncio.to_thread(
            _media.extract_audio, local, wav, sample_rate=_REALTIME_RATE, channels=1
        )
        async with api_call(credentials) as client:
            limiter = client.transport.limiter
            await limiter.acquire()
            try:
                segments, duration = await _stream_file(
                    client,
                    wav,
                    model_id=model_id,
                    language_code=language_code,
                    keyterms=keyterms,
                    chunk_seconds=chunk_seconds,
                    commit_every_seconds=commit_every_seconds,
                    pace=pace,
                    response_timeout=response_timeout,
                )
            finally:
                limiter.release()
    words = [w for segment in segments for w in _timed_words(segment.words)]
    words.sort(key=lambda w: w.start)
    languages = [s.language_code for s in segments if s.language_code]
    return Transcript(
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        language=languages[-1] if languages else language_code,
        words=words,
        duration_s=duration,
        source=source,
    )


async def _stream_file(
    client: Any,
    wav: Path,
    *,
    model_id: str,
    language_code: str | None,
    keyterms: list[str] | None,
    chunk_seconds: float,
    commit_every_seconds: float,
    pace: bool,
    response_timeout: float,
) -> tuple[list[CommittedTranscriptWithTimestamps], float]:
    """Sends ``wav`` (16 kHz mono PCM) in chunks, commits, and gathers the timed segments."""
    session = connect_realtime(
        client,
        model_id=model_id,
        audio_format=f"pcm_{_REALTIME_RATE}",
        commit_strategy="manual",
        language_code=language_code,
        keyterms=keyterms,
        include_timestamps=True,
        raise_on_error=False,
    )
    segments: list[CommittedTranscriptWithTimestamps] = []
    answered = 0
    failure: list[BaseException] = []
    progress = asyncio.Event()
    bytes_per_second = _REALTIME_RATE * 2

    async def read() -> None:
        nonlocal answered
        try:
            async for event in session:
                if isinstance(event, CommittedTranscriptWithTimestamps):
                    segments.append(event)
                    answered += 1
                elif isinstance(event, CommittedTranscript):
                    pass  # the timed copy of the same segment follows
                elif isinstance(event, RealtimeError):
                    if event.message_type == "insufficient_audio_activity":
                        answered += 1  # a commit of silence: nothing to transcribe
                    else:
                        failure.append(event.exception)
                        return
                progress.set()
        except Exception as exc:
            failure.append(exc)
        finally:
            progress.set()

    sent = 0
    commits = 0
    async with session:
        reader = asyncio.create_task(read())
        try:
            pending = 0
            for block in _pcm_blocks(wav, chunk_seconds):
                if failure:
                    break
                await session.send_audio(block)
                sent += len(block)
                pending += len(block)
                if pace:
                    await asyncio.sleep(len(block) / bytes_per_second)
                if pending >= commit_every_seconds * bytes_per_second:
                    await session.commit()
                    commits += 1
                    pending = 0
            if pending and not failure:
                await session.commit()
                commits += 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + response_timeout
            while not failure and answered < commits and not reader.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ElevenLabsTimeoutError(
                        f"realtime transcription: {commits - answered} of {commits} commit(s) "
                        f"got no transcript within {response_timeout}s"
                    )
                progress.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(progress.wait(), min(remaining, 1.0))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    if failure:
        raise failure[0]
    if answered < commits:
        raise ConnectionFailedError(
            f"realtime transcription: the session ended after {answered} of {commits} commits"
        )
    return segments, sent / bytes_per_second


@task(name="ElevenLabs realtime speech to text", **RETRY_OPTIONS)
async def realtime_speech_to_text(
    media: str,
    credentials: ElevenLabsCredentials,
    model_id: str = DEFAULT_REALTIME_MODEL,
    language_code: str | None = None,
    keyterms: list[str] | None = None,
    chunk_seconds: float = 0.25,
    commit_every_seconds: float = 30.0,
    pace: bool = False,
    response_timeout: float = 120.0,
) -> Transcript:
    """Transcribes a file through the realtime WebSocket, as a live source would be.

    The audio is converted to 16 kHz mono PCM, sent in ``chunk_seconds`` pieces (in real time
    with ``pace=True``, else as fast as the socket takes them), committed every
    ``commit_every_seconds`` and at the end; the committed segments with their word timings
    (seconds from the start of the file) make up the transcript. Not cached: use
    :func:`speech_to_text` for files you may transcribe again.

    Args:
        media: A local path or fsspec URL of an audio or video file.
        credentials: The ElevenLabs credentials block.
        model_id: The realtime model, e.g. scribe_v2_realtime.
        language_code: ISO 639-1/639-3 code, or None to detect it.
        keyterms: Words and phrases to favour.
        chunk_seconds: Audio per message.
        commit_every_seconds: Audio per committed segment.
        pace: Send at the speed of speech, like a live microphone.
        response_timeout: Seconds to wait for the last transcripts after the audio is sent.

    Example:
        ```python
        transcript = await realtime_speech_to_text("call.wav", credentials, language_code="en")
        ```
    """
    return await transcribe_realtime(
        media,
        credentials,
        model_id=model_id,
        language_code=language_code,
        keyterms=keyterms,
        chunk_seconds=chunk_seconds,
        commit_every_seconds=commit_every_seconds,
        pace=pace,
        response_timeout=response_timeout,
    )
