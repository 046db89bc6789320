"""Finding the ffmpeg/ffprobe binaries and running them with errors mapped to `MediaError`.

Graphs are built with ffmpeg-python and compiled to an argument list here, but the process is
run by `run_ffmpeg` rather than ``stream.run()``: stderr is read line by line, so analysis
output (silencedetect, loudnorm) is handed over as it arrives and only a short tail is kept for
error messages. Memory therefore stays flat however long the media is.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ffmpeg

from ..errors import MediaError

__all__ = [
    "FFMPEG_ENV",
    "FFPROBE_ENV",
    "classify_failure",
    "ffmpeg_binary",
    "ffprobe_binary",
    "run_ffmpeg",
    "tidy_reason",
]

logger = logging.getLogger(__name__)

FFMPEG_ENV = "PREFECT_ELEVENLABS_FFMPEG"
FFPROBE_ENV = "PREFECT_ELEVENLABS_FFPROBE"

# Lines kept from stderr to explain a failure; ffmpeg prints the cause in its last few lines.
_TAIL_LINES = 12

_LOG_PREFIX = re.compile(r"^\[[^\]]+ @ (?:0x)?[0-9a-fA-F]+\]\s*")

_CORRUPT_HINTS = (
    "invalid data found",
    "moov atom not found",
    "could not find codec parameters",
    "error while decoding",
    "partial file",
    "corrupt",
    "header missing",
)
_UNSUPPORTED_HINTS = (
    "unknown encoder",
    "unknown decoder",
    "not supported",
    "unable to find a suitable output format",
    "no decoder",
    "no encoder",
    "matches no streams",
    "does not contain any stream",
)


def _resolve_override(env_name: str) -> str | None:
    value = os.environ.get(env_name, "").strip()
    if not value:
        return None
    found = shutil.which(value)
    if found is None:
        raise MediaError(
            f"{env_name} is set to {value!r}, which is not an executable file; "
            f"point it at an ffmpeg build or unset it",
            status="media_tool_missing",
        )
    return found


def ffmpeg_binary() -> str:
    """Returns the ffmpeg executable to run.

    Looked up in this order: the ``PREFECT_ELEVENLABS_FFMPEG`` environment variable, ``ffmpeg``
    on ``PATH``, then the static build shipped by the ``imageio-ffmpeg`` package.
    """
    override = _resolve_override(FFMPEG_ENV)
    if override is not None:
        return override
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    raise MediaError(
        "ffmpeg was not found: install it (apt-get install ffmpeg, or pip install imageio-ffmpeg) "
        f"or set {FFMPEG_ENV} to its path",
        status="media_tool_missing",
    )


def ffprobe_binary() -> str | None:
    """Returns the ffprobe executable, or None when only ffmpeg is available.

    ``PREFECT_ELEVENLABS_FFPROBE`` wins; otherwise an ``ffprobe`` next to an overridden ffmpeg,
    then ``ffprobe`` on ``PATH``. The imageio-ffmpeg build ships no ffprobe, so callers must cope
    with None (`probe` then parses ``ffmpeg -i`` instead).
    """
    override = _resolve_override(FFPROBE_ENV)
    if override is not None:
        return override
    ffmpeg_override = _resolve_override(FFMPEG_ENV)
    if ffmpeg_override is not None:
        sibling = Path(ffmpeg_override).with_name("ffprobe")
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return str(sibling)
    return shutil.which("ffprobe")


def tidy_reason(lines: Sequence[str], subject: str | os.PathLike[str] | None = None) -> str:
    """Condenses ffmpeg's last stderr lines into one readable reason."""
    cleaned: list[str] = []
    prefixes = []
    if subject is not None:
        prefixes = [f"{os.fspath(subject)}: ", f"{Path(subject).name}: "]
    for raw in lines:
        line = _LOG_PREFIX.sub("", raw.strip())
        for prefix in prefixes:
            if line.startswith(prefix):
                line = line[len(prefix) :]
        line = line.strip()
        if line and line not in cleaned:
            cleaned.append(line)
    return "; ".join(cleaned[-4:]) or "ffmpeg exited without saying why"


def classify_failure(reason: str) -> str:
    """Maps ffmpeg's error text to a `MediaError` status string."""
    lowered = reason.lower()
    if "no such file or directory" in lowered:
        return "media_not_found"
    if any(hint in lowered for hint in _CORRUPT_HINTS):
        return "media_corrupt"
    if any(hint in lowered for hint in _UNSUPPORTED_HINTS):
        return "unsupported_media"
    return "media_processing_failed"


def _compile(spec: Any, binary: str, loglevel: str) -> list[str]:
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        args = [binary, *(str(a) for a in spec)]
    else:
        args = list(ffmpeg.compile(spec, cmd=binary, overwrite_output=True))
    # Global options go first so they also govern how inputs are opened; -nostdin keeps ffmpeg
    # from swallowing the terminal, -nostats keeps progress lines out of the parsed stderr.
    return [args[0], "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel, *args[1:]]


def run_ffmpeg(
    spec: Any,
    *,
    subject: str | os.PathLike[str],
    action: str,
    on_line: Callable[[str], None] | None = None,
    loglevel: str = "error",
) -> None:
    """Runs an ffmpeg-python output spec (or raw argument list) and raises `MediaError` on failure.

    ``subject`` names the file the error message is about and ``action`` says what was being done
    ("converting", "measuring loudness of"). ``on_line`` receives every stderr line as it arrives;
    pass ``loglevel="info"`` when a filter reports its results at that level.
    """
    args = _compile(spec, ffmpeg_binary(), loglevel)
    logger.debug("running %s", subprocess.list2cmdline(args))
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise MediaError(
            f"could not start ffmpeg ({args[0]}): {exc.strerror or exc}",
            status="media_tool_missing",
        ) from exc
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line)
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    except BaseException:
        # An interrupted caller must not leave ffmpeg writing in the background.
        proc.kill()
        proc.wait()
        raise
    finally:
        if proc.stderr is not None:
            proc.stderr.close()
    if returncode != 0:
        name = Path(subject).name
        reason = tidy_reason(list(tail), subject)
        raise MediaError(
            f"ffmpeg failed {action} {name}: {reason}", status=classify_failure(reason)
        )
