"""Facts about audio files in ElevenLabs output formats, and joining them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InvalidRequestError, MediaError

_FORMAT = re.compile(r"^(mp3|pcm|wav|ulaw|alaw|opus)_(\d+)(?:_(\d+))?$")
_EXTENSIONS = {
    "mp3": "mp3",
    "wav": "wav",
    "opus": "opus",
    "pcm": "pcm",
    "ulaw": "ulaw",
    "alaw": "alaw",
}
_RAW_BYTES_PER_SAMPLE = {"pcm": 2, "ulaw": 1, "alaw": 1}


def parse_format(output_format: str) -> tuple[str, int]:
    """(codec, sample rate) of an output format such as ``mp3_44100_128``."""
    match = _FORMAT.match(output_format or "")
    if not match:
        raise InvalidRequestError(
            f"output_format {output_format!r} is not an ElevenLabs format: use "
            "codec_samplerate[_kbps] such as mp3_44100_128, pcm_16000, wav_44100, "
            "ulaw_8000 or opus_48000_64",
            status="invalid_output_format",
            param="output_format",
        )
    return match.group(1), int(match.group(2))


def extension(output_format: str) -> str:
    return _EXTENSIONS[parse_format(output_format)[0]]


def is_raw(output_format: str) -> bool:
    """Headerless formats (pcm, ulaw, alaw) that no media tool can probe without being told."""
    return parse_format(output_format)[0] in _RAW_BYTES_PER_SAMPLE


def audio_facts(path: str | os.PathLike[str], output_format: str) -> tuple[float | None, int]:
    """(duration in seconds, sample rate) of a file written in ``output_format``."""
    codec, rate = parse_format(output_format)
    size = Path(path).stat().st_size
    if codec in _RAW_BYTES_PER_SAMPLE:
        return size / (rate * _RAW_BYTES_PER_SAMPLE[codec]), rate
    from ..media import probe

    try:
        info = probe(path)
    except MediaError:
        return None, rate
    return info.duration, info.sample_rate or rate


def join_audio(parts: list[Path], dest: Path, output_format: str) -> None:
    """Concatenates chunks of one format into ``dest`` in the same format."""
    codec, _ = parse_format(output_format)
    if codec in _RAW_BYTES_PER_SAMPLE:
        with open(dest, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1024 * 1024):
                        out.write(block)
        return
    from ..media import concat

    concat(parts, dest)
