"""Prefect artifacts that summarise what the tasks produced: transcripts, usage, outputs, progress.

These are plain functions, not tasks, so a flow can call them as often as it likes without
adding task runs. Each one attaches to the current flow or task run; outside a run it still
publishes (unattached) when a Prefect API is reachable, and otherwise logs a warning and returns
``None`` instead of failing the pipeline over a report.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from ..results import (
    AudioAsset,
    DubbedMedia,
    SpeechWithTimestamps,
    Transcript,
    Usage,
    VoicePreviewAsset,
)
from ._policy import run_logger

__all__ = [
    "Progress",
    "apublish_outputs",
    "apublish_transcript",
    "apublish_usage",
    "artifact_key",
    "publish_outputs",
    "publish_transcript",
    "publish_usage",
]

# A markdown artifact is one database row: keep tables readable and the row small.
MAX_TABLE_ROWS = 500
_TEXT_PREVIEW_CHARS = 20_000


def artifact_key(text: str | None) -> str | None:
    """Turns any label into a valid artifact key (lowercase letters, digits and dashes).

    >>> artifact_key("Episode 12: Intro")
    'episode-12-intro'
    """
    if text is None:
        return None
    key = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return key[:100].rstrip("-") or None


def _cell(value: Any) -> str:
    """A value rendered safely inside a markdown table cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours:d}:{minutes:02d}:{rest:06.3f}"


# --------------------------------------------------------------------------------------------
# Transcripts


def transcript_markdown(transcript: Transcript, title: str | None = None) -> str:
    """The markdown body of a transcript artifact: the text, then a timed table of cues."""
    lines = [f"# {title or 'Transcript'}", ""]
    facts = []
    if transcript.source:
        facts.append(f"source `{transcript.source}`")
    if transcript.language:
        facts.append(f"language **{transcript.language}**")
    if transcript.duration_s:
        facts.append(f"duration {transcript.duration_s:.1f} s")
    facts.append(f"{len(transcript.words)} words")
    if transcript.speakers:
        facts.append(f"speakers {', '.join(transcript.speakers)}")
    lines += [", ".join(facts), ""]
    text = transcript.text.strip()
    if len(text) > _TEXT_PREVIEW_CHARS:
        text = text[:_TEXT_PREVIEW_CHARS] + " …"
    lines += [text or "_(no speech)_", ""]
    rows = _cue_rows(transcript)
    if rows:
        lines += ["| # | start | end | speaker | text |", "|---|---|---|---|---|"]
        for index, (start, end, speaker, words) in enumerate(rows[:MAX_TABLE_ROWS], start=1):
            lines.append(
                f"| {index} | {_clock(start)} | {_clock(end)} | {_cell(speaker)} | {_cell(words)} |"
            )
        if len(rows) > MAX_TABLE_ROWS:
            lines.append(f"\n_{len(rows) - MAX_TABLE_ROWS} more cues not shown._")
    return "\n".join(lines) + "\n"


def _cue_rows(transcript: Transcript) -> list[tuple[float, float, str | None, str]]:
    """(start, end, speaker, text) per subtitle cue; one row per word if cues cannot be built."""
    try:
        cues = transcript.cues()
    except Exception:
        cues = None
    rows: list[tuple[float, float, str | None, str]] = []
    if cues:
        for cue in cues:
            rows.append(
                (
                    float(_field(cue, "start", 0.0)),
                    float(_field(cue, "end", 0.0)),
                    _field(cue, "speaker", None) or _field(cue, "speaker_id", None),
                    str(_field(cue, "text", "")),
                )
            )
        return rows
    return [(w.start, w.end, w.speaker_id, w.text) for w in transcript.words]


def _field(obj: Any, name: str, default: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def publish_transcript(
    transcript: Transcript, key: str | None = None, description: str | None = None
) -> UUID | None:
    """Publishes a transcript as a markdown artifact: full text plus a table of timed cues.

    Args:
        transcript: The transcript to show.
        key: Artifact key; any text works, it is slugified (``"Episode 1"`` -> ``episode-1``).
            With a key the artifact also appears, versioned, on the Artifacts page.
        description: Shown above the artifact in the UI.

    Returns:
        The artifact id, or ``None`` if it could not be published.

    Example:
        ```python
        transcript = speech_to_text("interview.mp4", credentials)
        publish_transcript(transcript, key="interview transcript")
        ```
    """
    markdown = transcript_markdown(transcript)
    return _publish(
        create_markdown_artifact,
        "transcript",
        markdown=markdown,
        key=artifact_key(key),
        description=description,
    )


async def apublish_transcript(
    transcript: Transcript, key: str | None = None, description: str | None = None
) -> UUID | None:
    """The async twin of :func:`publish_transcript`."""
    return await _apublish(
        acreate_markdown_artifact,
        "transcript",
        markdown=transcript_markdown(transcript),
        key=artifact_key(key),
        description=description,
    )


# --------------------------------------------------------------------------------------------
# Usage


def usage_records(items: Iterable[Any]) -> list[Usage]:
    """Every API call behind ``items``: assets, speech, previews, dubs or ``Usage`` records."""
    records: list[Usage] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, Usage):
            records.append(item)
        elif isinstance(item, AudioAsset):
            records.extend(_asset_usage(item))
        elif isinstance(item, (SpeechWithTimestamps, VoicePreviewAsset)):
            records.extend(_asset_usage(item.audio))
        elif isinstance(item, DubbedMedia):
            records.extend(_asset_usage(item.media))
        elif isinstance(item, (list, tuple)):
            records.extend(usage_records(item))
        elif isinstance(getattr(item, "usage", None), list):
            records.extend(u for u in item.usage if isinstance(u, Usage))
    return records


def _asset_usage(asset: AudioAsset) -> list[Usage]:
    if asset.usage:
        return list(asset.usage)
    if asset.request_id or asset.characters:
        return [
            Usage(endpoint="(unrecorded)", characters=asset.characters, request_id=asset.request_id)
        ]
    return []


def usage_table(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of the usage artifact: one per API call, then a totals row."""
    records = usage_records(items)
    rows: list[dict[str, Any]] = [
        {
            "endpoint": record.endpoint,
            "request_id": record.request_id or "",
            "characters": record.characters,
            "attempts": record.attempts,
            "latency_s": round(record.latency_s, 3),
        }
        for record in records
    ]
    rows.append(
        {
            "endpoint": f"TOTAL ({len(records)} calls)",
            "request_id": "",
            "characters": sum(r.characters for r in records),
            "attempts": sum(r.attempts for r in records),
            "latency_s": round(sum(r.latency_s for r in records), 3),
        }
    )
    return rows


def publish_usage(
    assets_or_usages: Iterable[Any], key: str | None = None, description: str | None = None
) -> UUID | None:
    """Publishes a table of API calls (endpoint, request id, characters, attempts, latency).

    The last row holds the totals, so the characters a flow run spent are visible at a glance.
    Cached results contribute the characters of the run that first produced them.

    Example:
        ```python
        assets = text_to_speech.map(texts, credentials=credentials).result()
        publish_usage(assets, key="narration usage")
        ```
    """
    return _publish(
        create_table_artifact,
        "usage",
        table=usage_table(assets_or_usages),
        key=artifact_key(key),
        description=description,
    )


async def apublish_usage(
    assets_or_usages: Iterable[Any], key: str | None = None, description: str | None = None
) -> UUID | None:
    """The async twin of :func:`publish_usage`."""
    return await _apublish(
        acreate_table_artifact,
        "usage",
        table=usage_table(assets_or_usages),
        key=artifact_key(key),
        description=description,
    )


# --------------------------------------------------------------------------------------------
# Outputs


def _output_entries(items: Iterable[Any]) -> list[tuple[str, str]]:
    """(uri, facts) for every file behind ``items``."""
    entries: list[tuple[str, str]] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            entries.extend(_output_entries(item))
        elif isinstance(item, AudioAsset):
            entries.append((item.uri, _asset_facts(item)))
        elif isinstance(item, SpeechWithTimestamps):
            entries.append((item.audio.uri, _asset_facts(item.audio)))
        elif isinstance(item, VoicePreviewAsset):
            entries.append(
                (item.audio.uri, f"preview {item.generated_voice_id}, " + _asset_facts(item.audio))
            )
        elif isinstance(item, DubbedMedia):
            entries.append((item.media.uri, f"dub ({item.language}), " + _asset_facts(item.media)))
            if item.subtitles_uri:
                entries.append((item.subtitles_uri, f"subtitles ({item.language})"))
        elif isinstance(item, str):
            entries.append((item, ""))
        elif getattr(item, "uri", None):
            entries.append((str(item.uri), ""))
    return entries


def _asset_facts(asset: AudioAsset) -> str:
    facts = [asset.format]
    if asset.duration_s is not None:
        facts.append(f"{asset.duration_s:.2f} s")
    if asset.characters:
        facts.append(f"{asset.characters} characters")
    return ", ".join(facts)


def _link(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1] or uri
    if re.match(r"^(https?|s3|gs|gcs|az|abfs)://", uri):
        return f"[{_md_escape(name)}]({uri})"
    return f"`{uri}`"


def _md_escape(text: str) -> str:
    return re.sub(r"([\[\]\\*_`])", r"\\\1", text)


def outputs_markdown(items: Iterable[Any], title: str | None = None) -> str:
    """The markdown body of an outputs artifact: one list item per file."""
    entries = _output_entries(items)
    lines = [f"# {title or 'Outputs'}", "", f"{len(entries)} files", ""]
    for uri, facts in entries[:MAX_TABLE_ROWS]:
        lines.append(f"- {_link(uri)}" + (f" — {facts}" if facts else ""))
    if len(entries) > MAX_TABLE_ROWS:
        lines.append(f"\n_{len(entries) - MAX_TABLE_ROWS} more files not shown._")
    return "\n".join(lines) + "\n"


def publish_outputs(
    assets: Iterable[Any], key: str | None = None, description: str | None = None
) -> UUID | None:
    """Publishes a markdown list of the files a run wrote, with links for remote storage.

    Accepts ``AudioAsset``, ``SpeechWithTimestamps``, ``VoicePreviewAsset``, ``DubbedMedia``,
    plain URIs, or lists of those.

    Example:
        ```python
        publish_outputs([speech, effect, music], key="episode-12-audio")
        ```
    """
    return _publish(
        create_markdown_artifact,
        "outputs",
        markdown=outputs_markdown(assets),
        key=artifact_key(key),
        description=description,
    )


async def apublish_outputs(
    assets: Iterable[Any], key: str | None = None, description: str | None = None
) -> UUID | None:
    """The async twin of :func:`publish_outputs`."""
    return await _apublish(
        acreate_markdown_artifact,
        "outputs",
        markdown=outputs_markdown(assets),
        key=artifact_key(key),
        description=description,
    )


# --------------------------------------------------------------------------------------------
# Progress


class Progress:
    """A progress artifact for long batches, advanced as items finish.

    Thread-safe, so tasks running in a thread pool may advance it too. Publishing problems are
    logged, never raised: a lost progress update must not fail a batch.

    Updates reach the API at most once every ``min_interval`` seconds (the first and the one
    that completes the batch always do): a batch of thousands of short items would otherwise
    spend more of the API's time on its progress bar than on its items. :meth:`flush`
    publishes an update held back by that interval, for a batch that stops short of its total.

    Example:
        ```python
        progress = Progress(len(texts), key="narration progress")
        for text in texts:
            text_to_speech(text, credentials)
            progress.advance(description=f"spoke {text[:20]!r}")
        ```
    """

    def __init__(
        self,
        total: int,
        key: str | None = None,
        description: str | None = None,
        *,
        min_interval: float = 1.0,
    ) -> None:
        if total < 0:
            raise ValueError(f"total must be 0 or more, got {total}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be 0 or more, got {min_interval}")
        self.total = total
        self.done = 0
        self.key = artifact_key(key)
        self.description = description
        self.min_interval = min_interval
        self.artifact_id: UUID | None = None
        self.published = 0
        """Updates sent to the API so far, the artifact's creation included."""
        self._lock = threading.Lock()
        self._created = False
        self._published_at = -math.inf
        self._held_back = False

    @property
    def percent(self) -> float:
        """How far along the batch is, 0 to 100."""
        if self.total == 0:
            return 100.0
        return min(100.0, 100.0 * self.done / self.total)

    def _count(self, n: int, description: str | None) -> None:
        self.done = min(self.total, self.done + n) if self.total else self.done + n
        if description is not None:
            self.description = description

    def _due(self) -> bool:
        """Whether the next update goes out now; otherwise it is held back (lock held)."""
        finished = self.total > 0 and self.done >= self.total
        waited = time.monotonic() - self._published_at
        if not self._created or finished or waited >= self.min_interval:
            self._mark_published()
            return True
        self._held_back = True
        return False

    def _flush_due(self) -> bool:
        """Whether an update held back by ``min_interval`` goes out now (lock held)."""
        if not (self._held_back and self._created):
            return False
        self._mark_published()
        return True

    def _mark_published(self) -> None:
        self._held_back = False
        self._published_at = time.monotonic()
        self.published += 1

    def _create_kwargs(self) -> dict[str, Any]:
        return {"progress": self.percent, "key": self.key, "description": self.description}

    def _update_kwargs(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "progress": self.percent,
            "description": self.description,
        }

    def _publish_now(self) -> None:
        """Creates the artifact, or updates it with the current value (lock held)."""
        if not self._created:
            self._created = True
            kwargs = self._create_kwargs()
            self.artifact_id = _publish(create_progress_artifact, "progress", **kwargs)
        elif self.artifact_id is not None:
            _publish(update_progress_artifact, "progress", **self._update_kwargs())

    def start(self) -> Progress:
        """Publishes the artifact at its current value (0 % for a fresh batch)."""
        with self._lock:
            if not self._created and self._due():
                self._publish_now()
        return self

    def advance(self, n: int = 1, description: str | None = None) -> float:
        """Marks ``n`` more items done and updates the artifact (see ``min_interval``);
        returns the new percentage."""
        with self._lock:
            self._count(n, description)
            if self._due():
                self._publish_now()
            return self.percent

    def flush(self) -> float:
        """Publishes an update that ``min_interval`` held back, if any; returns the percentage."""
        with self._lock:
            if self._flush_due():
                self._publish_now()
            return self.percent

    async def astart(self) -> Progress:
        """The async twin of :meth:`start`."""
        with self._lock:
            first = not self._created and self._due()
            self._created = True
        if first:
            self.artifact_id = await _apublish(
                acreate_progress_artifact, "progress", **self._create_kwargs()
            )
        return self

    async def aadvance(self, n: int = 1, description: str | None = None) -> float:
        """The async twin of :meth:`advance`."""
        with self._lock:
            self._count(n, description)
            percent = self.percent
            create = not self._created
            update = not create and self._due()
            kwargs = self._update_kwargs()
        if create:
            await self.astart()
        elif update and self.artifact_id is not None:
            await _apublish(aupdate_progress_artifact, "progress", **kwargs)
        return percent

    async def aflush(self) -> float:
        """The async twin of :meth:`flush`."""
        with self._lock:
            update = self._flush_due()
            kwargs = self._update_kwargs()
        if update and self.artifact_id is not None:
            await _apublish(aupdate_progress_artifact, "progress", **kwargs)
        return self.percent


# --------------------------------------------------------------------------------------------


def _publish(create: Any, what: str, **kwargs: Any) -> UUID | None:
    try:
        # _sync forces the blocking implementation even when called from an async flow.
        return create(**kwargs, _sync=True)
    except Exception as exc:
        run_logger().warning("could not publish the %s artifact: %s", what, exc)
        return None


async def _apublish(create: Any, what: str, **kwargs: Any) -> UUID | None:
    try:
        return await create(**kwargs)
    except Exception as exc:
        run_logger().warning("could not publish the %s artifact: %s", what, exc)
        return None
