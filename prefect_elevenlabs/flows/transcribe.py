"""The ``transcribe`` flow: media in, transcripts and subtitles out, one set per input."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from .. import subtitles
from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError
from ..results import Transcript, Usage
from ..tasks import _storage
from ..tasks._policy import run_logger
from ..tasks.artifacts import apublish_transcript, publish_outputs, publish_usage
from ..tasks.speech_to_text import speech_to_text
from ._artifacts import publish_summary
from ._params import TranscriptFormat, TranscriptionOptions
from ._runtime import (
    call_task,
    expand_inputs,
    outcome_of,
    prepare_output,
    resolve_credentials,
    submit_bounded,
    task_runner,
    unique_stems,
)
from ._summary import ItemOutcome, RunSummary, describe_error, raise_for_failures

__all__ = ["ALL_FORMATS", "transcribe", "transcribe_one", "write_transcript"]

ALL_FORMATS: tuple[TranscriptFormat, ...] = ("json", "srt", "vtt", "txt")


def _render(transcript: Transcript, fmt: TranscriptFormat) -> str:
    if fmt == "json":
        return transcript.model_dump_json(indent=2) + "\n"
    # Speaker labels only tell something apart when there is more than one speaker.
    labelled = len(transcript.speakers) > 1
    if fmt == "srt":
        return transcript.to_srt(speaker_labels=labelled)
    if fmt == "vtt":
        return transcript.to_vtt(speaker_labels=labelled)
    words = [w.model_dump() for w in transcript.words]
    return subtitles.to_txt(words, include_speakers=labelled) if words else transcript.to_txt()


def write_transcript(
    transcript: Transcript, stem: str, formats: list[TranscriptFormat], output_dir: str
) -> list[str]:
    """Writes ``<stem>.<format>`` for each format into ``output_dir``; returns their URIs.

    ``json`` is the whole :class:`~prefect_elevenlabs.results.Transcript` (text, language,
    words with timings and speakers), ``srt``/``vtt`` subtitles, ``txt`` the plain text, one
    line per utterance. With two or more speakers, cues and lines name their speaker.
    """
    target = _storage.OutputDir(output_dir)
    written = []
    for fmt in formats:
        name = f"{stem}.{fmt}"
        with target.staged(name) as staged:
            staged.write_text(_render(transcript, fmt), encoding="utf-8")
        written.append(target.uri_of(name))
    return written


@task(name="Transcribe media file", task_run_name="transcribe {stem}", cache_policy=NO_CACHE)
async def transcribe_one(
    media: str,
    stem: str,
    credentials: ElevenLabsCredentials,
    options: TranscriptionOptions,
    formats: list[TranscriptFormat],
    output_dir: str,
) -> ItemOutcome:
    """Transcribes one file (cached) and writes its transcript files and artifact."""
    transcript, cached = await call_task(
        speech_to_text,
        media,
        credentials,
        model_id=options.model_id,
        language_code=options.language_code,
        diarize=options.diarize,
        num_speakers=options.num_speakers,
        keyterms=options.keyterms or None,
        tag_audio_events=options.tag_audio_events or None,
    )
    outputs = write_transcript(transcript, stem, formats, output_dir)
    await apublish_transcript(
        transcript, key=f"transcript {stem}", description=f"Transcript of `{media}`"
    )
    return ItemOutcome(
        id=media,
        outputs=outputs,
        duration_s=transcript.duration_s,
        details={
            "stem": stem,
            "language": transcript.language,
            "words": len(transcript.words),
            "speakers": transcript.speakers,
            "cached": cached,
            "request_id": transcript.request_id,
        },
    )


@flow(name="Transcribe media", task_runner=task_runner())
def transcribe(
    inputs: list[str],
    output_dir: str = "transcripts",
    formats: list[TranscriptFormat] | None = None,
    options: TranscriptionOptions | None = None,
    max_concurrency: int = 2,
    credentials: ElevenLabsCredentials | None = None,
) -> RunSummary:
    """Transcribes audio and video files into transcripts and subtitles.

    Each input (a path, a folder of media, a glob such as ``talks/*.mp4``, or an fsspec URL)
    gets ``<stem>.json`` (the transcript with word timings and speakers), ``<stem>.srt``,
    ``<stem>.vtt`` and ``<stem>.txt`` in ``output_dir`` (choose with ``formats``). Long media is
    cut at pauses, transcribed piece by piece and stitched by the task; results are cached on
    the file's content, so a re-run costs nothing. A file that fails does not stop the others;
    the run fails at the end naming every failed input. Artifacts: a transcript per input, a
    table of outputs, usage.

    Args:
        inputs: Files, folders, globs or fsspec URLs of audio or video.
        output_dir: A folder or fsspec URL for the transcripts.
        formats: Any of json, srt, vtt, txt; all four when empty.
        options: Model, language, diarization, number of speakers, key terms.
        max_concurrency: Files transcribed at once.
        credentials: ElevenLabs credentials; empty loads the block named by
            ELEVENLABS_CREDENTIALS_BLOCK, else reads ELEVENLABS_API_KEY/ELEVENLABS_BASE_URL.

    Returns:
        A summary with each input's status and files.

    Example:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.flows import TranscriptionOptions, transcribe

        summary = transcribe(
            ["interviews/*.mp3"],
            output_dir="transcripts",
            formats=["srt", "txt"],
            options=TranscriptionOptions(diarize=True, num_speakers=2),
            credentials=ElevenLabsCredentials(base_url="local"),
        )
        ```
    """
    logger = run_logger()
    credentials = resolve_credentials(credentials)
    options = options or TranscriptionOptions()
    chosen: list[TranscriptFormat] = list(dict.fromkeys(formats or ALL_FORMATS))
    if max_concurrency < 1:
        raise InvalidRequestError(
            f"max_concurrency must be 1 or more, got {max_concurrency}", param="max_concurrency"
        )
    if isinstance(inputs, str):
        inputs = [inputs]
    expanded = expand_inputs(inputs)
    if not expanded:
        raise InvalidRequestError("no inputs given: pass files, folders, globs or URLs")
    out = prepare_output(output_dir)

    outcomes: dict[str, ItemOutcome] = {}
    readable = [uri for uri, problem in expanded if problem is None]
    for uri, problem in expanded:
        if problem is not None:
            outcomes[uri] = ItemOutcome(id=uri, status="failed", error=problem)
            logger.error("%s %s", uri, problem)
    stems = unique_stems(readable)
    logger.info("transcribing %d file(s) into %s", len(readable), out.uri_of(""))
    starts = [
        (
            lambda uri=uri, stem=stem: transcribe_one.submit(
                uri, stem, credentials, options, chosen, output_dir
            )
        )
        for uri, stem in zip(readable, stems, strict=True)
    ]
    batch = submit_bounded(
        starts, max_concurrency, progress_key="transcription-progress", description="Transcribing"
    )
    for done, (index, future) in enumerate(batch, start=1):
        uri = readable[index]
        outcome, error = outcome_of(future)
        if outcome is None:
            reason = describe_error(error) if isinstance(error, BaseException) else str(error)
            outcome = ItemOutcome(id=uri, status="failed", error=reason)
            logger.error("[%d/%d] %s failed: %s", done, len(readable), uri, reason)
        else:
            logger.info(
                "[%d/%d] %s -> %s (%s, %.1f s%s)",
                done,
                len(readable),
                uri,
                ", ".join(outcome.outputs),
                outcome.details.get("language") or "?",
                outcome.duration_s or 0.0,
                ", cached" if outcome.details.get("cached") else "",
            )
        outcomes[uri] = outcome
    for index, skipped in batch.skipped(readable):
        outcomes[readable[index]] = skipped

    summary = RunSummary(
        flow="transcribe",
        output_dir=out.uri_of(""),
        items=[outcomes[uri] for uri, _ in expanded],
    )
    publish_summary(summary, key="transcription-summary", title="Transcription")
    publish_outputs(summary.outputs, key="transcription-outputs")
    publish_usage(_usage(summary), key="transcription-usage")
    return raise_for_failures(summary, "inputs", stopped_by=batch.stopped_by)


def _usage(summary: RunSummary) -> list[Any]:
    return [
        Usage(endpoint="POST /v1/speech-to-text", request_id=item.details.get("request_id"))
        for item in summary.succeeded
        if not item.details.get("cached")
    ]
