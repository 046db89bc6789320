"""CPU time spent by this process, a benchmark engine, and this process's other children.

On a two-core machine a batch is often limited by CPU rather than by the service, so the
throughput benchmark reports where the CPU went: the flow's own process, the engine, and the
remaining child processes (Prefect's ephemeral API server when no ``PREFECT_API_URL`` is set).
Reads ``/proc``; elsewhere every figure is None.

Example::

    before = CpuSnapshot.take(engine_pid=engine.pid)
    ...
    spent = CpuSnapshot.take(engine_pid=engine.pid) - before   # {"flow_process": 1.9, ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSnapshot", "process_cpu_seconds"]

_PROC = Path("/proc")


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
    """CPU seconds consumed so far by this process, the engine, and the other children."""

    flow_process: float | None
    engine: float | None
    other_children: float | None

    @classmethod
    def take(cls, *, engine_pid: int | None) -> CpuSnapshot:
        """Reads the counters now."""
        if not _PROC.is_dir():
            return cls(None, None, None)
        me = os.getpid()
        others = [pid for pid in _children(me) if pid != engine_pid]
        other_seconds = [process_cpu_seconds(pid) for pid in others]
        return cls(
            flow_process=process_cpu_seconds(me),
            engine=process_cpu_seconds(engine_pid) if engine_pid else None,
            other_children=sum(s for s in other_seconds if s is not None),
        )

    def __sub__(self, earlier: CpuSnapshot) -> dict[str, float | None]:
        def minus(now: float | None, then: float | None) -> float | None:
            return None if now is None or then is None else now - then

        return {
            "flow_process": minus(self.flow_process, earlier.flow_process),
            "engine": minus(self.engine, earlier.engine),
            "other_children": minus(self.other_children, earlier.other_children),
        }
