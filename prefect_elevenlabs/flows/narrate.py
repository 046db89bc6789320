"""The ``narrate`` flow: scripts in, loudness-normalised audio files out, one per script id."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, task
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import Field

from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError, MediaError
from ..media import concat, ffmpeg_binary, normalize_loudness, probe
from ..results import AudioAsset
from ..tasks import _audio, _storage
from ..tasks._policy import RETRY_OPTIONS, generation_cache, run_logger
from ..tasks.account import check_budget
from ..tasks.artifacts import publish_outputs, publish_usage
from ..tasks.text_to_speech import (
    DEFAULT_MODEL_ID,
    DEFAULT_OUTPUT_FORMAT,
    DEFAULT_VOICE_ID,
    generate_speech,
    speech_file_name,
)
from ._artifacts import publish_summary
from ._params import ScriptItem, VoiceSettingsInput
from ._runtime import (
    outcome_of,
    prepare_output,
    resolve_credentials,
    result_of,
    submit_bounded,
    task_runner,
)
from ._scripts import load_scripts, markdown_chapters, markdown_to_speech
from ._summary import ItemOutcome, RunSummary, describe_error, raise_for_failures

__all__ = ["join_with_chapters", "narrate", "narrate_script"]

_T = TypeVar("_T")

WORK_DIR_NAME = ".work"
"""Sub-folder of ``output_dir`` holding the raw speech that the task cache refers to."""


class _Speech(ScriptItem):
    """A script with its resolved voice and the parts it is spoken as."""

    parts: list[tuple[str, str, str]] = Field(default_factory=list)  # (name, title, text)
    joined: bool = False


def _plan(item: ScriptItem, chapters: bool) -> _Speech:
    if item.markdown and chapters:
        found = markdown_chapters(item.text)
        if len(found) > 1:
            width = max(2, len(str(len(found))))
            parts = [
                (f"{item.id}-{n:0{width}d}", c.title, c.text)
                for n, c in enumerate(found, start=1)
                if c.text.strip()
            ]
            return _Speech(**item.model_dump(), parts=parts, joined=True)
    text = markdown_to_speech(item.text) if item.markdown else item.text
    return _Speech(**item.model_dump(), parts=[(item.id, item.id, text)])


def _tts_options(
    voice_id: str,
    model_id: str,
    output_format: str,
    voice_settings: dict[str, Any] | None,
    language_code: str | None,
    seed: int | None,
) -> dict[str, Any]:
    return {
        "voice_id": voice_id,
        "model_id": model_id,
        "output_format": output_format,
        "voice_settings": voice_settings,
        "language_code": language_code,
        "seed": seed,
    }


def _characters_to_spend(
    plans: Iterable[_Speech], work: _storage.OutputDir, tts: dict[str, Any]
) -> int:
    """Characters of the parts whose speech is not already in the work folder (the cache)."""
    needed = 0
    for plan in plans:
        options = {**tts, "voice_id": plan.voice_id or tts["voice_id"]}
        for _, _, text in plan.parts:
            if not work.exists(speech_file_name(text, **options)):
                needed += len(text)
    return needed


def _check_budget(
    needed: int, max_characters: int | None, credentials: ElevenLabsCredentials
) -> None:
    """Refuses to start over ``max_characters`` or what the plan has left; free when cached."""
    if needed == 0:
        return
    result_of(check_budget.submit(needed, credentials, max_characters))


# --------------------------------------------------------------------------------------------
# Audio work


def _run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs a coroutine from the script task's worker thread (on a loop of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    return run_coro_as_sync(coroutine)  # called from a running loop: Prefect runs it elsewhere


def _raw_speech(
    text: str, credentials: ElevenLabsCredentials, work_dir: str, options: dict[str, Any]
) -> tuple[AudioAsset, bool]:
    """The raw speech of one text in the work folder: ``(asset, already_there)``.

    The file name is derived from the text and every speech option, and files only appear
    there complete (written under a temporary name, then renamed), so a file that exists is
    the speech of exactly these inputs: reusing it spends nothing.
    """
    work = _storage.OutputDir(work_dir)
    name = speech_file_name(text, **options)
    if work.exists(name):
        with _storage.local_copy(work.uri_of(name)) as local:
            duration, sample_rate = _audio.audio_facts(local, options["output_format"])
            size = local.stat().st_size
        asset = AudioAsset(
            uri=work.uri_of(name),
            format=options["output_format"],
            sample_rate=sample_rate,
            duration_s=duration,
            size_bytes=size,
            characters=0,
            voice_id=options["voice_id"],
            model_id=options["model_id"],
            text=text,
        )
        return asset, True
    spoken = _run_async(generate_speech(text, credentials, output_dir=work_dir, **options))
    assert isinstance(spoken, AudioAsset)
    return spoken, False


def _finished(source: AudioAsset, output_dir: str, name: str, target_lufs: float | None) -> str:
    """Writes ``source`` as ``name`` in ``output_dir``, normalised to ``target_lufs`` if set."""
    final_dir = _storage.OutputDir(output_dir)
    with _storage.local_copy(source.uri) as local, final_dir.staged(name) as staged:
        if target_lufs is None:
            shutil.copyfile(local, staged)
        else:
            normalize_loudness(local, staged, target_lufs=target_lufs)
    return final_dir.uri_of(name)


def _joined_extension(ext: str) -> str:
    return "mp3" if ext == "mp3" else "m4a"


def _output_names(plan: _Speech, output_format: str) -> list[str]:
    """The files a script ends as in ``output_dir``: the joined file first, when joined."""
    ext = _audio.extension(output_format)
    names = [f"{name}.{ext}" for name, _, _ in plan.parts]
    if plan.joined:
        names.insert(0, f"{plan.id}.{_joined_extension(ext)}")
    return names


def _expected_outputs(inputs: dict[str, Any]) -> list[str]:
    plan = _Speech.model_validate(inputs["plan"])
    out = _storage.OutputDir(inputs["output_dir"])
    return [out.uri_of(name) for name in _output_names(plan, inputs["tts"]["output_format"])]


def _chapter_metadata(titles: list[str], durations: list[float]) -> str:
    lines = [";FFMETADATA1"]
    start = 0
    for title, duration in zip(titles, durations, strict=True):
        end = start + max(1, round(duration * 1000))
        safe = title.replace("\\", "\\\\").replace("=", "\\=").replace(";", "\\;")
        safe = safe.replace("#", "\\#").replace("\n", " ")
        lines += ["", "[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}"]
        lines.append(f"title={safe}")
        start = end
    return "\n".join(lines) + "\n"


def join_with_chapters(parts: list[Path], titles: list[str], dest: Path) -> Path:
    """Joins audio files into ``dest`` with one chapter marker per part.

    An ``.mp3`` gets ID3v2 ``CHAP`` frames (with a ``CTOC``), an ``.m4a`` MP4 chapter atoms;
    players and ``ffprobe -show_chapters`` list them by title.
    """
    durations = [probe(p).duration for p in parts]
    with tempfile.TemporaryDirectory(prefix="chapters-") as tmp:
        joined = Path(tmp, f"joined{dest.suffix}")
        concat(parts, joined)
        metadata = Path(tmp, "chapters.txt")
        metadata.write_text(_chapter_metadata(titles, durations), encoding="utf-8")
        out = Path(tmp, f"out{dest.suffix}")
        command = [
            ffmpeg_binary(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(joined),
            "-f",
            "ffmetadata",
            "-i",
            str(metadata),
            "-map",
            "0:a",
            "-map_metadata",
            "1",
            "-map_chapters",
            "1",
            "-c",
            "copy",
        ]
        if dest.suffix == ".mp3":
            command += ["-id3v2_version", "3"]
        command.append(str(out))
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise MediaError(
                f"adding chapter markers to {dest.name} failed: {result.stderr.strip()[-500:]}",
                status="ffmpeg_failed",
            )
        shutil.move(out, dest)
    return dest


@task(
    name="Narrate script",
    task_run_name="narrate {plan.id}",
    cache_policy=generation_cache(_expected_outputs),
    **RETRY_OPTIONS,
)
def narrate_script(
    plan: _Speech,
    credentials: ElevenLabsCredentials,
    tts: dict[str, Any],
    output_dir: str,
    work_dir: str,
    target_lufs: float | None,
) -> ItemOutcome:
    """Speaks one script (each of its chapters, when split) and writes its final files.

    One task run per script, cached on its inputs (not the credentials) while its files exist;
    the raw speech of each part stays in ``work_dir`` and is reused by any later run that asks
    for the same text and settings (another loudness target, a run that crashed part-way).
    A sync task on purpose: Prefect runs it in the task runner's thread with the flow's API
    client, where an async one would build a client (and TLS context) for every script.
    """
    options = {**tts, "voice_id": plan.voice_id or tts["voice_id"]}
    ext = _audio.extension(tts["output_format"])
    final_dir = _storage.OutputDir(output_dir)
    spent = 0
    assets: list[AudioAsset] = []
    outputs: list[str] = []
    for name, _title, text in plan.parts:
        asset, reused = _raw_speech(text, credentials, work_dir, options)
        if not reused:
            spent += asset.characters
        assets.append(asset)
        outputs.append(_finished(asset, output_dir, f"{name}.{ext}", target_lufs))
    duration = sum(a.duration_s or 0.0 for a in assets)
    if plan.joined:
        with contextlib.ExitStack() as stack:
            locals_ = [stack.enter_context(_storage.local_copy(uri)) for uri in outputs]
            name = f"{plan.id}.{_joined_extension(ext)}"
            with final_dir.staged(name) as staged:
                titles = [title for _, title, _ in plan.parts]
                join_with_chapters(list(locals_), titles, staged)
        outputs.insert(0, final_dir.uri_of(name))
    return ItemOutcome(
        id=plan.id,
        outputs=outputs,
        characters=spent,
        duration_s=duration,
        details={
            "voice_id": options["voice_id"],
            "chapters": len(plan.parts) if plan.joined else 0,
            "assets": [a.model_dump(mode="json") for a in assets],
        },
    )


@flow(name="Narrate scripts", task_runner=task_runner())
def narrate(
    scripts: list[ScriptItem] | str,
    output_dir: str = "narration",
    voice_id: str = DEFAULT_VOICE_ID,
    model_id: str = DEFAULT_MODEL_ID,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
    voice_settings: VoiceSettingsInput | None = None,
    language_code: str | None = None,
    seed: int | None = None,
    target_lufs: float | None = -16.0,
    chapters: bool = False,
    max_characters: int | None = None,
    max_concurrency: int = 8,
    credentials: ElevenLabsCredentials | None = None,
) -> RunSummary:
    """Narrates a batch of scripts into audio files named by script id.

    Each script is spoken (long ones split on sentences and stitched), normalised to
    ``target_lufs`` and written as ``<id>.<ext>`` in ``output_dir``. The raw speech is kept in
    ``output_dir/.work`` and cached by Prefect, so a re-run spends no characters and a resumed
    batch only speaks what is missing. A failed script does not stop the others; the run fails
    at the end naming them (``ItemsFailedError``). Running out of credits does stop the batch:
    no further script starts, those in flight finish, and the run raises
    ``QuotaExceededError`` listing what completed and what did not (``completed``,
    ``missing``, ``summary``). A progress artifact advances as scripts finish.

    With ``chapters=True`` a Markdown script is split at its headings: one file per heading
    (``<id>-01.mp3`` ...) plus ``<id>.mp3`` joining them with ID3 chapter markers (for
    ``mp3_*`` output; other formats get an ``<id>.m4a`` with MP4 chapters).

    Args:
        scripts: A list of ``{id, text, voice_id?}``, or a path to a folder of .txt/.md files,
            a CSV file (columns id, text, voice_id?) or a JSONL file (one object per line).
        output_dir: A folder or fsspec URL for the audio files.
        voice_id: The voice for scripts that name none.
        model_id: The TTS model.
        output_format: ElevenLabs output format, e.g. mp3_44100_128 or wav_44100.
        voice_settings: Stability, similarity, style, speed.
        language_code: Force a language (ISO 639-1), for models that support it.
        seed: Best-effort determinism.
        target_lufs: Integrated loudness of the outputs (EBU R128); empty keeps the raw level.
        chapters: Split Markdown scripts at headings and add chapter markers.
        max_characters: Refuse to start when the batch would spend more than this.
        max_concurrency: Scripts in progress at once. Requests in flight are capped by the
            credentials' ``max_concurrency`` (the plan's limit); about twice that here keeps
            the next scripts ready whenever a request slot frees up.
        credentials: ElevenLabs credentials; empty loads the block named by
            ELEVENLABS_CREDENTIALS_BLOCK, else reads ELEVENLABS_API_KEY/ELEVENLABS_BASE_URL.

    Returns:
        A summary with each script's status, files, characters and duration.

    Raises:
        QuotaExceededError: The plan cannot pay for the batch (before anything starts), or its
            credits ran out mid-batch (``completed``, ``missing`` and ``summary`` say where it
            stopped).
        ItemsFailedError: Some scripts failed for other reasons; the rest were written.

    Example:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.flows import narrate

        summary = narrate(
            [{"id": "intro", "text": "Welcome to the show."}],
            output_dir="audio",
            credentials=ElevenLabsCredentials(base_url="local"),
        )
        print(summary.items[0].outputs)  # ['.../audio/intro.mp3']
        ```
    """
    logger = run_logger()
    credentials = resolve_credentials(credentials)
    if max_concurrency < 1:
        raise InvalidRequestError(
            f"max_concurrency must be 1 or more, got {max_concurrency}", param="max_concurrency"
        )
    if target_lufs is not None and _audio.is_raw(output_format):
        raise InvalidRequestError(
            f"{output_format} is headerless audio, which cannot be loudness-normalised: choose "
            "an mp3_*, wav_* or opus_* format, or set target_lufs to None",
            status="invalid_output_format",
            param="output_format",
        )
    items = load_scripts(scripts)
    plans = [_plan(item, chapters) for item in items]
    settings = voice_settings.model_dump(exclude_none=True) if voice_settings else None
    tts = _tts_options(voice_id, model_id, output_format, settings or None, language_code, seed)
    out = prepare_output(output_dir)
    work_dir = out.uri_of(WORK_DIR_NAME)
    work = _storage.OutputDir(work_dir)

    needed = _characters_to_spend(plans, work, tts)
    logger.info(
        "narrating %d script(s) into %s; %d characters to generate (the rest is cached)",
        len(plans),
        out.uri_of(""),
        needed,
    )
    _check_budget(needed, max_characters, credentials)

    starts = [
        (
            lambda plan=plan: narrate_script.submit(
                plan, credentials, tts, output_dir, work_dir, target_lufs
            )
        )
        for plan in plans
    ]
    outcomes: list[ItemOutcome | None] = [None] * len(plans)
    batch = submit_bounded(
        starts, max_concurrency, progress_key="narration-progress", description="Narrating"
    )
    for done, (index, future) in enumerate(batch, start=1):
        plan = plans[index]
        outcome, error = outcome_of(future)
        if outcome is not None and future.state.name == "Cached":
            # A script answered from the cache spent nothing in this run.
            outcome = outcome.model_copy(update={"characters": 0})
        if outcome is not None:
            logger.info(
                "[%d/%d] %s -> %s (%.1f s, %d characters)",
                done,
                len(plans),
                plan.id,
                ", ".join(outcome.outputs),
                outcome.duration_s or 0.0,
                outcome.characters,
            )
        else:
            reason = describe_error(error) if isinstance(error, BaseException) else str(error)
            outcome = ItemOutcome(id=plan.id, status="failed", error=reason)
            logger.error("[%d/%d] %s failed: %s", done, len(plans), plan.id, reason)
        outcomes[index] = outcome
    for index, skipped in batch.skipped([plan.id for plan in plans]):
        outcomes[index] = skipped

    summary = RunSummary(
        flow="narrate", output_dir=out.uri_of(""), items=[o for o in outcomes if o is not None]
    )
    assets = [
        AudioAsset.model_validate(a) for o in summary.items for a in o.details.get("assets", [])
    ]
    publish_summary(summary, key="narration-summary", title="Narration")
    publish_usage(assets, key="narration-usage")
    publish_outputs(summary.outputs, key="narration-outputs")
    return raise_for_failures(summary, "scripts", stopped_by=batch.stopped_by)
