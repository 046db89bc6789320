"""Throughput: a batch of text-to-speech requests against a service that allows 5 at a time.

The engine answers each request after about 200 ms (``latency_ms``) and refuses a sixth
concurrent one with 429 ``too_many_concurrent_requests``, as a plan with a concurrency of 5
does. The texts are a few words spoken by an espeak voice, so synthesis costs a few
milliseconds. The same batch is sent

- by the ``narrate`` flow with credentials ``max_concurrency=5`` (``narrate(...,
  max_concurrency=5)``, every other setting at its default except raw PCM output without
  loudness normalisation);
- by the official SDK's async client with ``asyncio.gather`` (nothing limits it; the SDK does
  not retry audio endpoints, so refused requests are failed items);
- by the official SDK with an ``asyncio.Semaphore(5)`` around each call.

The ideal is ``requests x latency / 5`` seconds. Each run is timed over its generation phase:
from the first text-to-speech request reaching the engine to the last response leaving it (the
engine stamps both), so Prefect's flow start-up is left out and reported on its own.
Achieved/ideal is the completed items per second over the ideal rate ``5 / latency``.

Run alone with ``python -m benchmarks.throughput [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ._cpu import CpuSnapshot
from ._engine import FAST_VOICE_ID, EngineProcess
from ._prefect import BENCH_API_KEY, credentials_for
from ._report import BenchmarkResult, Row

NAME = "throughput"
TITLE = "Throughput"
CAP = 5
TARGET_RATIO = 0.90
MODEL_ID = "eleven_multilingual_v2"
OUTPUT_FORMAT = "pcm_22050"
TTS_PATH = "/text-to-speech/"


def _text(i: int) -> str:
    return f"Line number {i}."


def _outcome(
    engine: EngineProcess, started: float, finished: float, cpu_before: CpuSnapshot
) -> dict[str, Any]:
    """What the engine saw during one run (window, completions, refusals) and the CPU spent."""
    cpu = CpuSnapshot.take(engine_pid=engine.pid) - cpu_before
    timings = [t for t in engine.timings() if TTS_PATH in t.path]
    stats = engine.stats()
    ok = [t for t in timings if t.status == 200]
    window = engine.window(TTS_PATH)
    return {
        "requests": len(timings),
        "completed": len(ok),
        "refused_429": sum(1 for t in timings if t.status == 429),
        "peak_concurrency": stats["peak_concurrency"],
        "window_s": window.seconds if window else None,
        "wall_s": finished - started,
        "before_first_request_s": (window.start - started) if window else None,
        "after_last_response_s": (finished - window.end) if window else None,
        "cpu_ms_per_request": {
            where: (seconds * 1000 / len(timings) if seconds is not None and timings else None)
            for where, seconds in cpu.items()
        },
    }


def _sdk_batch(engine: EngineProcess, n: int, out: Path, *, limit: int | None) -> dict[str, Any]:
    from elevenlabs import AsyncElevenLabs

    async def batch() -> list[BaseException | None]:
        sdk = AsyncElevenLabs(api_key=BENCH_API_KEY, base_url=engine.base_url)
        gate = asyncio.Semaphore(limit) if limit else None

        async def one(i: int) -> None:
            stream = sdk.text_to_speech.convert(
                FAST_VOICE_ID, text=_text(i), model_id=MODEL_ID, output_format=OUTPUT_FORMAT
            )
            if gate is None:
                audio = b"".join([chunk async for chunk in stream])
            else:
                async with gate:
                    audio = b"".join([chunk async for chunk in stream])
            (out / f"sdk-{i:04d}.pcm").write_bytes(audio)

        results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    engine.reset()
    cpu_before = CpuSnapshot.take(engine_pid=engine.pid)
    started = time.monotonic()
    errors = asyncio.run(batch())
    finished = time.monotonic()
    outcome = _outcome(engine, started, finished, cpu_before)
    outcome["failed"] = sum(1 for e in errors if e is not None)
    kinds = {type(e).__name__ for e in errors if e is not None}
    outcome["error_kinds"] = sorted(kinds)
    return outcome


def _narrate_batch(
    engine: EngineProcess, n: int, out: Path, *, workers: int | None = None
) -> dict[str, Any]:
    from prefect_elevenlabs.flows._runtime import task_runner
    from prefect_elevenlabs.flows._summary import ItemsFailedError
    from prefect_elevenlabs.flows.narrate import narrate

    flow = narrate
    if workers is not None:
        runner: Any = task_runner(workers)  # Prefect's stubs want the generic base type
        flow = narrate.with_options(task_runner=runner)
    scripts = [{"id": f"line-{i:04d}", "text": _text(i)} for i in range(n)]
    engine.reset()
    cpu_before = CpuSnapshot.take(engine_pid=engine.pid)
    started = time.monotonic()
    try:
        summary = flow(
            scripts,  # type: ignore[arg-type]  # plain dicts validate into ScriptItem
            output_dir=str(out),
            voice_id=FAST_VOICE_ID,
            model_id=MODEL_ID,
            output_format=OUTPUT_FORMAT,
            target_lufs=None,
            max_concurrency=CAP,
            credentials=credentials_for(engine.base_url, max_concurrency=CAP),
        )
    except ItemsFailedError as exc:
        summary = exc.summary
    finished = time.monotonic()
    outcome = _outcome(engine, started, finished, cpu_before)
    outcome["failed"] = len(summary.failed)
    outcome["items"] = len(summary.items)
    outcome["characters"] = summary.characters
    return outcome


def _prefect_first_flow() -> float:
    from prefect import flow

    @flow(name="benchmark-prefect-start", persist_result=False)
    def start_flow() -> None:
        return None

    began = time.perf_counter()
    start_flow()
    return time.perf_counter() - began


def _service_time(engine: EngineProcess, reps: int = 5) -> float:
    """Median seconds the engine takes per request when nothing else is in flight."""
    engine.reset()
    with httpx.Client(base_url=engine.base_url, timeout=60.0) as http:
        for i in range(reps):
            http.post(
                f"/v1/text-to-speech/{FAST_VOICE_ID}",
                params={"output_format": OUTPUT_FORMAT},
                json={"text": _text(i), "model_id": MODEL_ID},
                headers={"xi-api-key": BENCH_API_KEY},
            ).raise_for_status()
    spans = [t.end - t.start for t in engine.timings() if t.end is not None]
    return statistics.median(spans)


def _rate_row(
    metric: str, outcome: dict[str, Any], ideal_rate: float, how: str, *, target: bool
) -> Row:
    window = outcome["window_s"]
    achieved = outcome["completed"] / window if window else None
    ratio = achieved / ideal_rate if achieved is not None else None
    return Row(
        metric=metric,
        ours=achieved,
        baseline=ideal_rate,
        unit="items/s",
        ratio=ratio,
        target=f">= {TARGET_RATIO:.2f}" if target else "— (reference)",
        met=(ratio is not None and ratio >= TARGET_RATIO) if target else None,
        ours_label=f"{outcome['completed']} done in {window or 0:.2f} s",
        baseline_label="ideal",
        how=how,
    )


_CPU_LABELS = (
    ("narrate", "narrate"),
    ("narrate_sized_runner", f"narrate with {CAP} runner threads"),
    ("sdk_semaphore", "SDK + semaphore"),
)


def _cpu_note(label: str, outcome: dict[str, Any]) -> str:
    cpu = outcome["cpu_ms_per_request"]
    if cpu.get("flow_process") is None:
        return f"CPU use of {label} was not measured (no /proc)."
    total = sum(v for v in cpu.values() if v is not None)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"CPU per request during the {label} run: {cpu['flow_process']:.0f} ms in the calling "
        f"process, {cpu['other_children'] or 0:.0f} ms in its other child processes (Prefect's "
        f"ephemeral API when no PREFECT_API_URL is set), {cpu['engine'] or 0:.0f} ms in the "
        f"engine; {total:.0f} ms in all, which by itself caps {cpus} CPUs at "
        f"{(cpus or 1) * 1000 / total:.1f} requests/s."
    )


def run(quick: bool = False) -> BenchmarkResult:
    """narrate vs the SDK (gather, semaphore) vs the ideal, at a concurrency cap of 5."""
    from prefect_elevenlabs.flows.narrate import narrate

    n, latency_ms = (12, 100.0) if quick else (200, 200.0)
    latency_s = latency_ms / 1000.0
    ideal_rate = CAP / latency_s
    ideal_s = n * latency_s / CAP
    runner_workers = getattr(narrate.task_runner, "_max_workers", None) or getattr(
        narrate.task_runner, "max_workers", None
    )
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        root = Path(tmp)
        first_flow_s = _prefect_first_flow()
        with EngineProcess(latency_ms=latency_ms, max_concurrency=CAP) as engine:
            service_s = _service_time(engine)
            for name in ("sdk_gather", "sdk_semaphore", "narrate"):
                out = root / name
                out.mkdir()
                if name == "narrate":
                    runs[name] = _narrate_batch(engine, n, out)
                else:
                    limit = CAP if name == "sdk_semaphore" else None
                    runs[name] = _sdk_batch(engine, n, out, limit=limit)
            if not quick and isinstance(runner_workers, int) and runner_workers < CAP:
                out = root / "narrate_sized_runner"
                out.mkdir()
                runs["narrate_sized_runner"] = _narrate_batch(engine, n, out, workers=CAP)

    common = (
        f"{n} requests of 3-4 words (espeak voice, {OUTPUT_FORMAT}); engine latency_ms="
        f"{latency_ms:.0f}, max_concurrency={CAP}; ideal {ideal_s:.1f} s = {n} x "
        f"{latency_s:.2f} s / {CAP}; timed from the first request reaching the engine to the "
        "last response leaving it"
    )
    narrate_run = runs["narrate"]
    rows = [
        _rate_row(
            "achieved/ideal throughput, narrate (max_concurrency=5)",
            narrate_run,
            ideal_rate,
            f"{common}; narrate runs in its default task runner "
            f"({runner_workers} worker threads); peak concurrency seen by the engine "
            f"{narrate_run['peak_concurrency']}, {narrate_run['refused_429']} refusals",
            target=True,
        )
    ]
    sized = runs.get("narrate_sized_runner")
    if sized is not None:
        rows.append(
            _rate_row(
                f"achieved/ideal throughput, narrate with task_runner(max_workers={CAP})",
                sized,
                ideal_rate,
                f"same batch through narrate.with_options(task_runner=task_runner({CAP})), "
                f"since the default runner has only {runner_workers} threads; peak "
                f"concurrency {sized['peak_concurrency']}",
                target=True,
            )
        )
    rows.append(
        _rate_row(
            "achieved/ideal throughput, SDK + asyncio.Semaphore(5)",
            runs["sdk_semaphore"],
            ideal_rate,
            f"same batch, AsyncElevenLabs with each call inside a Semaphore({CAP}); peak "
            f"concurrency {runs['sdk_semaphore']['peak_concurrency']}",
            target=False,
        )
    )
    gather = runs["sdk_gather"]
    rows.append(
        _rate_row(
            "achieved/ideal throughput, SDK asyncio.gather (unlimited)",
            gather,
            ideal_rate,
            f"same batch, all {n} calls gathered at once; completed items per second of the "
            f"generation phase: {gather['failed']} of {n} items failed with 429 (the SDK does "
            "not retry audio endpoints), so the batch is not done",
            target=False,
        )
    )
    rows.append(
        Row(
            metric="failed items, narrate vs SDK gather",
            ours=float(narrate_run["failed"]),
            baseline=float(gather["failed"]),
            unit="items",
            ratio=None,
            target="0",
            met=narrate_run["failed"] == 0,
            ours_label="narrate",
            baseline_label="SDK gather",
            how=(
                f"items of the {n}-item batch without audio at the end of the run "
                f"(narrate's summary; exceptions from asyncio.gather); SDK + semaphore failed "
                f"{runs['sdk_semaphore']['failed']}"
            ),
        )
    )
    rows.append(
        Row(
            metric="Prefect flow start-up, narrate (call to first request)",
            ours=narrate_run["before_first_request_s"],
            baseline=first_flow_s,
            unit="s",
            ratio=None,
            target="— (reported separately)",
            met=None,
            ours_label="narrate",
            baseline_label="first flow run in the process",
            how=(
                "from calling narrate to its first request reaching the engine (flow-run "
                "creation, script loading, budget check, model lookup); after the last "
                f"response narrate took {narrate_run['after_last_response_s']:.2f} s more to "
                "return (artifacts); the baseline is an empty flow run first in this process, "
                "which starts Prefect's ephemeral API unless one is already running"
            ),
        )
    )
    details = {
        "requests": n,
        "latency_ms": latency_ms,
        "cap": CAP,
        "ideal_s": ideal_s,
        "ideal_items_per_s": ideal_rate,
        "engine_service_time_s": service_s,
        "ideal_s_at_measured_service_time": n * service_s / CAP,
        "narrate_runner_workers": runner_workers,
        "prefect_first_flow_s": first_flow_s,
        "runs": runs,
    }
    notes = [
        f"One request alone takes the engine {service_s * 1000:.0f} ms (latency "
        f"{latency_ms:.0f} ms plus synthesis, encoding and bookkeeping), so even a perfect "
        f"client reaches at most {latency_s / service_s:.2f} of the ideal stated on latency.",
    ]
    notes += [_cpu_note(label, runs[key]) for key, label in _CPU_LABELS if key in runs]
    return BenchmarkResult(
        name=NAME, title=TITLE, rows=rows, details=details, notes=notes, quick=quick
    )


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
