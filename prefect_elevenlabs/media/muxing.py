"""Putting a new audio track (and optional subtitles) onto a video without re-encoding it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ffmpeg

from ..errors import MediaError
from ._ffmpeg import run_ffmpeg
from ._files import PathLike, atomic_output, require_file
from .probe import probe, require_audio

__all__ = ["iso639_2", "mux"]

# Containers, with the subtitle and audio encoders each accepts.
_MP4_LIKE = frozenset({".mp4", ".m4v", ".mov"})
_MATROSKA = frozenset({".mkv"})
_WEBM = frozenset({".webm"})
_SUBTITLE_SUFFIXES = frozenset({".srt", ".vtt", ".ass", ".ssa"})

# MP4 and Matroska store ISO 639-2 codes; callers usually hold ISO 639-1 codes (as ElevenLabs
# uses), so the common ones are translated. Bibliographic forms follow what players expect.
_ISO639_1_TO_2 = {
    "ar": "ara", "bg": "bul", "cs": "ces", "da": "dan", "de": "deu", "el": "ell", "en": "eng",
    "es": "spa", "fi": "fin", "fil": "fil", "fr": "fra", "he": "heb", "hi": "hin", "hr": "hrv",
    "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "ko": "kor", "ms": "msa", "nl": "nld",
    "no": "nor", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sv": "swe",
    "ta": "tam", "th": "tha", "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "zho", "ca": "cat",
    "et": "est", "lt": "lit", "lv": "lav", "sl": "slv", "sr": "srp", "bn": "ben", "fa": "fas",
    "ur": "urd", "sw": "swa", "af": "afr", "is": "isl", "ga": "gle", "cy": "cym", "eu": "eus",
    "gl": "glg",
}  # fmt: skip


def iso639_2(language: str) -> str:
    """Returns the three-letter ISO 639-2 code containers store (``"es"`` -> ``"spa"``).

    Accepts two-letter codes, three-letter codes (returned lower-cased) and region-tagged forms
    such as ``"pt-BR"``.
    """
    code = language.strip().lower().replace("_", "-").split("-")[0]
    if code in _ISO639_1_TO_2:
        return _ISO639_1_TO_2[code]
    if re.fullmatch(r"[a-z]{3}", code):
        return code
    raise MediaError(
        f"language {language!r} is not an ISO 639 code this library knows; "
        f"pass a three-letter ISO 639-2 code such as 'spa' or 'eng'",
        status="invalid_parameters",
    )


def _subtitle_codec(dest: Path, subtitles: Path) -> str:
    suffix = dest.suffix.lower()
    if suffix in _MP4_LIKE:
        return "mov_text"
    if suffix in _WEBM:
        return "webvtt"
    # Matroska takes both; keep whichever text format the subtitles came in.
    return "webvtt" if subtitles.suffix.lower() == ".vtt" else "srt"


def mux(
    video: PathLike,
    audio: PathLike,
    dest: PathLike,
    *,
    subtitles: PathLike | None = None,
    subtitle_language: str | None = None,
    keep_original_audio: bool = False,
    audio_language: str | None = None,
) -> Path:
    """Combines the video stream of ``video`` with ``audio`` (and optional subtitles) into ``dest``.

    The video stream is copied untouched; the audio is encoded to AAC (Opus for .webm) and
    becomes the first, default audio track. With ``keep_original_audio`` the video's own audio is
    kept as a second track. ``subtitles`` (.srt or .vtt) become a soft subtitle stream: mov_text
    in .mp4/.mov, SubRip or WebVTT in .mkv, WebVTT in .webm, tagged with ``subtitle_language``
    (ISO 639-1 or 639-2). ``audio_language`` tags the new audio track the same way. The output
    lasts as long as its longest stream.

    Example:
        >>> mux("talk.mp4", "talk_es.wav", "talk_es.mp4", subtitles="talk_es.srt",
        ...     subtitle_language="es", audio_language="es")  # doctest: +SKIP
        PosixPath('talk_es.mp4')
    """
    dest_path = Path(dest)
    suffix = dest_path.suffix.lower()
    if suffix not in _MP4_LIKE | _MATROSKA | _WEBM:
        raise MediaError(
            f"{dest_path.name}: mux writes .mp4, .m4v, .mov, .mkv or .webm, "
            f"not {suffix or 'a file without suffix'}",
            status="unsupported_media",
        )
    video_info = probe(video)
    if not video_info.has_video:
        raise MediaError(f"{video_info.path.name} has no video stream", status="unsupported_media")
    audio_info = require_audio(audio)
    if suffix in _WEBM and video_info.video_codec not in {"vp8", "vp9", "av1"}:
        raise MediaError(
            f"{dest_path.name}: WebM cannot hold {video_info.video_codec} video without "
            f"re-encoding; write .mp4 or .mkv instead",
            status="unsupported_media",
        )
    subtitle_path = require_file(subtitles) if subtitles is not None else None
    if subtitle_path is not None and subtitle_path.suffix.lower() not in _SUBTITLE_SUFFIXES:
        raise MediaError(
            f"{subtitle_path.name}: subtitles must be .srt or .vtt (or .ass)",
            status="unsupported_media",
        )
    if subtitle_language is not None and subtitle_path is None:
        raise MediaError(
            "subtitle_language was given without subtitles", status="invalid_parameters"
        )

    source = ffmpeg.input(str(video_info.path))
    streams: list[Any] = [source["v:0"], ffmpeg.input(str(audio_info.path))["a:0"]]
    options: dict[str, Any] = {
        "c:v": "copy",
        "c:a": "libopus" if suffix in _WEBM else "aac",
        "disposition:a:0": "default",
    }
    if keep_original_audio and video_info.has_audio:
        # The original track follows as a non-default alternative.
        streams.append(source["a:0"])
        options["disposition:a:1"] = "0"
    if audio_language is not None:
        options["metadata:s:a:0"] = f"language={iso639_2(audio_language)}"
    if subtitle_path is not None:
        streams.append(ffmpeg.input(str(subtitle_path))["s:0"])
        options["c:s"] = _subtitle_codec(dest_path, subtitle_path)
        if subtitle_language is not None:
            options["metadata:s:s:0"] = f"language={iso639_2(subtitle_language)}"
    if suffix in _MP4_LIKE:
        # Index at the front so players can start before the whole file has arrived.
        options["movflags"] = "+faststart"
    with atomic_output(dest_path) as tmp:
        stream = ffmpeg.output(*streams, str(tmp), **options)
        run_ffmpeg(stream, subject=video_info.path, action="muxing")
    return dest_path
