"""Audio output formats: which encoder a file suffix implies and what that encoder accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MediaError

__all__ = [
    "AUDIO_CODECS",
    "audio_codec_for",
    "audio_output_options",
    "channel_layout",
    "parse_bitrate",
]

AUDIO_CODECS: dict[str, str] = {
    ".wav": "pcm_s16le",
    ".mp3": "libmp3lame",
    ".flac": "flac",
    ".m4a": "aac",
    ".aac": "aac",
    ".ogg": "libopus",
    ".opus": "libopus",
}

# Encoders that only take certain rates; ffmpeg would otherwise fail mid-setup with a terse error.
_ALLOWED_RATES: dict[str, tuple[int, ...]] = {
    "libopus": (8000, 12000, 16000, 24000, 48000),
    "libmp3lame": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
}
_MAX_CHANNELS: dict[str, int] = {"libmp3lame": 2, "libopus": 8}
_LOSSLESS = frozenset({"pcm_s16le", "flac"})

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def audio_codec_for(dest: Path, codec: str | None = None) -> str:
    """Returns ``codec`` if given, else the encoder implied by ``dest``'s suffix."""
    if codec:
        return codec
    try:
        return AUDIO_CODECS[dest.suffix.lower()]
    except KeyError:
        known = " ".join(sorted(AUDIO_CODECS))
        raise MediaError(
            f"{dest.name}: cannot tell the audio format from the suffix {dest.suffix!r}; "
            f"use one of {known} or pass codec=",
            status="unsupported_media",
        ) from None


def channel_layout(channels: int) -> str:
    """Returns ffmpeg's layout name for a channel count (``2`` -> ``"stereo"``)."""
    return _LAYOUTS.get(channels, f"{channels}c")


def parse_bitrate(bitrate: str | int | None) -> int | None:
    """Parses ``"128k"``, ``"1.5M"`` or bits per second into bits per second."""
    if bitrate is None:
        return None
    if isinstance(bitrate, int):
        value = float(bitrate)
    else:
        text = bitrate.strip().lower()
        scale = 1.0
        if text.endswith("k"):
            scale, text = 1e3, text[:-1]
        elif text.endswith("m"):
            scale, text = 1e6, text[:-1]
        try:
            value = float(text) * scale
        except ValueError:
            raise MediaError(
                f"bitrate {bitrate!r} is not a number of bits per second (e.g. 128000 or '128k')",
                status="invalid_parameters",
            ) from None
    if value <= 0:
        raise MediaError(f"bitrate must be positive, got {bitrate!r}", status="invalid_parameters")
    return int(value)


def _pick_rate(codec: str, dest: Path, requested: int | None, source: int | None) -> int | None:
    allowed = _ALLOWED_RATES.get(codec)
    if requested is not None:
        if requested <= 0:
            raise MediaError(
                f"sample_rate must be positive, got {requested}", status="invalid_parameters"
            )
        if allowed and requested not in allowed:
            raise MediaError(
                f"{dest.name}: {codec} cannot encode at {requested} Hz; "
                f"use one of {', '.join(map(str, allowed))}",
                status="unsupported_media",
            )
        return requested
    if allowed and source is not None and source not in allowed:
        # Keep the source rate when possible, else the nearest rate that loses nothing.
        higher = [r for r in allowed if r >= source]
        return higher[0] if higher else allowed[-1]
    return source


def audio_output_options(
    dest: Path,
    *,
    codec: str | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    bitrate: str | int | None = None,
    source_rate: int | None = None,
    source_channels: int | None = None,
) -> dict[str, Any]:
    """Returns ffmpeg-python output keywords (``acodec``, ``ar``, ``ac``, ``audio_bitrate``).

    An explicit ``sample_rate``/``channels`` the encoder cannot take raises `MediaError`; the
    source's values are kept where the encoder allows and otherwise moved to the nearest value
    it accepts. Bitrate is ignored for lossless encoders, where it has no meaning.
    """
    chosen = audio_codec_for(dest, codec)
    options: dict[str, Any] = {"acodec": chosen}
    rate = _pick_rate(chosen, dest, sample_rate, source_rate)
    if rate is not None:
        options["ar"] = rate
    if channels is not None and channels <= 0:
        raise MediaError(f"channels must be positive, got {channels}", status="invalid_parameters")
    limit = _MAX_CHANNELS.get(chosen)
    if channels is not None:
        if limit is not None and channels > limit:
            raise MediaError(
                f"{dest.name}: {chosen} supports at most {limit} channels, got {channels}",
                status="unsupported_media",
            )
        options["ac"] = channels
    elif limit is not None and source_channels is not None and source_channels > limit:
        options["ac"] = limit
    bits = parse_bitrate(bitrate)
    if bits is not None and chosen not in _LOSSLESS:
        options["audio_bitrate"] = bits
    return options
