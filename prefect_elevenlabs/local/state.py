"""Persistent state of the local engine: SQLite (WAL) plus audio files under the data dir.

Layout::

    <data_dir>/engine.sqlite3        voices, previews, history, usage, dubbing jobs,
                                     agent conversations
    <data_dir>/audio/<kind>/<id>      stored audio, named only by ids the engine generated

Each thread gets its own SQLite connection; writes are single statements or short transactions,
so concurrent requests see a consistent state. Ids that reach the file system go through
:meth:`EngineState.safe_path`, which accepts only ``[A-Za-z0-9_-]{1,64}``.

Example::

    state = EngineState(Path("/tmp/engine"))
    path = state.write_file("history", "abc123", b"...")
    state.add_characters("anonymous", 42)
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CONVERSATION_AUDIO",
    "DubbingJob",
    "EngineState",
    "HistoryItem",
    "InvalidIdError",
    "StoredPreview",
    "StoredVoice",
    "new_id",
    "validate_id",
]

CONVERSATION_AUDIO = "conversations"
"""File kind of a conversation's rendered call audio (``audio/conversations/<id>``)."""

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ALPHABET = string.ascii_letters + string.digits


class InvalidIdError(ValueError):
    """An id or file kind contains characters outside ``[A-Za-z0-9_-]`` or is too long."""


def validate_id(value: str, *, what: str = "id") -> str:
    """Return ``value`` if it is a safe identifier (``[A-Za-z0-9_-]{1,64}``), else raise.

    Example::

        validate_id("21m00Tcm4TlvDq8ikWAM")   # ok
        validate_id("../etc/passwd")          # InvalidIdError
    """
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise InvalidIdError(
            f"{what} {value!r} is not valid: use 1 to 64 letters, digits, '_' or '-'"
        )
    return value


def new_id(length: int = 20) -> str:
    """A random alphanumeric id, the shape ElevenLabs uses for voices and history items."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _now() -> int:
    return int(time.time())


@dataclass
class StoredVoice:
    """A cloned or generated voice.

    ``profile`` is the TTS engine's voice profile (``VoiceProfile.to_dict()``); ``samples`` are
    dicts in the API's sample shape (``sample_id``, ``file_name``, ``mime_type``...).
    """

    voice_id: str
    name: str
    category: Literal["cloned", "generated"]
    profile: dict[str, Any]
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    created_at: int = field(default_factory=_now)

    @classmethod
    def plain_espeak(cls, voice_id: str, name: str, *, use_case: str) -> StoredVoice:
        """A voice spoken by espeak-ng (en-us) without pitch shift: the quickest speech the
        engine makes, for batches of hundreds in tests and benchmarks.

        Example:
            >>> StoredVoice.plain_espeak("fastVoice", "Fast voice", use_case="tests").profile
            {'engine': 'espeak', 'espeak_voice': 'en-us', 'pitch_semitones': 0.0}
        """
        return cls(
            voice_id=voice_id,
            name=name,
            category="cloned",
            profile={"engine": "espeak", "espeak_voice": "en-us", "pitch_semitones": 0.0},
            description="espeak-ng without pitch shift: synthesis costs a few milliseconds",
            labels={"use_case": use_case},
        )


@dataclass
class StoredPreview:
    """A voice-design preview, kept so a voice can later be created from it."""

    generated_voice_id: str
    voice_description: str
    text: str
    profile: dict[str, Any]
    media_type: str
    output_format: str
    duration_secs: float
    language: str | None = "en"
    seed: int | None = None
    index: int = 0
    created_at: int = field(default_factory=_now)


@dataclass
class HistoryItem:
    """One generation in the speech history (audio stored as ``audio/history/<id>``)."""

    history_item_id: str
    request_id: str
    voice_id: str
    model_id: str
    text: str
    character_count_change_from: int
    character_count_change_to: int
    content_type: str
    output_format: str
    voice_name: str | None = None
    voice_category: str | None = None
    settings: dict[str, Any] | None = None
    source: str = "TTS"
    date_unix: int = field(default_factory=_now)


@dataclass
class DubbingJob:
    """A dubbing job and where its files live.

    ``paths`` maps roles (``source``, a language code...) to file names under
    ``audio/dubbing/``; ``metadata`` holds anything else the dubbing route needs.
    """

    dubbing_id: str
    name: str
    status: str
    source_language: str | None
    target_languages: list[str]
    error: str | None = None
    created_at: int = field(default_factory=_now)
    paths: dict[str, str] = field(default_factory=dict)
    expected_duration_sec: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    voice_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    labels TEXT NOT NULL,
    category TEXT NOT NULL,
    profile TEXT NOT NULL,
    samples TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS voice_settings (
    voice_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS previews (
    generated_voice_id TEXT PRIMARY KEY,
    voice_description TEXT NOT NULL,
    text TEXT NOT NULL,
    profile TEXT NOT NULL,
    media_type TEXT NOT NULL,
    output_format TEXT NOT NULL,
    duration_secs REAL NOT NULL,
    language TEXT,
    seed INTEGER,
    idx INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    history_item_id TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL,
    voice_id TEXT NOT NULL,
    voice_name TEXT,
    voice_category TEXT,
    model_id TEXT NOT NULL,
    text TEXT NOT NULL,
    character_count_change_from INTEGER NOT NULL,
    character_count_change_to INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    output_format TEXT NOT NULL,
    settings TEXT,
    source TEXT NOT NULL,
    date_unix INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT PRIMARY KEY,
    characters INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dubbing (
    dubbing_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    source_language TEXT,
    target_languages TEXT NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL,
    paths TEXT NOT NULL,
    expected_duration_sec REAL NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    start_time_unix_secs INTEGER NOT NULL,
    call_successful TEXT NOT NULL,
    document TEXT NOT NULL
);
"""


class EngineState:
    """SQLite-backed store of voices, previews, history, usage, dubbing jobs and conversations.

    Safe to share between threads. ``close()`` releases every connection it opened.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.audio_dir = self.data_dir / "audio"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "engine.sqlite3"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # executescript commits on its own, so the schema is not wrapped in _transaction().
        self._connection().executescript(_SCHEMA)

    # -- connections -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # check_same_thread=False only so close() may run from another thread; each
            # connection is otherwise used by the thread that opened it.
            db = sqlite3.connect(
                self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for db in connections:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        self._local = threading.local()

    # -- files -------------------------------------------------------------------------------

    def safe_path(self, kind: str, item_id: str) -> Path:
        """``<data_dir>/audio/<kind>/<item_id>``, refusing anything that could escape it.

        Raises :class:`InvalidIdError` unless both parts match ``[A-Za-z0-9_-]{1,64}``.
        """
        validate_id(kind, what="file kind")
        validate_id(item_id)
        path = self.audio_dir / kind / item_id
        # Belt and braces: the pattern already excludes separators and dots.
        if path.resolve().parent != (self.audio_dir / kind).resolve():
            raise InvalidIdError(f"id {item_id!r} resolves outside the data directory")
        return path

    def write_file(self, kind: str, item_id: str, data: bytes) -> Path:
        """Store ``data`` as ``audio/<kind>/<item_id>`` (atomically) and return the path."""
        path = self.safe_path(kind, item_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{item_id}.{secrets.token_hex(4)}.part")
        partial.write_bytes(data)
        partial.replace(path)
        return path

    def read_file(self, kind: str, item_id: str) -> bytes | None:
        """The stored bytes, or None when there is no such file."""
        path = self.safe_path(kind, item_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete_file(self, kind: str, item_id: str) -> None:
        """Remove a stored file if it exists."""
        self.safe_path(kind, item_id).unlink(missing_ok=True)

    # -- voices ------------------------------------------------------------------------------

    def add_voice(self, voice: StoredVoice) -> None:
        """Insert or replace a custom voice."""
        validate_id(voice.voice_id, what="voice_id")
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO voices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    voice.voice_id,
                    voice.name,
                    voice.description,
                    json.dumps(voice.labels),
                    voice.category,
                    json.dumps(voice.profile),
                    json.dumps(voice.samples),
                    voice.created_at,
                ),
            )

    def get_voice(self, voice_id: str) -> StoredVoice | None:
        """A custom voice by id, or None."""
        row = (
            self._connection()
            .execute("SELECT * FROM voices WHERE voice_id = ?", (voice_id,))
            .fetchone()
        )
        return _voice_from_row(row) if row else None

    def list_voices(self) -> list[StoredVoice]:
        """Every custom voice, newest first."""
        rows = (
            self._connection()
            .execute("SELECT * FROM voices ORDER BY created_at DESC, voice_id")
            .fetchall()
        )
        return [_voice_from_row(row) for row in rows]

    def count_voices(self) -> int:
        """How many custom voices exist."""
        return int(self._connection().execute("SELECT COUNT(*) FROM voices").fetchone()[0])

    def delete_voice(self, voice_id: str) -> StoredVoice | None:
        """Delete a custom voice (and its settings); return what was deleted, or None."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM voices WHERE voice_id = ?", (voice_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM voices WHERE voice_id = ?", (voice_id,))
            db.execute("DELETE FROM voice_settings WHERE voice_id = ?", (voice_id,))
        return _voice_from_row(row)

    def get_voice_settings(self, voice_id: str) -> dict[str, Any] | None:
        """Settings saved for a voice (premade or custom), or None for the defaults."""
        row = (
            self._connection()
            .execute("SELECT settings FROM voice_settings WHERE voice_id = ?", (voice_id,))
            .fetchone()
        )
        return json.loads(row["settings"]) if row else None

    def set_voice_settings(self, voice_id: str, settings: dict[str, Any]) -> None:
        """Save settings for a voice."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO voice_settings VALUES (?, ?)",
                (voice_id, json.dumps(settings)),
            )

    # -- previews ----------------------------------------------------------------------------

    def save_preview(self, preview: StoredPreview) -> None:
        """Insert or replace a voice-design preview."""
        validate_id(preview.generated_voice_id, what="generated_voice_id")
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO previews VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    preview.generated_voice_id,
                    preview.voice_description,
                    preview.text,
                    json.dumps(preview.profile),
                    preview.media_type,
                    preview.output_format,
                    preview.duration_secs,
                    preview.language,
                    preview.seed,
                    preview.index,
                    preview.created_at,
                ),
            )

    def get_preview(self, generated_voice_id: str) -> StoredPreview | None:
        """A stored preview by id, or None."""
        row = (
            self._connection()
            .execute("SELECT * FROM previews WHERE generated_voice_id = ?", (generated_voice_id,))
            .fetchone()
        )
        if row is None:
            return None
        return StoredPreview(
            generated_voice_id=row["generated_voice_id"],
            voice_description=row["voice_description"],
            text=row["text"],
            profile=json.loads(row["profile"]),
            media_type=row["media_type"],
            output_format=row["output_format"],
            duration_secs=row["duration_secs"],
            language=row["language"],
            seed=row["seed"],
            index=row["idx"],
            created_at=row["created_at"],
        )

    # -- history -----------------------------------------------------------------------------

    def add_history(self, item: HistoryItem) -> None:
        """Record a generation."""
        validate_id(item.history_item_id, what="history_item_id")
        with self._transaction() as db:
            db.execute(
                "INSERT INTO history (history_item_id, request_id, voice_id, voice_name, "
                "voice_category, model_id, text, character_count_change_from, "
                "character_count_change_to, content_type, output_format, settings, source, "
                "date_unix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.history_item_id,
                    item.request_id,
                    item.voice_id,
                    item.voice_name,
                    item.voice_category,
                    item.model_id,
                    item.text,
                    item.character_count_change_from,
                    item.character_count_change_to,
                    item.content_type,
                    item.output_format,
                    json.dumps(item.settings) if item.settings is not None else None,
                    item.source,
                    item.date_unix,
                ),
            )

    def get_history(self, history_item_id: str) -> HistoryItem | None:
        """A history item by id, or None."""
        row = (
            self._connection()
            .execute("SELECT * FROM history WHERE history_item_id = ?", (history_item_id,))
            .fetchone()
        )
        return _history_from_row(row) if row else None

    def list_history(
        self,
        *,
        page_size: int = 100,
        start_after: str | None = None,
        voice_id: str | None = None,
        model_id: str | None = None,
        date_before_unix: int | None = None,
        date_after_unix: int | None = None,
        sort_direction: Literal["asc", "desc"] = "desc",
        search: str | None = None,
        source: str | None = None,
    ) -> tuple[list[HistoryItem], bool]:
        """One page of history and whether more follows.

        ``start_after`` is the id of the last item of the previous page; an unknown id raises
        KeyError. ``date_before_unix`` is exclusive, ``date_after_unix`` inclusive.
        """
        db = self._connection()
        clauses: list[str] = []
        params: list[Any] = []
        descending = sort_direction == "desc"
        if start_after is not None:
            row = db.execute(
                "SELECT seq FROM history WHERE history_item_id = ?", (start_after,)
            ).fetchone()
            if row is None:
                raise KeyError(start_after)
            clauses.append("seq < ?" if descending else "seq > ?")
            params.append(row["seq"])
        for column, value in (("voice_id", voice_id), ("model_id", model_id), ("source", source)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if date_before_unix is not None:
            clauses.append("date_unix < ?")
            params.append(date_before_unix)
        if date_after_unix is not None:
            clauses.append("date_unix >= ?")
            params.append(date_after_unix)
        if search:
            clauses.append("(text LIKE ? ESCAPE '\\' OR voice_name LIKE ? ESCAPE '\\')")
            pattern = "%" + _escape_like(search) + "%"
            params.extend([pattern, pattern])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if descending else "ASC"
        rows = db.execute(
            f"SELECT * FROM history {where} ORDER BY seq {order} LIMIT ?",
            (*params, page_size + 1),
        ).fetchall()
        items = [_history_from_row(row) for row in rows[:page_size]]
        return items, len(rows) > page_size

    def delete_history(self, history_item_id: str) -> bool:
        """Delete a history item; False when it did not exist. Its audio file goes too."""
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM history WHERE history_item_id = ?", (history_item_id,)
            ).rowcount
        if deleted:
            self.delete_file("history", history_item_id)
        return bool(deleted)

    # -- usage -------------------------------------------------------------------------------

    def characters_used(self, key_id: str) -> int:
        """Characters billed to a key so far."""
        row = (
            self._connection()
            .execute("SELECT characters FROM usage WHERE key_id = ?", (key_id,))
            .fetchone()
        )
        return int(row["characters"]) if row else 0

    def add_characters(self, key_id: str, characters: int) -> int:
        """Bill ``characters`` to a key and return its new total."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO usage VALUES (?, ?) "
                "ON CONFLICT(key_id) DO UPDATE SET characters = characters + excluded.characters",
                (key_id, characters),
            )
            row = db.execute("SELECT characters FROM usage WHERE key_id = ?", (key_id,)).fetchone()
        return int(row["characters"])

    def reset_usage(self) -> None:
        """Forget every key's usage."""
        with self._transaction() as db:
            db.execute("DELETE FROM usage")

    # -- dubbing -----------------------------------------------------------------------------

    def save_dubbing(self, job: DubbingJob) -> None:
        """Insert or replace a dubbing job."""
        validate_id(job.dubbing_id, what="dubbing_id")
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO dubbing VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.dubbing_id,
                    job.name,
                    job.status,
                    job.source_language,
                    json.dumps(job.target_languages),
                    job.error,
                    job.created_at,
                    json.dumps(job.paths),
                    job.expected_duration_sec,
                    json.dumps(job.metadata),
                ),
            )

    def get_dubbing(self, dubbing_id: str) -> DubbingJob | None:
        """A dubbing job by id, or None."""
        row = (
            self._connection()
            .execute("SELECT * FROM dubbing WHERE dubbing_id = ?", (dubbing_id,))
            .fetchone()
        )
        return _dubbing_from_row(row) if row else None

    def list_dubbing(self, *, statuses: Sequence[str] | None = None) -> list[DubbingJob]:
        """Dubbing jobs, newest first, optionally only those in ``statuses``."""
        db = self._connection()
        if statuses:
            marks = ", ".join("?" for _ in statuses)
            rows = db.execute(
                f"SELECT * FROM dubbing WHERE status IN ({marks}) "
                "ORDER BY created_at DESC, dubbing_id",
                tuple(statuses),
            ).fetchall()
        else:
            rows = db.execute(
                "SELECT * FROM dubbing ORDER BY created_at DESC, dubbing_id"
            ).fetchall()
        return [_dubbing_from_row(row) for row in rows]

    def update_dubbing(self, dubbing_id: str, **changes: Any) -> DubbingJob:
        """Change some fields of a dubbing job atomically and return the new job.

        Raises KeyError when the job does not exist, TypeError for an unknown field.
        """
        with self._transaction() as db:
            row = db.execute("SELECT * FROM dubbing WHERE dubbing_id = ?", (dubbing_id,)).fetchone()
            if row is None:
                raise KeyError(dubbing_id)
            job = _dubbing_from_row(row)
            values = asdict(job)
            unknown = set(changes) - set(values) - {"dubbing_id"}
            if unknown or "dubbing_id" in changes:
                raise TypeError(f"cannot update dubbing fields: {sorted(unknown) or 'dubbing_id'}")
            values.update(changes)
            job = DubbingJob(**values)
            db.execute(
                "UPDATE dubbing SET name = ?, status = ?, source_language = ?, "
                "target_languages = ?, error = ?, created_at = ?, paths = ?, "
                "expected_duration_sec = ?, metadata = ? WHERE dubbing_id = ?",
                (
                    job.name,
                    job.status,
                    job.source_language,
                    json.dumps(job.target_languages),
                    job.error,
                    job.created_at,
                    json.dumps(job.paths),
                    job.expected_duration_sec,
                    json.dumps(job.metadata),
                    dubbing_id,
                ),
            )
        return job

    def delete_dubbing(self, dubbing_id: str) -> bool:
        """Delete a dubbing job record; False when it did not exist."""
        with self._transaction() as db:
            deleted = db.execute("DELETE FROM dubbing WHERE dubbing_id = ?", (dubbing_id,)).rowcount
        return bool(deleted)

    # -- agent conversations -----------------------------------------------------------------

    def save_conversation(self, document: dict[str, Any]) -> None:
        """Insert or replace a conversation (its full detail document, as the API returns it)."""
        conversation_id = validate_id(document["conversation_id"], what="conversation_id")
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    document["agent_id"],
                    int(document["metadata"]["start_time_unix_secs"]),
                    document["analysis"]["call_successful"],
                    json.dumps(document),
                ),
            )

    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """A conversation's detail document by id, or None."""
        row = (
            self._connection()
            .execute(
                "SELECT document FROM conversations WHERE conversation_id = ?", (conversation_id,)
            )
            .fetchone()
        )
        return dict(json.loads(row["document"])) if row else None

    def update_conversation(
        self, conversation_id: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        """Apply ``change`` to a conversation's document atomically; return the new document.

        ``change`` edits the document in place; it must not alter the id, agent, start time
        or outcome (the indexed columns). None when the conversation does not exist.

        Example::

            state.update_conversation(cid, lambda doc: doc["metadata"].update(feedback=None))
        """
        # BEGIN IMMEDIATE holds the write lock from the read on, so two concurrent updates
        # cannot both start from the same old document and lose one change.
        with self._transaction() as db:
            row = db.execute(
                "SELECT document FROM conversations WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                return None
            document: dict[str, Any] = json.loads(row["document"])
            change(document)
            db.execute(
                "UPDATE conversations SET document = ? WHERE conversation_id = ?",
                (json.dumps(document), conversation_id),
            )
        return document

    def list_conversations(
        self,
        *,
        agent_id: str | None = None,
        user_id: str | None = None,
        after_unix: int | None = None,
        before_unix: int | None = None,
        min_duration_secs: int | None = None,
        max_duration_secs: int | None = None,
        call_successful: str | None = None,
        search: str | None = None,
        newest_first: bool = True,
        start_after: tuple[int, str] | None = None,
        limit: int = 30,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of conversation documents, and whether more follow.

        Conversations are ordered by start time, then id. ``start_after`` is the
        ``(start_time_unix_secs, conversation_id)`` of the previous page's last conversation:
        a position rather than a count, so deleting or recording conversations while paging
        neither skips nor repeats any. ``after_unix`` is inclusive, ``before_unix`` exclusive,
        the duration bounds inclusive. ``search`` matches, ignoring case, a substring of any
        message, the transcript summary or the summary title.
        """
        db = self._connection()
        clauses: list[str] = []
        values: list[Any] = []
        duration = "json_extract(document, '$.metadata.call_duration_secs')"
        for clause, value in (
            ("agent_id = ?", agent_id),
            ("json_extract(document, '$.user_id') = ?", user_id),
            ("start_time_unix_secs >= ?", after_unix),
            ("start_time_unix_secs < ?", before_unix),
            (f"{duration} >= ?", min_duration_secs),
            (f"{duration} <= ?", max_duration_secs),
            ("call_successful = ?", call_successful),
        ):
            if value is not None:
                clauses.append(clause)
                values.append(value)
        if search:
            # SQLite's LIKE and lower() fold ASCII only; a Python function folds every script.
            db.create_function("casefold_contains", 2, _casefold_contains, deterministic=True)
            clauses.append(
                "(casefold_contains(json_extract(document, '$.analysis.transcript_summary'), ?)"
                " OR casefold_contains(json_extract(document, '$.analysis.call_summary_title'), ?)"
                " OR EXISTS (SELECT 1 FROM json_each(document, '$.transcript') AS turn"
                " WHERE casefold_contains(json_extract(turn.value, '$.message'), ?)))"
            )
            values.extend([search] * 3)
        comparison = "<" if newest_first else ">"
        if start_after is not None:
            clauses.append(
                f"(start_time_unix_secs {comparison} ? "
                f"OR (start_time_unix_secs = ? AND conversation_id {comparison} ?))"
            )
            values.extend([start_after[0], start_after[0], start_after[1]])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if newest_first else "ASC"
        rows = db.execute(
            f"SELECT document FROM conversations {where} "
            f"ORDER BY start_time_unix_secs {order}, conversation_id {order} LIMIT ?",
            (*values, limit + 1),
        ).fetchall()
        documents = [dict(json.loads(row["document"])) for row in rows[:limit]]
        return documents, len(rows) > limit

    def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation and its rendered audio; False when it did not exist."""
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM conversations WHERE conversation_id = ?", (conversation_id,)
            ).rowcount
        if deleted:
            self.delete_file(CONVERSATION_AUDIO, conversation_id)
        return bool(deleted)

    def write_file_stream(self, kind: str, item_id: str, chunks: Iterable[bytes]) -> Path:
        """Store ``chunks`` as ``audio/<kind>/<item_id>`` (atomically) and return the path.

        The bytes go to disk as they arrive, so memory does not grow with the file. Readers
        see the old file or the complete new one, never a partial one; when ``chunks`` raises,
        nothing is left behind.
        """
        path = self.safe_path(kind, item_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{item_id}.{secrets.token_hex(4)}.part")
        try:
            with partial.open("wb") as file:
                for chunk in chunks:
                    file.write(chunk)
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path


def _casefold_contains(text: str | None, needle: str | None) -> int:
    if not isinstance(text, str) or not isinstance(needle, str):
        return 0
    return int(needle.casefold() in text.casefold())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _voice_from_row(row: sqlite3.Row) -> StoredVoice:
    return StoredVoice(
        voice_id=row["voice_id"],
        name=row["name"],
        description=row["description"],
        labels=json.loads(row["labels"]),
        category=row["category"],
        profile=json.loads(row["profile"]),
        samples=json.loads(row["samples"]),
        created_at=row["created_at"],
    )


def _history_from_row(row: sqlite3.Row) -> HistoryItem:
    return HistoryItem(
        history_item_id=row["history_item_id"],
        request_id=row["request_id"],
        voice_id=row["voice_id"],
        voice_name=row["voice_name"],
        voice_category=row["voice_category"],
        model_id=row["model_id"],
        text=row["text"],
        character_count_change_from=row["character_count_change_from"],
        character_count_change_to=row["character_count_change_to"],
        content_type=row["content_type"],
        output_format=row["output_format"],
        settings=json.loads(row["settings"]) if row["settings"] else None,
        source=row["source"],
        date_unix=row["date_unix"],
    )


def _dubbing_from_row(row: sqlite3.Row) -> DubbingJob:
    return DubbingJob(
        dubbing_id=row["dubbing_id"],
        name=row["name"],
        status=row["status"],
        source_language=row["source_language"],
        target_languages=json.loads(row["target_languages"]),
        error=row["error"],
        created_at=row["created_at"],
        paths=json.loads(row["paths"]),
        expected_duration_sec=row["expected_duration_sec"],
        metadata=json.loads(row["metadata"]),
    )
