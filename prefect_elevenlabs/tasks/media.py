"""Media tasks: probe, extract, convert, normalise, time-fit, mix, mux, split and join audio.

Each task wraps one function of :mod:`prefect_elevenlabs.media`. Inputs may be local paths or
fsspec URLs (``s3://``, ``memory://``...); remote inputs are copied to a temporary local file
first. Outputs go to ``output_dir`` (a folder or fsspec URL) under ``filename``, or under a name
derived from the input and the settings, and appear there only once complete.

Retries are off: ffmpeg failing on a file fails the same way every time, and the
:class:`~prefect_elevenlabs.errors.MediaError` it raises is passed on unchanged, with its
message naming the file and the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .. import media as _media
from ..errors import MediaError
from ..media import Loudness, MediaInfo
from ..results import AudioAsset
from ..results_extra import AudioChunk, FittedAudio, MediaFile
from . import _storage
from ._task import task

__all__ = [
    "concat_audio",
    "convert_audio",
    "extract_audio",
    "fit_to_duration",
    "measure_loudness",
    "media_input",
    "media_inputs",
    "mix_over",
    "mux_into_video",
    "normalize_loudness",
    "probe_media",
    "split_on_silence",
]

_MEDIA_TASK_OPTIONS: dict[str, Any] = {"retries": 0}
_AUDIO_EXTENSIONS = ("wav", "mp3", "flac", "m4a", "aac", "ogg", "opus")
_ELEVENLABS_FORMAT = re.compile(r"^(mp3|wav|opus|pcm)_(\d+)(?:_(\d+))?$")


# --------------------------------------------------------------------------------------------
# Inputs and outputs


@contextlib.contextmanager
def media_input(uri: str | os.PathLike[str], *, what: str = "media") -> Iterator[Path]:
    """A local path for reading the media at ``uri`` (a path or fsspec URL).

    Remote files are copied to a temporary file that is removed afterwards. A missing file is a
    :class:`MediaError` with status ``media_not_found`` whatever the storage.
    """
    raw = os.fspath(uri)
    if not raw or not str(raw).strip():
        raise MediaError(f"{what} is empty: give a file path or URL", status="invalid_parameters")
    with contextlib.ExitStack() as stack:
        # Only opening is translated here; errors raised by the caller's block pass untouched.
        try:
            local = stack.enter_context(_storage.local_copy(raw))
        except FileNotFoundError as exc:
            raise MediaError(
                f"{what} {raw!r} does not exist ({exc})", status="media_not_found"
            ) from exc
        except (ImportError, ValueError, OSError) as exc:
            raise MediaError(
                f"{what} {raw!r} cannot be opened: {exc}", status="invalid_parameters"
            ) from exc
        if not local.exists():
            raise MediaError(f"{what} {raw!r} does not exist", status="media_not_found")
        yield local


@contextlib.contextmanager
def media_inputs(
    uris: Sequence[str | os.PathLike[str]], *, what: str = "media"
) -> Iterator[list[Path]]:
    """Local paths for several inputs at once (see :func:`media_input`)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(media_input(uri, what=what)) for uri in uris]


def _display_path(uri: str) -> Path:
    """The path part of ``uri`` on its own filesystem, for results that report a path."""
    fs, path = fsspec.core.url_to_fs(uri)
    return Path(path) if isinstance(fs, LocalFileSystem) else Path(PurePosixPath(path))


def _stem_of(uri: str | os.PathLike[str]) -> str:
    name = PurePosixPath(os.fspath(uri).rstrip("/")).name
    return _storage.slug(PurePosixPath(name).stem or "media")


def output_name(
    filename: str | None, source: str | os.PathLike[str], operation: str, ext: str, *settings: Any
) -> str:
    """``filename`` (given the extension if it has none), else a name derived from the inputs.

    The derived name is ``<input stem>-<operation>-<hash of input and settings>.<ext>``, so the
    same call always writes the same file and different settings never collide.
    """
    ext = ext.lstrip(".").lower()
    if filename:
        _storage.safe_name(filename, what="filename")
        return filename if PurePosixPath(filename).suffix else f"{filename}.{ext}"
    digest = _storage.content_hash(os.fspath(source), operation, *settings, length=10)
    return f"{_stem_of(source)}-{operation}-{digest}.{ext}"


def _audio_asset(uri: str, written: Path) -> AudioAsset:
    info = _media.probe(written)
    ext = written.suffix.lstrip(".").lower()
    if ext == "part":  # never the case for staged files, which keep their real suffix last
        ext = "audio"
    return AudioAsset(
        uri=uri,
        format=f"{ext}_{info.sample_rate}" if info.sample_rate else ext,
        sample_rate=info.sample_rate,
        duration_s=info.duration,
        size_bytes=written.stat().st_size,
    )


def _media_file(uri: str, written: Path) -> MediaFile:
    info = _media.probe(written)
    return MediaFile(
        uri=uri,
        container=written.suffix.lstrip(".").lower(),
        duration_s=info.duration,
        size_bytes=written.stat().st_size,
        has_video=info.has_video,
        has_audio=info.has_audio,
        width=info.width,
        height=info.height,
        sample_rate=info.sample_rate,
    )


def _check_audio_extension(ext: str) -> str:
    ext = ext.lstrip(".").lower()
    if ext not in _AUDIO_EXTENSIONS:
        raise MediaError(
            f"audio format {ext!r} is not supported: use one of {', '.join(_AUDIO_EXTENSIONS)}",
            status="unsupported_media",
        )
    return ext


def parse_audio_format(audio_format: str) -> tuple[str, int | None, str | None]:
    """(extension, sample rate, bitrate) of ``mp3`` / ``wav`` ... or ``mp3_44100_128`` style names.

    >>> parse_audio_format("mp3_44100_128")
    ('mp3', 44100, '128k')
    >>> parse_audio_format("flac")
    ('flac', None, None)
    """
    match = _ELEVENLABS_FORMAT.match(audio_format.lower())
    if match:
        codec, rate, kbps = match.groups()
        ext = {"pcm": "wav"}.get(codec, codec)
        return ext, int(rate), f"{kbps}k" if kbps else None
    return _check_audio_extension(audio_format), None, None


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs blocking ffmpeg work off the event loop, so async flows stay responsive."""
    return await asyncio.to_thread(fn, *args, **kwargs)


# --------------------------------------------------------------------------------------------
# Tasks


@task(name="Probe media", **_MEDIA_TASK_OPTIONS)
async def probe_media(media: str) -> MediaInfo:
    """Reads the container, duration and streams of a media file.

    Args:
        media: A local path or fsspec URL of an audio or video file.

    Returns:
        The media facts; ``path`` is the file's path on its own filesystem.

    Example:
        ```python
        info = probe_media("s3://bucket/talk.mp4")
        print(info.duration, info.has_video)
        ```
    """

    def run() -> MediaInfo:
        with media_input(media) as local:
            info = _media.probe(local)
        return info.model_copy(update={"path": _display_path(os.fspath(media))})

    result: MediaInfo = await _in_thread(run)
    return result


@task(name="Extract audio", **_MEDIA_TASK_OPTIONS)
async def extract_audio(
    media: str,
    output_dir: str | None = None,
    filename: str | None = None,
    sample_rate: int = 16000,
    channels: int = 1,
    audio_format: str = "wav",
) -> AudioAsset:
    """Writes the first audio stream of an audio or video file as an audio-only file.

    The defaults (16 kHz mono WAV) suit speech recognition.

    Args:
        media: A local path or fsspec URL.
        output_dir: Folder or fsspec URL for the result (default: the configured output dir).
        filename: Output file name; derived from the input and settings when omitted.
        sample_rate: Output sample rate in Hz.
        channels: Output channel count.
        audio_format: wav, mp3, flac, m4a, aac, ogg or opus.

    Example:
        ```python
        wav = extract_audio("talk.mp4", output_dir="work")
        ```
    """
    ext = _check_audio_extension(audio_format)
    name = output_name(filename, media, "audio", ext, sample_rate, channels)
    target = _storage.OutputDir(output_dir)

    def run() -> AudioAsset:
        with media_input(media) as local, target.staged(name) as staged:
            _media.extract_audio(local, staged, sample_rate=sample_rate, channels=channels)
            return _audio_asset(target.uri_of(name), staged)

    result: AudioAsset = await _in_thread(run)
    return result


@task(name="Convert audio", **_MEDIA_TASK_OPTIONS)
async def convert_audio(
    media: str,
    audio_format: str = "mp3",
    output_dir: str | None = None,
    filename: str | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    bitrate: str | None = None,
) -> AudioAsset:
    """Re-encodes audio into another format, sample rate or channel count.

    Args:
        media: A local path or fsspec URL (audio, or video whose audio is taken).
        audio_format: wav, mp3, flac, m4a, aac, ogg, opus, or an ElevenLabs-style name such
            as ``mp3_44100_128`` or ``pcm_16000`` (which also sets rate and bitrate).
        output_dir: Folder or fsspec URL for the result.
        filename: Output file name; derived from the input and settings when omitted.
        sample_rate: Output rate in Hz; the source's when omitted.
        channels: Output channels; the source's when omitted.
        bitrate: For lossy formats, e.g. ``"128k"``.

    Example:
        ```python
        mp3 = convert_audio("speech.wav", "mp3_44100_128", output_dir="out")
        ```
    """
    ext, format_rate, format_bitrate = parse_audio_format(audio_format)
    rate = sample_rate or format_rate
    kbps = bitrate or format_bitrate
    name = output_name(filename, media, "convert", ext, rate, channels, kbps)
    target = _storage.OutputDir(output_dir)

    def run() -> AudioAsset:
        with media_input(media) as local, target.staged(name) as staged:
            _media.convert(local, staged, sample_rate=rate, channels=channels, bitrate=kbps)
            return _audio_asset(target.uri_of(name), staged)

    result: AudioAsset = await _in_thread(run)
    return result


@task(name="Measure loudness", **_MEDIA_TASK_OPTIONS)
async def measure_loudness(media: str) -> Loudness:
    """Measures integrated loudness (LUFS), true peak, loudness range (EBU R128).

    Example:
        ```python
        loudness = measure_loudness("episode.mp3")
        assert loudness.integrated_lufs < -14
        ```
    """

    def run() -> Loudness:
        with media_input(media) as local:
            return _media.measure_loudness(local)

    result: Loudness = await _in_thread(run)
    return result


@task(name="Normalize loudness", **_MEDIA_TASK_OPTIONS)
async def normalize_loudness(
    media: str,
    output_dir: str | None = None,
    filename: str | None = None,
    target_lufs: float = -16.0,
    true_peak_db: float = -1.5,
    lra: float = 11.0,
    audio_format: str | None = None,
) -> AudioAsset:
    """Normalises loudness to ``target_lufs`` (two-pass EBU R128, one linear gain).

    Args:
        media: A local path or fsspec URL.
        output_dir: Folder or fsspec URL for the result.
        filename: Output file name; derived from the input and settings when omitted.
        target_lufs: Integrated loudness to reach (-16 suits podcasts, -23 broadcast).
        true_peak_db: Ceiling for true peaks.
        lra: Loudness range target.
        audio_format: Output format (wav, mp3...); the input's when omitted.

    Example:
        ```python
        loud = normalize_loudness("raw.wav", target_lufs=-16, output_dir="out")
        ```
    """
    ext = _check_audio_extension(audio_format or _suffix_of(media))
    name = output_name(filename, media, "loudnorm", ext, target_lufs, true_peak_db, lra)
    target = _storage.OutputDir(output_dir)

    def run() -> AudioAsset:
        with media_input(media) as local, target.staged(name) as staged:
            _media.normalize_loudness(
                local, staged, target_lufs=target_lufs, true_peak_db=true_peak_db, lra=lra
            )
            return _audio_asset(target.uri_of(name), staged)

    result: AudioAsset = await _in_thread(run)
    return result


def _suffix_of(uri: str | os.PathLike[str]) -> str:
    suffix = PurePosixPath(os.fspath(uri)).suffix.lstrip(".").lower()
    return suffix if suffix in _AUDIO_EXTENSIONS else "wav"


@task(name="Fit audio to duration", **_MEDIA_TASK_OPTIONS)
async def fit_to_duration(
    media: str,
    target_seconds: float,
    output_dir: str | None = None,
    filename: str | None = None,
    min_tempo: float = 0.75,
    max_tempo: float = 1.6,
    pad: bool = True,
) -> FittedAudio:
    """Speeds audio up or slows it down (pitch kept) so it lasts ``target_seconds``.

    Beyond ``[min_tempo, max_tempo]`` the tempo is clamped and the result padded with silence
    or cut to land on the target; ``clamped`` in the result says so.

    Example:
        ```python
        fitted = fit_to_duration("line_es.wav", 2.4, output_dir="slots")
        ```
    """
    ext = _suffix_of(media)
    name = output_name(filename, media, "fit", ext, target_seconds, min_tempo, max_tempo, pad)
    target = _storage.OutputDir(output_dir)

    def run() -> FittedAudio:
        with media_input(media) as local, target.staged(name) as staged:
            fit = _media.fit_to_duration(
                local, staged, target_seconds, min_tempo=min_tempo, max_tempo=max_tempo, pad=pad
            )
            asset = _audio_asset(target.uri_of(name), staged)
        return FittedAudio(
            audio=asset, tempo=fit.tempo, required_tempo=fit.required_tempo, clamped=fit.clamped
        )

    result: FittedAudio = await _in_thread(run)
    return result


@task(name="Mix speech over background", **_MEDIA_TASK_OPTIONS)
async def mix_over(
    background: str,
    segments: list[tuple[str, float]],
    output_dir: str | None = None,
    filename: str | None = None,
    duck_db: float = -12.0,
    background_gain_db: float = 0.0,
) -> AudioAsset:
    """Places speech segments over a background track at their start times, ducking under them.

    Args:
        background: The bed (music, ambience, a video's original audio), path or URL.
        segments: ``(path or URL, start_seconds)`` pairs.
        output_dir: Folder or fsspec URL for the result.
        filename: Output file name; derived from the inputs when omitted.
        duck_db: How far the background dips while speech plays (negative dB).
        background_gain_db: Gain applied to the background throughout.

    Example:
        ```python
        mix = mix_over("music.wav", [("line1.wav", 0.5), ("line2.wav", 4.0)], output_dir="out")
        ```
    """
    pairs = [(str(uri), float(start)) for uri, start in segments]
    ext = _suffix_of(background)
    name = output_name(filename, background, "mix", ext, pairs, duck_db, background_gain_db)
    target = _storage.OutputDir(output_dir)

    def run() -> AudioAsset:
        with (
            media_input(background, what="background") as bed,
            media_inputs([uri for uri, _ in pairs], what="segment") as locals_,
            target.staged(name) as staged,
        ):
            placed = [(path, start) for path, (_, start) in zip(locals_, pairs, strict=True)]
            _media.mix_over(
                bed, placed, staged, duck_db=duck_db, background_gain_db=background_gain_db
            )
            return _audio_asset(target.uri_of(name), staged)

    result: AudioAsset = await _in_thread(run)
    return result


@task(name="Mux audio into video", **_MEDIA_TASK_OPTIONS)
async def mux_into_video(
    video: str,
    audio: str,
    output_dir: str | None = None,
    filename: str | None = None,
    subtitles: str | None = None,
    subtitle_language: str | None = None,
    audio_language: str | None = None,
    keep_original_audio: bool = False,
    container: str | None = None,
) -> MediaFile:
    """Puts new audio (and optional soft subtitles) on a video, copying the picture untouched.

    Args:
        video: The video, path or URL.
        audio: The new audio track, path or URL.
        output_dir: Folder or fsspec URL for the result.
        filename: Output name; its suffix (.mp4, .mkv, .mov, .webm) picks the container.
        subtitles: An .srt or .vtt file to embed as a subtitle stream.
        subtitle_language: ISO 639 code tagged on the subtitles.
        audio_language: ISO 639 code tagged on the new audio track.
        keep_original_audio: Keep the video's own audio as a second track.
        container: The container when ``filename`` is omitted; the video's own by default.

    Example:
        ```python
        dubbed = mux_into_video("talk.mp4", "talk_es.wav", subtitles="talk_es.srt",
                                subtitle_language="es", audio_language="es")
        ```
    """
    ext = (container or PurePosixPath(video).suffix.lstrip(".") or "mp4").lower()
    name = output_name(
        filename,
        video,
        "mux",
        ext,
        audio,
        subtitles,
        subtitle_language,
        audio_language,
        keep_original_audio,
    )
    target = _storage.OutputDir(output_dir)

    def run() -> MediaFile:
        with contextlib.ExitStack() as stack:
            local_video = stack.enter_context(media_input(video, what="video"))
            local_audio = stack.enter_context(media_input(audio, what="audio"))
            local_subs = (
                stack.enter_context(media_input(subtitles, what="subtitles")) if subtitles else None
            )
            staged = stack.enter_context(target.staged(name))
            _media.mux(
                local_video,
                local_audio,
                staged,
                subtitles=local_subs,
                subtitle_language=subtitle_language,
                keep_original_audio=keep_original_audio,
                audio_language=audio_language,
            )
            return _media_file(target.uri_of(name), staged)

    result: MediaFile = await _in_thread(run)
    return result


@task(name="Split audio on silence", **_MEDIA_TASK_OPTIONS)
async def split_on_silence(
    media: str,
    output_dir: str | None = None,
    max_duration: float = 600.0,
    max_bytes: int | None = None,
    min_silence: float = 0.5,
    silence_db: float = -35.0,
    audio_format: str = "wav",
    sample_rate: int = 16000,
    channels: int = 1,
) -> list[AudioChunk]:
    """Cuts long audio into chunks no longer than ``max_duration`` seconds, in pauses if possible.

    Chunks are named ``<input stem>-<hash>-000.<format>``, ``-001``... and each result carries
    its start and end in the original, so timings found in a chunk map back by adding
    ``start_s``.

    Example:
        ```python
        chunks = split_on_silence("meeting.mp3", output_dir="chunks", max_duration=300)
        ```
    """
    ext = _check_audio_extension(audio_format)
    if ext not in ("wav", "flac", "mp3", "ogg", "opus"):
        raise MediaError(
            f"chunks can be wav, flac, mp3, ogg or opus, not {ext}", status="unsupported_media"
        )
    prefix = output_name(
        None,
        media,
        "chunk",
        ext,
        max_duration,
        max_bytes,
        min_silence,
        silence_db,
        sample_rate,
        channels,
    ).rsplit(".", 1)[0]
    target = _storage.OutputDir(output_dir)

    def run() -> list[AudioChunk]:
        with (
            media_input(media) as local,
            tempfile.TemporaryDirectory(prefix="elevenlabs-split-") as scratch,
        ):
            # Give the source the final prefix as its stem so chunk names come out right.
            source = Path(scratch, f"{prefix}{local.suffix}")
            os.symlink(local.resolve(), source)
            pieces = _media.split_on_silence(
                source,
                Path(scratch, "chunks"),
                max_duration=max_duration,
                max_bytes=max_bytes,
                min_silence=min_silence,
                silence_db=silence_db,
                format=ext,
                sample_rate=sample_rate,
                channels=channels,
            )
            chunks = []
            for piece in pieces:
                with target.staged(piece.path.name) as staged:
                    shutil.copyfile(piece.path, staged)
                    asset = _audio_asset(target.uri_of(piece.path.name), staged)
                chunks.append(AudioChunk(audio=asset, start_s=piece.start, end_s=piece.end))
            return chunks

    result: list[AudioChunk] = await _in_thread(run)
    return result


@task(name="Concatenate audio", **_MEDIA_TASK_OPTIONS)
async def concat_audio(
    media: list[str],
    output_dir: str | None = None,
    filename: str | None = None,
    gap_seconds: float = 0.0,
    crossfade_seconds: float = 0.0,
    audio_format: str | None = None,
) -> AudioAsset:
    """Joins audio files in order, with optional silence between them or crossfades.

    Args:
        media: Paths or URLs, in playing order (formats and rates may differ).
        output_dir: Folder or fsspec URL for the result.
        filename: Output file name; derived from the inputs when omitted.
        gap_seconds: Silence between neighbours.
        crossfade_seconds: Overlap of neighbours (instead of gaps).
        audio_format: Output format; the first input's when omitted.

    Example:
        ```python
        episode = concat_audio(["intro.mp3", "part1.wav"], gap_seconds=0.4, filename="ep.mp3")
        ```
    """
    if isinstance(media, str) or not media:
        raise MediaError(
            "concat_audio takes a non-empty list of files", status="invalid_parameters"
        )
    ext = _check_audio_extension(audio_format or _suffix_of(media[0]))
    name = output_name(
        filename, media[0], "concat", ext, list(media), gap_seconds, crossfade_seconds
    )
    target = _storage.OutputDir(output_dir)

    def run() -> AudioAsset:
        with media_inputs(media) as locals_, target.staged(name) as staged:
            _media.concat(
                locals_, staged, gap_seconds=gap_seconds, crossfade_seconds=crossfade_seconds
            )
            return _audio_asset(target.uri_of(name), staged)

    result: AudioAsset = await _in_thread(run)
    return result
