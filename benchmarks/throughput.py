"""Throughput: a batch of text-to-speech requests against a service that allows 5 at a time.

The engine answers each request after about 200 ms (``latency_ms``) and refuses a sixth
concurrent one with 429 ``too_many_concurrent_requests``, as a plan with a concurrency of 5
does. The texts are a few words spoken by an espeak voice, so synthesis costs a few
milliseconds. The same batch is sent

- by the ``narrate`` flow the way its docs tell a user with that plan to run it: credentials
  ``max_concurrency=5`` (the plan's cap on requests in flight) and ``narrate(...,
  max_concurrency=10)``, twice as many scripts in progress so the next one is ready whenever a
  request slot frees up; raw PCM without loudness normalisation, every other setting (the task
  runner included) at its default;
- by ``narrate`` with only 5 scripts in progress, for reference;
- by the official SDK's async client with ``asyncio.gather`` (nothing limits it; the SDK does
  not retry audio endpoints, so refused requests are failed items);
- by the official SDK with an ``asyncio.Semaphore(5)`` around each call.

A "Prefect alone" run gives the ceiling that Prefect's own per-task work sets on this
machine: the same number of items in the same shape as ``narrate`` (a sync task per item,
submitted with the flows' bounded submission, running its request on an event loop of its own)
where the request only holds one of 5 slots for the engine's measured service time.

The ideal is ``requests x latency / 5`` seconds. Each run is timed over its generation phase:
from the first text-to-speech request reaching the engine to the last response leaving it (the
engine stamps both), so Prefect's flow start-up is left out and reported on its own.
Achieved/ideal is the completed items per second over the ideal rate ``5 / latency``. Where the
CPU went (this process, Prefect's API process, the engine) is read from ``/proc``.

Run alone with ``python -m benchmarks.throughput [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ._cpu import CpuSampler
from ._engine import FAST_VOICE_ID, EngineProcess
from ._prefect import BENCH_API_KEY, credentials_for
from ._report import BenchmarkResult, Row

NAME = "throughput"
TITLE = "Throughput"
CAP = 5
OVERLAP = 2 * CAP
"""Scripts in progress in the overlapped narrate run: twice the requests allowed in flight."""
TARGET_RATIO = 0.90
MODEL_ID = "eleven_multilingual_v2"
OUTPUT_FORMAT = "pcm_22050"
TTS_PATH = "/text-to-speech/"


def _text(i: int) -> str:
    return f"Line number {i}."


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_in_window(
    sampler: CpuSampler, start: float, end: float, items: int
) -> dict[str, float | None]:
    """CPU milliseconds per item spent inside a run's generation window, by where it went.

    ``others`` is what the rest of the machine (other users' processes) used meanwhile, and
    ``machine_busy_share`` how busy all CPUs were, 0 to 1.
    """
    spent = sampler.between(start, end)
    per_item: dict[str, float | None] = {
        where: (seconds * 1000 / items if seconds is not None and items else None)
        for where, seconds in spent.items()
        if where != "machine"
    }
    machine = spent.get("machine")
    ours = [spent.get(k) for k in ("flow_process", "other_children", "engine")]
    if machine is not None and items and all(v is not None for v in ours):
        per_item["others"] = max(0.0, machine - sum(v or 0.0 for v in ours)) * 1000 / items
    else:
        per_item["others"] = None
    width = end - start
    per_item["machine_busy_share"] = (
        machine / (width * _cpus()) if machine is not None and width > 0 else None
    )
    return per_item


def _outcome(
    engine: EngineProcess, started: float, finished: float, sampler: CpuSampler
) -> dict[str, Any]:
    """What the engine saw during one run (window, completions, refusals) and the CPU spent."""
    timings = [t for t in engine.timings() if TTS_PATH in t.path]
    stats = engine.stats()
    ok = [t for t in timings if t.status == 200]
    window = engine.window(TTS_PATH)
    busy = sum(t.end - t.start for t in timings if t.end is not None)
    return {
        "requests": len(timings),
        "completed": len(ok),
        "refused_429": sum(1 for t in timings if t.status == 429),
        "peak_concurrency": stats["peak_concurrency"],
        # Request-seconds per second of the window: how many of the 5 slots were busy on average.
        "mean_in_flight": busy / window.seconds if window and window.seconds else None,
        "window_s": window.seconds if window else None,
        "wall_s": finished - started,
        "before_first_request_s": (window.start - started) if window else None,
        "after_last_response_s": (finished - window.end) if window else None,
        "cpu_ms_per_request": (
            _cpu_in_window(sampler, window.start, window.end, len(timings)) if window else {}
        ),
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
    with CpuSampler(engine_pid=engine.pid) as sampler:
        started = time.monotonic()
        errors = asyncio.run(batch())
        finished = time.monotonic()
    outcome = _outcome(engine, started, finished, sampler)
    outcome["failed"] = sum(1 for e in errors if e is not None)
    kinds = {type(e).__name__ for e in errors if e is not None}
    outcome["error_kinds"] = sorted(kinds)
    return outcome


def _narrate_batch(
    engine: EngineProcess,
    n: int,
    out: Path,
    *,
    scripts_at_once: int = CAP,
) -> dict[str, Any]:
    """One narrate run in its default task runner, ``scripts_at_once`` scripts in progress."""
    from prefect_elevenlabs.flows._summary import ItemsFailedError
    from prefect_elevenlabs.flows.narrate import narrate

    scripts = [{"id": f"line-{i:04d}", "text": _text(i)} for i in range(n)]
    engine.reset()
    with CpuSampler(engine_pid=engine.pid) as sampler:
        started = time.monotonic()
        try:
            summary = narrate(
                scripts,  # type: ignore[arg-type]  # plain dicts validate into ScriptItem
                output_dir=str(out),
                voice_id=FAST_VOICE_ID,
                model_id=MODEL_ID,
                output_format=OUTPUT_FORMAT,
                target_lufs=None,
                max_concurrency=scripts_at_once,
                credentials=credentials_for(engine.base_url, max_concurrency=CAP),
            )
        except ItemsFailedError as exc:
            summary = exc.summary
        finished = time.monotonic()
    outcome = _outcome(engine, started, finished, sampler)
    outcome["failed"] = len(summary.failed)
    outcome["items"] = len(summary.items)
    outcome["characters"] = summary.characters
    outcome["scripts_at_once"] = scripts_at_once
    return outcome


def _prefect_alone(engine: EngineProcess, n: int, hold_s: float, *, at_once: int) -> dict[str, Any]:
    """narrate's shape with no work in it: the most Prefect itself lets a batch reach here.

    Each item is a sync task submitted through the flows' bounded submission to a thread-pool
    runner which, like narrate's script task, runs its request on an event loop of its own;
    the request only holds one of ``CAP`` process-wide slots for ``hold_s``. Nothing is cached
    or persisted.
    """
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from prefect_elevenlabs.client._limiter import ConcurrencyLimiter
    from prefect_elevenlabs.flows._runtime import submit_bounded, task_runner

    slots = ConcurrencyLimiter(CAP)
    spans: list[tuple[float, float]] = []
    spans_lock = threading.Lock()

    async def hold_slot() -> None:
        async with slots:
            began = time.monotonic()
            await asyncio.sleep(hold_s)
            ended = time.monotonic()
        with spans_lock:
            spans.append((began, ended))

    @task(name="bench-item", cache_policy=NO_CACHE, persist_result=False)
    def item(index: int) -> int:
        asyncio.run(hold_slot())
        return index

    runner: Any = task_runner()  # narrate's default runner

    @flow(name="benchmark-prefect-alone", task_runner=runner, persist_result=False)
    def batch() -> int:
        starts = [(lambda i=i: item.submit(i)) for i in range(n)]
        finished = submit_bounded(starts, at_once)
        return sum(1 for _, future in finished if future.state.is_completed())

    with CpuSampler(engine_pid=engine.pid) as sampler:
        completed = batch()
    start = min(s for s, _ in spans) if spans else None
    end = max(e for _, e in spans) if spans else None
    window = end - start if start is not None and end is not None else None
    return {
        "requests": n,
        "completed": completed,
        "failed": n - completed,
        "hold_s": hold_s,
        "mean_in_flight": sum(e - s for s, e in spans) / window if window else None,
        "window_s": window,
        "scripts_at_once": at_once,
        "cpu_ms_per_request": (
            _cpu_in_window(sampler, start, end, n) if start is not None and end else {}
        ),
    }


def _prefect_client_ms(reps: int = 20) -> float:
    """CPU milliseconds Prefect spends building one API client (it loads a TLS context)."""
    from prefect.client.orchestration import PrefectClient

    began = time.process_time()
    for _ in range(reps):
        PrefectClient("http://127.0.0.1:9/api")
    return (time.process_time() - began) * 1000 / reps


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


def _total_cpu(outcome: dict[str, Any]) -> float | None:
    """CPU ms per item of the run's own processes: the caller, Prefect's API, the engine."""
    cpu = outcome["cpu_ms_per_request"]
    parts = [cpu.get(k) for k in ("flow_process", "other_children", "engine")]
    if parts[0] is None:
        return None
    return sum(v for v in parts if v is not None)


def _in_flight(outcome: dict[str, Any]) -> str:
    mean = outcome.get("mean_in_flight")
    return f"{mean:.1f}" if mean is not None else "n/a"


def _cpu_note(label: str, outcome: dict[str, Any]) -> str:
    cpu = outcome["cpu_ms_per_request"]
    total = _total_cpu(outcome)
    if total is None:
        return f"CPU use of {label} was not measured (no /proc)."
    cpus = _cpus()
    busy = cpu.get("machine_busy_share")
    machine = (
        f"; the {cpus} CPUs were {busy:.0%} busy, other processes on the machine taking "
        f"{cpu.get('others') or 0:.0f} ms per item"
        if busy is not None
        else ""
    )
    return (
        f"{label}, CPU per item inside the generation window: {cpu['flow_process']:.0f} ms in "
        f"the calling process, {cpu.get('other_children') or 0:.0f} ms in Prefect's API process "
        f"(ephemeral, as no PREFECT_API_URL is set), {cpu.get('engine') or 0:.0f} ms in the "
        f"engine; {total:.0f} ms in all, which by itself caps {cpus} CPUs at "
        f"{cpus * 1000 / total:.1f} items/s{machine}; {_in_flight(outcome)} of {CAP} request "
        "slots busy on average."
    )


_CPU_LABELS = (
    ("narrate", f"narrate, {OVERLAP} scripts in progress"),
    ("narrate_at_cap", f"narrate, {CAP} scripts in progress"),
    ("prefect_alone", f"Prefect alone, {CAP} items at once"),
    ("prefect_alone_overlapped", f"Prefect alone, {OVERLAP} items at once"),
    ("sdk_semaphore", "SDK + semaphore"),
)


def _budget_note(
    runs: dict[str, dict[str, Any]], ideal_rate: float, client_ms: float, service_s: float
) -> str | None:
    """What keeps narrate's best run under the target, in numbers, when it misses."""
    candidates = [k for k in ("narrate", "narrate_at_cap") if runs.get(k, {}).get("window_s")]
    if not candidates:
        return None
    best_key = max(candidates, key=lambda k: runs[k]["completed"] / runs[k]["window_s"])
    best = runs[best_key]
    needed_rate = TARGET_RATIO * ideal_rate
    achieved = best["completed"] / best["window_s"]
    if achieved >= needed_rate:
        return None
    cpus = _cpus()
    budget = cpus * 1000 / needed_rate
    total = _total_cpu(best)
    busy = best["cpu_ms_per_request"].get("machine_busy_share")
    ceiling = CAP / service_s / ideal_rate
    sdk = runs.get("sdk_semaphore")
    sdk_text = ""
    if sdk and sdk.get("window_s"):
        sdk_rate = sdk["completed"] / sdk["window_s"]
        sdk_text = (
            f" The official SDK with a semaphore of {CAP}, no orchestration at all, reached "
            f"{sdk_rate / ideal_rate:.2f} against the same engine, so narrate delivers "
            f"{achieved / sdk_rate:.0%} of what a hand-written loop gets from it."
        )
    alone = runs.get("prefect_alone_overlapped")
    alone_text = (
        f" Prefect alone, in narrate's shape with no work, reached "
        f"{alone['completed'] / alone['window_s'] / ideal_rate:.2f}."
        if alone and alone.get("window_s")
        else ""
    )
    cpu_text = (
        f" It used {total:.0f} ms of CPU per item (the budget at the target is {budget:.0f} ms "
        f"on {cpus} CPUs){f', the CPUs {busy:.0%} busy' if busy is not None else ''}."
        if total is not None
        else ""
    )
    return (
        f"What stands in the way: the engine's service time more than the flow. The best "
        f"narrate run ({best['scripts_at_once']} scripts in progress) reached "
        f"{achieved / ideal_rate:.2f} of the ideal with {_in_flight(best)} of {CAP} request "
        f"slots busy on average; one request alone takes the engine {service_s * 1000:.0f} ms, "
        f"so keeping all {CAP} slots busy gives at most {ceiling:.2f}, and less once requests "
        f"overlap on {cpus} CPUs.{sdk_text}{cpu_text}{alone_text} Each new event loop costs "
        f"Prefect an API client ({client_ms:.0f} ms of CPU for its TLS context), which is why "
        "narrate's per-script task is a sync task."
    )


def run(quick: bool = False) -> BenchmarkResult:
    """narrate vs Prefect alone vs the SDK (gather, semaphore) vs the ideal, at a cap of 5."""
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
        client_ms = _prefect_client_ms()
        with EngineProcess(latency_ms=latency_ms, max_concurrency=CAP) as engine:
            service_s = _service_time(engine)
            plan: list[tuple[str, dict[str, Any]]] = [
                ("sdk_gather", {}),
                ("sdk_semaphore", {}),
                ("narrate", {"scripts_at_once": OVERLAP}),
                ("narrate_at_cap", {"scripts_at_once": CAP}),
                ("prefect_alone_overlapped", {"at_once": OVERLAP}),
            ]
            if not quick:
                plan.append(("prefect_alone", {"at_once": CAP}))
            for name, options in plan:
                out = root / name
                out.mkdir()
                if name.startswith("narrate"):
                    runs[name] = _narrate_batch(engine, n, out, **options)
                elif name.startswith("prefect_alone"):
                    runs[name] = _prefect_alone(engine, n, service_s, **options)
                else:
                    limit = CAP if name == "sdk_semaphore" else None
                    runs[name] = _sdk_batch(engine, n, out, limit=limit)

    common = (
        f"{n} requests of 3-4 words (espeak voice, {OUTPUT_FORMAT}); engine latency_ms="
        f"{latency_ms:.0f}, max_concurrency={CAP}; ideal {ideal_s:.1f} s = {n} x "
        f"{latency_s:.2f} s / {CAP}; timed from the first request reaching the engine to the "
        "last response leaving it"
    )
    narrate_run = runs["narrate"]
    at_cap = runs["narrate_at_cap"]
    rows = [
        _rate_row(
            f"achieved/ideal throughput, narrate ({OVERLAP} scripts in progress, {CAP} requests)",
            narrate_run,
            ideal_rate,
            f"{common}; credentials max_concurrency={CAP}, narrate(max_concurrency={OVERLAP}) "
            f"as its docs advise (twice the credentials' cap) in its default task runner "
            f"({runner_workers} threads); peak concurrency seen by the engine "
            f"{narrate_run['peak_concurrency']}, {_in_flight(narrate_run)} in flight on "
            f"average, {narrate_run['refused_429']} refusals",
            target=True,
        ),
        _rate_row(
            f"achieved/ideal throughput, narrate ({CAP} scripts in progress)",
            at_cap,
            ideal_rate,
            f"same batch, narrate(max_concurrency={CAP}): a request slot stays empty while "
            "Prefect ends one script's task run and starts the next; peak concurrency "
            f"{at_cap['peak_concurrency']}, {_in_flight(at_cap)} in flight on average, "
            f"{at_cap['refused_429']} refusals",
            target=False,
        ),
    ]
    for key, at_once in (("prefect_alone", CAP), ("prefect_alone_overlapped", OVERLAP)):
        alone = runs.get(key)
        if alone is None:
            continue
        rows.append(
            _rate_row(
                f"achieved/ideal throughput, Prefect alone ({at_once} items at once)",
                alone,
                ideal_rate,
                f"{n} items of narrate's shape with no work: a sync task per item, {at_once} "
                "at once through the flows' bounded submission, whose request only holds one "
                f"of {CAP} slots for the engine's service time ({service_s * 1000:.0f} ms); no "
                "cache, no results kept; the ceiling Prefect's per-task work sets here; "
                f"{_in_flight(alone)} slots busy on average",
                target=False,
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
    narrate_failed = max(narrate_run["failed"], at_cap["failed"])
    rows.append(
        Row(
            metric="failed items, narrate vs SDK gather",
            ours=float(narrate_failed),
            baseline=float(gather["failed"]),
            unit="items",
            ratio=None,
            target="0",
            met=narrate_failed == 0,
            ours_label="narrate",
            baseline_label="SDK gather",
            how=(
                f"items of the {n}-item batch without audio at the end of the run (narrate's "
                f"summary, the worse of its two runs; exceptions from asyncio.gather); SDK + "
                f"semaphore failed {runs['sdk_semaphore']['failed']}"
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
        "overlap": OVERLAP,
        "ideal_s": ideal_s,
        "ideal_items_per_s": ideal_rate,
        "engine_service_time_s": service_s,
        "ideal_s_at_measured_service_time": n * service_s / CAP,
        "narrate_runner_workers": runner_workers,
        "prefect_first_flow_s": first_flow_s,
        "prefect_client_build_ms": client_ms,
        "runs": runs,
    }
    notes = [
        f"One request alone takes the engine {service_s * 1000:.0f} ms (latency "
        f"{latency_ms:.0f} ms plus synthesis, encoding and bookkeeping), so even a perfect "
        f"client reaches at most {latency_s / service_s:.2f} of the ideal stated on latency.",
    ]
    notes += [_cpu_note(label, runs[key]) for key, label in _CPU_LABELS if key in runs]
    budget = _budget_note(runs, ideal_rate, client_ms, service_s)
    if budget is not None:
        notes.append(budget)
    return BenchmarkResult(
        name=NAME, title=TITLE, rows=rows, details=details, notes=notes, quick=quick
    )


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
