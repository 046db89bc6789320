"""Speech-to-text tasks in real flow runs: accuracy, long media, video, caching, realtime."""

from __future__ import annotations

import itertools
import shutil

import fsspec
import pytest
from prefect import flow

from prefect_elevenlabs.errors import MediaError
from prefect_elevenlabs.tasks import realtime_speech_to_text, speech_to_text

from .conftest import SENTENCES, decode, fresh_credentials, outcome, task_run_by_id, wer

pytestmark = pytest.mark.usefixtures("prefect_server")

ALL_TEXT = " ".join(SENTENCES)


def assert_word_timings_are_sane(transcript, duration: float) -> None:
    assert transcript.words
    assert all(w.end >= w.start >= 0 for w in transcript.words)
    assert all(b.start >= a.start for a, b in itertools.pairwise(transcript.words))
    assert transcript.words[-1].end <= duration + 0.5


def test_transcript_is_accurate_from_a_sync_flow(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    def transcribe(path: str):
        return speech_to_text.submit(path, credentials, language_code="en").result()

    transcript = transcribe(str(material["sentence0"]))

    assert wer(SENTENCES[0], transcript.text) <= 0.15
    assert transcript.language in ("en", "eng")
    assert transcript.source == str(material["sentence0"])
    assert transcript.transcription_id
    assert_word_timings_are_sane(transcript, transcript.duration_s)
    assert "-->" in transcript.to_srt()


async def test_a_rerun_is_cached_and_an_edited_file_is_transcribed_again(
    engine, material, tmp_path
):
    credentials = fresh_credentials(engine)
    media = tmp_path / "clip.wav"
    shutil.copyfile(material["sentence1"], media)

    @flow
    async def transcribe(path: str):
        state = await speech_to_text(path, credentials, language_code="en", return_state=True)
        return await outcome(state)

    first = await transcribe(str(media))
    second = await transcribe(str(media))
    shutil.copyfile(material["sentence2"], media)  # same path, new content
    third = await transcribe(str(media))

    assert [first.name, second.name, third.name] == ["Completed", "Cached", "Completed"]
    assert second.value.text == first.value.text
    assert wer(SENTENCES[1], first.value.text) <= 0.15
    assert wer(SENTENCES[2], third.value.text) <= 0.15


async def test_long_media_is_cut_at_pauses_and_joined_with_offsets(engine, material, recorder):
    credentials = fresh_credentials(engine)

    @flow
    async def transcribe(path: str):
        return await speech_to_text(path, credentials, language_code="en", max_chunk_seconds=4.5)

    transcript = await transcribe(str(material["paused"]))

    uploads = [r for r in recorder if r.path == "/v1/speech-to-text"]
    assert len(uploads) == 3
    assert wer(ALL_TEXT, transcript.text) <= 0.15
    assert_word_timings_are_sane(transcript, transcript.duration_s)
    # Words of the last sentence keep their place in the whole recording, past the cuts.
    last_sentence_start = next(w.start for w in transcript.words if w.text.startswith("meet"))
    assert last_sentence_start > 2 * 4.5 - 3.0
    assert transcript.duration_s == pytest.approx(decode(material["paused"]).duration, abs=0.1)


async def test_video_from_fsspec_storage_is_transcribed_from_its_soundtrack(engine, material):
    credentials = fresh_credentials(engine)
    uri = "memory://stt-inputs/talk.mp4"
    with fsspec.open(uri, "wb") as handle:
        handle.write(material["video"].read_bytes())

    @flow
    async def transcribe(path: str):
        return await speech_to_text(path, credentials, language_code="en")

    transcript = await transcribe(uri)

    assert wer(ALL_TEXT, transcript.text) <= 0.15
    assert transcript.source == uri


async def test_diarization_labels_two_speakers(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    async def transcribe(path: str):
        return await speech_to_text(
            path, credentials, language_code="en", diarize=True, num_speakers=2
        )

    transcript = await transcribe(str(material["two_voices"]))

    assert wer(f"{SENTENCES[0]} {SENTENCES[2]}", transcript.text) <= 0.15
    assert len(transcript.speakers) == 2
    rachel, adam = transcript.speakers
    first_count = len(SENTENCES[0].split())
    assert {w.speaker_id for w in transcript.words[:first_count]} == {rachel}
    assert {w.speaker_id for w in transcript.words[first_count:]} == {adam}


async def test_a_file_that_is_not_media_fails_once_with_a_media_error(engine, tmp_path):
    credentials = fresh_credentials(engine)
    bogus = tmp_path / "notes.wav"
    bogus.write_text("these are notes, not audio\n" * 20)

    @flow
    async def transcribe(path: str):
        state = await speech_to_text(path, credentials, return_state=True)
        return await outcome(state)

    result = await transcribe(str(bogus))

    assert isinstance(result.error, MediaError)
    assert "notes.wav" in str(result.error)
    assert (await task_run_by_id(result.task_run_id)).run_count == 1


async def test_realtime_transcription_has_text_and_timed_words(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    async def live(path: str):
        return await realtime_speech_to_text(
            path, credentials, language_code="en", commit_every_seconds=5.0
        )

    transcript = await live(str(material["paused"]))

    assert wer(ALL_TEXT, transcript.text) <= 0.15
    assert transcript.duration_s == pytest.approx(decode(material["paused"]).duration, abs=0.1)
    assert_word_timings_are_sane(transcript, transcript.duration_s)
    # Timings run from the start of the file across commits, not from each segment.
    assert transcript.words[-1].start > 5.0


def test_realtime_transcription_from_a_sync_flow(engine, material):
    credentials = fresh_credentials(engine)

    @flow
    def live(path: str):
        return realtime_speech_to_text.submit(path, credentials, language_code="en").result()

    transcript = live(str(material["sentence2"]))

    assert wer(SENTENCES[2], transcript.text) <= 0.15
