"""CPU time spent by this process, a benchmark engine, this process's other children, and the
whole machine.

On a two-core machine a batch is often limited by CPU rather than by the service, so the
throughput benchmark reports where the CPU went: the flow's own process, the engine, the
remaining child processes (Prefect's ephemeral API server when no ``PREFECT_API_URL`` is set)
and every other process on the machine. Reads ``/proc``; elsewhere every figure is None.

A run's generation window is known only afterwards (the engine stamps it), and work before
and after it (flow start-up, artifacts, the API catching up on events) must not be charged to
it, so :class:`CpuSampler` reads the counters in the background and cuts out any window later.

Example::

    with CpuSampler(engine_pid=engine.pid) as sampler:
        ...  # run the batch
    spent = sampler.between(window.start, window.end)   # {"flow_process": 1.9, ...}
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["CpuSampler", "CpuSnapshot", "process_cpu_seconds"]

_PROC = Path("/proc")
FIELDS = ("flow_process", "engine", "other_children", "machine")
"""What a snapshot counts: this process, the engine, its other children, every CPU in use."""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return raw.rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of one live process (all its threads), or None."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # After the name: state, ppid, ... utime is the 12th and stime the 13th field.
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_busy_seconds() -> float | None:
    """CPU seconds every CPU of the machine spent busy (all processes), or None."""
    try:
        first = (_PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # "cpu user nice system idle iowait irq softirq steal ...": busy is all but idle, iowait.
    values = [int(v) for v in first[1:9]]
    busy = sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds consumed so far by this process, the engine, the other children and the
    machine as a whole."""

    flow_process: float | None
    engine: float | None
    other_children: float | None
    machine: float | None = None

    @classmethod
    def take(cls, *, engine_pid: int | None, children: list[int] | None = None) -> CpuSnapshot:
        """Reads the counters now; ``children`` spares a scan of /proc when already known."""
        if not _PROC.is_dir():
            return cls(None, None, None, None)
        me = os.getpid()
        others = children if children is not None else _children(me)
        other_seconds = [process_cpu_seconds(pid) for pid in others if pid != engine_pid]
        return cls(
            flow_process=process_cpu_seconds(me),
            engine=process_cpu_seconds(engine_pid) if engine_pid else None,
            other_children=sum(s for s in other_seconds if s is not None),
            machine=machine_busy_seconds(),
        )

    def __sub__(self, earlier: CpuSnapshot) -> dict[str, float | None]:
        def minus(now: float | None, then: float | None) -> float | None:
            return None if now is None or then is None else now - then

        return {name: minus(getattr(self, name), getattr(earlier, name)) for name in FIELDS}


class CpuSampler:
    """Reads :class:`CpuSnapshot` every ``interval`` seconds on a background thread.

    :meth:`between` then gives the CPU spent in any span of the sampled period, interpolating
    linearly between the samples either side of each end. The child processes are listed once
    at the start (Prefect's API and the engine are already running by then).
    """

    def __init__(self, *, engine_pid: int | None, interval: float = 0.05) -> None:
        self.engine_pid = engine_pid
        self.interval = interval
        self._times: list[float] = []
        self._snapshots: list[CpuSnapshot] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._children: list[int] = []

    def _sample(self) -> None:
        snapshot = CpuSnapshot.take(engine_pid=self.engine_pid, children=self._children)
        self._times.append(time.monotonic())
        self._snapshots.append(snapshot)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        if _PROC.is_dir():
            self._children = _children(os.getpid())
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _at(self, name: str, moment: float) -> float | None:
        times = self._times
        values = [getattr(s, name) for s in self._snapshots]
        if not times or any(v is None for v in values):
            return None
        i = bisect.bisect_left(times, moment)
        if i <= 0:
            return float(values[0])
        if i >= len(times):
            return float(values[-1])
        t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
        share = (moment - t0) / (t1 - t0) if t1 > t0 else 1.0
        return float(v0 + (v1 - v0) * share)

    def between(self, start: float, end: float) -> dict[str, float | None]:
        """CPU seconds per :data:`FIELDS` entry spent from ``start`` to ``end`` (monotonic)."""
        spent: dict[str, float | None] = {}
        for name in FIELDS:
            first, last = self._at(name, start), self._at(name, end)
            spent[name] = None if first is None or last is None else last - first
        return spent

    def total(self) -> dict[str, float | None]:
        """CPU seconds spent over the whole sampled period."""
        if not self._snapshots:
            return dict.fromkeys(FIELDS)
        return self._snapshots[-1] - self._snapshots[0]
