"""Reliability measurements, and the table of figures that RELIABILITY.md shows.

Every figure in RELIABILITY.md comes from a function here; the tests in this package call the
same functions and assert on what they return, so the published numbers are the checked ones.
Run everything and print the table (Markdown) with::

    .venv/bin/python -m tests.reliability.report                 # all measurements
    .venv/bin/python -m tests.reliability.report --items 50      # a smaller hostile batch
    .venv/bin/python -m tests.reliability.report --only hostile  # one measurement

The measurements need a Prefect API; the script starts a throwaway one (SQLite in a temporary
folder) unless ``PREFECT_API_URL`` is set.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

FAST_VOICE_ID = "reliabilityFastVoice"
"""A stored voice spoken by espeak-ng without pitch shift: synthesis takes milliseconds."""

HOSTILE_FAULTS: dict[str, Any] = {
    "fault_429": 0.25,
    "fault_500": 0.10,
    "fault_drop": 0.05,
    "fault_truncate": 0.03,
}
"""Share of generation requests the hostile engine answers with each fault (seeded)."""

HOSTILE_RETRY_AFTER_S = 0.1
"""Retry-After the hostile engine advertises on its 429s."""

HOSTILE_ENGINE_CONCURRENCY = 3
"""In-flight cap of the hostile engine, one below the flow's 4, so real 429s happen too."""

ROOT = Path(__file__).resolve().parents[2]
REPORT_COMMAND = ".venv/bin/python -m tests.reliability.report"

_WORDS = [
    "river",
    "stone",
    "lantern",
    "meadow",
    "copper",
    "harbor",
    "violet",
    "engine",
    "orchard",
    "canyon",
    "whistle",
    "marble",
    "thunder",
    "saddle",
    "pepper",
    "glacier",
    "hollow",
    "timber",
    "ember",
    "falcon",
]


# --------------------------------------------------------------------------------------------
# Engines


def install_fast_voice(data_dir: Path) -> str:
    """Stores :data:`FAST_VOICE_ID` in the engine state under ``data_dir``; returns its id."""
    from prefect_elevenlabs.local.state import EngineState, StoredVoice

    state = EngineState(data_dir)
    try:
        state.add_voice(
            StoredVoice.plain_espeak(FAST_VOICE_ID, "Reliability voice", use_case="tests")
        )
    finally:
        state.close()
    return FAST_VOICE_ID


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_command() -> list[str]:
    """How to run the ``prefect-elevenlabs`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("prefect-elevenlabs")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "prefect_elevenlabs.cli"]


class EngineProcess:
    """The local engine served by ``prefect-elevenlabs local serve`` in a process of its own.

    ``options`` are the command's options without dashes (``fault_429=0.25``, ``quota=500``,
    ``max_concurrency=3``...). The data dir is given the fast test voice before the start.

    Example::

        with EngineProcess(tmp / "engine", api_keys=["k"], quota=500) as engine:
            httpx.get(engine.base_url + "/health")
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        api_keys: Sequence[str] = (),
        host: str | None = None,
        log_path: Path | None = None,
        **options: Any,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.api_keys = list(api_keys)
        self.host = host
        self.options = options
        self.log_path = log_path or self.data_dir.parent / f"{self.data_dir.name}.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Where the engine answers."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The full ``local serve`` command line."""
        args = [*engine_command(), "local", "serve", "--port", str(self.port)]
        args += ["--data-dir", str(self.data_dir), "--log-level", "warning"]
        if self.host is not None:
            args += ["--host", self.host]
        for key in self.api_keys:
            args += ["--api-key", key]
        for name, value in self.options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        return args

    def start(self, timeout: float = 90.0) -> EngineProcess:
        """Starts the process and waits until ``/health`` answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        install_fast_voice(self.data_dir)
        self.port = free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the engine exited during startup: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the engine did not answer within {timeout:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        """Stops the process (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def log_tail(self, characters: int = 2000) -> str:
        """The end of the engine's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> EngineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def engine_get(base_url: str, path: str, api_key: str | None = None, **params: Any) -> Any:
    """GET a JSON route of an engine."""
    headers = {"xi-api-key": api_key} if api_key else {}
    response = httpx.get(f"{base_url}{path}", headers=headers, params=params, timeout=30.0)
    response.raise_for_status()
    return response.json()


def engine_stats(base_url: str, api_key: str | None = None) -> dict[str, Any]:
    """The engine's counters (``GET /local/stats``)."""
    stats: dict[str, Any] = engine_get(base_url, "/local/stats", api_key)
    return stats


def history_audio(base_url: str, history_item_id: str, api_key: str | None = None) -> bytes:
    """The audio the engine recorded for one generation."""
    headers = {"xi-api-key": api_key} if api_key else {}
    response = httpx.get(
        f"{base_url}/v1/history/{history_item_id}/audio", headers=headers, timeout=30.0
    )
    response.raise_for_status()
    return response.content


def history_texts(base_url: str, api_key: str | None = None) -> list[str]:
    """The text of every generation in the engine's history, oldest first."""
    texts: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"page_size": 1000, "sort_direction": "asc"}
        if after:
            params["start_after_history_item_id"] = after
        page = engine_get(base_url, "/v1/history", api_key, **params)
        texts += [item["text"] for item in page["history"]]
        if not page.get("has_more"):
            return texts
        after = page["last_history_item_id"]


# --------------------------------------------------------------------------------------------
# Audio and files


def audio_duration(data: bytes | Path) -> float:
    """Decodes audio (mp3, wav, flac, ogg) and returns its duration in seconds."""
    import soundfile

    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with soundfile.SoundFile(source) as decoded:
        return decoded.frames / decoded.samplerate


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder`` (hidden ones included), as paths relative to it."""
    if not folder.exists():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def partial_files(folder: Path) -> list[str]:
    """Files below ``folder`` whose name marks them as unfinished (``.part``)."""
    return sorted(name for name in files_under(folder) if ".part" in Path(name).name)


def scripts_for(count: int, prefix: str = "item") -> list[dict[str, str]]:
    """``count`` narration scripts with unique ids and texts of varied length."""
    scripts = []
    for index in range(count):
        words = [_WORDS[(index * 7 + k * 3) % len(_WORDS)] for k in range(2 + index % 5)]
        text = f"{prefix.capitalize()} {index}: {' '.join(words)}."
        scripts.append({"id": f"{prefix}-{index:03d}", "text": text})
    return scripts


def credentials_for(base_url: str, api_key: str | None, **fields: Any) -> Any:
    """An ``ElevenLabsCredentials`` block for an engine."""
    from pydantic import SecretStr

    from prefect_elevenlabs import ElevenLabsCredentials

    secret = SecretStr(api_key) if api_key is not None else None
    return ElevenLabsCredentials(base_url=base_url, api_key=secret, **fields)


@dataclass
class NarrateRun:
    """How one ``narrate`` run ended."""

    summary: Any
    error: BaseException | None
    flow_run_id: Any


def run_narrate(
    scripts: Sequence[Mapping[str, Any]] | str,
    output_dir: Path,
    credentials: Any,
    **options: Any,
) -> NarrateRun:
    """Runs the ``narrate`` flow with the fast voice and no loudness pass.

    ``summary`` is the :class:`RunSummary`, taken from the error when the flow failed with one.
    """
    from prefect_elevenlabs.flows.narrate import narrate

    options.setdefault("voice_id", FAST_VOICE_ID)
    options.setdefault("target_lufs", None)
    state = narrate(
        scripts if isinstance(scripts, str) else [dict(s) for s in scripts],
        output_dir=str(output_dir),
        credentials=credentials,
        return_state=True,
        **options,
    )
    flow_run_id = state.state_details.flow_run_id
    try:
        summary = state.result()
    except Exception as error:
        return NarrateRun(getattr(error, "summary", None), error, flow_run_id)
    return NarrateRun(summary, None, flow_run_id)


@contextlib.contextmanager
def results_in(folder: Path) -> Iterator[None]:
    """Keeps Prefect's result storage (the task cache records) in ``folder`` for the block.

    Each measurement owns its cache, so no figure depends on records left in the machine's
    PREFECT_HOME by earlier runs, and the records a re-run finds are the ones its batch wrote.
    """
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    folder.mkdir(parents=True, exist_ok=True)
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: folder}):
        yield


def task_reruns(flow_run_id: Any, name_prefix: str = "narrate ") -> int:
    """Times Prefect ran a task of the flow run again after it failed (its retries)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> int:
        async with get_client() as client:
            reruns, offset = 0, 0
            while True:
                page = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=200,
                    offset=offset,
                )
                reruns += sum(
                    max(0, run.run_count - 1) for run in page if run.name.startswith(name_prefix)
                )
                offset += len(page)
                if len(page) < 200:
                    return reruns

    return asyncio.run(read())


def _assets(outcome: Any) -> list[dict[str, Any]]:
    assets: list[dict[str, Any]] = outcome.details.get("assets", [])
    return assets


def reported_attempts(summary: Any) -> int:
    """Attempts the flow says its calls took: the sum of ``usage[].attempts`` of every item."""
    return sum(
        usage.get("attempts", 0)
        for item in summary.items
        for asset in _assets(item)
        for usage in asset.get("usage", [])
    )


# --------------------------------------------------------------------------------------------
# 1. Hostile server


@dataclass
class HostileBatch:
    """How a ``narrate`` batch fared against an engine that fails 43 % of requests."""

    items: int
    delivered: int
    failed: list[str]
    duplicates: list[str]
    stray_files: list[str]
    undecodable: list[str]
    mismatched: list[str]
    attempts_reported: int
    requests_received: int
    faults: dict[str, int]
    rejected: dict[str, int]
    generations_completed: int
    characters_expected: int
    characters_billed: int
    task_reruns: int
    seconds: float
    seed: int
    error: str | None = None

    def shortfalls(self) -> list[str]:
        """What fell short of the target: every script delivered once, intact, billed once."""
        found = []
        if self.delivered != self.items:
            found.append(
                f"{self.items - self.delivered} of {self.items} scripts not delivered: "
                f"{', '.join(self.failed[:10])}"
            )
        if self.duplicates or self.stray_files:
            found.append(f"duplicates {self.duplicates[:5]}, stray files {self.stray_files[:5]}")
        if self.undecodable or self.mismatched:
            found.append(f"outputs not as generated: {(self.undecodable + self.mismatched)[:5]}")
        if self.generations_completed != self.delivered:
            found.append(f"{self.generations_completed} generations for {self.delivered} scripts")
        exact = self.task_reruns == 0 and not self.failed
        if exact and self.attempts_reported != self.requests_received:
            found.append(
                f"{self.requests_received} requests but {self.attempts_reported} attempts reported"
            )
        return found

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        faults = ", ".join(f"{kind}: {count}" for kind, count in self.faults.items() if count)
        busy = self.rejected.get("too_many_concurrent_requests", 0)
        how = (
            f"`narrate` of {self.items} scripts against `prefect-elevenlabs local serve` with "
            f"faults (seed {self.seed}) 25 % 429 (Retry-After 0.1 s), 10 % 500, 5 % dropped, "
            f"3 % truncated, and an in-flight cap of {HOSTILE_ENGINE_CONCURRENCY} under the "
            "flow's 4; default client and task retry settings"
        )
        return [
            ("Hostile server: scripts delivered", f"{self.delivered} of {self.items}", how),
            (
                "Hostile server: duplicates, stray or partial files",
                f"{len(self.duplicates)} / {len(self.stray_files)}",
                "one output per id; nothing but `<id>.mp3` (and the `.work` cache) in the folder",
            ),
            (
                "Hostile server: outputs identical to what the engine generated",
                f"{self.delivered - len(self.mismatched) - len(self.undecodable)} of "
                f"{self.delivered}",
                "bytes equal to the engine's history audio of the delivered request; every file "
                "decodes with the same duration",
            ),
            (
                "Hostile server: requests the engine received / attempts the flow reported",
                f"{self.requests_received} / {self.attempts_reported}",
                "`/local/stats` requests vs the sum of `usage[].attempts` in the summary "
                "(a script's usage covers its last task run only)",
            ),
            (
                "Hostile server: task runs Prefect retried after the client gave up",
                str(self.task_reruns),
                "sum of `run_count - 1` of the per-script task runs (Prefect API)",
            ),
            (
                "Hostile server: faults met",
                f"{sum(self.faults.values()) + busy} ({faults}; 429 over the cap: {busy})",
                "`/local/stats` faults by kind (injected 429s say `system_busy`) and "
                "`rejected.too_many_concurrent_requests` (the cap's 429s, without Retry-After)",
            ),
            (
                "Hostile server: characters billed / characters of the scripts",
                f"{self.characters_billed} / {self.characters_expected}",
                "`/local/stats` characters_billed: no text was billed twice",
            ),
            ("Hostile server: wall time", f"{self.seconds:.0f} s", "2 cores, 4 scripts at once"),
        ]


def measure_hostile_batch(
    work_dir: Path, items: int = 200, *, seed: int = 20240611, max_concurrency: int = 4
) -> HostileBatch:
    """Narrates ``items`` scripts through a seeded hostile standalone engine and checks them.

    The engine fails requests with 429 (Retry-After), 500, dropped connections and truncated
    bodies, and refuses work over its in-flight cap. Every delivered file is compared byte for
    byte with the audio the engine recorded for the request that delivered it.
    """
    scripts = scripts_for(items)
    output_dir = work_dir / "narration"
    key = "hostile-key"
    with EngineProcess(
        work_dir / "engine",
        api_keys=[key],
        fault_seed=seed,
        fault_retry_after=HOSTILE_RETRY_AFTER_S,
        max_concurrency=HOSTILE_ENGINE_CONCURRENCY,
        **HOSTILE_FAULTS,
    ) as engine:
        credentials = credentials_for(engine.base_url, key)
        started = time.monotonic()
        with results_in(work_dir / "results"):
            narrated = run_narrate(
                scripts, output_dir, credentials, max_concurrency=max_concurrency
            )
        summary, error = narrated.summary, narrated.error
        seconds = time.monotonic() - started
        reruns = task_reruns(narrated.flow_run_id)
        stats = engine_stats(engine.base_url, key)
        by_id: dict[str, list[Any]] = {}
        for outcome in summary.items if summary is not None else []:
            by_id.setdefault(outcome.id, []).append(outcome)
        expected_names = {f"{s['id']}.mp3" for s in scripts}
        stray = sorted(
            name
            for name in files_under(output_dir)
            if not name.startswith(".work/") and name not in expected_names
        )
        stray += partial_files(output_dir)
        delivered, undecodable, mismatched = 0, [], []
        for script in scripts:
            outcomes = by_id.get(script["id"], [])
            if len(outcomes) != 1 or outcomes[0].status != "completed":
                continue
            outcome = outcomes[0]
            final = output_dir / f"{script['id']}.mp3"
            if not final.is_file() or str(final) not in outcome.outputs:
                continue
            delivered += 1
            assets = _assets(outcome)
            history_id = assets[0].get("history_item_id") if assets else None
            try:
                duration = audio_duration(final)
            except Exception:
                undecodable.append(script["id"])
                continue
            if not history_id:
                mismatched.append(script["id"])
                continue
            original = history_audio(engine.base_url, history_id, key)
            if (
                hashlib.sha256(original).digest() != hashlib.sha256(final.read_bytes()).digest()
                or abs(audio_duration(original) - duration) > 1e-6
                or duration <= 0.2
            ):
                mismatched.append(script["id"])
    return HostileBatch(
        items=items,
        delivered=delivered,
        failed=sorted(i for i, o in by_id.items() if any(x.status != "completed" for x in o)),
        duplicates=sorted(i for i, o in by_id.items() if len(o) > 1),
        stray_files=stray,
        undecodable=undecodable,
        mismatched=mismatched,
        attempts_reported=reported_attempts(summary) if summary is not None else 0,
        requests_received=int(stats["requests"]),
        faults={k: int(v) for k, v in stats["faults"].items()},
        rejected={k: int(v) for k, v in stats["rejected"].items()},
        generations_completed=int(stats["completed"]),
        characters_expected=sum(len(s["text"]) for s in scripts),
        characters_billed=int(stats["characters_billed"]),
        task_reruns=reruns,
        seconds=seconds,
        seed=seed,
        error=None if error is None else f"{type(error).__name__}: {error}",
    )


# --------------------------------------------------------------------------------------------
# 2. Quota


def _spend(base_url: str, api_key: str, characters: int) -> None:
    """Another consumer of the same account: one generation of exactly ``characters``."""
    words = ("spend " * (characters // 6 + 1))[: characters - 1].rstrip() + "."
    text = words.ljust(characters, ".")
    response = httpx.post(
        f"{base_url}/v1/text-to-speech/{FAST_VOICE_ID}",
        params={"output_format": "mp3_22050_32"},
        json={"text": text, "model_id": "eleven_multilingual_v2"},
        headers={"xi-api-key": api_key},
        timeout=120.0,
    )
    response.raise_for_status()


@dataclass
class QuotaRun:
    """What a quota below a batch's need does to ``narrate``, and what a re-run spends."""

    items: int
    flow_concurrency: int
    precheck_error: str
    precheck_is_quota_error: bool
    precheck_requests: int
    precheck_new_files: list[str]
    error: str
    is_quota_error: bool
    completed: list[str]
    not_completed: list[str]
    unaccounted: list[str]
    completed_undecodable: list[str]
    quota_refusals: int
    refused_items: list[str]
    not_started: list[str]
    output_dir: str
    error_completed: list[str] | None
    error_missing: list[str] | None
    error_output_dir: str | None
    error_lists_everything: bool
    rerun_error: str | None
    rerun_regenerated: list[str]
    rerun_billed: int
    rerun_expected: int
    rerun_missing: list[str]

    def shortfalls(self) -> list[str]:
        """What fell short: refuse up front, stop on the quota error, resume only the rest."""
        found = []
        if not self.precheck_is_quota_error or self.precheck_requests or self.precheck_new_files:
            found.append(
                f"up-front refusal: {self.precheck_error or 'none'} after "
                f"{self.precheck_requests} requests"
            )
        if not self.is_quota_error:
            found.append(
                f"mid-batch, the flow raised {self.error.split(':')[0] or 'nothing'}, "
                "not QuotaExceededError"
            )
        if self.quota_refusals > self.flow_concurrency:
            found.append(
                f"{self.quota_refusals} requests refused for quota, more than the "
                f"{self.flow_concurrency} in flight: the batch went on after the quota "
                "ran out"
            )
        if self.quota_refusals != len(self.refused_items):
            found.append(
                f"{self.quota_refusals} quota refusals for {len(self.refused_items)} scripts "
                "refused: a quota error was retried"
            )
        if self.is_quota_error and not self.error_reports_the_batch():
            found.append(
                "the quota error does not carry or name what completed, where, and what did not"
            )
        if self.unaccounted or self.completed_undecodable:
            found.append(f"unaccounted {self.unaccounted}, bad {self.completed_undecodable}")
        if self.rerun_billed != self.rerun_expected or self.rerun_missing:
            found.append(
                f"the re-run billed {self.rerun_billed} characters for "
                f"{self.rerun_expected} missing ({len(self.rerun_regenerated)} scripts "
                f"generated for {len(self.not_completed)} missing)"
            )
        return found

    def error_reports_the_batch(self) -> bool:
        """Whether the error's attributes and message match the batch's outcomes."""
        return (
            self.error_completed is not None
            and self.error_missing is not None
            and sorted(self.error_completed) == self.completed
            and sorted(self.error_missing) == self.not_completed
            and self.error_output_dir is not None
            and Path(self.error_output_dir) == Path(self.output_dir)
            and self.error_lists_everything
        )

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        return [
            (
                "Quota below the batch's need, known up front",
                f"{'QuotaExceededError' if self.precheck_is_quota_error else self.precheck_error}"
                f" after {self.precheck_requests} generation requests, "
                f"{len(self.precheck_new_files)} files written",
                "engine `--quota` at half the batch's characters; `narrate` checks "
                "`/v1/user/subscription` before starting",
            ),
            (
                "Quota running out mid-batch",
                f"{self.error.split(':')[0]}; {len(self.completed)} kept, "
                f"{len(self.not_completed)} listed as not done "
                f"({len(self.refused_items)} refused, {len(self.not_started)} not started), "
                f"{len(self.unaccounted)} unaccounted",
                "another consumer spends the account's credits once 4 files exist; the error's "
                "`completed`, `missing` and `output_dir` (after a pickle round trip) and its "
                "message "
                + ("match" if self.error_reports_the_batch() else "do NOT match")
                + " the outcomes",
            ),
            (
                "Quota refusals (attempts after the quota ran out)",
                f"{_count(self.quota_refusals, 'request')} refused, for "
                f"{_count(len(self.refused_items), 'script')} (flow concurrency "
                f"{self.flow_concurrency})",
                "`/local/stats` rejected.quota_exceeded: one attempt per script in flight, "
                "none started after the first refusal",
            ),
            (
                "Re-run after raising the quota: characters billed / characters missing",
                f"{self.rerun_billed} / {self.rerun_expected}",
                "same data dir, new engine process with a larger `--quota`; `/local/stats`",
            ),
        ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def measure_quota(work_dir: Path, items: int = 20, *, flow_concurrency: int = 2) -> QuotaRun:
    """Runs ``narrate`` into a quota three ways: refused up front, exhausted mid-batch, resumed.

    1. The engine's quota is half of what the batch needs: the flow must refuse to start.
    2. The quota covers the batch, but another consumer of the same key spends it once a few
       files exist: the flow must stop with a quota error, keep what completed and name what
       did not, without hammering the engine.
    3. A new engine process on the same data dir with a larger quota: a re-run must generate
       only the missing scripts.
    """
    from prefect_elevenlabs.errors import QuotaExceededError

    key = "quota-key"
    scripts = scripts_for(items, prefix="quota")
    need = sum(len(s["text"]) for s in scripts)
    longest = max(len(s["text"]) for s in scripts)
    data_dir = work_dir / "engine"

    # 1. Refused before any work.
    early_dir = work_dir / "refused"
    early_dir.mkdir(parents=True)
    with EngineProcess(data_dir, api_keys=[key], quota=need // 2) as engine:
        early = run_narrate(scripts, early_dir, credentials_for(engine.base_url, key)).error
        early_requests = int(engine_stats(engine.base_url, key)["requests"])
    early_files = sorted(files_under(early_dir))

    # 2. Exhausted mid-batch by another consumer.
    output_dir = work_dir / "narration"
    with (
        EngineProcess(data_dir, api_keys=[key], quota=need, latency_ms=150) as engine,
        results_in(work_dir / "results"),
    ):
        finals = {f"{s['id']}.mp3" for s in scripts}

        def spend_when_started() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if len(finals & files_under(output_dir)) >= 4:
                    break
                time.sleep(0.02)
            plan = engine_get(engine.base_url, "/v1/user/subscription", key)
            left = int(plan["character_limit"]) - int(plan["character_count"])
            # Leave room only for what may be in flight, so the next scripts find no credits.
            _spend(engine.base_url, key, left - flow_concurrency * longest)

        spender = threading.Thread(target=spend_when_started, daemon=True)
        spender.start()
        narrated = run_narrate(
            scripts,
            output_dir,
            credentials_for(engine.base_url, key),
            max_concurrency=flow_concurrency,
        )
        summary, error = narrated.summary, narrated.error
        spender.join(timeout=120)
        stats = engine_stats(engine.base_url, key)
    outcomes = {o.id: o for o in (summary.items if summary is not None else [])}
    completed = sorted(i for i, o in outcomes.items() if o.status == "completed")
    not_completed = sorted(i for i, o in outcomes.items() if o.status != "completed")
    listed = set(outcomes)
    undecodable = []
    for item_id in completed:
        try:
            if audio_duration(output_dir / f"{item_id}.mp3") <= 0.2:
                undecodable.append(item_id)
        except Exception:
            undecodable.append(item_id)
    refused_items = sorted(
        i for i, o in outcomes.items() if o.status == "failed" and "quota" in (o.error or "")
    )
    not_started = sorted(i for i, o in outcomes.items() if o.status == "skipped")
    # The error travels pickled (Prefect results, process pools): read it the way a caller would.
    received = pickle.loads(pickle.dumps(error)) if error is not None else None
    message = str(received or "")
    lists_everything = (
        f"{len(completed)} of {items} scripts completed" in message
        and str(output_dir) in message
        and all(i in message for i in not_completed)
    )

    # 3. Resumed with a larger quota on the same data dir.
    with (
        EngineProcess(data_dir, api_keys=[key], quota=need * 20) as engine,
        results_in(work_dir / "results"),
    ):
        before = len(history_texts(engine.base_url, key))
        rerun_error = run_narrate(scripts, output_dir, credentials_for(engine.base_url, key)).error
        regenerated_texts = history_texts(engine.base_url, key)[before:]
        rerun_billed = int(engine_stats(engine.base_url, key)["characters_billed"])
    text_to_id = {s["text"]: s["id"] for s in scripts}
    regenerated = sorted(
        text_to_id.get(t, f"(not a script: {t[:30]!r})") for t in regenerated_texts
    )
    missing_before = [s for s in scripts if s["id"] not in completed]
    return QuotaRun(
        items=items,
        flow_concurrency=flow_concurrency,
        precheck_error="" if early is None else f"{type(early).__name__}: {early}",
        precheck_is_quota_error=isinstance(early, QuotaExceededError),
        precheck_requests=early_requests,
        precheck_new_files=early_files,
        error="" if error is None else f"{type(error).__name__}: {error}",
        is_quota_error=isinstance(error, QuotaExceededError),
        completed=completed,
        not_completed=not_completed,
        unaccounted=sorted(s["id"] for s in scripts if s["id"] not in listed),
        completed_undecodable=undecodable,
        quota_refusals=int(stats["rejected"]["quota_exceeded"]),
        refused_items=refused_items,
        not_started=not_started,
        output_dir=str(output_dir),
        error_completed=getattr(received, "completed", None),
        error_missing=getattr(received, "missing", None),
        error_output_dir=getattr(received, "output_dir", None),
        error_lists_everything=lists_everything,
        rerun_error=None if rerun_error is None else f"{type(rerun_error).__name__}: {rerun_error}",
        rerun_regenerated=regenerated,
        rerun_billed=rerun_billed,
        rerun_expected=sum(len(s["text"]) for s in missing_before),
        rerun_missing=sorted(
            s["id"] for s in scripts if not (output_dir / f"{s['id']}.mp3").is_file()
        ),
    )


# --------------------------------------------------------------------------------------------
# 3. Crash


_NARRATE_PROGRAM = """
import json, os, sys
from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.flows.narrate import narrate

args = json.loads(sys.argv[1])
summary = narrate(
    args["scripts"],
    output_dir=args["output_dir"],
    voice_id=args["voice_id"],
    target_lufs=None,
    max_concurrency=args["max_concurrency"],
    credentials=ElevenLabsCredentials(base_url=args["base_url"]),
)
with open(args["summary_path"], "w", encoding="utf-8") as handle:
    handle.write(summary.model_dump_json())
"""


def narrate_process(
    scripts: Sequence[Mapping[str, Any]],
    output_dir: Path,
    base_url: str,
    api_key: str,
    log_path: Path,
    *,
    max_concurrency: int = 2,
    results_dir: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Starts ``narrate`` in a separate Python process on the current Prefect API.

    The key travels in ``ELEVENLABS_API_KEY``, never on the command line. The run's summary is
    written as JSON to ``log_path`` with the suffix ``.summary.json`` when the flow completes.
    ``results_dir`` holds the process's result storage (the task cache records).
    """
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env["ELEVENLABS_API_KEY"] = api_key
    env.pop("ELEVENLABS_BASE_URL", None)
    env["PREFECT_LOGGING_LEVEL"] = "INFO"
    api_url = PREFECT_API_URL.value()
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if results_dir is not None:
        env["PREFECT_LOCAL_STORAGE_PATH"] = str(results_dir)
    args = {
        "scripts": [dict(s) for s in scripts],
        "output_dir": str(output_dir),
        "voice_id": FAST_VOICE_ID,
        "max_concurrency": max_concurrency,
        "base_url": base_url,
        "summary_path": str(log_path.with_suffix(".summary.json")),
    }
    log = log_path.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-c", _NARRATE_PROGRAM, json.dumps(args)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=output_dir.parent,
        )
    finally:
        log.close()


CRASH_FLOW_CONCURRENCY = 2
"""Scripts the killed ``narrate`` process speaks at once."""


@dataclass
class CrashRun:
    """A ``narrate`` process killed with SIGKILL mid-batch, then run again to the end."""

    items: int
    killed_after: int
    visible_at_kill: list[str]
    undecodable_at_kill: list[str]
    staging_left_at_kill: list[str]
    rerun_exit_code: int
    regenerated: list[str]
    regenerated_but_completed: list[str]
    paid_twice: list[str]
    flow_concurrency: int
    rerun_billed: int
    rerun_billed_expected: int
    missing_after: list[str]
    undecodable_after: list[str]
    partial_outputs_reported: list[str]
    staging_left_after: list[str]

    def shortfalls(self) -> list[str]:
        """What fell short: no partial output ever, no completed script generated again."""
        found = []
        if self.undecodable_at_kill or self.undecodable_after or self.partial_outputs_reported:
            found.append("a partial file passed for an output")
        if self.rerun_exit_code != 0 or self.missing_after:
            found.append(f"the re-run exited {self.rerun_exit_code}, missing {self.missing_after}")
        if self.regenerated_but_completed:
            found.append(
                f"{len(self.regenerated_but_completed)} scripts complete before the kill "
                "were generated again by the re-run"
            )
        if len(self.paid_twice) > self.flow_concurrency:
            found.append(
                f"{len(self.paid_twice)} scripts generated by both runs, more than the "
                f"{self.flow_concurrency} that can be in flight when the process dies"
            )
        return found

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        return [
            (
                "Crash: files complete when the process was killed",
                f"{self.killed_after} of {self.items}, {len(self.undecodable_at_kill)} undecodable",
                "`narrate` in a subprocess, SIGKILL once files appear; every visible file decodes",
            ),
            (
                "Crash: completed scripts generated again by the re-run",
                f"{len(self.regenerated_but_completed)} (re-run generated "
                f"{len(self.regenerated)}, billed {self.rerun_billed} = "
                f"{self.rerun_billed_expected} characters of those)",
                "engine history and `/local/stats` characters_billed during the re-run",
            ),
            (
                "Crash: scripts generated by both runs",
                f"{len(self.paid_twice)} (at most {self.flow_concurrency}, the scripts in flight)",
                "a request the engine completed after its client was killed is billed but never "
                "delivered; the engine is idle before the re-run starts",
            ),
            (
                "Crash: partial files taken for results",
                f"{len(self.partial_outputs_reported) + len(self.undecodable_after)}",
                "no `.part` in the re-run's outputs; all files decode; "
                f"hidden staging files left by the kill: {len(self.staging_left_at_kill)}, "
                f"left after the re-run: {len(self.staging_left_after)}",
            ),
        ]


def measure_crash_resume(work_dir: Path, items: int = 30, *, kill_after: int = 6) -> CrashRun:
    """Kills a ``narrate`` process mid-batch with SIGKILL and re-runs it.

    The engine (a separate process) stays up across both runs, so its history tells exactly
    which texts the re-run generated.
    """
    key = "crash-key"
    scripts = scripts_for(items, prefix="crash")
    output_dir = work_dir / "narration"
    output_dir.mkdir(parents=True)
    results = work_dir / "results"  # both processes' task cache records, and nothing else
    finals = {f"{s['id']}.mp3" for s in scripts}
    with EngineProcess(work_dir / "engine", api_keys=[key], latency_ms=150) as engine:
        first = narrate_process(
            scripts,
            output_dir,
            engine.base_url,
            key,
            work_dir / "first.log",
            max_concurrency=CRASH_FLOW_CONCURRENCY,
            results_dir=results,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and first.poll() is None:
            if len(finals & files_under(output_dir)) >= kill_after:
                break
            time.sleep(0.01)
        if first.poll() is not None:
            raise RuntimeError(
                f"the narrate process ended (code {first.returncode}) before it could be killed: "
                + (work_dir / "first.log").read_text(errors="replace")[-3000:]
            )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        at_kill = files_under(output_dir)
        visible = sorted(n for n in at_kill if not Path(n).name.startswith("."))
        undecodable_at_kill = _undecodable(output_dir, [n for n in visible if n in finals])
        # Requests of the dead process still run to their end in the engine; let them, so
        # their history and billing count for the first run, not for the re-run.
        _wait_until_idle(engine.base_url, key)
        billed_before = int(engine_stats(engine.base_url, key)["characters_billed"])
        first_texts = history_texts(engine.base_url, key)
        history_before = len(first_texts)

        second = narrate_process(
            scripts,
            output_dir,
            engine.base_url,
            key,
            work_dir / "second.log",
            max_concurrency=CRASH_FLOW_CONCURRENCY,
            results_dir=results,
        )
        second.wait(timeout=600)
        regenerated_texts = history_texts(engine.base_url, key)[history_before:]
        billed = int(engine_stats(engine.base_url, key)["characters_billed"]) - billed_before
    text_to_id = {s["text"]: s["id"] for s in scripts}
    regenerated = sorted(
        text_to_id.get(t, f"(not a script: {t[:30]!r})") for t in regenerated_texts
    )
    completed_at_kill = {n.removesuffix(".mp3") for n in visible if n in finals}
    generated_first = {text_to_id.get(t, t) for t in first_texts}
    summary_path = work_dir / "second.summary.json"
    reported: list[str] = []
    if summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        reported = [p for item in summary["items"] for p in item["outputs"]]
    after = files_under(output_dir)
    return CrashRun(
        items=items,
        killed_after=len(completed_at_kill),
        visible_at_kill=visible,
        undecodable_at_kill=undecodable_at_kill,
        staging_left_at_kill=sorted(n for n in at_kill if ".part" in Path(n).name),
        rerun_exit_code=int(second.returncode),
        regenerated=regenerated,
        regenerated_but_completed=sorted(set(regenerated) & completed_at_kill),
        paid_twice=sorted(set(regenerated) & generated_first),
        flow_concurrency=CRASH_FLOW_CONCURRENCY,
        rerun_billed=billed,
        rerun_billed_expected=sum(len(t) for t in regenerated_texts),
        missing_after=sorted(finals - after),
        undecodable_after=_undecodable(output_dir, sorted(finals & after)),
        partial_outputs_reported=[p for p in reported if ".part" in Path(p).name]
        if reported
        else ["(the re-run printed no summary)"],
        staging_left_after=partial_files(output_dir),
    )


def _wait_until_idle(base_url: str, api_key: str, timeout: float = 120.0) -> None:
    """Waits until the engine has no generation in flight."""
    deadline = time.monotonic() + timeout
    while engine_stats(base_url, api_key)["in_flight"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine still had requests in flight after {timeout:.0f} s")
        time.sleep(0.05)


def _undecodable(folder: Path, names: Iterable[str]) -> list[str]:
    bad = []
    for name in names:
        try:
            if audio_duration(folder / name) <= 0.2:
                bad.append(name)
        except Exception:
            bad.append(name)
    return bad


# --------------------------------------------------------------------------------------------
# 5. Secrets


def secret_patterns(secret: str) -> list[bytes]:
    """Byte patterns that reveal ``secret``: as is, URL- and hex-encoded, and inside base64.

    Base64 hides a string differently at each of the three byte alignments it may start at, so
    each alignment contributes the part of its encoding that does not depend on neighbours.
    """
    import base64
    import urllib.parse

    raw = secret.encode()
    patterns = {raw, urllib.parse.quote(secret, safe="").encode(), raw.hex().encode()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw)
            patterns.add(encoded[4 if shift else 0 : -4])
    return sorted(p for p in patterns if len(p) >= 12)


def count_secret(data: bytes | str, patterns: Sequence[bytes]) -> int:
    """Occurrences of any pattern in ``data``."""
    blob = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return sum(blob.count(pattern) for pattern in patterns)


def scan_tree(root: Path, patterns: Sequence[bytes]) -> tuple[int, int]:
    """(occurrences, files scanned) under ``root``, reading every regular file."""
    hits = files = 0
    if not root.exists():
        return 0, 0
    paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        files += 1
        hits += count_secret(data, patterns)
    return hits, files


class _LogCapture:
    """Collects every log record of the process, formatted with its traceback, at DEBUG."""

    _LOUD = ("prefect.flow_runs", "prefect.task_runs", "prefect_elevenlabs", "uvicorn")

    def __init__(self) -> None:
        import logging

        self.records: list[str] = []
        capture = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    capture.records.append(logging.Formatter().format(record))
                except Exception as exc:  # a record that cannot be formatted is still text
                    capture.records.append(f"{record.msg!r} {record.args!r} {exc!r}")

        self.handler = Handler(level=logging.DEBUG)
        self._levels: dict[str, int] = {}

    def __enter__(self) -> _LogCapture:
        import logging

        for name in ("", *self._LOUD):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.addHandler(self.handler)
            logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        import logging

        for name, level in self._levels.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.setLevel(level)


def _describe_error(error: BaseException) -> str:
    import traceback

    chain = "".join(traceback.format_exception(error))
    notes = [repr(error), str(error), repr(getattr(error, "__dict__", {}))]
    return chain + "\n".join(notes)


@dataclass
class SecretScan:
    """Where a canary API key showed up after every flow ran with it (it should be nowhere)."""

    flows: dict[str, str]
    occurrences: dict[str, int]
    scanned: dict[str, int]
    canary_in_engine_requests: int = 0

    @property
    def total(self) -> int:
        """Occurrences in every source together."""
        return sum(self.occurrences.values())

    def shortfalls(self) -> list[str]:
        """Any occurrence of the key, and any flow that did not run."""
        found = [f"{hits} in {name}" for name, hits in self.occurrences.items() if hits]
        expected_failure = "narrate (wrong key)"
        found += [
            f"{flow}: {outcome}"
            for flow, outcome in self.flows.items()
            if outcome != "completed" and flow != expected_failure
        ]
        return found

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        sources = ", ".join(f"{name} ({self.scanned.get(name, 0)})" for name in self.occurrences)
        runs = ", ".join(f"{flow}: {outcome}" for flow, outcome in self.flows.items())
        return [
            (
                "Secrets: occurrences of the API key outside the request header",
                f"{self.total} in {len(self.occurrences)} sources",
                f"canary key, engine requiring it; flows run: {runs}; scanned (items): "
                f"{sources}; raw, URL, hex and base64 forms",
            )
        ]


def measure_secret_exposure(work_dir: Path, canary: str) -> SecretScan:
    """Runs every flow with ``canary`` as the API key and looks for it everywhere it could leak.

    The engine (in this process) accepts only ``canary``; a last run with a different key fails
    authentication so error paths are covered too. Scanned afterwards: every log record of the
    process at DEBUG (with tracebacks), the Prefect API's logs, artifacts, flow-run parameters
    and task runs, the result storage, PREFECT_HOME, the Prefect database file, every output
    file, exceptions (with their chained tracebacks) and the reprs of the credentials, client
    and results.
    """
    import asyncio

    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )

    from prefect_elevenlabs.flows import (
        design_voice_flow,
        dub,
        narrate,
        sound_design,
        transcribe,
    )
    from prefect_elevenlabs.local.config import EngineConfig
    from prefect_elevenlabs.local.server import start_in_thread

    patterns = secret_patterns(canary)
    wrong_key = canary[::-1]
    patterns_wrong = secret_patterns(wrong_key)
    storage = work_dir / "results"
    outputs = work_dir / "outputs"
    data_dir = work_dir / "engine"
    install_fast_voice(data_dir)
    engine = start_in_thread(EngineConfig(data_dir=data_dir, port=0, api_keys=[canary]))
    credentials = credentials_for(engine.base_url, canary)
    texts: list[str] = []
    flows: dict[str, str] = {}
    flow_run_ids: list[Any] = []

    def run(name: str, call: Callable[[], Any]) -> Any:
        try:
            state = call()
        except Exception as error:  # a flow refused before it started
            flows[name] = type(error).__name__
            texts.append(_describe_error(error))
            return None
        flow_run_ids.append(state.state_details.flow_run_id)
        try:
            result = state.result()
        except Exception as error:
            flows[name] = type(error).__name__
            texts.append(_describe_error(error))
            return None
        flows[name] = "completed"
        texts.append(repr(result))
        return result

    try:
        with (
            temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: storage}),
            _LogCapture() as logs,
        ):
            narration = run(
                "narrate",
                lambda: narrate(
                    [
                        {"id": "canary-a", "text": "The first line."},
                        {"id": "canary-b", "text": "The second line."},
                    ],
                    output_dir=str(outputs / "narrate"),
                    voice_id=FAST_VOICE_ID,
                    credentials=credentials,
                    return_state=True,
                ),
            )
            speech = narration.items[0].outputs[0] if narration else ""
            run(
                "transcribe",
                lambda: transcribe(
                    [speech],
                    output_dir=str(outputs / "transcribe"),
                    credentials=credentials,
                    return_state=True,
                ),
            )
            clip = str(ROOT / "prefect_elevenlabs" / "assets" / "sample_clip.mp4")
            run(
                "dub (compose)",
                lambda: dub(
                    clip,
                    ["es"],
                    output_dir=str(outputs / "dub"),
                    credentials=credentials,
                    return_state=True,
                ),
            )
            run(
                "dub (dubbing_api)",
                lambda: dub(
                    clip,
                    ["es"],
                    output_dir=str(outputs / "dub-api"),
                    strategy="dubbing_api",
                    dubbing_api={"poll_interval_s": 0.5},
                    credentials=credentials,
                    return_state=True,
                ),
            )
            run(
                "sound_design",
                lambda: sound_design(
                    effects=[
                        {"id": "knock", "text": "two knocks on a door", "duration_seconds": 1}
                    ],
                    music=[
                        {
                            "id": "sting",
                            "prompt": "short bright piano sting",
                            "music_length_ms": 3000,
                        }
                    ],
                    output_dir=str(outputs / "sound"),
                    credentials=credentials,
                    return_state=True,
                ),
            )
            run(
                "design_voice_flow",
                lambda: design_voice_flow(
                    "A calm, warm narrator with a low voice and a slow, steady pace.",
                    output_dir=str(outputs / "design"),
                    save_as="Canary narrator",
                    credentials=credentials,
                    return_state=True,
                ),
            )
            refused = credentials_for(engine.base_url, wrong_key)
            run(
                "narrate (wrong key)",
                lambda: narrate(
                    [{"id": "refused", "text": "Never spoken."}],
                    output_dir=str(outputs / "refused"),
                    voice_id=FAST_VOICE_ID,
                    credentials=refused,
                    return_state=True,
                ),
            )
            texts += [repr(credentials), str(credentials), credentials.model_dump_json()]
            texts += [repr(refused), str(refused), refused.model_dump_json()]
            texts += [repr(credentials.get_client()), repr(credentials.get_client().transport)]
            api_texts = asyncio.run(_prefect_records(flow_run_ids))
    finally:
        engine.stop()

    occurrences: dict[str, int] = {}
    scanned: dict[str, int] = {}

    def tally(name: str, hits: int, items: int) -> None:
        occurrences[name] = occurrences.get(name, 0) + hits
        scanned[name] = scanned.get(name, 0) + items

    every = [*patterns, *patterns_wrong]
    tally("log records", sum(count_secret(t, every) for t in logs.records), len(logs.records))
    for name, records in api_texts.items():
        tally(f"Prefect API {name}", sum(count_secret(t, every) for t in records), len(records))
    tally("exceptions, results and reprs", sum(count_secret(t, every) for t in texts), len(texts))
    tally("result storage", *scan_tree(storage, every))
    tally("PREFECT_HOME", *scan_tree(Path(PREFECT_HOME.value()), every))
    database = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or "")
    if database.startswith("sqlite"):
        db_path = Path(database.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            tally("Prefect database", *scan_tree(Path(f"{db_path}{suffix}"), every))
    tally("output files", *scan_tree(outputs, every))
    tally("engine data dir", *scan_tree(data_dir, every))
    return SecretScan(flows=flows, occurrences=occurrences, scanned=scanned)


async def _prefect_records(flow_run_ids: Sequence[Any]) -> dict[str, list[str]]:
    """The API's logs, artifacts, flow runs and task runs of the given flow runs, as JSON."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    # Logs still queued in this process must reach the API before it is read. Inside a running
    # event loop drain_all hands back an awaitable instead of draining.
    drained = APILogWorker.drain_all(timeout=30)
    if inspect.isawaitable(drained):
        await drained
    ids = list(flow_run_ids)
    records: dict[str, list[str]] = {}
    async with get_client() as client:
        records["logs"] = []
        while True:
            page = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                limit=200,
                offset=len(records["logs"]),
            )
            records["logs"] += [log.model_dump_json() for log in page]
            if len(page) < 200:
                break
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        )
        records["artifacts"] = [a.model_dump_json() for a in artifacts]
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
        )
        records["flow runs"] = [r.model_dump_json() for r in runs]
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
        )
        records["task runs"] = [t.model_dump_json() for t in tasks]
    return records


# --------------------------------------------------------------------------------------------
# 6. Engine hardening: fuzzing and concurrency


@dataclass
class FuzzRun:
    """A bounded, stateless schemathesis run against the engine's ``/openapi.json``."""

    operations: int
    operations_run: int
    requests: int
    statuses: dict[int, int]
    server_errors: list[str]
    transport_errors: list[str]
    seconds: float

    def shortfalls(self) -> list[str]:
        """5xx answers, unanswered requests, operations left out by the time budget."""
        found = list(self.server_errors[:10]) + list(self.transport_errors[:10])
        if self.operations_run < self.operations:
            found.append(f"only {self.operations_run} of {self.operations} operations fuzzed")
        return found

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        spread = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return [
            (
                "Fuzzing: 5xx answers from the engine",
                f"{len(self.server_errors)} in {self.requests} requests",
                f"schemathesis, positive and negative data, {self.operations_run} of "
                f"{self.operations} operations, stateless; statuses {spread}; "
                f"{len(self.transport_errors)} requests without an answer",
            )
        ]


def measure_fuzzing(
    work_dir: Path,
    *,
    max_examples: int = 6,
    time_budget_s: float = 240.0,
    request_timeout_s: float = 60.0,
) -> FuzzRun:
    """Fuzzes every HTTP operation of a fresh engine and records any 5xx.

    Each operation gets up to ``max_examples`` generated requests with valid data and as many
    with invalid data; the run stops starting new operations after ``time_budget_s``. An
    operation's examples run in order, so a slow generation (long music, say) only costs time.
    """
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    from prefect_elevenlabs.local.config import EngineConfig
    from prefect_elevenlabs.local.server import start_in_thread

    engine = start_in_thread(EngineConfig(data_dir=work_dir / "engine", port=0))
    statuses: dict[int, int] = {}
    server_errors: list[str] = []
    transport_errors: list[str] = []
    requests_sent = 0
    operations = run = 0
    started = time.monotonic()
    try:
        schema = schemathesis.openapi.from_url(f"{engine.base_url}/openapi.json")
        session = requests.Session()
        ops = [cast(Any, result).ok() for result in schema.get_all_operations()]
        operations = len(ops)
        for operation in ops:
            if time.monotonic() - started > time_budget_s:
                break
            run += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=max_examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def send(case: Any) -> None:
                    nonlocal requests_sent
                    requests_sent += 1
                    try:
                        response = case.call(
                            base_url=engine.base_url, session=session, timeout=request_timeout_s
                        )
                    except requests.RequestException as exc:
                        transport_errors.append(f"{case.operation.label}: {type(exc).__name__}")
                        return
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code >= 500:
                        server_errors.append(
                            f"{case.operation.label} -> {response.status_code}: "
                            f"{response.text[:300]} (request: {case.as_curl_command()[:500]})"
                        )

                try:
                    send()
                except Unsatisfiable:
                    # No invalid data exists for an operation without inputs: nothing to send.
                    if mode is GenerationMode.POSITIVE:
                        raise
    finally:
        engine.stop()
    return FuzzRun(
        operations=operations,
        operations_run=run,
        requests=requests_sent,
        statuses=statuses,
        server_errors=server_errors,
        transport_errors=transport_errors,
        seconds=time.monotonic() - started,
    )


@dataclass
class ConcurrencyRun:
    """50 clones, deletes and generations sent at once, and the state they left."""

    sent: dict[str, int]
    answered: dict[str, dict[int, int]]
    unexpected: list[str]
    voices_expected: int
    voices_listed: int
    voice_mismatch: list[str]
    orphan_files: list[str]
    missing_files: list[str]
    history_items: int
    characters_used: int
    characters_expected: int
    integrity: str

    def shortfalls(self) -> list[str]:
        """Any failed request or inconsistency in the state."""
        found = self.unexpected + self.voice_mismatch + self.orphan_files + self.missing_files
        if self.characters_used != self.characters_expected:
            found.append(f"billed {self.characters_used}, expected {self.characters_expected}")
        if self.integrity != "ok":
            found.append(f"integrity_check: {self.integrity}")
        return found

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        total = sum(self.sent.values())
        mix = ", ".join(f"{n} {kind}" for kind, n in self.sent.items())
        problems = (
            len(self.unexpected)
            + len(self.voice_mismatch)
            + len(self.orphan_files)
            + len(self.missing_files)
        )
        return [
            (
                f"Concurrency: {total} requests at once, inconsistencies left in the state",
                f"{problems} (SQLite integrity_check: {self.integrity})",
                f"{mix}; voices listed vs expected, files vs rows, history and billing",
            )
        ]


def measure_concurrency(
    work_dir: Path, *, clones: int = 20, deletes: int = 15, speeches: int = 15
) -> ConcurrencyRun:
    """Sends clones, deletes (of voices cloned beforehand) and TTS requests all at once.

    Afterwards the engine must list exactly the voices that should exist, every stored file
    must belong to a row and every row's file must exist, the history must hold one item per
    generation, the key must be billed exactly once per generation, and SQLite must pass its
    integrity check.
    """
    import asyncio
    import sqlite3

    from prefect_elevenlabs.local.state import EngineState
    from prefect_elevenlabs.local.wire import key_id

    key = "concurrency-key"
    data_dir = work_dir / "engine"
    with EngineProcess(data_dir, api_keys=[key]) as engine:
        headers = {"xi-api-key": key}
        sample = httpx.post(
            f"{engine.base_url}/v1/text-to-speech/{FAST_VOICE_ID}",
            params={"output_format": "wav_16000"},
            json={"text": "This is a sample of my voice, read slowly and clearly for cloning."},
            headers=headers,
            timeout=60,
        )
        sample.raise_for_status()
        audio = sample.content
        texts = [f"Concurrent line number {i}." for i in range(speeches)]

        async def burst() -> tuple[list[str], dict[str, list[httpx.Response]]]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(
                base_url=engine.base_url, headers=headers, timeout=300, limits=limits
            ) as http:

                async def clone(name: str) -> httpx.Response:
                    return await http.post(
                        "/v1/voices/add",
                        data={"name": name},
                        files={"files": (f"{name}.wav", audio, "audio/wav")},
                    )

                doomed = []
                for index in range(deletes):
                    response = await clone(f"doomed-{index}")
                    response.raise_for_status()
                    doomed.append(response.json()["voice_id"])
                calls = {
                    "clone": [clone(f"clone-{i}") for i in range(clones)],
                    "delete": [http.delete(f"/v1/voices/{v}") for v in doomed],
                    "tts": [
                        http.post(
                            f"/v1/text-to-speech/{FAST_VOICE_ID}",
                            params={"output_format": "mp3_22050_32"},
                            json={"text": text},
                        )
                        for text in texts
                    ],
                }
                flat = [c for group in calls.values() for c in group]
                answers = await asyncio.gather(*flat)
                grouped: dict[str, list[httpx.Response]] = {}
                position = 0
                for kind, group in calls.items():
                    grouped[kind] = list(answers[position : position + len(group)])
                    position += len(group)
                return doomed, grouped

        doomed, grouped = asyncio.run(burst())
        listed = engine_get(engine.base_url, "/v1/voices", key)["voices"]
        history = engine_get(engine.base_url, "/v1/history", key, page_size=1000)["history"]
    unexpected = [
        f"{kind}: HTTP {r.status_code} {r.text[:200]}"
        for kind, group in grouped.items()
        for r in group
        if r.status_code != 200
    ]
    cloned = {r.json()["voice_id"] for r in grouped["clone"] if r.status_code == 200}
    custom = {v["voice_id"] for v in listed if v.get("category") == "cloned"} - {FAST_VOICE_ID}
    mismatch = sorted(f"missing {v}" for v in cloned - custom)
    mismatch += sorted(f"not deleted {v}" for v in custom & set(doomed))
    mismatch += sorted(f"unknown {v}" for v in custom - cloned - set(doomed))

    state = EngineState(data_dir)
    try:
        samples = {s["sample_id"] for v in state.list_voices() for s in v.samples}
        history_ids = {item["history_item_id"] for item in history}
        on_disk = {
            (p.parent.name, p.name)
            for p in (data_dir / "audio").rglob("*")
            if p.is_file() and p.parent.name in ("samples", "history")
        }
        expected_files = {("samples", s) for s in samples} | {("history", h) for h in history_ids}
        used = state.characters_used(key_id(key))
    finally:
        state.close()
    with sqlite3.connect(f"file:{data_dir / 'engine.sqlite3'}?mode=ro", uri=True) as db:
        integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
    sample_text = "This is a sample of my voice, read slowly and clearly for cloning."
    return ConcurrencyRun(
        sent={kind: len(group) for kind, group in grouped.items()},
        answered={
            kind: {
                code: sum(1 for r in group if r.status_code == code)
                for code in {r.status_code for r in group}
            }
            for kind, group in grouped.items()
        },
        unexpected=unexpected,
        voices_expected=len(cloned),
        voices_listed=len(custom),
        voice_mismatch=mismatch,
        orphan_files=sorted("/".join(f) for f in on_disk - expected_files),
        missing_files=sorted("/".join(f) for f in expected_files - on_disk),
        history_items=len(history),
        characters_used=used,
        characters_expected=len(sample_text) + sum(len(t) for t in texts),
        integrity=integrity,
    )


# --------------------------------------------------------------------------------------------
# 4. Bad input, and checks that are pass/fail by nature


@dataclass
class UnreachableRun:
    """How a call to a closed port ends with the default settings."""

    attempts: int
    expected_attempts: int
    seconds: float
    error: str
    url: str

    def shortfalls(self) -> list[str]:
        """The call must fail with ConnectionFailedError naming where it tried, after retrying."""
        found = []
        if not self.error.startswith("ConnectionFailedError") or self.url not in self.error:
            found.append(f"unreachable server: {self.error}")
        if self.attempts != self.expected_attempts:
            found.append(
                f"unreachable server: {self.attempts} attempts, not the "
                f"{self.expected_attempts} of the default retry policy"
            )
        return found

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        return [
            (
                "Unreachable server: time to a clear error",
                f"{self.seconds:.1f} s, {self.attempts} attempts",
                f"client defaults ({self.expected_attempts - 1} retries, backoff from 0.5 s) "
                "against a closed port, attempts counted by the client's waits; "
                f"`{self.error[:90]}...`",
            )
        ]


def measure_unreachable() -> UnreachableRun:
    """Calls a closed loopback port with the client's default retry settings.

    Attempts are counted as the waits between them plus one: the client's waits go through
    the ``sleep`` it is given, which here records each one and then really sleeps.
    """
    import asyncio

    from prefect_elevenlabs.client import ElevenLabsClient
    from prefect_elevenlabs.client._retry import RetryPolicy

    url = f"http://127.0.0.1:{free_port()}"
    waits: list[float] = []

    async def counted_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async def call() -> tuple[str, float]:
        started = time.monotonic()
        async with ElevenLabsClient("k", base_url=url, sleep=counted_sleep) as client:
            try:
                await client.models.list()
            except Exception as error:
                return f"{type(error).__name__}: {error}", time.monotonic() - started
        return "no error", time.monotonic() - started

    error, seconds = asyncio.run(call())
    return UnreachableRun(
        attempts=len(waits) + 1,
        expected_attempts=RetryPolicy().max_retries + 1,
        seconds=seconds,
        error=error,
        url=url,
    )


@dataclass
class ChecksRun:
    """Pass/fail checks run by pytest, counted from its JUnit report."""

    label: str
    outcomes: dict[str, str]

    @property
    def passed(self) -> int:
        """Checks that passed."""
        return sum(1 for outcome in self.outcomes.values() if outcome == "passed")

    def shortfalls(self) -> list[str]:
        """Every check that did not pass."""
        return [
            f"{name}: {outcome}" for name, outcome in self.outcomes.items() if outcome != "passed"
        ]

    def rows(self) -> list[tuple[str, str, str]]:
        """(item, figure, how measured) rows for the report."""
        return [(self.label, f"{self.passed} of {len(self.outcomes)}", "pytest checks")]


def run_checks(label: str, target: str, *, keyword: str | None = None) -> ChecksRun:
    """Runs pytest on ``target`` in a subprocess and reads each test's outcome."""
    import xml.etree.ElementTree as ElementTree

    with tempfile.TemporaryDirectory(prefix="reliability-checks-") as tmp:
        junit = Path(tmp, "junit.xml")
        command = [sys.executable, "-m", "pytest", target, "-q", "-p", "no:cacheprovider"]
        command += [f"--junitxml={junit}", "-o", "junit_family=xunit2"]
        if keyword:
            command += ["-k", keyword]
        subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
        outcomes: dict[str, str] = {}
        if junit.exists():
            for case in ElementTree.parse(junit).getroot().iter("testcase"):
                name = case.get("name", "?")
                kinds = {child.tag for child in case}
                if "skipped" in kinds:
                    outcomes[name] = "skipped"
                elif kinds & {"failure", "error"}:
                    outcomes[name] = "failed"
                else:
                    outcomes[name] = "passed"
    return ChecksRun(label=label, outcomes=outcomes)


# --------------------------------------------------------------------------------------------
# The report


_TEST_COMMAND = ".venv/bin/pytest tests/reliability/{}"


@dataclass
class Section:
    """One measurement's rows, shortfalls and the commands that reproduce it."""

    name: str
    rows: list[tuple[str, str, str]]
    shortfalls: list[str]
    commands: tuple[str, str]
    seconds: float = field(default=0.0)


def _measure(name: str, work_dir: Path, items: int) -> Section:
    started = time.monotonic()
    folder = work_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    result: Any
    if name == "hostile":
        result = measure_hostile_batch(folder, items=items)
        test = "test_hostile_server.py"
    elif name == "quota":
        result = measure_quota(folder)
        test = "test_quota.py"
    elif name == "crash":
        result = measure_crash_resume(folder)
        test = "test_crash_resume.py"
    elif name == "bad-input":
        result = run_checks(
            "Bad input: kinds answered with a typed error naming the fix, nothing written",
            "tests/reliability/test_bad_input.py",
            keyword="test_bad_input_gets_a_typed_error_and_writes_nothing",
        )
        test = "test_bad_input.py"
    elif name == "unreachable":
        result = measure_unreachable()
        test = "test_bad_input.py -k unreachable"
    elif name == "secrets":
        import secrets as _secrets

        result = measure_secret_exposure(folder, "sk_canary_" + _secrets.token_hex(16))
        test = "test_secrets.py"
    elif name == "hardening":
        result = run_checks(
            "Engine hardening: loopback bind, keys on every route, upload limit, data-dir wall",
            "tests/reliability/test_engine_hardening.py",
            keyword="not fuzzing and not concurrent",
        )
        test = "test_engine_hardening.py -m 'not slow'"
    elif name == "fuzz":
        result = measure_fuzzing(folder)
        test = "test_engine_hardening.py -k fuzzing"
    elif name == "concurrency":
        result = measure_concurrency(folder)
        test = "test_engine_hardening.py -k concurrent"
    else:
        raise ValueError(f"unknown measurement {name!r}; choose from {', '.join(MEASUREMENTS)}")
    return Section(
        name=name,
        rows=result.rows(),
        shortfalls=result.shortfalls(),
        commands=(f"{REPORT_COMMAND} --only {name}", _TEST_COMMAND.format(test)),
        seconds=time.monotonic() - started,
    )


MEASUREMENTS = (
    "hostile",
    "quota",
    "crash",
    "bad-input",
    "unreachable",
    "secrets",
    "hardening",
    "fuzz",
    "concurrency",
)
"""Every measurement, in report order."""


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render(sections: Sequence[Section]) -> str:
    """RELIABILITY.md: the table of figures, what fell short, and how to reproduce it all."""
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Reliability and security figures",
        "",
        "What prefect-elevenlabs does when things go wrong: a server that fails 43 % of its "
        "requests, a quota that runs out, a process killed mid-batch, bad input of every kind, "
        "an API key that must never leak, and a local engine facing hostile clients. Every "
        "figure below was measured by `tests/reliability/report.py`; the tests in "
        "`tests/reliability/` call the same functions and assert on the same figures.",
        "",
        f"Generated on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.system()} with {os.cpu_count()} cores (load {load:.1f} at the end; wall "
        "times are this machine's and move with its load). Regenerate with:",
        "",
        "```",
        f"{REPORT_COMMAND} --write RELIABILITY.md",
        "```",
        "",
        "| Item | Figure | How measured | Command |",
        "| --- | --- | --- | --- |",
    ]
    for section in sections:
        for item, figure, how in section.rows:
            command = f"`{section.commands[0]}`"
            lines.append(f"| {_cell(item)} | {_cell(figure)} | {_cell(how)} | {command} |")
    lines += ["", "## Figures short of their target", ""]
    short = [(s.name, f) for s in sections for f in s.shortfalls]
    if not short:
        lines.append("None: every figure met its target.")
    for name, finding in short:
        lines.append(f"- **{name}**: {_cell(finding)}")
    lines += [
        "",
        "## Commands",
        "",
        "Each measurement alone, and the tests asserting on it (the slow ones are marked `slow`;"
        " CI runs them all, `-m 'not slow'` leaves them out while iterating):",
        "",
        "| Measurement | Report | Tests | Took |",
        "| --- | --- | --- | --- |",
    ]
    for section in sections:
        report, tests = section.commands
        lines.append(f"| {section.name} | `{report}` | `{tests}` | {section.seconds:.0f} s |")
    lines += [
        "",
        "All reliability tests: `.venv/bin/pytest tests/reliability`. Everything here runs "
        "offline against the local engine, with a throwaway Prefect API.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the measurements and prints (or writes) the report; exit code 1 on shortfalls."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=MEASUREMENTS, help="repeatable")
    parser.add_argument("--items", type=int, default=200, help="scripts in the hostile batch")
    parser.add_argument("--write", type=Path, help="write the Markdown report to this file")
    parser.add_argument("--work-dir", type=Path, help="keep the measurements' files here")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    # The throwaway API server would otherwise try to reach the network to send telemetry.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    chosen = args.only or list(MEASUREMENTS)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            from prefect.testing.utilities import prefect_test_harness

            stack.enter_context(prefect_test_harness(server_startup_timeout=300))
        work_dir = args.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="reliability-"))
        )
        sections = []
        for name in chosen:
            print(f"measuring {name}...", file=sys.stderr, flush=True)
            sections.append(_measure(name, work_dir, args.items))
    text = render(sections)
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    else:
        print(text)
    return 1 if any(section.shortfalls for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
