"""The benchmark scripts run end to end in their quick configuration and report sane figures.

One ``python -m benchmarks.run --quick`` subprocess runs every benchmark against real local
engines, with flows recorded by this session's Prefect test server; the tests then read the
JSON results and the regenerated table. Nothing here checks how fast anything was: only that
each benchmark measured what it says it measures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.run import BENCHMARKS

pytestmark = pytest.mark.engine

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs every benchmark once (quick) and returns the results dir, table and output."""
    from prefect.settings import PREFECT_API_URL

    root = tmp_path_factory.mktemp("bench")
    results, markdown = root / "results", root / "BENCHMARKS.md"
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect-home")}
    api_url = PREFECT_API_URL.value()
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "benchmarks.run", "--quick"]
    command += ["--results-dir", str(results), "--markdown", str(markdown)]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return {
        "results": results,
        "markdown": markdown,
        "returncode": done.returncode,
        "output": done.stdout + done.stderr,
    }


def _result(quick_run: dict[str, Any], name: str) -> dict[str, Any]:
    path = quick_run["results"] / f"{name}.json"
    assert path.exists(), f"{name} wrote no result; run output:\n{quick_run['output'][-4000:]}"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_benchmark_ran(quick_run: dict[str, Any]) -> None:
    assert quick_run["returncode"] == 0, quick_run["output"][-4000:]
    for name in BENCHMARKS:
        data = _result(quick_run, name)
        assert data["quick"] is True
        assert data["rows"], f"{name} produced no rows"
        for row in data["rows"]:
            assert row["how"], f"{name}: row {row['metric']!r} does not say how it was measured"


def test_table_lists_every_row(quick_run: dict[str, Any]) -> None:
    table = quick_run["markdown"].read_text()
    assert "| benchmark | metric | ours | baseline | ratio | target | met? |" in table
    for name in BENCHMARKS:
        data = _result(quick_run, name)
        for row in data["rows"]:
            assert f"| {data['title']} | {row['metric']} |" in table
    assert "## How measured" in table


def test_throughput_counts_every_request(quick_run: dict[str, Any]) -> None:
    details = _result(quick_run, "throughput")["details"]
    n, cap = details["requests"], details["cap"]
    narrate = details["runs"]["narrate"]
    assert narrate["failed"] == 0 and narrate["completed"] == n
    assert narrate["refused_429"] == 0
    assert 1 <= narrate["peak_concurrency"] <= cap
    semaphore = details["runs"]["sdk_semaphore"]
    assert semaphore["completed"] == n and semaphore["peak_concurrency"] <= cap
    # Unlimited, the SDK overruns the cap and gets refusals it does not retry.
    gather = details["runs"]["sdk_gather"]
    assert gather["refused_429"] > 0
    assert gather["failed"] == gather["refused_429"] == n - gather["completed"]


def test_overhead_timed_every_call(quick_run: dict[str, Any]) -> None:
    details = _result(quick_run, "overhead")["details"]
    assert len(details["task_ms"]) == len(details["direct_ms"]) == details["calls"]
    assert all(ms > 0 for ms in details["task_ms"] + details["direct_ms"])


def test_streaming_sampled_each_method(quick_run: dict[str, Any]) -> None:
    details = _result(quick_run, "streaming")["details"]
    for method, samples in details["samples_ms"].items():
        assert len(samples) == details["reps"], method


def test_memory_measured_python_and_ffmpeg(quick_run: dict[str, Any]) -> None:
    details = _result(quick_run, "memory")["details"]
    for kind in ("transcribe", "dub"):
        for length in ("short", "long"):
            report = details[kind][length]
            tools = {run["tool"] for run in report["tool_runs"]}
            assert {"ffmpeg", "ffprobe"} <= tools, (kind, length, report)
            assert report["python_mib"] > 0 and report["tool_mib"] > 0
            assert report["pieces"] >= 1
        # Dubbing also extracts the background track: one more ffmpeg run than transcription.
        assert len(details["dub"]["short"]["tool_runs"]) > len(
            details["transcribe"]["short"]["tool_runs"]
        )


def test_credits_counts_what_the_engine_billed(quick_run: dict[str, Any]) -> None:
    details = _result(quick_run, "credits")["details"]
    first = details["first_run"]
    assert first["failed"] == 0 and first["items"] == details["scripts"]
    assert first["tts_requests"] == details["scripts"]
    # The engine bills exactly the characters narrate reports spending.
    assert first["characters_billed"] == first["summary_characters"] > 0


def test_engine_speed_transcribed_and_dubbed(quick_run: dict[str, Any]) -> None:
    details = _result(quick_run, "engine_speed")["details"]
    assert "river" in details["stt"]["text_http"].lower()
    assert all(run["audio_s"] > 0 for run in details["tts"]["http"] + details["tts"]["raw"])
    assert details["dub"]["download_bytes"] > 0
