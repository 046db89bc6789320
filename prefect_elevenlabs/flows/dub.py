"""The ``dub`` flow: a video or audio file in, the same media spoken in other languages out.

Two strategies:

``compose`` (the default) builds the dub step by step from the other tasks, so every step is
visible, cached and replaceable: speech to text with word timings and speakers, segments of
speech, one translation call per language through a :class:`~prefect_elevenlabs.translators.
Translator`, speech per segment in a voice per speaker, each fitted to its slot, mixed over the
original (ducked), muxed back into the video, plus subtitles in the target language.

``dubbing_api`` hands the media to ElevenLabs' dubbing service, one job per language, polls
until done, downloads the result and its subtitles, and muxes audio into the video if needed.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from prefect.cache_policies import INPUTS, NO_CACHE
from prefect.futures import PrefectFuture
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from .. import subtitles
from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError, MediaError, NotFoundError, QuotaExceededError
from ..media import MediaInfo, ffmpeg_binary
from ..results import AudioAsset, TimedWord, Transcript, VoiceInfo
from ..tasks import _storage
from ..tasks._policy import generation_cache, retry_unless_permanent, run_logger
from ..tasks.artifacts import apublish_transcript, publish_outputs, publish_usage
from ..tasks.dubbing import create_dubbing, download_dubbing, wait_for_dubbing
from ..tasks.media import (
    convert_audio,
    extract_audio,
    fit_to_duration,
    media_input,
    mix_over,
    mux_into_video,
    probe_media,
)
from ..tasks.speech_to_text import MediaFingerprint, speech_to_text
from ..tasks.text_to_speech import DEFAULT_VOICE_ID, text_to_speech_with_timestamps
from ..tasks.voices import clone_voice
from ..translators import OpenAICompatibleTranslator, Translator, default_translator
from ..translators import translator_identity as _translator_identity
from ._artifacts import publish_summary
from ._params import DubbingApiOptions, MixOptions, SegmentEdit
from ._runtime import (
    call_task,
    outcome_of,
    prepare_output,
    resolve_credentials,
    result_of,
    stem_of,
    submit_bounded,
    task_runner,
)
from ._summary import (
    NOT_STARTED_FOR_QUOTA,
    ItemOutcome,
    RunSummary,
    describe_error,
    raise_for_failures,
)
from .transcribe import write_transcript

__all__ = [
    "DEFAULT_SPEAKER_VOICES",
    "DubSegment",
    "VoicedSegment",
    "dub",
    "plan_segments",
    "translate_segments",
    "voice_segment",
]

DEFAULT_SPEAKER_VOICES = (
    DEFAULT_VOICE_ID,  # Rachel
    "pNInz6obpgDQGcFmaJgB",  # Adam
    "EXAVITQu4vr4xnSDxMaL",  # Bella
    "ErXwobaYiN019PkySvjV",  # Antoni
    "AZnzlk1XvdvUeBnXmlld",  # Domi
    "TxGEqnHWrfWFTfGW9XjX",  # Josh
)
"""Premade voices handed out to speakers in order when no ``voice_map`` names one."""

SEGMENT_FORMAT = "mp3_44100_128"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_SAMPLE_SECONDS = 90.0


class DubSegment(BaseModel):
    """One stretch of speech to dub: where it is, who says it, what to say instead."""

    index: int
    start: float
    end: float
    speaker: str | None = None
    source_text: str
    text: str = ""
    voice_id: str | None = None
    edited: bool = Field(default=False, description="The text came from a SegmentEdit.")


class VoicedSegment(BaseModel):
    """A dubbed segment's audio, fitted to its slot, with the spoken words' timings."""

    index: int
    audio_uri: str
    start: float
    duration: float
    tempo: float = 1.0
    words: list[TimedWord] = Field(default_factory=list)
    characters: int = 0
    cached: bool = False
    speech: AudioAsset | None = None


def plan_segments(
    transcript: Transcript, silence_s: float = 0.6, max_segment_s: float = 12.0
) -> list[DubSegment]:
    """Cuts a transcript into utterances: at sentence ends, speaker changes and pauses."""
    groups = subtitles.segments(
        [w.model_dump() for w in transcript.words],
        segment_on_silence_longer_than_s=silence_s,
        max_segment_duration_s=max_segment_s,
    )
    return [
        DubSegment(
            index=index,
            start=float(group["start_time"]),
            end=float(group["end_time"]),
            speaker=group["speaker"],
            source_text=group["text"],
        )
        for index, group in enumerate(groups)
        if group["text"].strip()
    ]


def _check_languages(languages: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(lang.strip() for lang in languages if lang and lang.strip()))
    if not chosen:
        raise InvalidRequestError(
            "target_languages is empty: name at least one language, e.g. ['es']",
            param="target_languages",
        )
    bad = [lang for lang in chosen if not _LANGUAGE.match(lang)]
    if bad:
        raise InvalidRequestError(
            f"{', '.join(map(repr, bad))} is not a language code: use ISO 639-1 such as 'es', "
            "'fr' or 'de'",
            param="target_languages",
        )
    return chosen


def _voice_for(speakers: list[str | None], voice_map: dict[str, str]) -> dict[str | None, str]:
    """A voice per speaker: ``voice_map``'s, else its ``"*"`` entry, else premade voices in turn."""
    fallback = voice_map.get("*")
    pool = [v for v in DEFAULT_SPEAKER_VOICES if v not in voice_map.values()]
    pool = pool or list(DEFAULT_SPEAKER_VOICES)
    assigned: dict[str | None, str] = {}
    handed_out = 0
    for speaker in speakers:
        if speaker is not None and speaker in voice_map:
            assigned[speaker] = voice_map[speaker]
        elif fallback:
            assigned[speaker] = fallback
        else:
            assigned[speaker] = pool[handed_out % len(pool)]
            handed_out += 1
    return assigned


# --------------------------------------------------------------------------------------------
# Tasks of the compose strategy


@task(
    name="Translate segments",
    task_run_name="translate {source}->{target}",
    cache_policy=INPUTS - "translator",
    persist_result=True,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_permanent,
)
async def translate_segments(
    texts: list[str],
    source: str | None,
    target: str,
    translator: Any,
    translator_key: str,
) -> list[str]:
    """Translates all segment texts of one language in one go (cached on the texts).

    ``translator_key`` (from ``translator_identity``) stands for the translator in the cache
    key, so a different model or endpoint translates again while the same one does not.
    """
    if not texts:
        return []
    translated = await translator.translate(texts, source, target)
    if len(translated) != len(texts):
        raise InvalidRequestError(
            f"the translator returned {len(translated)} texts for {len(texts)} segments"
        )
    return [str(t) for t in translated]


def _speaker_sample(local: Path, spans: list[tuple[float, float]], dest: Path) -> Path:
    """Writes the given spans of ``local``'s audio, joined, as a mono WAV sample."""
    chosen: list[tuple[float, float]] = []
    total = 0.0
    for start, end in spans:
        if total >= _SAMPLE_SECONDS:
            break
        chosen.append((start, end))
        total += end - start
    expression = "+".join(f"between(t,{s:.3f},{e:.3f})" for s, e in chosen)
    command = [
        ffmpeg_binary(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(local),
        "-vn",
        "-af",
        f"aselect='{expression}',asetpts=N/SR/TB",
        "-ac",
        "1",
        "-ar",
        "44100",
        str(dest),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MediaError(
            f"cutting a voice sample from {local.name} failed: {result.stderr.strip()[-400:]}",
            status="ffmpeg_failed",
        )
    return dest


@task(name="Cut speaker sample", task_run_name="sample {speaker}", cache_policy=NO_CACHE)
async def cut_speaker_sample(
    media: str, speaker: str, spans: list[tuple[float, float]], output_dir: str
) -> str:
    """Cuts one speaker's own speech out of ``media`` into a WAV sample for cloning."""
    target = _storage.OutputDir(output_dir)
    digest = _storage.content_hash(media, spans, length=10)
    name = f"sample-{_storage.slug(speaker, 24)}-{digest}.wav"
    with media_input(media) as local, target.staged(name) as staged:
        await asyncio.to_thread(_speaker_sample, local, spans, staged)
    return target.uri_of(name)


@task(
    name="Clone speaker voice",
    task_run_name="clone {name}",
    cache_policy=generation_cache() + MediaFingerprint(parameter="sample"),
)
async def clone_speaker(sample: str, name: str, credentials: ElevenLabsCredentials) -> VoiceInfo:
    """Clones a voice from a speaker sample; cached on the sample, so a re-run reuses it."""
    voice: VoiceInfo = await clone_voice(
        name, [sample], credentials, description="Cloned from the source media for dubbing"
    )
    return voice


@task(
    name="Voice segment", task_run_name="voice {language} #{segment.index}", cache_policy=NO_CACHE
)
async def voice_segment(
    segment: DubSegment,
    language: str,
    credentials: ElevenLabsCredentials,
    slot_end: float,
    work_dir: str,
    mix: MixOptions,
) -> VoicedSegment:
    """Speaks one translated segment and fits it to its place in the timeline.

    The speech (cached on text, voice, model and language) keeps its natural pace when it fits
    between the segment's start and ``slot_end`` (the next segment's start); shorter speech is
    stretched towards the original's length (down to ``min_tempo``), longer speech is sped up
    (up to ``max_tempo``) to end by ``slot_end``.
    """
    speech, cached = await call_task(
        text_to_speech_with_timestamps,
        segment.text,
        credentials,
        voice_id=segment.voice_id or DEFAULT_VOICE_ID,
        model_id=mix.model_id,
        output_format=SEGMENT_FORMAT,
        language_code=language,
        output_dir=f"{work_dir}/speech",
    )
    natural = speech.audio.duration_s or 0.0
    available = max(0.2, slot_end - segment.start)
    wanted = min(max(natural, min(segment.end - segment.start, available)), available)
    audio_uri, tempo, duration = speech.audio.uri, 1.0, natural
    if natural > 0 and abs(wanted - natural) > 0.05:
        fitted = await fit_to_duration(
            speech.audio.uri,
            wanted,
            output_dir=f"{work_dir}/fitted",
            min_tempo=mix.min_tempo,
            max_tempo=mix.max_tempo,
            pad=False,
        )
        audio_uri, tempo = fitted.audio.uri, fitted.tempo
        duration = fitted.audio.duration_s or wanted
    words = [
        w.model_copy(
            update={
                "start": segment.start + w.start / tempo,
                "end": segment.start + w.end / tempo,
                "speaker_id": segment.speaker,
            }
        )
        for w in speech.transcript.words
    ]
    return VoicedSegment(
        index=segment.index,
        audio_uri=audio_uri,
        start=segment.start,
        duration=duration,
        tempo=tempo,
        words=words,
        characters=0 if cached else speech.audio.characters,
        cached=cached,
        speech=speech.audio,
    )


def _write_text(target: _storage.OutputDir, name: str, text: str) -> str:
    with target.staged(name) as staged:
        staged.write_text(text, encoding="utf-8")
    return target.uri_of(name)


@task(name="Assemble dub", task_run_name="assemble {language}", cache_policy=NO_CACHE)
async def assemble_language(
    media: str,
    info: MediaInfo,
    stem: str,
    language: str,
    segments: list[DubSegment],
    voiced: list[VoicedSegment],
    background: str,
    output_dir: str,
    work_dir: str,
    mix: MixOptions,
    subtitle_formats: list[Literal["srt", "vtt"]],
) -> ItemOutcome:
    """Mixes one language's segments over the original, writes subtitles and the final media."""
    target = _storage.OutputDir(output_dir)
    voiced = sorted(voiced, key=lambda v: v.index)
    words = [w for v in voiced for w in v.words]
    several_speakers = len({s.speaker for s in segments}) > 1
    cues = subtitles.build_cues([w.model_dump() for w in words], speaker_labels=several_speakers)
    outputs: list[str] = []
    subtitle_uris: dict[str, str] = {}
    for fmt in subtitle_formats:
        text = subtitles.to_srt(cues) if fmt == "srt" else subtitles.to_vtt(cues)
        subtitle_uris[fmt] = _write_text(target, f"{stem}.{language}.{fmt}", text)
    mixed = await mix_over(
        background,
        [(v.audio_uri, v.start) for v in voiced],
        output_dir=f"{work_dir}/mix",
        filename=f"{stem}.{language}.wav",
        duck_db=mix.duck_db,
        background_gain_db=mix.background_gain_db,
    )
    if info.has_video:
        container = Path(str(info.path)).suffix.lstrip(".").lower() or "mp4"
        container = container if container in ("mp4", "m4v", "mov", "mkv", "webm") else "mp4"
        final = await mux_into_video(
            media,
            mixed.uri,
            output_dir=output_dir,
            filename=f"{stem}.{language}.{container}",
            subtitles=subtitle_uris.get("srt") or subtitle_uris.get("vtt"),
            subtitle_language=language,
            audio_language=language,
        )
        media_uri, duration = final.uri, final.duration_s
    else:
        converted = await convert_audio(
            mixed.uri, "mp3_44100_128", output_dir=output_dir, filename=f"{stem}.{language}.mp3"
        )
        media_uri, duration = converted.uri, converted.duration_s
    outputs.append(media_uri)
    outputs.extend(subtitle_uris[fmt] for fmt in subtitle_formats)
    by_index = {v.index: v for v in voiced}
    plan = [
        {
            **s.model_dump(),
            "tempo": round(by_index[s.index].tempo, 3) if s.index in by_index else None,
        }
        for s in segments
    ]
    outputs.append(
        _write_text(
            target,
            f"{stem}.{language}.segments.json",
            json.dumps(
                {"language": language, "media": media, "segments": plan},
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
        )
    )
    return ItemOutcome(
        id=language,
        outputs=outputs,
        characters=sum(v.characters for v in voiced),
        duration_s=duration,
        details={
            "segments": len(segments),
            "respoken": sum(1 for v in voiced if not v.cached),
            "clamped": sum(1 for v in voiced if v.tempo >= mix.max_tempo - 1e-6),
            "speech": [v.speech.model_dump(mode="json") for v in voiced if v.speech is not None],
        },
    )


# --------------------------------------------------------------------------------------------
# Task of the dubbing_api strategy


@task(name="Dub with the dubbing service", task_run_name="dub {language}", cache_policy=NO_CACHE)
async def dub_with_service(
    media: str,
    info: MediaInfo,
    stem: str,
    language: str,
    source_language: str | None,
    credentials: ElevenLabsCredentials,
    options: DubbingApiOptions,
    output_dir: str,
    subtitle_formats: list[Literal["srt", "vtt"]],
) -> ItemOutcome:
    """Creates a dubbing job for one language, waits for it and downloads the result."""
    job = await create_dubbing(
        media,
        language,
        credentials,
        source_lang=source_language or "auto",
        num_speakers=options.num_speakers,
        name=f"{stem} ({language})",
        drop_background_audio=options.drop_background_audio,
        highest_resolution=options.highest_resolution,
        watermark=options.watermark,
    )
    await wait_for_dubbing(
        job.dubbing_id,
        credentials,
        timeout_seconds=options.timeout_s,
        poll_interval_seconds=options.poll_interval_s,
    )
    wants_subtitles = bool(subtitle_formats)
    dubbed = await download_dubbing(
        job.dubbing_id,
        language,
        credentials,
        output_dir=output_dir,
        subtitles_format="srt" if wants_subtitles else None,
        filename=f"{stem}.{language}",
    )
    target = _storage.OutputDir(output_dir)
    outputs = [dubbed.media.uri]
    media_uri = dubbed.media.uri
    if info.has_video and not media_uri.lower().endswith((".mp4", ".mov", ".mkv", ".webm")):
        # An audio-only result for a video: put it back under the picture.
        final = await mux_into_video(
            media,
            media_uri,
            output_dir=output_dir,
            filename=f"{stem}.{language}.mp4",
            subtitles=dubbed.subtitles_uri,
            subtitle_language=language,
            audio_language=language,
        )
        outputs = [final.uri, media_uri]
    if dubbed.subtitles_uri:
        if "srt" in subtitle_formats:
            outputs.append(dubbed.subtitles_uri)
        if "vtt" in subtitle_formats:
            with _storage.local_copy(dubbed.subtitles_uri) as local:
                cues = subtitles.parse_srt(Path(local).read_text(encoding="utf-8"))
            outputs.append(_write_text(target, f"{stem}.{language}.vtt", subtitles.to_vtt(cues)))
    return ItemOutcome(
        id=language,
        outputs=outputs,
        characters=dubbed.media.characters,
        duration_s=dubbed.media.duration_s,
        details={"dubbing_id": job.dubbing_id, "speech": [dubbed.media.model_dump(mode="json")]},
    )


# --------------------------------------------------------------------------------------------
# The flow


@flow(name="Dub media", task_runner=task_runner())
def dub(
    media: str,
    target_languages: list[str],
    output_dir: str = "dubbed",
    strategy: Literal["compose", "dubbing_api"] = "compose",
    source_language: str | None = None,
    num_speakers: int | None = None,
    voice_map: dict[str, str] | None = None,
    clone_speakers: bool = False,
    # Any Translator works from Python; the UI offers the saved translator blocks.
    translator: OpenAICompatibleTranslator | SkipJsonSchema[Translator] | None = None,
    segment_edits: list[SegmentEdit] | None = None,
    mix: MixOptions | None = None,
    dubbing_api: DubbingApiOptions | None = None,
    subtitle_formats: list[Literal["srt", "vtt"]] | None = None,
    max_concurrency: int = 4,
    credentials: ElevenLabsCredentials | None = None,
) -> RunSummary:
    """Dubs a video or audio file into one or more languages, with subtitles.

    Outputs per language in ``output_dir``: ``<stem>.<lang>.mp4`` (the video with the dubbed
    audio and a subtitle track; ``.mp3`` for audio input), ``<stem>.<lang>.srt`` and ``.vtt``;
    for ``compose`` also ``<stem>.<lang>.segments.json`` (every segment's timing, speaker,
    voice, original and spoken text) and ``<stem>.transcript.json`` (the source transcript).

    ``compose`` transcribes with speakers, cuts the speech into segments, translates them all
    with ``translator`` (the local engine's Apertium when the credentials are local; otherwise
    pass one, e.g. an ``OpenAICompatibleTranslator``), speaks each segment with the speaker's
    voice (``voice_map`` such as ``{"speaker_0": "<voice id>", "*": "<fallback>"}``, or
    ``clone_speakers=True`` to clone each speaker from their own audio, else premade voices),
    fits each to its slot, mixes them over the ducked original and muxes the result into the
    video. Speech is cached per segment on its text, voice, model and language, so correcting
    one segment with ``segment_edits`` re-speaks that segment only.

    ``dubbing_api`` runs ElevenLabs' dubbing service: one job per language, polled until done
    (``dubbing_api.timeout_s``), then downloaded with its subtitles.

    A language that fails does not stop the others; the run fails at the end naming them.

    Args:
        media: A video or audio file (path or fsspec URL).
        target_languages: ISO 639-1 codes of the dubs, e.g. ["es", "fr"].
        output_dir: A folder or fsspec URL for the results.
        strategy: "compose" (step by step) or "dubbing_api" (the dubbing service).
        source_language: The spoken language; detected when empty.
        num_speakers: Speakers in the media (1-32); detected when empty.
        voice_map: Voice id per speaker id ("speaker_0"...), "*" for everyone else (compose).
        clone_speakers: Clone each speaker's voice from the media (compose).
        translator: Translates segments (compose); the local engine's when empty and local.
        segment_edits: Corrected translations of single segments (compose).
        mix: Model, ducking and tempo limits (compose).
        dubbing_api: Service settings, polling interval and timeout (dubbing_api).
        subtitle_formats: Any of srt, vtt; both when empty.
        max_concurrency: Segments (compose) or jobs (dubbing_api) in flight at once.
        credentials: ElevenLabs credentials; empty loads the block named by
            ELEVENLABS_CREDENTIALS_BLOCK, else reads ELEVENLABS_API_KEY/ELEVENLABS_BASE_URL.

    Returns:
        A summary with one item per language.

    Example:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.flows import dub

        summary = dub(
            "talk.mp4",
            ["es"],
            output_dir="dubbed",
            credentials=ElevenLabsCredentials(base_url="local"),
        )
        print(summary.items[0].outputs)  # ['.../talk.es.mp4', '.../talk.es.srt', ...]
        ```
    """
    credentials = resolve_credentials(credentials)
    languages = _check_languages(target_languages)
    if max_concurrency < 1:
        raise InvalidRequestError(
            f"max_concurrency must be 1 or more, got {max_concurrency}", param="max_concurrency"
        )
    formats: list[Literal["srt", "vtt"]] = list(dict.fromkeys(subtitle_formats or ("srt", "vtt")))
    prepare_output(output_dir)
    stem = stem_of(media)
    info: MediaInfo = result_of(probe_media.submit(media))
    if not info.has_audio:
        raise MediaError(f"{media} has no audio to dub", status="unsupported_media")
    if strategy == "dubbing_api":
        summary, stopped_by = _dub_with_service(
            media,
            info,
            stem,
            languages,
            source_language,
            credentials,
            dubbing_api or DubbingApiOptions(num_speakers=num_speakers or 0),
            output_dir,
            formats,
            max_concurrency,
        )
    elif strategy == "compose":
        summary, stopped_by = _compose(
            media=media,
            info=info,
            stem=stem,
            languages=languages,
            source_language=source_language,
            num_speakers=num_speakers,
            voice_map=dict(voice_map or {}),
            clone_speakers=clone_speakers,
            translator=translator,
            edits=list(segment_edits or []),
            mix=mix or MixOptions(),
            formats=formats,
            output_dir=output_dir,
            max_concurrency=max_concurrency,
            credentials=credentials,
        )
    else:
        raise InvalidRequestError(
            f"strategy must be 'compose' or 'dubbing_api', got {strategy!r}", param="strategy"
        )
    publish_summary(summary, key="dubbing-summary", title="Dubbing")
    publish_outputs(summary.outputs, key="dubbing-outputs")
    publish_usage(
        [AudioAsset.model_validate(a) for i in summary.items for a in i.details.get("speech", [])],
        key="dubbing-usage",
    )
    return raise_for_failures(summary, "languages", stopped_by=stopped_by)


def _failed(language: str, error: BaseException | str | None) -> ItemOutcome:
    reason = describe_error(error) if isinstance(error, BaseException) else str(error)
    run_logger().error("%s failed: %s", language, reason)
    return ItemOutcome(id=language, status="failed", error=reason)


def _dub_with_service(
    media: str,
    info: MediaInfo,
    stem: str,
    languages: list[str],
    source_language: str | None,
    credentials: ElevenLabsCredentials,
    options: DubbingApiOptions,
    output_dir: str,
    formats: list[Literal["srt", "vtt"]],
    max_concurrency: int,
) -> tuple[RunSummary, QuotaExceededError | None]:
    starts = [
        (
            lambda lang=lang: dub_with_service.submit(
                media, info, stem, lang, source_language, credentials, options, output_dir, formats
            )
        )
        for lang in languages
    ]
    outcomes: dict[str, ItemOutcome] = {}
    batch = submit_bounded(
        starts, max_concurrency, progress_key="dubbing-progress", description="Dubbing"
    )
    for index, future in batch:
        outcome, error = outcome_of(future)
        outcomes[languages[index]] = outcome or _failed(languages[index], error)
        if outcome is not None:
            run_logger().info("%s -> %s", languages[index], ", ".join(outcome.outputs))
    for index, skipped in batch.skipped(languages):
        outcomes[languages[index]] = skipped
    summary = RunSummary(
        flow="dub",
        output_dir=_storage.OutputDir(output_dir).uri_of(""),
        items=[outcomes[lang] for lang in languages],
    )
    return summary, batch.stopped_by


def _translator_for(translator: Any, credentials: ElevenLabsCredentials) -> tuple[Translator, str]:
    chosen = translator or run_coro_as_sync(default_translator(credentials))
    if not callable(getattr(chosen, "translate", None)):
        raise InvalidRequestError(
            "translator must have an async translate(texts, source, target) method",
            param="translator",
        )
    return chosen, _translator_identity(chosen)


def _apply_edits(
    language: str, segments: list[DubSegment], translated: list[str], edits: list[SegmentEdit]
) -> list[DubSegment]:
    texts = list(translated)
    edited: set[int] = set()
    for edit in edits:
        if edit.language != language:
            continue
        if edit.index >= len(segments):
            raise InvalidRequestError(
                f"segment_edits: there is no segment {edit.index} in {language} "
                f"(segments are numbered 0 to {len(segments) - 1})",
                param="segment_edits",
            )
        texts[edit.index] = edit.text
        edited.add(edit.index)
    return [
        s.model_copy(update={"text": t.strip() or s.source_text, "edited": s.index in edited})
        for s, t in zip(segments, texts, strict=True)
    ]


def _compose(
    *,
    media: str,
    info: MediaInfo,
    stem: str,
    languages: list[str],
    source_language: str | None,
    num_speakers: int | None,
    voice_map: dict[str, str],
    clone_speakers: bool,
    translator: Any,
    edits: list[SegmentEdit],
    mix: MixOptions,
    formats: list[Literal["srt", "vtt"]],
    output_dir: str,
    max_concurrency: int,
    credentials: ElevenLabsCredentials,
) -> tuple[RunSummary, QuotaExceededError | None]:
    logger = run_logger()
    unknown = sorted({e.language for e in edits} - set(languages))
    if unknown:
        raise InvalidRequestError(
            f"segment_edits name language(s) {', '.join(unknown)} that are not in "
            f"target_languages {languages}",
            param="segment_edits",
        )
    chosen_translator, translator_key = _translator_for(translator, credentials)
    out = _storage.OutputDir(output_dir)
    work_dir = out.uri_of(f".work/{stem}")

    transcript: Transcript = result_of(
        speech_to_text.submit(
            media,
            credentials,
            language_code=source_language,
            diarize=True,
            num_speakers=num_speakers,
        )
    )
    write_transcript(transcript, f"{stem}.transcript", ["json"], output_dir)
    run_coro_as_sync(
        apublish_transcript(transcript, key=f"dub source {stem}", description=f"`{media}`")
    )
    segments = plan_segments(transcript, mix.segment_silence_s, mix.max_segment_s)
    if not segments:
        raise InvalidRequestError(
            f"no speech was found in {media}: there is nothing to dub", status="no_speech"
        )
    source = source_language or transcript.language
    speakers = list(dict.fromkeys(s.speaker for s in segments))
    logger.info(
        "%d segments from %d speaker(s) in %s (%s, %.1f s)",
        len(segments),
        len(speakers),
        media,
        source or "language unknown",
        info.duration,
    )

    voices = _voice_for(speakers, voice_map)
    if clone_speakers:
        voices.update(
            _clone_voices(media, stem, segments, speakers, voice_map, work_dir, credentials)
        )
    segments = [s.model_copy(update={"voice_id": voices[s.speaker]}) for s in segments]

    background = extract_audio.submit(media, output_dir=work_dir, sample_rate=44100, channels=1)
    translations = {
        lang: translate_segments.submit(
            [s.source_text for s in segments], source, lang, chosen_translator, translator_key
        )
        for lang in languages
    }
    outcomes: dict[str, ItemOutcome] = {}
    planned: dict[str, list[DubSegment]] = {}
    for lang, future in translations.items():
        translated, error = outcome_of(future)
        if translated is None:
            outcomes[lang] = _failed(lang, error)
            continue
        try:
            planned[lang] = _apply_edits(lang, segments, translated, edits)
        except InvalidRequestError as exc:
            outcomes[lang] = _failed(lang, exc)

    jobs = [
        (
            lang,
            seg,
            segments[seg.index + 1].start if seg.index + 1 < len(segments) else info.duration,
        )
        for lang, segs in planned.items()
        for seg in segs
    ]
    starts = [
        (
            lambda lang=lang, seg=seg, slot_end=slot_end: voice_segment.submit(
                seg, lang, credentials, slot_end, f"{work_dir}/{lang}", mix
            )
        )
        for lang, seg, slot_end in jobs
    ]
    voiced: dict[str, list[VoicedSegment]] = {lang: [] for lang in planned}
    problems: dict[str, list[str]] = {lang: [] for lang in planned}
    segments_batch = submit_bounded(
        starts, max_concurrency, progress_key="dubbing-progress", description="Voicing segments"
    )
    for index, future in segments_batch:
        lang, seg, _ = jobs[index]
        result, error = outcome_of(future)
        if result is None:
            reason = describe_error(error) if isinstance(error, BaseException) else str(error)
            problems[lang].append(f"segment {seg.index}: {reason}")
        else:
            voiced[lang].append(result)
    for index in segments_batch.not_started:
        lang, seg, _ = jobs[index]
        problems[lang].append(f"segment {seg.index}: {NOT_STARTED_FOR_QUOTA}")
    try:
        background_uri = result_of(background).uri
    except Exception as exc:
        for lang in planned:
            outcomes.setdefault(lang, _failed(lang, exc))
        background_uri = ""

    finishing: dict[str, PrefectFuture[Any]] = {}
    for lang in planned:
        if lang in outcomes:
            continue
        if problems[lang]:
            outcomes[lang] = _failed(lang, "; ".join(problems[lang]))
            continue
        respoken = sum(1 for v in voiced[lang] if not v.cached)
        logger.info("%s: %d segments voiced, %d newly spoken", lang, len(voiced[lang]), respoken)
        finishing[lang] = assemble_language.submit(
            media,
            info,
            stem,
            lang,
            planned[lang],
            voiced[lang],
            background_uri,
            output_dir,
            f"{work_dir}/{lang}",
            mix,
            formats,
        )
    for lang, finished in finishing.items():
        outcome, error = outcome_of(finished)
        outcomes[lang] = outcome or _failed(lang, error)
        if outcome is not None:
            logger.info("%s -> %s", lang, ", ".join(outcome.outputs))
    summary = RunSummary(
        flow="dub",
        output_dir=out.uri_of(""),
        items=[outcomes[lang] for lang in languages],
        artifacts=[out.uri_of(f"{stem}.transcript.json")],
    )
    return summary, segments_batch.stopped_by


async def _voice_exists(credentials: ElevenLabsCredentials, voice_id: str) -> bool:
    try:
        await credentials.get_client().voices.get(voice_id)
    except NotFoundError:
        return False
    return True


def _clone_voices(
    media: str,
    stem: str,
    segments: list[DubSegment],
    speakers: list[str | None],
    voice_map: dict[str, str],
    work_dir: str,
    credentials: ElevenLabsCredentials,
) -> dict[str | None, str]:
    """Clones every speaker that ``voice_map`` does not name, from their own speech."""
    cloned: dict[str | None, str] = {}
    for speaker in speakers:
        if speaker is not None and speaker in voice_map:
            continue
        label = speaker or "speaker"
        spans = [(s.start, s.end) for s in segments if s.speaker == speaker]
        sample: str = result_of(
            cut_speaker_sample.submit(media, label, spans, f"{work_dir}/samples")
        )
        name = f"{stem} {label}"
        voice: VoiceInfo = result_of(clone_speaker.submit(sample, name, credentials))
        if not run_coro_as_sync(_voice_exists(credentials, voice.voice_id)):
            # A cached clone that was deleted, or that belongs to another account: clone again.
            refreshed = clone_speaker.with_options(refresh_cache=True)
            voice = result_of(refreshed.submit(sample, name, credentials))
        run_logger().info("cloned %s as voice %s", label, voice.voice_id)
        cloned[speaker] = voice.voice_id
    return cloned
