"""Media tasks in real flow runs over real ffmpeg: local and fsspec inputs and outputs."""

from __future__ import annotations

import itertools

import fsspec
import pytest
from prefect import flow

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.media import measure_loudness as measure
from prefect_elevenlabs.media import probe
from prefect_elevenlabs.tasks import (
    concat_audio,
    convert_audio,
    extract_audio,
    fit_to_duration,
    measure_loudness,
    mix_over,
    mux_into_video,
    normalize_loudness,
    probe_media,
    split_on_silence,
)

from .conftest import decode, outcome, rms, task_run_by_id

pytestmark = pytest.mark.usefixtures("prefect_server")


def put(uri: str, data: bytes) -> str:
    with fsspec.open(uri, "wb") as handle:
        handle.write(data)
    return uri


async def test_video_to_normalised_mp3_through_memory_storage(material):
    video = put("memory://media-in/talk.mp4", material["video"].read_bytes())

    @flow
    async def pipeline():
        info = await probe_media(video)
        wav = await extract_audio(video, output_dir="memory://media-out")
        mp3 = await convert_audio(wav.uri, "mp3_44100_128", output_dir="memory://media-out")
        loud = await normalize_loudness(mp3.uri, target_lufs=-18.0, output_dir="memory://media-out")
        level = await measure_loudness(loud.uri)
        return info, wav, mp3, loud, level

    info, wav, mp3, loud, level = await pipeline()

    assert info.has_video and info.has_audio and info.width == 320
    assert str(info.path) == "/media-in/talk.mp4"
    assert wav.uri.startswith("memory:///media-out/talk-audio-") and wav.uri.endswith(".wav")
    assert (wav.sample_rate, wav.format) == (16000, "wav_16000")
    assert mp3.sample_rate == 44100 and mp3.uri.endswith(".mp3")
    assert loud.uri.endswith(".mp3")
    assert level.integrated_lufs == pytest.approx(-18.0, abs=1.0)
    assert decode(loud.uri).duration == pytest.approx(info.duration, abs=0.2)


def test_split_fit_concat_and_mix_from_a_sync_flow(material, tmp_path):
    paused = str(material["paused"])
    source = decode(paused)

    @flow
    def pipeline(output_dir: str):
        chunks = split_on_silence.submit(paused, output_dir=output_dir, max_duration=4.5).result()
        joined = concat_audio.submit(
            [c.audio.uri for c in chunks], output_dir=output_dir, gap_seconds=0.5,
            filename="joined.wav",
        ).result()
        fitted = fit_to_duration.submit(joined.uri, 10.0, output_dir=output_dir).result()
        mixed = mix_over.submit(
            str(material["silence"]), [(str(material["sentence0"]), 0.1)],
            output_dir=output_dir, filename="mixed.wav",
        ).result()
        return chunks, joined, fitted, mixed

    chunks, joined, fitted, mixed = pipeline(str(tmp_path))

    assert len(chunks) == 3
    assert chunks[0].start_s == 0.0
    assert all(c.duration_s <= 4.5 + 1e-6 for c in chunks)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in itertools.pairwise(chunks))
    assert chunks[-1].end_s == pytest.approx(source.duration, abs=0.05)
    assert all(rms(decode(c.audio.uri).samples) > 0.01 for c in chunks)
    assert joined.uri == str(tmp_path / "joined.wav")
    assert joined.duration_s == pytest.approx(source.duration + 2 * 0.5, abs=0.1)
    assert fitted.audio.duration_s == pytest.approx(10.0, abs=0.02)
    assert fitted.tempo > 1.0 and not fitted.clamped
    # The mix keeps the (silent) background's length and carries the speech placed over it.
    assert mixed.duration_s == pytest.approx(decode(material["silence"]).duration, abs=0.05)
    assert rms(decode(mixed.uri).samples) > 0.005


async def test_mux_puts_new_audio_and_subtitles_on_the_video(material, tmp_path):
    subtitles = tmp_path / "talk.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:02,000\nHello there.\n")

    @flow
    async def mux(output_dir: str):
        return await mux_into_video(
            str(material["video"]), str(material["two_voices"]), output_dir=output_dir,
            subtitles=str(subtitles), subtitle_language="en", audio_language="en",
        )

    result = await mux(str(tmp_path))

    assert result.container == "mp4" and result.has_video and result.has_audio
    info = probe(result.uri)
    assert [s.kind for s in info.streams].count("subtitle") == 1
    assert info.subtitle_streams[0].language == "eng"
    assert measure(result.uri).integrated_lufs > -40


async def test_corrupt_media_fails_once_with_the_media_error_unchanged(tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3" + b"\x00garbage" * 200)

    @flow
    async def convert(path: str, output_dir: str):
        state = await convert_audio(path, "wav", output_dir=output_dir, return_state=True)
        missing = await probe_media("memory://nowhere/missing.wav", return_state=True)
        return await outcome(state), await outcome(missing)

    result, missing = await convert(str(broken), str(tmp_path / "out"))

    assert type(result.error) is MediaError
    assert "broken.mp3" in str(result.error)
    assert (await task_run_by_id(result.task_run_id)).run_count == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert type(missing.error) is MediaError
    assert missing.error.status == "media_not_found"
