"""What every flow shares: credentials resolution, the task runner, bounded submission, inputs."""

from __future__ import annotations

import glob as _glob
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.transactions import CommitMode, atransaction

from ..blocks import ElevenLabsCredentials
from ..errors import ConfigurationError, QuotaExceededError
from ..tasks import _storage
from ..tasks._policy import run_logger
from ..tasks.artifacts import Progress
from ._summary import NOT_STARTED_FOR_QUOTA, ItemOutcome

CREDENTIALS_BLOCK_ENV = "ELEVENLABS_CREDENTIALS_BLOCK"
"""Names a saved ``ElevenLabsCredentials`` block that flows load when given no credentials."""

DEFAULT_MAX_WORKERS = 16
"""Threads of each flow's task runner: never unbounded (Prefect's default is). Each batch flow's
``max_concurrency`` decides how many items run at once; the runner only has to hold them."""


def task_runner(max_workers: int = DEFAULT_MAX_WORKERS) -> TaskRunner[PrefectFuture[Any]]:
    """The thread-pool runner the flows use, with an explicit bound.

    Example:
        ```python
        from prefect_elevenlabs.flows import narrate, task_runner

        big = narrate.with_options(task_runner=task_runner(max_workers=32))
        ```
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be 1 or more, got {max_workers}")
    runner: Any = ThreadPoolTaskRunner(max_workers=max_workers)
    return cast("TaskRunner[PrefectFuture[Any]]", runner)


def prepare_output(output_dir: str) -> _storage.OutputDir:
    """The flow's output folder: created, writable, and cleared of the staging files a killed
    run left in it (and in its ``.work`` cache)."""
    out = _storage.OutputDir(output_dir)
    out.ensure()
    removed = out.remove_abandoned_staging()
    if removed:
        run_logger().info(
            "removed %d unfinished file(s) an interrupted run left in %s",
            len(removed),
            out.uri_of(""),
        )
    return out


def resolve_credentials(credentials: ElevenLabsCredentials | None) -> ElevenLabsCredentials:
    """The credentials a flow runs with.

    Given credentials win. Otherwise the block named by ``ELEVENLABS_CREDENTIALS_BLOCK`` is
    loaded when that variable is set, else ``ElevenLabsCredentials()`` is used, which reads
    ``ELEVENLABS_API_KEY`` and ``ELEVENLABS_BASE_URL`` (``local`` for the offline engine).
    """
    if credentials is not None:
        return credentials
    name = os.environ.get(CREDENTIALS_BLOCK_ENV, "").strip()
    if not name:
        return ElevenLabsCredentials()
    try:
        loaded = ElevenLabsCredentials.load(name)
    except ValueError as exc:
        raise ConfigurationError(
            f"{CREDENTIALS_BLOCK_ENV}={name!r} names no saved ElevenLabs Credentials block: "
            "create it in the UI or with ElevenLabsCredentials(...).save(name), or unset the "
            f"variable ({exc})",
            status="credentials_block_missing",
        ) from exc
    assert isinstance(loaded, ElevenLabsCredentials)
    return loaded


class BoundedSubmission:
    """A batch started with at most ``limit`` items in flight; iterate for ``(index, future)``.

    Each element of ``starts`` submits one item and returns its future. Items beyond the limit
    wait until an earlier one finishes, so a batch of thousands never floods the task runner.
    Iterating yields each item as it ends. :meth:`halt` stops starting new items, for a batch
    that cannot go on: the items in flight still finish and are yielded, and
    :attr:`not_started` then names the items that never began. An item refused because the
    account ran out of credits halts the batch by itself (every further item would be refused
    too), and :attr:`stopped_by` keeps that error.

    With a ``progress`` artifact, iterating publishes it at the start, advances it as each item
    is handled and publishes the last value at the end (a halted batch ends short of 100 %).
    """

    def __init__(
        self,
        starts: Sequence[Callable[[], PrefectFuture[Any]]],
        limit: int,
        progress: Progress | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"the concurrency limit must be 1 or more, got {limit}")
        self._pending: deque[tuple[int, Callable[[], PrefectFuture[Any]]]] = deque(
            enumerate(starts)
        )
        self._limit = limit
        self._halted = False
        self.progress = progress
        self._in_flight: dict[Any, tuple[int, PrefectFuture[Any]]] = {}
        self.stopped_by: QuotaExceededError | None = None

    def halt(self) -> None:
        """Starts no further item; those in flight still run to their end."""
        self._halted = True

    @property
    def halted(self) -> bool:
        """Whether :meth:`halt` was called."""
        return self._halted

    @property
    def in_flight(self) -> int:
        """Items started and not yet yielded."""
        return len(self._in_flight)

    @property
    def not_started(self) -> list[int]:
        """Indexes of the items not started (yet, or ever once halted), in order."""
        return [index for index, _ in self._pending]

    def skipped(self, ids: Sequence[str]) -> list[tuple[int, ItemOutcome]]:
        """Outcomes for the items never started, by index, given every item's id."""
        reason = NOT_STARTED_FOR_QUOTA if self.stopped_by is not None else "not started"
        return [
            (index, ItemOutcome(id=ids[index], status="skipped", error=reason))
            for index in self.not_started
        ]

    def _halt_when_out_of_credits(self, done: PrefectFuture[Any]) -> None:
        if self.stopped_by is not None or not done.state.is_failed():
            return
        error = done.result(raise_on_failure=False)
        if isinstance(error, QuotaExceededError):
            self.stopped_by = error
            self.halt()
            run_logger().error(
                "the account's credits ran out: starting no more items, waiting for the %d "
                "in flight",
                len(self._in_flight) - 1,
            )

    def __iter__(self) -> Iterator[tuple[int, PrefectFuture[Any]]]:
        if self.progress is not None:
            self.progress.start()
        handled = 0
        while self._in_flight or (self._pending and not self._halted):
            # Refilling happens only when the consumer asks for the next item, so a halt()
            # called while handling one item takes effect before anything else starts.
            while self._pending and not self._halted and len(self._in_flight) < self._limit:
                index, start = self._pending.popleft()
                future = start()
                self._in_flight[future.task_run_id] = (index, future)
            done = next(iter(as_completed([f for _, f in self._in_flight.values()])))
            # Pins the final state on the future; otherwise .state asks the API, which may lag.
            done.wait()
            self._halt_when_out_of_credits(done)
            yield self._in_flight.pop(done.task_run_id)
            handled += 1
            if self.progress is not None:
                self.progress.advance(description=f"{handled} of {self.progress.total} done")
        if self.progress is not None:
            self.progress.flush()


def submit_bounded(
    starts: Sequence[Callable[[], PrefectFuture[Any]]],
    limit: int,
    progress_key: str | None = None,
    description: str | None = None,
) -> BoundedSubmission:
    """Starts items with at most ``limit`` in flight; iterating yields ``(index, future)``.

    With ``progress_key``, a progress artifact under that key follows the batch.
    See :class:`BoundedSubmission`, which this returns, for stopping a batch part-way.
    """
    progress = (
        Progress(len(starts), key=progress_key, description=description) if progress_key else None
    )
    return BoundedSubmission(starts, limit, progress)


def result_of(future: PrefectFuture[Any]) -> Any:
    """The value of a finished task run (Prefect types async tasks' futures as coroutines)."""
    return future.result()


def outcome_of(future: PrefectFuture[Any]) -> tuple[Any, BaseException | str | None]:
    """``(result, None)`` for a completed task run, ``(None, error)`` for any other end."""
    future.wait()
    state = future.state
    if state.is_completed():
        return future.result(), None
    error = future.result(raise_on_failure=False)
    if isinstance(error, BaseException):
        return None, error
    return None, state.message or state.name or "the task did not complete"


async def call_task(task: Any, *args: Any, **kwargs: Any) -> tuple[Any, bool]:
    """Awaits an async task from inside another task; returns ``(result, answered_from_cache)``.

    The nested task's cache record is written the moment it completes. By default Prefect
    leaves a nested task's record to the enclosing task's transaction, which writes it only when
    the outer task completes and drops it when the outer task fails or its process dies; the
    credits spent on a generation would then be spent again by the next run.
    """
    async with atransaction(commit_mode=CommitMode.EAGER):
        state = await task(*args, return_state=True, **kwargs)
        return await state.aresult(), state.name == "Cached"


# --------------------------------------------------------------------------------------------
# Inputs

_GLOB_CHARS = frozenset("*?[")
MEDIA_SUFFIXES = frozenset(
    {
        ".mp3",
        ".wav",
        ".flac",
        ".m4a",
        ".aac",
        ".ogg",
        ".opus",
        ".webm",
        ".mp4",
        ".mov",
        ".mkv",
        ".avi",
        ".m4v",
    }
)


def expand_inputs(inputs: Sequence[str]) -> list[tuple[str, str | None]]:
    """Local paths, folders, globs and fsspec URLs, expanded to ``(uri, problem)`` per file.

    A folder stands for the media files directly inside it; a glob for its matches. An input
    that matches nothing is kept with a ``problem`` (such as "does not exist") so the flow
    reports it as a failed item instead of silently skipping it. Duplicates are dropped; the
    order is kept.
    """
    expanded: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(uri: str, problem: str | None = None) -> None:
        if uri not in seen:
            seen.add(uri)
            expanded.append((uri, problem))

    for raw in inputs:
        text = os.fspath(raw).strip()
        if not text:
            continue
        try:
            fs, path = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as exc:
            add(text, f"cannot be opened: {exc}")
            continue
        local = isinstance(fs, LocalFileSystem)
        if any(c in text for c in _GLOB_CHARS):
            if local:
                found = [
                    m for m in sorted(_glob.glob(os.path.expanduser(text))) if Path(m).is_file()
                ]
                uris = [str(Path(m).resolve()) for m in found]
            else:
                uris = [_unstrip(fs, str(m)) for m in fs.glob(path) if fs.isfile(m)]
            if not uris:
                add(text, "matches no files")
            for uri in uris:
                add(uri)
            continue
        if local:
            local_path = Path(os.path.expanduser(path))
            if local_path.is_dir():
                files = sorted(
                    p for p in local_path.iterdir() if p.suffix.lower() in MEDIA_SUFFIXES
                )
                if not files:
                    add(text, "is a folder with no audio or video files")
                for file in files:
                    add(str(file.resolve()))
            elif local_path.is_file():
                add(str(local_path.resolve()))
            else:
                add(text, "does not exist")
            continue
        try:
            if fs.isdir(path):
                found = sorted(
                    p for p in fs.ls(path, detail=False) if Path(p).suffix.lower() in MEDIA_SUFFIXES
                )
                if not found:
                    add(text, "is a folder with no audio or video files")
                for item in found:
                    add(_unstrip(fs, item))
            elif fs.exists(path):
                add(text)
            else:
                add(text, "does not exist")
        except OSError as exc:
            add(text, f"cannot be read: {exc}")
    return expanded


def _unstrip(fs: Any, path: str) -> str:
    protocol = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
    return path if "://" in path else f"{protocol}://{path.lstrip('/')}"


def stem_of(uri: str) -> str:
    """The file name without its last suffix, for naming outputs after an input."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name[1:] else name
    return stem or "output"


def unique_stems(uris: Sequence[str]) -> list[str]:
    """Output stems for inputs, with ``-2``, ``-3`` appended where two inputs share a name."""
    counts: dict[str, int] = {}
    stems = []
    for uri in uris:
        stem = stem_of(uri)
        counts[stem] = counts.get(stem, 0) + 1
        if counts[stem] > 1:
            run_logger().warning(
                "two inputs are named %r: outputs of %s are suffixed -%d", stem, uri, counts[stem]
            )
            stem = f"{stem}-{counts[stem]}"
        stems.append(stem)
    return stems
