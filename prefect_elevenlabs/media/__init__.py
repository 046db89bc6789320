"""Media helpers over ffmpeg: probe, extract, convert, loudness, time-fit, mix, mux, split, concat.

Plain synchronous functions, used by the media tasks and by the local engine. Every function
takes ``str`` or ``os.PathLike`` paths, streams through ffmpeg (memory does not grow with the
length of the media), writes its output atomically (a temporary file in the destination
directory, renamed into place on success) and raises `prefect_elevenlabs.errors.MediaError`
with a message naming the file and the problem.

The ffmpeg binary is ``$PREFECT_ELEVENLABS_FFMPEG``, else ``ffmpeg`` on ``PATH``, else the one
bundled with ``imageio-ffmpeg``; ffprobe is ``$PREFECT_ELEVENLABS_FFPROBE``, else the one next to
ffmpeg or on ``PATH``, and when there is none `probe` parses ``ffmpeg -i`` instead.

Example:
    >>> from prefect_elevenlabs.media import extract_audio, split_on_silence
    >>> wav = extract_audio("meeting.mp4", "work/meeting.wav")  # doctest: +SKIP
    >>> chunks = split_on_silence(wav, "work/chunks", max_duration=300)  # doctest: +SKIP
"""

from ._ffmpeg import FFMPEG_ENV, FFPROBE_ENV, ffmpeg_binary, ffprobe_binary
from .concat import concat
from .convert import convert, extract_audio
from .loudness import Loudness, measure_loudness, normalize_loudness
from .mixing import mix_over
from .muxing import mux
from .probe import MediaInfo, StreamInfo, probe
from .split import Chunk, split_on_silence
from .timing import FitResult, fit_to_duration

__all__ = [
    "FFMPEG_ENV",
    "FFPROBE_ENV",
    "Chunk",
    "FitResult",
    "Loudness",
    "MediaInfo",
    "StreamInfo",
    "concat",
    "convert",
    "extract_audio",
    "ffmpeg_binary",
    "ffprobe_binary",
    "fit_to_duration",
    "measure_loudness",
    "mix_over",
    "mux",
    "normalize_loudness",
    "probe",
    "split_on_silence",
]
