from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import convert, extract_audio, probe

from .conftest import decode, tone_amplitude


def test_extract_audio_from_video_defaults_to_16k_mono_wav(
    tmp_path: Path, video_with_audio: Path
) -> None:
    out = extract_audio(video_with_audio, tmp_path / "speech.wav")
    assert out == tmp_path / "speech.wav"
    info = probe(out)
    assert not info.has_video
    assert (info.audio_codec, info.sample_rate, info.channels) == ("pcm_s16le", 16000, 1)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    samples, rate = decode(out)
    # The 440 Hz tone of the source survived the trip.
    assert tone_amplitude(samples[:, 0], rate, 440) > 0.05


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [(".wav", "pcm_s16le"), (".mp3", "mp3"), (".flac", "flac"), (".m4a", "aac"),
     (".ogg", "opus"), (".opus", "opus")],
)  # fmt: skip
def test_extract_audio_picks_codec_from_suffix(
    tmp_path: Path, tone_wav: Path, suffix: str, codec: str
) -> None:
    out = extract_audio(tone_wav, tmp_path / f"out{suffix}", sample_rate=24000, channels=2)
    info = probe(out)
    assert (info.audio_codec, info.channels) == (codec, 2)
    # Opus always decodes at 48 kHz whatever it was fed; the rest keep the requested rate.
    assert info.sample_rate == (48000 if codec == "opus" else 24000)
    assert info.duration == pytest.approx(3.0, abs=0.08)


def test_extract_audio_explicit_codec(tmp_path: Path, tone_wav: Path) -> None:
    out = extract_audio(tone_wav, tmp_path / "out.mkv", codec="flac")
    assert probe(out).audio_codec == "flac"


def test_extract_audio_from_video_without_audio_names_the_file(
    tmp_path: Path, video_without_audio: Path
) -> None:
    with pytest.raises(MediaError, match=r"^silent-video\.mp4 has no audio stream") as caught:
        extract_audio(video_without_audio, tmp_path / "x.wav")
    assert caught.value.status == "unsupported_media"
    assert not (tmp_path / "x.wav").exists()


def test_unknown_suffix_is_rejected_before_running(tmp_path: Path, tone_wav: Path) -> None:
    with pytest.raises(MediaError, match=r"out\.xyz.*\.wav"):
        extract_audio(tone_wav, tmp_path / "out.xyz")
    with pytest.raises(MediaError, match=r"out\.xyz: unknown output format"):
        convert(tone_wav, tmp_path / "out.xyz")


def test_convert_changes_rate_channels_and_bitrate(tmp_path: Path, noise_wav: Path) -> None:
    low = convert(noise_wav, tmp_path / "low.mp3", sample_rate=22050, channels=1, bitrate="32k")
    high = convert(noise_wav, tmp_path / "high.mp3", bitrate=192_000)
    low_info, high_info = probe(low), probe(high)
    assert (low_info.sample_rate, low_info.channels) == (22050, 1)
    assert (high_info.sample_rate, high_info.channels) == (44100, 2)
    assert low_info.bit_rate == pytest.approx(32_000, rel=0.1)
    assert high_info.bit_rate == pytest.approx(192_000, rel=0.1)


def test_convert_keeps_source_format_details_by_default(tmp_path: Path, noise_wav: Path) -> None:
    out = convert(noise_wav, tmp_path / "copy.flac")
    info = probe(out)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("flac", 44100, 2)
    original, _ = decode(noise_wav)
    converted, _ = decode(out)
    # FLAC is lossless: the samples come back identical.
    assert np.array_equal(original, converted)


def test_convert_to_opus_moves_unsupported_rate_to_48k(tmp_path: Path, noise_wav: Path) -> None:
    out = convert(noise_wav, tmp_path / "x.opus")
    assert probe(out).audio_codec == "opus"
    with pytest.raises(MediaError, match=r"x2\.opus: libopus cannot encode at 44100 Hz"):
        convert(noise_wav, tmp_path / "x2.opus", sample_rate=44100)


def test_convert_rejects_bad_numbers(tmp_path: Path, tone_wav: Path) -> None:
    with pytest.raises(MediaError, match="bitrate 'fast'"):
        convert(tone_wav, tmp_path / "a.mp3", bitrate="fast")
    with pytest.raises(MediaError, match="channels must be positive"):
        convert(tone_wav, tmp_path / "a.wav", channels=0)
    with pytest.raises(MediaError, match="at most 2 channels"):
        convert(tone_wav, tmp_path / "a.mp3", channels=6)


def test_convert_video_container_keeps_picture(tmp_path: Path, video_with_audio: Path) -> None:
    out = convert(video_with_audio, tmp_path / "clip.mkv", sample_rate=48000)
    info = probe(out)
    assert info.has_video and info.has_audio
    assert info.sample_rate == 48000


def test_audio_only_into_video_container_is_refused(tmp_path: Path, tone_wav: Path) -> None:
    with pytest.raises(MediaError, match=r"tone\.wav has no video stream"):
        convert(tone_wav, tmp_path / "v.mp4")


def test_in_place_conversion_is_safe(tmp_path: Path, noise_wav: Path) -> None:
    work = tmp_path / "work.wav"
    work.write_bytes(noise_wav.read_bytes())
    convert(work, work, sample_rate=8000, channels=1)
    info = probe(work)
    assert (info.sample_rate, info.channels) == (8000, 1)
    assert info.duration == pytest.approx(5.0, abs=0.01)


def test_output_directories_are_created(tmp_path: Path, tone_wav: Path) -> None:
    out = convert(tone_wav, tmp_path / "a" / "b" / "tone.m4a")
    assert probe(out).audio_codec == "aac"
