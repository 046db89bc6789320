"""Output formats and codecs of the local engine.

ElevenLabs names an audio format ``codec_samplerate[_kbps]`` (``mp3_44100_128``, ``pcm_16000``,
``ulaw_8000``). This module parses those names, encodes float samples into each format and
decodes uploads back into samples:

- ``pcm``: raw signed 16-bit little-endian mono, no header;
- ``wav``: RIFF/WAVE, signed 16-bit;
- ``ulaw`` / ``alaw``: G.711 at 8 kHz, one byte per sample, no header;
- ``mp3``: MPEG layer 3 at a constant bit rate (LAME through ffmpeg);
- ``opus``: Opus at 48 kHz in an Ogg container (libopus through ffmpeg).

The byte-oriented formats are produced in numpy (a windowed-sinc resampler plus the G.711
companding rules), which needs no subprocess and streams sample by sample. mp3 and opus go
through one ffmpeg process fed over pipes. Nothing is written to temporary files: uploads are
handed to ffmpeg through an in-memory file descriptor (or stdin where that is unavailable).

Example:
    >>> fmt = parse_output_format("pcm_16000")
    >>> fmt.name, fmt.media_type
    ('pcm_16000', 'audio/pcm')
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import struct
import subprocess
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONVERT_FORMATS",
    "MUSIC_FORMATS",
    "STREAM_FORMATS",
    "AudioDecodeError",
    "AudioEncodeError",
    "Codec",
    "FFmpegNotFoundError",
    "OutputFormat",
    "UnsupportedFormatError",
    "decode",
    "encode",
    "iter_encode",
    "parse_output_format",
    "probe_duration",
    "resample",
]

Codec = Literal["mp3", "pcm", "wav", "ulaw", "alaw", "opus"]

FloatArray = npt.NDArray[np.float32]


class UnsupportedFormatError(ValueError):
    """The requested ``output_format`` is not one this endpoint accepts."""


class AudioDecodeError(ValueError):
    """The input is not audio that ffmpeg can decode."""


class AudioEncodeError(RuntimeError):
    """ffmpeg failed while encoding audio."""


class FFmpegNotFoundError(RuntimeError):
    """No ffmpeg executable could be found."""


_MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "ulaw": "audio/basic",
    "alaw": "audio/basic",
    "opus": "audio/opus",
}


@dataclass(frozen=True)
class OutputFormat:
    """One ElevenLabs audio format: a codec, a sample rate and (for mp3/opus) a bit rate.

    Example:
        >>> OutputFormat("mp3", 44100, 128).name
        'mp3_44100_128'
    """

    codec: Codec
    sample_rate: int
    bitrate_kbps: int | None = None

    @property
    def name(self) -> str:
        """The ``output_format`` string for this format, e.g. ``"mp3_44100_128"``."""
        if self.bitrate_kbps is None:
            return f"{self.codec}_{self.sample_rate}"
        return f"{self.codec}_{self.sample_rate}_{self.bitrate_kbps}"

    @property
    def media_type(self) -> str:
        """The Content-Type ElevenLabs sends for this format (``audio/mpeg`` for mp3)."""
        return _MEDIA_TYPES[self.codec]

    @property
    def extension(self) -> str:
        """A file extension for this format (``.mp3``, ``.wav``, ``.ogg``, ``.pcm``...)."""
        return {"opus": ".ogg", "ulaw": ".ulaw", "alaw": ".alaw"}.get(self.codec, f".{self.codec}")


_MP3_CORE = (
    "mp3_22050_32",
    "mp3_24000_48",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
)
_PCM = tuple(f"pcm_{rate}" for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000))
_WAV = tuple(f"wav_{rate}" for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000))
_G711 = ("ulaw_8000", "alaw_8000")
_OPUS = tuple(f"opus_48000_{kbps}" for kbps in (32, 64, 96, 128, 192))
_MP3_MUSIC = tuple(f"mp3_48000_{kbps}" for kbps in (128, 192, 240, 320))

#: Formats accepted by TTS convert / with-timestamps, sound effects and speech-to-speech (28).
CONVERT_FORMATS: frozenset[str] = frozenset(_MP3_CORE + _PCM + _WAV + _G711 + _OPUS)
#: Formats accepted by the streaming endpoints and voice design (21: no ``wav_*``).
STREAM_FORMATS: frozenset[str] = frozenset(_MP3_CORE + _PCM + _G711 + _OPUS)
#: Formats accepted by music generation (26: streaming set, 48 kHz mp3 and ``auto``).
MUSIC_FORMATS: frozenset[str] = STREAM_FORMATS | frozenset((*_MP3_MUSIC, "auto"))

DEFAULT_FORMAT = "mp3_44100_128"
_FORMAT_PATTERN = re.compile(r"^(?P<codec>[a-z0-9]+)_(?P<rate>\d+)(?:_(?P<kbps>\d+))?$")


def _accepted_list(allowed: frozenset[str]) -> str:
    order = {codec: i for i, codec in enumerate(("mp3", "pcm", "wav", "ulaw", "alaw", "opus"))}

    def key(name: str) -> tuple[int, int, int]:
        match = _FORMAT_PATTERN.match(name)
        if match is None:
            return (len(order), 0, 0)
        return (
            order.get(match["codec"], len(order)),
            int(match["rate"]),
            int(match["kbps"] or 0),
        )

    return ", ".join(sorted(allowed, key=key))


def parse_output_format(
    value: str | None,
    *,
    allowed: frozenset[str] = CONVERT_FORMATS,
    default: str = DEFAULT_FORMAT,
) -> OutputFormat:
    """Parse an ``output_format`` value, checking it against the set an endpoint accepts.

    ``None`` or an empty string selects ``default``. ``"auto"`` (music only) resolves to
    ``default``, or to ``mp3_44100_128`` when the default is itself ``"auto"``.

    Raises:
        UnsupportedFormatError: the value is not in ``allowed``; the message lists what is.

    Example:
        >>> parse_output_format("ulaw_8000")
        OutputFormat(codec='ulaw', sample_rate=8000, bitrate_kbps=None)
    """
    name = (value or "").strip() or default
    if name not in allowed:
        raise UnsupportedFormatError(
            f"output_format {value!r} is not supported here; use one of: {_accepted_list(allowed)}"
        )
    if name == "auto":
        name = default if default != "auto" else DEFAULT_FORMAT
    match = _FORMAT_PATTERN.match(name)
    if match is None or match["codec"] not in get_args(Codec):
        raise UnsupportedFormatError(
            f"output_format {name!r} is not of the form codec_samplerate[_kbps]; use one of: "
            f"{_accepted_list(allowed)}"
        )
    kbps = int(match["kbps"]) if match["kbps"] else None
    return OutputFormat(cast(Codec, match["codec"]), int(match["rate"]), kbps)


# --------------------------------------------------------------------------- ffmpeg


def _ffmpeg_exe() -> str:
    configured = os.environ.get("PREFECT_ELEVENLABS_FFMPEG")
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        pass
    else:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    raise FFmpegNotFoundError(
        "ffmpeg was not found: install the Debian 'ffmpeg' package, `pip install imageio-ffmpeg`,"
        " or set PREFECT_ELEVENLABS_FFMPEG to the executable's path"
    )


_QUIET = ("-hide_banner", "-nostdin", "-loglevel", "error")


def _stderr_tail(stderr: bytes, lines: int = 3) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:]) or "no error output"


def _encoder_args(fmt: OutputFormat, channels: int) -> list[str]:
    if fmt.codec == "mp3":
        return [
            "-ar", str(fmt.sample_rate), "-ac", str(channels),
            "-c:a", "libmp3lame", "-b:a", f"{fmt.bitrate_kbps or 128}k",
            "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3",
        ]  # fmt: skip
    if fmt.codec == "opus":
        return [
            "-ar", "48000", "-ac", str(channels),
            "-c:a", "libopus", "-b:a", f"{fmt.bitrate_kbps or 64}k", "-f", "ogg",
        ]  # fmt: skip
    raise ValueError(f"{fmt.name} is encoded without ffmpeg")


def _raw_input_args(sample_rate: int, channels: int) -> list[str]:
    # Raw float input has nothing to probe, so start encoding at once instead of buffering
    # the first seconds for stream analysis: this is what lets streaming output begin early.
    return [
        "-probesize", "32", "-analyzeduration", "0",
        "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0",
    ]  # fmt: skip


# --------------------------------------------------------------------------- sample handling


def _as_float(samples: npt.ArrayLike) -> FloatArray:
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] != 2):
        raise ValueError(
            f"samples must be mono (n,) or stereo (n, 2) float arrays, got shape {array.shape}"
        )
    return np.ascontiguousarray(array)


def _channels(samples: FloatArray) -> int:
    return 1 if samples.ndim == 1 else samples.shape[1]


def _to_mono(samples: FloatArray) -> FloatArray:
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float32)


def _to_int16(samples: FloatArray) -> npt.NDArray[np.int16]:
    scaled = np.clip(samples, -1.0, 1.0) * 32767.0
    return np.round(scaled).astype(np.int16)


class _Resampler:
    """Streaming band-limited resampler (Kaiser-windowed sinc, evaluated per output sample).

    Output sample ``k`` sits at input position ``k * in_rate / out_rate``; it is produced as
    soon as the input reaches that position plus the filter's half width, so chunks can be
    fed in any sizes and the result equals resampling the whole signal at once.
    """

    _ZERO_CROSSINGS = 16
    _BETA = 8.0
    _BLOCK = 4096
    _TABLE_STEPS = 512

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.step = in_rate / out_rate
        # Below 1 when decimating: the low-pass must sit under the output's Nyquist frequency.
        self.cutoff = min(1.0, out_rate / in_rate) * 0.96
        self.half = math.ceil(self._ZERO_CROSSINGS / self.cutoff)
        self._offsets = np.arange(-self.half + 1, self.half + 1)
        self._table = self._build_table()
        common = math.gcd(in_rate, out_rate)
        # Output k sits at input position k * down / up; its filter phase repeats every `up`
        # outputs, so for the usual rate pairs every weight is computed once, up front.
        self._up, self._down = out_rate // common, in_rate // common
        self._phase_weights: npt.NDArray[np.float32] | None = None
        if self._up * len(self._offsets) <= 2_000_000:
            phases = np.arange(self._up) / self._up
            self._phase_weights = self._kernel(phases[:, None] - self._offsets[None, :]).astype(
                np.float32
            )
        self._buffer = np.zeros(self.half, dtype=np.float32)
        self._buffer_start = -self.half  # absolute input index of _buffer[0]
        self._next_out = 0
        self._total_in = 0

    def _kernel(self, distance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # Interpolating a finely sampled table is an order of magnitude faster than
        # evaluating the Bessel window for every tap.
        scaled = np.minimum(np.abs(distance) * self._TABLE_STEPS, len(self._table) - 2)
        index = scaled.astype(np.int64)
        frac = scaled - index
        return self._table[index] * (1.0 - frac) + self._table[index + 1] * frac

    def _build_table(self) -> npt.NDArray[np.float64]:
        distance = np.arange(self.half * self._TABLE_STEPS + 2) / self._TABLE_STEPS
        ratio = np.clip(distance / self.half, 0.0, 1.0)
        window = np.i0(self._BETA * np.sqrt(1.0 - ratio * ratio)) / np.i0(self._BETA)
        return self.cutoff * np.sinc(self.cutoff * distance) * window

    def _weights(
        self,
        ks: npt.NDArray[np.int64],
        positions: npt.NDArray[Any],
        taps: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.float32]:
        if self._phase_weights is not None:
            return self._phase_weights[(ks * self._down) % self._up]
        return self._kernel(positions[:, None] - taps).astype(np.float32)

    def _produce(self, last_k: int) -> FloatArray:
        out: list[FloatArray] = []
        k = self._next_out
        while k <= last_k:
            ks = np.arange(k, min(last_k, k + self._BLOCK - 1) + 1)
            positions = ks * self.step
            base = (ks * self._down) // self._up
            taps = base[:, None] + self._offsets[None, :]
            weights = self._weights(ks, positions, taps)
            values = self._buffer[taps - self._buffer_start]
            out.append(np.einsum("ij,ij->i", values, weights))
            k = int(ks[-1]) + 1
        self._next_out = k
        # Keep only the input that later outputs can still reach.
        keep_from = (self._next_out * self._down) // self._up - self.half + 1
        drop = max(0, keep_from - self._buffer_start)
        if drop:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        if not out:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def process(self, chunk: FloatArray) -> FloatArray:
        """Feed input samples; return every output sample that is now fully determined."""
        self._buffer = np.concatenate([self._buffer, chunk.astype(np.float32)])
        self._total_in += len(chunk)
        available_end = self._buffer_start + len(self._buffer)
        last_k = ((available_end - self.half) * self._up) // self._down
        while last_k >= 0 and (last_k * self._down) // self._up + self.half >= available_end:
            last_k -= 1
        return self._produce(last_k)

    def flush(self) -> FloatArray:
        """Finish the stream: zero-pad the tail and emit the remaining output samples."""
        total_out = round(self._total_in * self.out_rate / self.in_rate)
        self._buffer = np.concatenate([self._buffer, np.zeros(self.half + 1, dtype=np.float32)])
        return self._produce(total_out - 1)


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> FloatArray:
    """Resample mono or stereo float samples with a band-limited (windowed-sinc) filter.

    The output has ``round(len(samples) * to_rate / from_rate)`` samples.

    Example:
        >>> resample(np.zeros(22050, dtype=np.float32), 22050, 16000).shape
        (16000,)
    """
    array = _as_float(samples)
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")
    if from_rate == to_rate:
        return array
    if array.ndim == 2:
        return np.stack([resample(array[:, c], from_rate, to_rate) for c in range(2)], axis=1)
    engine = _Resampler(from_rate, to_rate)
    return np.concatenate([engine.process(array), engine.flush()])


# --------------------------------------------------------------------------- G.711 and WAV


def _ulaw_levels() -> npt.NDArray[np.int32]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int32)


def _alaw_levels() -> npt.NDArray[np.int32]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    magnitude = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int32)


def _nearest_code_table(levels: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """Map every 16-bit value to the code whose decoded level is nearest (G.711 rounding)."""
    order = np.argsort(levels, kind="stable")
    sorted_levels = levels[order]
    midpoints = (sorted_levels[1:] + sorted_levels[:-1]) / 2.0
    linear = np.arange(-32768, 32768)
    return order[np.searchsorted(midpoints, linear, side="left")].astype(np.uint8)


_ULAW_TABLE = _nearest_code_table(_ulaw_levels())
_ALAW_TABLE = _nearest_code_table(_alaw_levels())


def _ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    return _ULAW_TABLE[pcm.astype(np.int32) + 32768].tobytes()


def _alaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    return _ALAW_TABLE[pcm.astype(np.int32) + 32768].tobytes()


def _wav_header(sample_rate: int, channels: int, data_bytes: int | None) -> bytes:
    # An unknown length (streaming) is written as the largest size, which readers treat as
    # "until end of file".
    data_size = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff_size = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    block_align = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack(
            "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, 16
        )
        + b"data"
        + struct.pack("<I", data_size)
    )


def _numpy_payload(samples: FloatArray, fmt: OutputFormat) -> bytes:
    """Encode already-resampled samples for the headerless byte formats."""
    if fmt.codec == "wav":
        return _to_int16(samples).tobytes()
    pcm = _to_int16(_to_mono(samples))
    if fmt.codec == "pcm":
        return pcm.astype("<i2").tobytes()
    if fmt.codec == "ulaw":
        return _ulaw_encode(pcm)
    if fmt.codec == "alaw":
        return _alaw_encode(pcm)
    raise ValueError(f"{fmt.name} is not a byte format")


# --------------------------------------------------------------------------- encoding


def encode(samples: npt.ArrayLike, sample_rate: int, fmt: OutputFormat) -> bytes:
    """Encode float samples in [-1, 1] (mono ``(n,)`` or stereo ``(n, 2)``) into ``fmt``.

    The samples are resampled to ``fmt.sample_rate``. pcm, ulaw and alaw are always mono;
    wav, mp3 and opus keep stereo input stereo.

    Example:
        >>> tone = np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440).astype(np.float32)
        >>> len(encode(tone, 8000, parse_output_format("pcm_16000")))
        32000
    """
    array = _as_float(samples)
    if fmt.codec in ("pcm", "ulaw", "alaw"):
        array = _to_mono(array)
    if fmt.codec in ("pcm", "wav", "ulaw", "alaw"):
        resampled = resample(array, sample_rate, fmt.sample_rate)
        payload = _numpy_payload(resampled, fmt)
        if fmt.codec == "wav":
            return _wav_header(fmt.sample_rate, _channels(resampled), len(payload)) + payload
        return payload
    command = [
        _ffmpeg_exe(), *_QUIET,
        *_raw_input_args(sample_rate, _channels(array)),
        *_encoder_args(fmt, _channels(array)), "pipe:1",
    ]  # fmt: skip
    result = subprocess.run(command, input=array.astype("<f4").tobytes(), capture_output=True)
    if result.returncode != 0:
        raise AudioEncodeError(f"ffmpeg could not encode {fmt.name}: {_stderr_tail(result.stderr)}")
    return result.stdout


def iter_encode(
    chunks: Iterable[npt.ArrayLike], sample_rate: int, fmt: OutputFormat
) -> Generator[bytes, None, None]:
    """Encode a stream of sample chunks, yielding bytes while later chunks are still coming.

    Byte formats are converted chunk by chunk in numpy. mp3 and opus run one ffmpeg process:
    a background thread feeds it the chunks while this generator yields its output as it is
    written, so the first bytes leave long before the input ends. For ``wav`` the header
    carries an open-ended length. Closing the generator early stops ffmpeg.

    Example:
        >>> pieces = [np.zeros(2205, dtype=np.float32)] * 3
        >>> sum(len(b) for b in iter_encode(pieces, 22050, parse_output_format("pcm_22050")))
        13230
    """
    if fmt.codec in ("pcm", "wav", "ulaw", "alaw"):
        yield from _iter_encode_numpy(chunks, sample_rate, fmt)
    else:
        yield from _iter_encode_ffmpeg(chunks, sample_rate, fmt)


def _iter_encode_numpy(
    chunks: Iterable[npt.ArrayLike], sample_rate: int, fmt: OutputFormat
) -> Iterator[bytes]:
    resamplers: list[_Resampler] = []
    channels: int | None = None
    for raw in chunks:
        chunk = _as_float(raw)
        if fmt.codec != "wav":
            chunk = _to_mono(chunk)
        if channels is None:
            channels = _channels(chunk)
            if fmt.codec == "wav":
                yield _wav_header(fmt.sample_rate, channels, None)
            if sample_rate != fmt.sample_rate:
                resamplers = [_Resampler(sample_rate, fmt.sample_rate) for _ in range(channels)]
        elif _channels(chunk) != channels:
            raise ValueError("every chunk of a stream must have the same number of channels")
        if resamplers:
            parts = [
                r.process(chunk if chunk.ndim == 1 else chunk[:, i])
                for i, r in enumerate(resamplers)
            ]
            chunk = parts[0] if len(parts) == 1 else np.stack(parts, axis=1)
        if len(chunk):
            yield _numpy_payload(chunk, fmt)
    if channels is None:
        if fmt.codec == "wav":
            yield _wav_header(fmt.sample_rate, 1, 0)
        return
    if resamplers:
        tails = [r.flush() for r in resamplers]
        tail = tails[0] if len(tails) == 1 else np.stack(tails, axis=1)
        if len(tail):
            yield _numpy_payload(tail, fmt)


def _iter_encode_ffmpeg(
    chunks: Iterable[npt.ArrayLike], sample_rate: int, fmt: OutputFormat
) -> Iterator[bytes]:
    iterator = iter(chunks)
    try:
        first = _as_float(next(iterator))
    except StopIteration:
        first = np.zeros(0, dtype=np.float32)
    channels = _channels(first)
    command = [
        _ffmpeg_exe(), *_QUIET,
        *_raw_input_args(sample_rate, channels),
        *_encoder_args(fmt, channels), "-flush_packets", "1", "pipe:1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdin = cast(IO[bytes], process.stdin)
    stdout = cast(io.BufferedReader, process.stdout)
    failure: list[BaseException] = []
    stderr_lines: list[bytes] = []

    def feed() -> None:
        try:
            with contextlib.suppress(BrokenPipeError):
                if len(first):
                    stdin.write(first.astype("<f4").tobytes())
                    stdin.flush()
                for raw in iterator:
                    chunk = _as_float(raw)
                    if _channels(chunk) != channels:
                        raise ValueError(
                            "every chunk of a stream must have the same number of channels"
                        )
                    stdin.write(chunk.astype("<f4").tobytes())
                    stdin.flush()
        except BaseException as exc:  # re-raised in the consuming thread
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def drain_stderr() -> None:
        # Read continuously so a chatty ffmpeg can never block on a full stderr pipe.
        stderr_lines.extend(cast(IO[bytes], process.stderr))

    feeder = threading.Thread(target=feed, name="encode-feed", daemon=True)
    errors = threading.Thread(target=drain_stderr, name="encode-stderr", daemon=True)
    feeder.start()
    errors.start()
    finished = False
    try:
        while True:
            data = stdout.read1(65536)
            if not data:
                break
            yield data
        finished = True
    finally:
        if not finished:
            process.kill()
        returncode = process.wait()
        feeder.join()
        errors.join()
        stdout.close()
    if failure:
        raise failure[0]
    if returncode != 0:
        raise AudioEncodeError(
            f"ffmpeg could not encode {fmt.name}: {_stderr_tail(b''.join(stderr_lines))}"
        )


# --------------------------------------------------------------------------- decoding


@contextlib.contextmanager
def _ffmpeg_source(
    source: bytes | str | Path,
) -> Iterator[tuple[str, bytes | None, tuple[int, ...]]]:
    """Yield (input url, bytes for stdin or None, fds to pass) for an ffmpeg ``-i``."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioDecodeError(f"{path} does not exist or is not a file")
        yield str(path), None, ()
        return
    if not hasattr(os, "memfd_create"):
        yield "pipe:0", bytes(source), ()
        return
    # A memory-backed file is seekable, which containers with trailing indexes (mp4/m4a)
    # need, and it leaves nothing behind on disk.
    fd = os.memfd_create("upload", 0)
    try:
        view = memoryview(source)
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])
        yield f"/dev/fd/{fd}", None, (fd,)
    finally:
        os.close(fd)


def _read_wav_header(stream: IO[bytes]) -> tuple[int, int]:
    """Consume a RIFF header up to the data chunk; return (channels, sample_rate)."""
    head = stream.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioDecodeError("the input is not decodable audio (ffmpeg produced no audio)")
    channels = sample_rate = 0
    while True:
        chunk_head = stream.read(8)
        if len(chunk_head) < 8:
            raise AudioDecodeError("the input is not decodable audio (no audio stream found)")
        chunk_id, size = chunk_head[:4], struct.unpack("<I", chunk_head[4:])[0]
        if chunk_id == b"data":
            return channels, sample_rate
        body = stream.read(size + (size & 1))
        if chunk_id == b"fmt ":
            channels, sample_rate = struct.unpack("<HI", body[2:8])


@contextlib.contextmanager
def _decode_process(
    source: bytes | str | Path, output_args: list[str]
) -> Iterator[tuple[subprocess.Popen[bytes], list[bytes]]]:
    """Run ffmpeg decoding ``source`` to a float WAV stream on stdout."""
    with _ffmpeg_source(source) as (url, stdin_bytes, fds):
        command = [
            _ffmpeg_exe(), *_QUIET, "-i", url, "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-map_metadata", "-1", "-fflags", "+bitexact", *output_args,
            "-c:a", "pcm_f32le", "-f", "wav", "pipe:1",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=fds,
        )
        stderr_lines: list[bytes] = []
        threads = [
            threading.Thread(
                target=lambda: stderr_lines.extend(cast(IO[bytes], process.stderr)), daemon=True
            )
        ]
        if stdin_bytes is not None:

            def write_input() -> None:
                with contextlib.suppress(BrokenPipeError, OSError):
                    cast(IO[bytes], process.stdin).write(stdin_bytes)
                with contextlib.suppress(OSError):
                    cast(IO[bytes], process.stdin).close()

            threads.append(threading.Thread(target=write_input, daemon=True))
        for thread in threads:
            thread.start()
        try:
            yield process, stderr_lines
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            for thread in threads:
                thread.join()
            cast(IO[bytes], process.stdout).close()


def _decode_reason(stderr_lines: list[bytes]) -> str:
    # The input's name is an internal descriptor path; it means nothing to the caller.
    reason = _stderr_tail(b"".join(stderr_lines))
    return re.sub(r"(/dev/fd/\d+|pipe:0)", "input", reason)


def _decode_failure(stderr_lines: list[bytes]) -> AudioDecodeError:
    return AudioDecodeError(
        "the input is not decodable audio; upload a common audio or video file "
        f"(mp3, wav, ogg, flac, m4a, webm...). ffmpeg said: {_decode_reason(stderr_lines)}"
    )


def decode(
    source: bytes | str | Path, *, sample_rate: int = 16000, mono: bool = True
) -> FloatArray:
    """Decode an audio (or video) file into float32 samples at ``sample_rate``.

    Returns shape ``(n,)`` when ``mono`` is true, else ``(n, channels)`` with the source's
    channel count.

    Raises:
        AudioDecodeError: the input is not decodable audio.

    Example:
        >>> wav = encode(np.zeros(1600, dtype=np.float32), 16000, parse_output_format("wav_16000"))
        >>> decode(wav, sample_rate=8000).shape
        (800,)
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    output_args = ["-ar", str(sample_rate)] + (["-ac", "1"] if mono else [])
    with _decode_process(source, output_args) as (process, stderr_lines):
        stdout = cast(io.BufferedReader, process.stdout)
        try:
            channels, _ = _read_wav_header(stdout)
        except AudioDecodeError:
            process.wait()
            raise _decode_failure(stderr_lines) from None
        payload = stdout.read()
        process.wait()
        if process.returncode != 0 and not payload:
            raise _decode_failure(stderr_lines)
    samples = np.frombuffer(payload[: len(payload) - len(payload) % (4 * channels)], "<f4")
    if not len(samples):
        raise _decode_failure(stderr_lines)
    samples = samples.astype(np.float32)
    return samples if mono else samples.reshape(-1, channels)


def probe_duration(data: bytes) -> float:
    """Duration in seconds of an encoded audio file (mp3, wav, ogg/opus, flac...).

    The audio is decoded at its own sample rate and counted as it streams, so the result is
    exact for sample-accurate containers and memory does not grow with the duration.
    Headerless pcm/ulaw/alaw cannot be probed: divide their byte count by the byte rate.

    Raises:
        AudioDecodeError: the data is not decodable audio.
    """
    with _decode_process(data, ["-ac", "1"]) as (process, stderr_lines):
        stdout = cast(io.BufferedReader, process.stdout)
        try:
            _, rate = _read_wav_header(stdout)
        except AudioDecodeError:
            process.wait()
            raise _decode_failure(stderr_lines) from None
        total = 0
        while block := stdout.read1(1 << 16):
            total += len(block)
        process.wait()
    if total == 0 or rate <= 0:
        raise _decode_failure(stderr_lines)
    return total / 4 / rate
