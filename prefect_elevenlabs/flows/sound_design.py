"""The ``sound_design`` flow: batches of sound-effect prompts and music briefs into files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture
from pydantic import ValidationError

from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError
from ..results import AudioAsset
from ..tasks import _audio, _storage
from ..tasks._policy import run_logger
from ..tasks.artifacts import publish_outputs, publish_usage
from ..tasks.sound import DEFAULT_SOUND_FORMAT, compose_music, generate_sound_effect
from ._artifacts import publish_summary
from ._params import MusicBrief, SoundEffectBrief
from ._runtime import outcome_of, prepare_output, resolve_credentials, submit_bounded, task_runner
from ._scripts import ScriptError
from ._summary import ItemOutcome, RunSummary, describe_error, raise_for_failures

__all__ = ["INDEX_FILE", "load_sound_briefs", "sound_design"]

INDEX_FILE = "index.json"


def _brief_ids(effects: list[SoundEffectBrief], music: list[MusicBrief]) -> list[str]:
    """An id per brief: its own, else ``sfx-01``/``music-01``...; duplicates are refused."""
    ids = [brief.id or f"sfx-{n:02d}" for n, brief in enumerate(effects, start=1)]
    ids += [brief.id or f"music-{n:02d}" for n, brief in enumerate(music, start=1)]
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise InvalidRequestError(
                f"duplicate id {item_id!r}: ids name the output files, so each must be unique",
                param="effects",
            )
        seen.add(item_id)
    return ids


def load_sound_briefs(
    path: str | os.PathLike[str],
) -> tuple[list[SoundEffectBrief], list[MusicBrief]]:
    """Reads briefs from a JSON or JSONL file.

    JSON: ``{"effects": [{"text": ...}], "music": [{"prompt": ...}]}`` or a list of briefs.
    JSONL: one brief per line. A brief with ``prompt`` is music, one with ``text`` an effect.

    Raises:
        ScriptError: the file is missing, not JSON, or a brief has wrong or missing fields.
    """
    file = Path(path)
    if not file.is_file():
        raise ScriptError(f"{file} does not exist: give a .json or .jsonl file of briefs")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{file} is not UTF-8: byte {exc.start} cannot be decoded") from exc
    entries: list[Any]
    if file.suffix.lower() == ".jsonl":
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError as exc:
                raise ScriptError(f"{file} line {number} is not valid JSON: {exc}") from exc
    else:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ScriptError(f"{file} is not valid JSON: {exc}") from exc
        if isinstance(document, dict):
            unknown = set(document) - {"effects", "music"}
            if unknown:
                raise ScriptError(
                    f"{file}: unknown key(s) {', '.join(sorted(unknown))}; use 'effects' and "
                    "'music'"
                )
            entries = [*document.get("effects", []), *document.get("music", [])]
        elif isinstance(document, list):
            entries = document
        else:
            raise ScriptError(f"{file} must hold an object or a list of briefs")
    effects: list[SoundEffectBrief] = []
    music: list[MusicBrief] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ScriptError(f"{file}: brief {number} must be an object")
        try:
            if "prompt" in entry:
                music.append(MusicBrief.model_validate(entry))
            elif "text" in entry:
                effects.append(SoundEffectBrief.model_validate(entry))
            else:
                raise ScriptError(
                    f"{file}: brief {number} needs 'text' (a sound effect) or 'prompt' (music)"
                )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ScriptError(f"{file}: brief {number} is invalid: {problems}") from exc
    if not effects and not music:
        raise ScriptError(f"{file} holds no briefs")
    return effects, music


@flow(name="Sound design", task_runner=task_runner())
def sound_design(
    effects: list[SoundEffectBrief] | None = None,
    music: list[MusicBrief] | None = None,
    output_dir: str = "sounds",
    output_format: str = DEFAULT_SOUND_FORMAT,
    max_concurrency: int = 4,
    credentials: ElevenLabsCredentials | None = None,
) -> RunSummary:
    """Generates a batch of sound effects and music tracks, plus an ``index.json``.

    Every brief becomes ``<id>.mp3`` in ``output_dir`` (its ``id``, else ``sfx-01``,
    ``music-01``...). ``index.json`` lists each brief with its file, duration and status, and a
    table artifact shows the same. Generation is cached, so a re-run spends nothing. A brief
    that fails does not stop the others; the run fails at the end naming them.

    Args:
        effects: Sound effects: ``{id?, text, duration_seconds?, loop?, prompt_influence?}``.
        music: Music: ``{id?, prompt, music_length_ms?}``.
        output_dir: A folder or fsspec URL.
        output_format: e.g. mp3_44100_128 or wav_44100.
        max_concurrency: Briefs generated at once.
        credentials: ElevenLabs credentials; empty loads the block named by
            ELEVENLABS_CREDENTIALS_BLOCK, else reads ELEVENLABS_API_KEY/ELEVENLABS_BASE_URL.

    Example:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.flows import sound_design

        sound_design(
            effects=[{"id": "door", "text": "a heavy wooden door creaks open",
                      "duration_seconds": 3}],
            music=[{"id": "intro", "prompt": "calm piano intro", "music_length_ms": 10000}],
            output_dir="sounds",
            credentials=ElevenLabsCredentials(base_url="local"),
        )
        ```
    """
    logger = run_logger()
    credentials = resolve_credentials(credentials)
    effects = list(effects or [])
    music = list(music or [])
    if not effects and not music:
        raise InvalidRequestError("give at least one sound effect or music brief", param="effects")
    if max_concurrency < 1:
        raise InvalidRequestError(
            f"max_concurrency must be 1 or more, got {max_concurrency}", param="max_concurrency"
        )
    ids = _brief_ids(effects, music)
    out = prepare_output(output_dir)
    ext = "mp3" if output_format == "auto" else _audio.extension(output_format)
    briefs: list[tuple[str, str, SoundEffectBrief | MusicBrief]] = [
        *(("sound effect", i, b) for i, b in zip(ids, effects, strict=False)),
        *(("music", i, b) for i, b in zip(ids[len(effects) :], music, strict=True)),
    ]

    def start(kind: str, item_id: str, brief: Any) -> PrefectFuture[Any]:
        if isinstance(brief, SoundEffectBrief):
            return generate_sound_effect.submit(
                brief.text,
                credentials,
                duration_seconds=brief.duration_seconds,
                loop=brief.loop,
                prompt_influence=0.3 if brief.prompt_influence is None else brief.prompt_influence,
                output_format=output_format,
                output_dir=output_dir,
                filename=f"{item_id}.{ext}",
            )
        return compose_music.submit(
            brief.prompt,
            credentials=credentials,
            music_length_ms=brief.music_length_ms,
            output_format=output_format,
            output_dir=output_dir,
            filename=f"{item_id}.{ext}",
        )

    starts = [lambda k=k, i=i, b=b: start(k, i, b) for k, i, b in briefs]
    outcomes: list[ItemOutcome | None] = [None] * len(briefs)
    assets: list[AudioAsset] = []
    batch = submit_bounded(
        starts, max_concurrency, progress_key="sound-design-progress", description="Generating"
    )
    for done, (index, future) in enumerate(batch, start=1):
        kind, item_id, brief = briefs[index]
        asset, error = outcome_of(future)
        if asset is None:
            reason = describe_error(error) if isinstance(error, BaseException) else str(error)
            outcomes[index] = ItemOutcome(
                id=item_id, status="failed", error=reason, details={"kind": kind}
            )
            logger.error("[%d/%d] %s failed: %s", done, len(briefs), item_id, reason)
            continue
        assets.append(asset)
        prompt = brief.text if isinstance(brief, SoundEffectBrief) else brief.prompt
        outcomes[index] = ItemOutcome(
            id=item_id,
            outputs=[asset.uri],
            characters=asset.characters,
            duration_s=asset.duration_s,
            details={"kind": kind, "prompt": prompt},
        )
        logger.info(
            "[%d/%d] %s %s -> %s (%.1f s)",
            done,
            len(briefs),
            kind,
            item_id,
            asset.uri,
            asset.duration_s or 0.0,
        )

    for index, skipped in batch.skipped([item_id for _, item_id, _ in briefs]):
        outcomes[index] = skipped
    items = [o for o in outcomes if o is not None]
    index_uri = _write_index(out, items, briefs)
    summary = RunSummary(
        flow="sound_design", output_dir=out.uri_of(""), items=items, artifacts=[index_uri]
    )
    publish_summary(summary, key="sound-design-summary", title="Sound design")
    publish_outputs(summary.outputs, key="sound-design-outputs")
    publish_usage(assets, key="sound-design-usage")
    return raise_for_failures(summary, "briefs", stopped_by=batch.stopped_by)


def _write_index(
    out: _storage.OutputDir,
    items: list[ItemOutcome],
    briefs: list[tuple[str, str, SoundEffectBrief | MusicBrief]],
) -> str:
    entries = []
    for item, (kind, _, brief) in zip(items, briefs, strict=True):
        entries.append(
            {
                "id": item.id,
                "kind": kind,
                "brief": brief.model_dump(exclude_none=True),
                "status": item.status,
                "file": item.outputs[0].rsplit("/", 1)[-1] if item.outputs else None,
                "duration_s": item.duration_s,
                "error": item.error,
            }
        )
    with out.staged(INDEX_FILE) as staged:
        staged.write_text(
            json.dumps({"items": entries}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return out.uri_of(INDEX_FILE)
