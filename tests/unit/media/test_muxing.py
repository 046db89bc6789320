from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import mux, probe
from prefect_elevenlabs.media.muxing import iso639_2

from .conftest import FFMPEG


def video_packets_md5(path: Path) -> str:
    """MD5 of the compressed video packets: equal only if the stream was copied untouched."""
    assert FFMPEG is not None
    done = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_mp4_with_new_audio_and_subtitles(
    tmp_path: Path, video_with_audio: Path, speech_wav: Path, srt_file: Path
) -> None:
    out = mux(
        video_with_audio,
        speech_wav,
        tmp_path / "dubbed.mp4",
        subtitles=srt_file,
        subtitle_language="es",
        audio_language="spa",
    )
    info = probe(out)
    source = probe(video_with_audio)
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.width, info.height) == (source.video_codec, 160, 120)
    assert video_packets_md5(out) == video_packets_md5(video_with_audio)
    assert info.audio_codec == "aac"
    assert info.sample_rate == 22050  # the new speech track, not the 44.1 kHz original
    assert [(s.kind, s.codec, s.language) for s in info.streams] == [
        ("video", "h264", None),
        ("audio", "aac", "spa"),
        ("subtitle", "mov_text", "spa"),
    ]


def test_keep_original_audio_adds_a_second_track(
    tmp_path: Path, video_with_audio: Path, speech_wav: Path
) -> None:
    out = mux(video_with_audio, speech_wav, tmp_path / "both.mp4", keep_original_audio=True)
    audio = [s for s in probe(out).streams if s.kind == "audio"]
    assert len(audio) == 2
    assert probe(out).sample_rate == 22050  # the new track comes first


def test_keep_original_audio_on_silent_video_is_harmless(
    tmp_path: Path, video_without_audio: Path, speech_wav: Path
) -> None:
    out = mux(video_without_audio, speech_wav, tmp_path / "v.mp4", keep_original_audio=True)
    assert [s.kind for s in probe(out).streams] == ["video", "audio"]


@pytest.mark.parametrize(
    ("subtitle_fixture", "codec"), [("srt_file", "subrip"), ("vtt_file", "webvtt")]
)
def test_mkv_keeps_the_subtitle_format(
    tmp_path: Path,
    video_without_audio: Path,
    speech_wav: Path,
    subtitle_fixture: str,
    codec: str,
    request: pytest.FixtureRequest,
) -> None:
    subtitles = request.getfixturevalue(subtitle_fixture)
    out = mux(
        video_without_audio,
        speech_wav,
        tmp_path / "out.mkv",
        subtitles=subtitles,
        subtitle_language="fr",
    )
    info = probe(out)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert video_packets_md5(out) == video_packets_md5(video_without_audio)
    assert [(s.codec, s.language) for s in info.subtitle_streams] == [(codec, "fra")]


def test_language_codes() -> None:
    assert iso639_2("es") == "spa"
    assert iso639_2("pt-BR") == "por"
    assert iso639_2("DEU") == "deu"
    with pytest.raises(MediaError, match="'klingon' is not an ISO 639 code"):
        iso639_2("klingon")


def test_mux_errors_name_the_problem(
    tmp_path: Path,
    video_with_audio: Path,
    video_without_audio: Path,
    speech_wav: Path,
    srt_file: Path,
) -> None:
    with pytest.raises(MediaError, match=r"speech\.wav has no video stream"):
        mux(speech_wav, speech_wav, tmp_path / "x.mp4")
    with pytest.raises(MediaError, match=r"silent-video\.mp4 has no audio stream"):
        mux(video_with_audio, video_without_audio, tmp_path / "x.mp4")
    with pytest.raises(MediaError, match=r"x\.avi: mux writes"):
        mux(video_with_audio, speech_wav, tmp_path / "x.avi")
    with pytest.raises(MediaError, match="WebM cannot hold h264"):
        mux(video_with_audio, speech_wav, tmp_path / "x.webm")
    with pytest.raises(MediaError, match=r"missing\.srt does not exist"):
        mux(video_with_audio, speech_wav, tmp_path / "x.mp4", subtitles=tmp_path / "missing.srt")
    with pytest.raises(MediaError, match="subtitle_language was given without subtitles"):
        mux(video_with_audio, speech_wav, tmp_path / "x.mp4", subtitle_language="es")
    with pytest.raises(MediaError, match=r"speech\.wav: subtitles must be"):
        mux(video_with_audio, speech_wav, tmp_path / "x.mp4", subtitles=speech_wav)
    assert list(tmp_path.iterdir()) == []
    assert srt_file.exists()
