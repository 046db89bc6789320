"""Reading what a media file contains: container, duration and streams."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import MediaError
from ._ffmpeg import classify_failure, ffmpeg_binary, ffprobe_binary, run_ffmpeg, tidy_reason
from ._files import PathLike, require_file

__all__ = ["MediaInfo", "StreamInfo", "probe", "require_audio"]

# Formats ffmpeg accepts for any text file; a text file is never media for our purposes.
_TEXT_FORMATS = frozenset({"tty"})

# Results keyed by the file's identity and modification time: pipelines probe the same inputs
# again and again, and each ffprobe start costs tens of milliseconds. A rewritten file gets a
# new inode or mtime, so it is never served stale.
_CACHE_SIZE = 512
_cache: OrderedDict[tuple[object, ...], MediaInfo] = OrderedDict()
_cache_lock = threading.Lock()


class StreamInfo(BaseModel):
    """One stream of a media file: its position, kind, codec and language tag."""

    model_config = ConfigDict(frozen=True)

    index: int
    kind: str
    """``audio``, ``video``, ``subtitle``, ``data`` or ``attachment``."""
    codec: str | None = None
    language: str | None = None


class MediaInfo(BaseModel):
    """What `probe` found in a media file.

    The audio and video fields describe the first audio and first video stream; ``streams`` lists
    every stream. Cover art embedded in audio files does not count as video.
    """

    model_config = ConfigDict(frozen=True)

    path: Path
    format_name: str
    duration: float
    size_bytes: int
    has_audio: bool
    has_video: bool
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    bit_rate: int | None = None
    streams: tuple[StreamInfo, ...] = ()

    @property
    def subtitle_streams(self) -> tuple[StreamInfo, ...]:
        """The subtitle streams, in file order."""
        return tuple(s for s in self.streams if s.kind == "subtitle")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None


def _language(tag: Any) -> str | None:
    return tag if isinstance(tag, str) and tag and tag != "und" else None


def _not_media(path: Path, reason: str) -> MediaError:
    status = classify_failure(reason)
    if status in ("media_processing_failed", "unsupported_media"):
        status = "media_corrupt"
    return MediaError(
        f"{path.name} is not a media file ffmpeg can read: {reason}",
        status=status,
    )


def _from_ffprobe(path: Path, ffprobe: str) -> dict[str, Any]:
    args = [
        ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
        str(path),
    ]  # fmt: skip
    completed = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )
    if completed.returncode != 0:
        raise _not_media(path, tidy_reason(completed.stderr.splitlines(), path))
    try:
        data: dict[str, Any] = json.loads(completed.stdout or "{}")
    except ValueError as exc:
        raise MediaError(
            f"ffprobe printed unreadable output for {path.name}", status="media_corrupt"
        ) from exc
    fmt = data.get("format") or {}
    streams = []
    for raw in data.get("streams") or []:
        disposition = raw.get("disposition") or {}
        streams.append(
            {
                "index": _int(raw.get("index")) or 0,
                "kind": raw.get("codec_type") or "data",
                "codec": raw.get("codec_name"),
                "language": _language((raw.get("tags") or {}).get("language")),
                "attached_pic": bool(disposition.get("attached_pic")),
                "sample_rate": _int(raw.get("sample_rate")),
                "channels": _int(raw.get("channels")),
                "width": _int(raw.get("width")),
                "height": _int(raw.get("height")),
                "duration": _float(raw.get("duration")),
            }
        )
    return {
        "format_name": fmt.get("format_name") or "unknown",
        "duration": _float(fmt.get("duration")),
        "bit_rate": _int(fmt.get("bit_rate")),
        "streams": streams,
    }


# `ffmpeg -i` output, used only when no ffprobe exists (the imageio-ffmpeg build).
_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from '")
_DURATION_RE = re.compile(
    r"^\s*Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)|N/A)(?:.*?bitrate: (?P<br>\d+) kb/s)?"
)
_STREAM_RE = re.compile(
    r"^\s*Stream #0:(?P<index>\d+)(?:\[[^\]]*\])?(?:\((?P<lang>[^)]*)\))?: "
    r"(?P<kind>Audio|Video|Subtitle|Data|Attachment): (?P<codec>[\w-]+)(?P<rest>.*)$"
)
_RATE_RE = re.compile(r"(\d+) Hz")
_SIZE_RE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_CHANNEL_WORDS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5,
                  "5.0(side)": 5, "5.1": 6, "5.1(side)": 6, "6.0": 6, "6.1": 7, "7.0": 7,
                  "7.1": 8}  # fmt: skip


def _channels_from(rest: str) -> int | None:
    fields = [f.strip() for f in rest.split(",")]
    for field in fields:
        if field in _CHANNEL_WORDS:
            return _CHANNEL_WORDS[field]
        match = re.fullmatch(r"(\d+) channels(?: \(.*\))?", field)
        if match:
            return int(match.group(1))
    return None


def _from_ffmpeg(path: Path) -> dict[str, Any]:
    args = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path)]
    # With no output file ffmpeg always exits 1, so success is judged by what it printed.
    completed = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
    )
    lines = completed.stderr.splitlines()
    info: dict[str, Any] = {"format_name": None, "duration": None, "bit_rate": None, "streams": []}
    for line in lines:
        if (m := _INPUT_RE.match(line)) is not None:
            info["format_name"] = m.group("fmt")
        elif (m := _DURATION_RE.match(line)) is not None:
            if m.group("h") is not None:
                info["duration"] = (
                    int(m.group("h")) * 3600 + int(m.group("m")) * 60 + float(m.group("s"))
                )
            if m.group("br"):
                info["bit_rate"] = int(m.group("br")) * 1000
        elif (m := _STREAM_RE.match(line)) is not None:
            rest = m.group("rest")
            size = _SIZE_RE.search(rest) if m.group("kind") == "Video" else None
            rate = _RATE_RE.search(rest)
            info["streams"].append(
                {
                    "index": int(m.group("index")),
                    "kind": m.group("kind").lower(),
                    "codec": m.group("codec"),
                    "language": _language(m.group("lang")),
                    "attached_pic": "(attached pic)" in rest,
                    "sample_rate": int(rate.group(1)) if rate else None,
                    "channels": _channels_from(rest) if m.group("kind") == "Audio" else None,
                    "width": int(size.group(1)) if size else None,
                    "height": int(size.group(2)) if size else None,
                    "duration": None,
                }
            )
    if info["format_name"] is None:
        failure = [ln for ln in lines if "At least one output file" not in ln]
        raise _not_media(path, tidy_reason(failure[-4:], path))
    return info


def _decoded_duration(path: Path) -> float | None:
    """Decodes the whole file to learn its length, for containers whose header does not say."""
    found: list[float] = []

    def on_line(line: str) -> None:
        m = re.search(r"time=(\d+):(\d+):([\d.]+)", line)
        if m:
            found.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))

    args = ["-i", str(path), "-map", "0:a?", "-map", "0:v?", "-f", "null", "-"]
    run_ffmpeg(
        args, subject=path, action="measuring the length of", on_line=on_line, loglevel="info"
    )
    return found[-1] if found else None


def probe(path: PathLike) -> MediaInfo:
    """Returns the container, duration and stream details of a media file.

    Uses ffprobe when available and falls back to parsing ``ffmpeg -i``. Raises `MediaError`
    when the file is missing, empty, not media, or damaged beyond reading.

    Example:
        >>> info = probe("interview.mp4")  # doctest: +SKIP
        >>> info.duration, info.has_audio, info.audio_codec  # doctest: +SKIP
        (62.5, True, 'aac')
    """
    p = require_file(path)
    ffprobe = ffprobe_binary()
    st = p.stat()
    key = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, ffprobe)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
    if cached is None:
        cached = _read_info(p, ffprobe)
        with _cache_lock:
            _cache[key] = cached
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return cached if cached.path == p else cached.model_copy(update={"path": p})


def _read_info(p: Path, ffprobe: str | None) -> MediaInfo:
    raw = _from_ffprobe(p, ffprobe) if ffprobe else _from_ffmpeg(p)
    if raw["format_name"] in _TEXT_FORMATS:
        raise MediaError(
            f"{p.name} is not a media file ffmpeg can read: it holds plain text",
            status="media_corrupt",
        )
    if not raw["streams"]:
        raise MediaError(
            f"{p.name} is not a media file ffmpeg can read: it has no audio, video or "
            f"subtitle streams",
            status="media_corrupt",
        )
    streams = raw["streams"]
    audio = next((s for s in streams if s["kind"] == "audio"), None)
    video = next((s for s in streams if s["kind"] == "video" and not s["attached_pic"]), None)
    duration = raw["duration"]
    if duration is None:
        known = [s["duration"] for s in streams if s["duration"] is not None]
        duration = max(known) if known else None
    if duration is None and (audio or video):
        duration = _decoded_duration(p)
    return MediaInfo(
        path=p,
        format_name=raw["format_name"],
        duration=duration or 0.0,
        size_bytes=p.stat().st_size,
        has_audio=audio is not None,
        has_video=video is not None,
        audio_codec=audio["codec"] if audio else None,
        sample_rate=audio["sample_rate"] if audio else None,
        channels=audio["channels"] if audio else None,
        video_codec=video["codec"] if video else None,
        width=video["width"] if video else None,
        height=video["height"] if video else None,
        bit_rate=raw["bit_rate"],
        streams=tuple(
            StreamInfo(index=s["index"], kind=s["kind"], codec=s["codec"], language=s["language"])
            for s in streams
        ),
    )


def require_audio(path: PathLike) -> MediaInfo:
    """Probes ``path`` and raises `MediaError` unless it has an audio stream with some length."""
    info = probe(path)
    if not info.has_audio:
        raise MediaError(f"{info.path.name} has no audio stream", status="unsupported_media")
    if info.duration <= 0:
        raise MediaError(
            f"{info.path.name} has an audio stream of zero length", status="media_corrupt"
        )
    return info
