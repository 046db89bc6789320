from __future__ import annotations

from pathlib import Path

import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import MediaInfo, probe

from .conftest import ffmpeg_run, lavfi_audio


def test_probe_reads_audio_file_details(tone_wav: Path) -> None:
    info = probe(str(tone_wav))
    assert isinstance(info, MediaInfo)
    assert info.path == tone_wav
    assert info.format_name == "wav"
    assert info.duration == pytest.approx(3.0, abs=0.01)
    assert info.size_bytes == tone_wav.stat().st_size
    assert (info.has_audio, info.has_video) == (True, False)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("pcm_s16le", 16000, 1)
    assert info.video_codec is None and info.width is None
    assert info.bit_rate == pytest.approx(16000 * 16, rel=0.01)


def test_probe_video_with_audio(video_with_audio: Path) -> None:
    info = probe(video_with_audio)
    assert "mp4" in info.format_name
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.width, info.height) == ("h264", 160, 120)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("aac", 44100, 1)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert [s.kind for s in info.streams] == ["video", "audio"]


def test_probe_video_without_audio(video_without_audio: Path) -> None:
    info = probe(video_without_audio)
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None and info.sample_rate is None and info.channels is None
    assert info.video_codec == "h264"


def test_cover_art_does_not_count_as_video(tmp_path: Path, tone_wav: Path) -> None:
    cover = tmp_path / "cover.png"
    ffmpeg_run("-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-frames:v", "1", str(cover))
    song = tmp_path / "song.mp3"
    ffmpeg_run(
        "-i", str(tone_wav), "-i", str(cover), "-map", "0:a", "-map", "1:v",
        "-c:v", "mjpeg", "-disposition:v", "attached_pic", str(song),
    )  # fmt: skip
    info = probe(song)
    assert info.has_audio and not info.has_video
    assert {s.kind for s in info.streams} == {"audio", "video"}


def test_missing_file_is_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"nowhere\.wav does not exist") as caught:
        probe(tmp_path / "nowhere.wav")
    assert caught.value.status == "media_not_found"


def test_zero_byte_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(MediaError, match=r"empty\.wav is empty \(0 bytes\)") as caught:
        probe(empty)
    assert caught.value.status == "media_corrupt"


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4"])
def test_text_file_is_not_media(tmp_path: Path, name: str) -> None:
    text = tmp_path / name
    text.write_text("meeting notes: buy milk, ship the release\n" * 20)
    with pytest.raises(MediaError) as caught:
        probe(text)
    message = str(caught.value)
    assert message.startswith(f"{name} is not a media file ffmpeg can read: ")
    assert caught.value.status == "media_corrupt"


def test_truncated_mp4_is_corrupt(tmp_path: Path, video_with_audio: Path) -> None:
    # The index (moov) sits at the end of an ffmpeg-written mp4, so the head alone is unreadable.
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(video_with_audio.read_bytes()[: video_with_audio.stat().st_size // 2])
    with pytest.raises(MediaError, match=r"cut\.mp4 is not a media file.*moov atom not found"):
        probe(truncated)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is not a file"):
        probe(tmp_path)


def test_opus_in_ogg_reports_channels_and_rate(tmp_path: Path) -> None:
    opus = ("-c:a", "libopus")
    ogg = lavfi_audio(tmp_path / "x.ogg", "sine=d=1:r=48000", rate=48000, channels=2, extra=opus)
    info = probe(ogg)
    assert (info.format_name, info.audio_codec) == ("ogg", "opus")
    assert (info.sample_rate, info.channels) == (48000, 2)
    assert info.duration == pytest.approx(1.0, abs=0.03)


def test_duration_missing_from_header_is_measured_by_decoding(
    tmp_path: Path, tone_wav: Path
) -> None:
    # Matroska written to a pipe cannot go back to fill in its duration.
    piped = tmp_path / "live.mka"
    with piped.open("wb") as sink:
        ffmpeg_run("-i", str(tone_wav), "-c:a", "flac", "-f", "matroska", "pipe:1", stdout=sink)
    info = probe(piped)
    assert info.duration == pytest.approx(3.0, abs=0.02)
