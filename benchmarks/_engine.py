"""Starting and stopping benchmark engines, and reading what they saw.

Example::

    with EngineProcess(latency_ms=200, max_concurrency=5) as engine:
        ...  # point a client at engine.base_url
        engine.stats()["peak_concurrency"]
        window = engine.window(path_part="/text-to-speech/")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ._engine_process import FAST_VOICE_ID

__all__ = ["FAST_VOICE_ID", "EngineProcess", "EngineStartFailed", "RequestTiming", "Window"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S = 90.0


class EngineStartFailed(RuntimeError):
    """The benchmark engine's process exited or stayed silent instead of serving."""


@dataclass(frozen=True)
class RequestTiming:
    """One API request as the engine saw it (system-wide monotonic seconds)."""

    method: str
    path: str
    status: int | None
    start: float
    first_byte: float | None
    end: float | None


@dataclass(frozen=True)
class Window:
    """The span from the first matching request's arrival to the last one's final byte."""

    start: float
    end: float
    requests: int

    @property
    def seconds(self) -> float:
        """Length of the window."""
        return self.end - self.start


class EngineProcess:
    """A local engine in a child process, on a free loopback port, with its own data dir.

    Keyword arguments are :class:`~prefect_elevenlabs.local.config.EngineConfig` fields
    (``latency_ms``, ``ttfb_ms``, ``max_concurrency``, ``character_quota``...).
    ``fast_voice`` stores :data:`FAST_VOICE_ID`; ``cpus`` pins the process to those CPUs.
    """

    def __init__(
        self, *, fast_voice: bool = True, cpus: set[int] | None = None, **config: Any
    ) -> None:
        self.config = config
        self.fast_voice = fast_voice
        self.cpus = cpus
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._data_dir: Path | None = None
        self._http: httpx.Client | None = None

    def __enter__(self) -> EngineProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The engine process's id."""
        if self._process is None:
            raise RuntimeError("the engine is not running")
        return self._process.pid

    def start(self) -> None:
        """Launches the process and waits for its ready line."""
        self._data_dir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
        settings = {**self.config, "data_dir": str(self._data_dir), "fast_voice": self.fast_voice}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._engine_process", json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        if self.cpus:
            os.sched_setaffinity(self._process.pid, self.cpus)
        line = self._read_ready_line()
        self.base_url = json.loads(line)["base_url"]
        self._http = httpx.Client(base_url=self.base_url, timeout=60.0)

    def _read_ready_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.append(self._process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(_START_TIMEOUT_S)
        if not lines or not lines[0].strip():
            self.stop()
            raise EngineStartFailed(
                f"the benchmark engine did not report ready within {_START_TIMEOUT_S:.0f} s; "
                'run `python -m benchmarks._engine_process \'{"data_dir": "/tmp/x"}\'` to see why'
            )
        return lines[0]

    def stop(self) -> None:
        """Closes the process's input (its signal to exit), waits, and removes its data dir."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout is not None:
                process.stdout.close()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("the engine is not running")
        return self._http

    def stats(self) -> dict[str, Any]:
        """``GET /local/stats``: requests, faults, refusals, characters billed, peak concurrency."""
        response = self._client().get("/local/stats")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def reset_stats(self, *, include_usage: bool = False) -> None:
        """Zeroes the counters (and every key's billed characters with ``include_usage``)."""
        params = {"include_usage": "true"} if include_usage else None
        self._client().post("/local/stats/reset", params=params).raise_for_status()

    def timings(self) -> list[RequestTiming]:
        """Every ``/v1/`` request since start or the last :meth:`reset_timings`."""
        response = self._client().get("/_bench/timings")
        response.raise_for_status()
        return [RequestTiming(**record) for record in response.json()]

    def reset_timings(self) -> None:
        """Forgets the recorded request timings."""
        self._client().post("/_bench/timings/reset").raise_for_status()

    def reset(self) -> None:
        """Resets both the engine's counters (billing included) and the timings."""
        self.reset_stats(include_usage=True)
        self.reset_timings()

    def window(self, path_part: str = "/text-to-speech/") -> Window | None:
        """The generation window of requests whose path contains ``path_part``; None if none."""
        matching = [t for t in self.timings() if path_part in t.path and t.end is not None]
        if not matching:
            return None
        return Window(
            start=min(t.start for t in matching),
            end=max(t.end for t in matching if t.end is not None),
            requests=len(matching),
        )
