"""Overhead: what wrapping a text-to-speech call in a Prefect task adds per call.

Against an engine with no simulated latency and an espeak voice (a few milliseconds of work
per request), one async Prefect flow alternates blocks of

- the ``text_to_speech`` task with caching turned off (``cache_policy=NO_CACHE``), so every
  call is a real request, and
- the same request made directly with our client (``text_to_speech.convert`` into a file),
  through the very client (and connection pool) the task uses.

Each call is timed on its own; the figure is the difference of the medians. Unique texts keep
any layer from answering out of a cache. Target: the task adds at most 15 ms per call.

Run alone with ``python -m benchmarks.overhead [--quick]``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ._engine import FAST_VOICE_ID, EngineProcess
from ._prefect import credentials_for
from ._report import BenchmarkResult, Row

NAME = "overhead"
TITLE = "Task overhead"
TARGET_DELTA_MS = 15.0
MODEL_ID = "eleven_multilingual_v2"
OUTPUT_FORMAT = "pcm_22050"  # raw PCM: neither side spends time probing an mp3
BLOCK = 10


def _measure(engine: EngineProcess, calls: int, warmup: int, out: Path) -> dict[str, list[float]]:
    from prefect import flow
    from prefect.cache_policies import NO_CACHE

    from prefect_elevenlabs.tasks.text_to_speech import text_to_speech

    credentials = credentials_for(engine.base_url, max_concurrency=None)
    uncached = text_to_speech.with_options(cache_policy=NO_CACHE)

    @flow(name="benchmark-task-overhead", persist_result=False)
    async def overhead_flow() -> dict[str, list[float]]:
        client = credentials.get_client()
        times: dict[str, list[float]] = {"task": [], "direct": []}
        counter = 0

        async def direct_call(keep: bool) -> None:
            nonlocal counter
            counter += 1
            text = f"Direct call number {counter}."
            began = time.perf_counter()
            await client.text_to_speech.convert(
                FAST_VOICE_ID,
                text=text,
                dest=out / f"direct-{counter}.pcm",
                model_id=MODEL_ID,
                output_format=OUTPUT_FORMAT,
            )
            if keep:
                times["direct"].append(time.perf_counter() - began)

        async def task_call(keep: bool) -> None:
            nonlocal counter
            counter += 1
            text = f"Task call number {counter}."
            began = time.perf_counter()
            await uncached(
                text,
                credentials,
                voice_id=FAST_VOICE_ID,
                model_id=MODEL_ID,
                output_format=OUTPUT_FORMAT,
                output_dir=str(out),
            )
            if keep:
                times["task"].append(time.perf_counter() - began)

        for _ in range(warmup):
            await direct_call(False)
            await task_call(False)
        blocks = max(1, calls // BLOCK)
        per_block = max(1, calls // blocks)
        for index in range(blocks):
            # Alternate which side goes first, so drifting load favours neither.
            order = (direct_call, task_call) if index % 2 == 0 else (task_call, direct_call)
            for call in order:
                for _ in range(per_block):
                    await call(True)
        return times

    result: dict[str, list[float]] = asyncio.run(overhead_flow())
    return result


def run(quick: bool = False) -> BenchmarkResult:
    """Per-call time of the task in a flow versus a direct client call."""
    calls, warmup = (4, 1) if quick else (200, 10)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        out = Path(tmp)
        with EngineProcess() as engine:
            times = _measure(engine, calls, warmup, out)
            stats = engine.stats()
    task_ms = statistics.median(times["task"]) * 1000
    direct_ms = statistics.median(times["direct"]) * 1000
    delta = task_ms - direct_ms
    task_mean = statistics.fmean(times["task"]) * 1000
    direct_mean = statistics.fmean(times["direct"]) * 1000
    rows = [
        Row(
            metric="added time per text_to_speech call (task in a flow minus direct client call)",
            ours=task_ms,
            baseline=direct_ms,
            unit="ms",
            ratio=task_ms / direct_ms if direct_ms else None,
            target=f"delta <= {TARGET_DELTA_MS:.0f} ms (measured {delta:+.1f} ms)",
            met=delta <= TARGET_DELTA_MS,
            ours_label="task, median",
            baseline_label="client, median",
            how=(
                f"{len(times['task'])} task calls (cache_policy=NO_CACHE) and "
                f"{len(times['direct'])} direct client.text_to_speech.convert calls to a file, "
                f"in alternating blocks of {BLOCK} inside one async flow, after {warmup} warm-up "
                f"calls each; unique short texts, {OUTPUT_FORMAT}, espeak voice, engine without "
                "latency; ratio is task/direct, the target is on the difference of medians"
            ),
        ),
        Row(
            metric="added time per call, means",
            ours=task_mean,
            baseline=direct_mean,
            unit="ms",
            ratio=task_mean / direct_mean if direct_mean else None,
            target=f"— (reference: {task_mean - direct_mean:+.1f} ms)",
            met=None,
            ours_label="task, mean",
            baseline_label="client, mean",
            how="the same calls, averaged instead of the median (sensitive to pauses)",
        ),
    ]
    details = {
        "calls": calls,
        "warmup": warmup,
        "delta_median_ms": delta,
        "delta_mean_ms": task_mean - direct_mean,
        "task_ms": [round(t * 1000, 2) for t in times["task"]],
        "direct_ms": [round(t * 1000, 2) for t in times["direct"]],
        "engine_requests": stats.get("requests"),
    }
    return BenchmarkResult(name=NAME, title=TITLE, rows=rows, details=details, quick=quick)


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
