"""Streaming: time to the first audio byte through our client and task, against plain httpx.

The engine holds every streamed response for ``ttfb_ms=75`` before its first byte, as a real
service spends time before audio is ready. Three ways of streaming the same text, in rotating
order within one Prefect flow:

- plain ``httpx`` streaming (the baseline: nothing between the caller and the socket);
- our client's ``text_to_speech.stream`` (retries, concurrency cap, call logging);
- the ``stream_text_to_speech`` task, which writes the stream to a file through that client.

The client path is timed by the caller (request sent to first chunk received). A task's caller
never sees the bytes, so for the task the engine stamps the moment it sends the first audio byte
(system-wide monotonic clock) and the time to it from the task call is compared with the same
engine-stamped figure for httpx. The task also reports its own ``first_byte_s``, measured from
inside the task once its client is ready; that figure is listed too.

Run alone with ``python -m benchmarks.streaming [--quick]``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ._engine import FAST_VOICE_ID, EngineProcess
from ._prefect import BENCH_API_KEY, credentials_for
from ._report import BenchmarkResult, Row

NAME = "streaming"
TITLE = "Streaming"
TTFB_MS = 75.0
TARGET_RATIO = 1.10
TEXT = "Good morning, and welcome back."
MODEL_ID = "eleven_multilingual_v2"
OUTPUT_FORMAT = "pcm_22050"  # no encoder start-up in the way of the first byte


def _request_body() -> dict[str, Any]:
    return {"text": TEXT, "model_id": MODEL_ID}


async def _httpx_once(http: Any, engine: EngineProcess) -> tuple[float, float]:
    """(seconds to first chunk as received, monotonic time the request was sent)."""
    sent = time.monotonic()
    async with http.stream(
        "POST",
        f"/v1/text-to-speech/{FAST_VOICE_ID}/stream",
        params={"output_format": OUTPUT_FORMAT},
        json=_request_body(),
        headers={"xi-api-key": BENCH_API_KEY},
    ) as response:
        response.raise_for_status()
        first: float | None = None
        async for chunk in response.aiter_raw():
            if chunk and first is None:
                first = time.monotonic() - sent
    assert first is not None, "the stream carried no audio"
    return first, sent


async def _client_once(client: Any) -> tuple[float, float]:
    sent = time.monotonic()
    first: float | None = None
    async with client.text_to_speech.stream(
        FAST_VOICE_ID, text=TEXT, model_id=MODEL_ID, output_format=OUTPUT_FORMAT
    ) as audio:
        async for chunk in audio.iter_bytes():
            if chunk and first is None:
                first = time.monotonic() - sent
    assert first is not None, "the stream carried no audio"
    return first, sent


def _engine_first_byte(engine: EngineProcess) -> float:
    """The engine's stamp of the first audio byte of the latest streamed request."""
    streamed = [t for t in engine.timings() if t.path.endswith("/stream")]
    stamp = streamed[-1].first_byte if streamed else None
    if stamp is None:
        raise RuntimeError("the engine recorded no first byte for the last stream")
    return stamp


def _measure(engine: EngineProcess, reps: int, warmup: int, output_dir: str) -> dict[str, Any]:
    import httpx
    from prefect import flow

    from prefect_elevenlabs.tasks.text_to_speech import stream_text_to_speech

    credentials = credentials_for(engine.base_url, max_concurrency=None)

    @flow(name="benchmark-streaming", persist_result=False)
    async def streaming_flow() -> dict[str, Any]:
        figures: dict[str, list[float]] = {
            "httpx": [],
            "httpx_engine": [],
            "client": [],
            "task_engine": [],
            "task_reported": [],
        }
        client = credentials.get_client()
        async with httpx.AsyncClient(base_url=engine.base_url, timeout=60.0) as http:

            async def httpx_step(keep: bool) -> None:
                first, sent = await _httpx_once(http, engine)
                if keep:
                    figures["httpx"].append(first)
                    figures["httpx_engine"].append(_engine_first_byte(engine) - sent)

            async def client_step(keep: bool) -> None:
                first, _ = await _client_once(client)
                if keep:
                    figures["client"].append(first)

            async def task_step(keep: bool) -> None:
                called = time.monotonic()
                asset = await stream_text_to_speech(
                    TEXT,
                    credentials,
                    voice_id=FAST_VOICE_ID,
                    model_id=MODEL_ID,
                    output_format=OUTPUT_FORMAT,
                    output_dir=output_dir,
                )
                if keep:
                    figures["task_engine"].append(_engine_first_byte(engine) - called)
                    if asset.first_byte_s is not None:
                        figures["task_reported"].append(asset.first_byte_s)

            steps = [httpx_step, client_step, task_step]
            for rep in range(warmup + reps):
                keep = rep >= warmup
                # Rotate the order so no method always runs right after another one.
                for offset in range(len(steps)):
                    await steps[(rep + offset) % len(steps)](keep)
        return figures

    figures: dict[str, Any] = asyncio.run(streaming_flow())
    return figures


def _ms(values: list[float]) -> float | None:
    return statistics.median(values) * 1000.0 if values else None


def run(quick: bool = False) -> BenchmarkResult:
    """Measures time to first byte three ways; returns the result (ratios vs httpx)."""
    reps, warmup = (3, 1) if quick else (30, 3)
    with (
        tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp,
        EngineProcess(ttfb_ms=TTFB_MS) as engine,
    ):
        figures = _measure(engine, reps, warmup, str(Path(tmp) / "out"))
    httpx_ms = _ms(figures["httpx"])
    httpx_engine_ms = _ms(figures["httpx_engine"])
    client_ms = _ms(figures["client"])
    task_ms = _ms(figures["task_engine"])
    reported_ms = _ms(figures["task_reported"])

    def ratio(ours: float | None, base: float | None) -> float | None:
        return ours / base if ours is not None and base else None

    rows = []
    client_ratio = ratio(client_ms, httpx_ms)
    rows.append(
        Row(
            metric="time to first audio byte, client text_to_speech.stream",
            ours=client_ms,
            baseline=httpx_ms,
            unit="ms",
            ratio=client_ratio,
            target=f"<= {TARGET_RATIO:.2f}",
            met=client_ratio is not None and client_ratio <= TARGET_RATIO,
            ours_label="our client",
            baseline_label="httpx",
            how=(
                f"engine with ttfb_ms={TTFB_MS:.0f}, '{TEXT}' in {OUTPUT_FORMAT} from an "
                f"espeak voice; median of {reps} requests per method after {warmup} warm-up "
                "rounds, methods in rotating order; timed by the caller from sending the "
                "request to receiving the first non-empty chunk, over a reused connection"
            ),
        )
    )
    task_ratio = ratio(task_ms, httpx_engine_ms)
    rows.append(
        Row(
            metric="time to first audio byte, task stream_text_to_speech (from the task call)",
            ours=task_ms,
            baseline=httpx_engine_ms,
            unit="ms",
            ratio=task_ratio,
            target=f"<= {TARGET_RATIO:.2f}",
            met=task_ratio is not None and task_ratio <= TARGET_RATIO,
            ours_label="task in a flow",
            baseline_label="httpx",
            how=(
                "same requests; from the moment the flow calls the task (Prefect task-run "
                "creation included) to the engine sending the first audio byte, stamped by the "
                "engine on the machine-wide monotonic clock; httpx timed the same way"
            ),
        )
    )
    reported_ratio = ratio(reported_ms, httpx_ms)
    rows.append(
        Row(
            metric="time to first audio byte, task as it reports it (first_byte_s)",
            ours=reported_ms,
            baseline=httpx_ms,
            unit="ms",
            ratio=reported_ratio,
            target="— (reference)",
            met=None,
            ours_label="task's own clock",
            baseline_label="httpx",
            how=(
                "the AudioAsset.first_byte_s the task returns: measured inside the task from "
                "just before its request to the first chunk, so it leaves out Prefect's "
                "task-run start; compared with httpx timed by the caller"
            ),
        )
    )
    details = {
        "ttfb_ms": TTFB_MS,
        "reps": reps,
        "warmup": warmup,
        "median_ms": {
            "httpx": httpx_ms,
            "httpx_engine_stamped": httpx_engine_ms,
            "client": client_ms,
            "task_from_call_engine_stamped": task_ms,
            "task_reported": reported_ms,
        },
        "samples_ms": {k: [round(v * 1000, 2) for v in vals] for k, vals in figures.items()},
    }
    return BenchmarkResult(name=NAME, title=TITLE, rows=rows, details=details, quick=quick)


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
