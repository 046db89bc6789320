"""Output formats and codecs: real audio encoded, then decoded by ffmpeg/ffprobe/soundfile."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prefect_elevenlabs.local.audio import (
    CONVERT_FORMATS,
    MUSIC_FORMATS,
    STREAM_FORMATS,
    AudioDecodeError,
    OutputFormat,
    UnsupportedFormatError,
    decode,
    encode,
    iter_encode,
    parse_output_format,
    probe_duration,
    resample,
)

SOURCE_RATE = 22050
SECONDS = 1.5


def tone(freq: float = 440.0, seconds: float = SECONDS, rate: int = SOURCE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def ffprobe_stream(data: bytes) -> dict[str, str]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-i", "pipe:0"],
        input=data,
        capture_output=True,
        check=True,
    )
    return json.loads(result.stdout)["streams"][0]


def ffmpeg_raw_decode(data: bytes, demuxer: str, rate: int) -> np.ndarray:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", demuxer, "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
         "-f", "f32le", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
    )  # fmt: skip
    return np.frombuffer(result.stdout, np.float32)


# --------------------------------------------------------------------------- format names


def test_format_sets_match_the_api() -> None:
    assert len(CONVERT_FORMATS) == 28
    assert len(STREAM_FORMATS) == 21
    assert len(MUSIC_FORMATS) == 26
    assert not any(name.startswith("wav_") for name in STREAM_FORMATS)
    assert STREAM_FORMATS < CONVERT_FORMATS
    assert {"mp3_48000_320", "auto"} <= MUSIC_FORMATS
    assert "mp3_48000_128" not in CONVERT_FORMATS


def test_parse_output_format_fields_and_media_types() -> None:
    assert parse_output_format(None) == OutputFormat("mp3", 44100, 128)
    assert parse_output_format("") == OutputFormat("mp3", 44100, 128)
    fmt = parse_output_format("opus_48000_96")
    assert (fmt.codec, fmt.sample_rate, fmt.bitrate_kbps, fmt.name) == (
        "opus", 48000, 96, "opus_48000_96",
    )  # fmt: skip
    assert parse_output_format("mp3_22050_32").media_type == "audio/mpeg"
    assert parse_output_format("pcm_16000").media_type == "audio/pcm"
    assert parse_output_format("wav_8000").media_type == "audio/wav"
    assert parse_output_format("ulaw_8000").media_type == "audio/basic"
    assert parse_output_format("alaw_8000").media_type == "audio/basic"
    assert parse_output_format("opus_48000_32").media_type == "audio/opus"
    for name in CONVERT_FORMATS:
        assert parse_output_format(name).name == name


def test_auto_resolves_for_music() -> None:
    assert parse_output_format("auto", allowed=MUSIC_FORMATS, default="auto").name == (
        "mp3_44100_128"
    )
    assert parse_output_format(
        "auto", allowed=MUSIC_FORMATS, default="mp3_48000_192"
    ) == OutputFormat("mp3", 48000, 192)


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("mp3_44100_999", CONVERT_FORMATS),
        ("flac_44100", CONVERT_FORMATS),
        ("mp3_48000_320", CONVERT_FORMATS),
        ("wav_16000", STREAM_FORMATS),
        ("auto", CONVERT_FORMATS),
    ],
)
def test_unsupported_format_lists_accepted_values(value: str, allowed: frozenset[str]) -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        parse_output_format(value, allowed=allowed)
    message = str(caught.value)
    assert repr(value) in message
    accepted = message.split("use one of:")[1].replace(",", " ").split()
    assert set(accepted) == allowed
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    "name", ["mp3_44100_128", "mp3_22050_32", "mp3_24000_48", "opus_48000_64", "wav_16000",
             "wav_44100"],
)  # fmt: skip
def test_container_formats_round_trip(name: str) -> None:
    fmt = parse_output_format(name)
    data = encode(tone(), SOURCE_RATE, fmt)
    stream = ffprobe_stream(data)
    assert int(stream["sample_rate"]) == fmt.sample_rate
    assert int(stream["channels"]) == 1
    # mp3 adds an encoder delay and pads its last frame: up to ~0.08 s more.
    tolerance = 0.1 if fmt.codec == "mp3" else 0.01
    assert probe_duration(data) == pytest.approx(SECONDS, abs=tolerance)
    decoded = decode(data, sample_rate=fmt.sample_rate)
    assert len(decoded) / fmt.sample_rate == pytest.approx(SECONDS, abs=tolerance)
    assert dominant_frequency(decoded, fmt.sample_rate) == pytest.approx(440, abs=5)
    assert 0.25 < float(np.sqrt(np.mean(decoded**2))) < 0.45


def test_mp3_bitrate_follows_the_format() -> None:
    small = encode(tone(seconds=4), SOURCE_RATE, parse_output_format("mp3_44100_32"))
    large = encode(tone(seconds=4), SOURCE_RATE, parse_output_format("mp3_44100_192"))
    assert len(small) == pytest.approx(4 * 32000 / 8, rel=0.1)
    assert len(large) == pytest.approx(4 * 192000 / 8, rel=0.1)


def test_wav_is_riff_s16_readable_by_soundfile() -> None:
    data = encode(tone(), SOURCE_RATE, parse_output_format("wav_24000"))
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    info = sf.info(io.BytesIO(data))
    assert (rate, info.subtype, info.channels) == (24000, "PCM_16", 1)
    assert len(samples) == int(SECONDS * 24000)
    assert dominant_frequency(samples, rate) == pytest.approx(440, abs=3)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 32000, 44100, 48000])
def test_pcm_is_headerless_s16le_with_exact_byte_count(rate: int) -> None:
    data = encode(tone(), SOURCE_RATE, parse_output_format(f"pcm_{rate}"))
    assert len(data) == 2 * round(len(tone()) * rate / SOURCE_RATE)
    decoded = ffmpeg_raw_decode(data, "s16le", rate)
    assert len(decoded) / rate == pytest.approx(SECONDS, abs=1e-3)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(decoded)) / rate)
    middle = slice(len(decoded) // 10, -len(decoded) // 10)
    assert np.max(np.abs(decoded[middle] - expected[middle])) < 2e-3


@pytest.mark.parametrize(("codec", "demuxer"), [("ulaw", "mulaw"), ("alaw", "alaw")])
def test_g711_is_one_byte_per_sample_at_8khz(codec: str, demuxer: str) -> None:
    data = encode(tone(), SOURCE_RATE, parse_output_format(f"{codec}_8000"))
    assert len(data) == round(SECONDS * 8000)
    decoded = ffmpeg_raw_decode(data, demuxer, 8000)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(decoded)) / 8000)
    middle = slice(800, -800)
    noise = decoded[middle] - expected[middle]
    snr_db = 10 * np.log10(np.mean(expected[middle] ** 2) / np.mean(noise**2))
    assert snr_db > 30  # companded 8-bit audio keeps about 35-38 dB on a loud tone


def test_stereo_stays_stereo_in_containers_and_mixes_down_for_pcm() -> None:
    left, right = tone(440), tone(660)
    stereo = np.stack([left, right], axis=1)
    mp3 = encode(stereo, SOURCE_RATE, parse_output_format("mp3_44100_128"))
    assert int(ffprobe_stream(mp3)["channels"]) == 2
    decoded = decode(mp3, sample_rate=44100, mono=False)
    assert decoded.ndim == 2 and decoded.shape[1] == 2
    assert dominant_frequency(decoded[:, 1], 44100) == pytest.approx(660, abs=5)
    pcm = encode(stereo, SOURCE_RATE, parse_output_format("pcm_22050"))
    assert len(pcm) == 2 * len(left)


def test_resample_keeps_length_and_content() -> None:
    down = resample(tone(1000), SOURCE_RATE, 8000)
    assert len(down) == round(len(tone()) * 8000 / SOURCE_RATE)
    assert dominant_frequency(down, 8000) == pytest.approx(1000, abs=3)
    # A tone above the new Nyquist frequency is filtered out rather than aliased.
    aliased = resample(tone(6000), SOURCE_RATE, 8000)
    assert float(np.sqrt(np.mean(aliased[200:-200] ** 2))) < 0.01


# --------------------------------------------------------------------------- streaming


def test_numpy_stream_equals_whole_encode() -> None:
    signal = tone(seconds=2.0)
    chunks = [signal[i : i + 777] for i in range(0, len(signal), 777)]
    for name in ("pcm_16000", "ulaw_8000", "alaw_8000", "pcm_22050"):
        fmt = parse_output_format(name)
        assert b"".join(iter_encode(chunks, SOURCE_RATE, fmt)) == encode(signal, SOURCE_RATE, fmt)


def test_streamed_wav_is_readable() -> None:
    signal = tone()
    chunks = [signal[i : i + 4000] for i in range(0, len(signal), 4000)]
    data = b"".join(iter_encode(chunks, SOURCE_RATE, parse_output_format("wav_16000")))
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 16000
    assert len(samples) == round(len(signal) * 16000 / SOURCE_RATE)


def gated_chunks(gate: threading.Event, seen: list[bool]) -> Iterator[np.ndarray]:
    """Three seconds of tone, then wait for the consumer to have received bytes, then more."""
    for _ in range(3):
        yield tone(seconds=1.0)
    seen.append(gate.wait(timeout=30))
    for _ in range(3):
        yield tone(seconds=1.0)


@pytest.mark.parametrize("name", ["mp3_44100_128", "opus_48000_64", "pcm_16000", "ulaw_8000"])
def test_stream_yields_bytes_before_the_input_ends(name: str) -> None:
    gate = threading.Event()
    seen: list[bool] = []
    received: list[bytes] = []
    for data in iter_encode(gated_chunks(gate, seen), SOURCE_RATE, parse_output_format(name)):
        assert data
        received.append(data)
        gate.set()
    assert seen == [True]  # output had arrived while half of the input was still to come
    fmt = parse_output_format(name)
    payload = b"".join(received)
    if fmt.codec in ("mp3", "opus"):
        assert probe_duration(payload) == pytest.approx(6.0, abs=0.1)
    else:
        width = 2 if fmt.codec == "pcm" else 1
        assert len(payload) == width * fmt.sample_rate * 6


def test_stream_stops_ffmpeg_when_closed_early() -> None:
    def endless() -> Iterator[np.ndarray]:
        while True:
            yield tone(seconds=0.5)

    stream = iter_encode(endless(), SOURCE_RATE, parse_output_format("mp3_44100_64"))
    assert next(stream)
    stream.close()  # must return, not hang on the still-running input


# --------------------------------------------------------------------------- decoding


def test_decode_accepts_paths_and_resamples(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(), SOURCE_RATE)
    decoded = decode(path, sample_rate=8000)
    assert decoded.dtype == np.float32
    assert len(decoded) == int(SECONDS * 8000)
    assert dominant_frequency(decoded, 8000) == pytest.approx(440, abs=3)
    assert decode(str(path)).shape == (int(SECONDS * 16000),)


def test_decode_rejects_what_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="not decodable audio"):
        decode(b"this is a text file, not a recording" * 20)
    with pytest.raises(AudioDecodeError, match="not decodable audio"):
        probe_duration(b"\x00\x01\x02 definitely not audio")
    with pytest.raises(AudioDecodeError, match="does not exist"):
        decode(tmp_path / "missing.mp3")
