"""Scaling out: ``narrate`` and ``transcribe`` unchanged on a Dask cluster give what the default
thread pool gives, and background ``text_to_speech.delay(...)`` calls are served by a separate
task worker process, their results read back through shared result storage."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    CREDENTIALS_BLOCK,
    RESULT_MARKER,
    RUN_TIMEOUT,
    SERVER_START_TIMEOUT,
    Engine,
    PrefectServer,
    Service,
    audio_duration,
    finish,
    run_to_end,
    save_credentials,
    start_service,
    tail_of,
    wait_until,
)

pytest.importorskip("prefect_dask", reason="the dask extra (prefect-dask) is not installed")

RUNNERS = ("default", "dask")
SCRIPTS = [
    {"id": "first", "text": "The first clip is short."},
    {"id": "second", "text": "The second clip is a little longer than the first one."},
]

# Runs both flows on one task runner and prints what they produced. The flows are imported and
# called exactly as users do; only the task runner differs. The __main__ guard keeps Dask's
# worker processes (started by spawning) from running it again.
FLOWS_ON_A_RUNNER = """
import json, sys
from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.flows import narrate, transcribe

def main():
    block, runner, out, scripts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if runner == "dask":
        from prefect_dask import DaskTaskRunner
        on_runner = lambda flow: flow.with_options(
            task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})
        )
    else:
        on_runner = lambda flow: flow
    credentials = ElevenLabsCredentials.load(block)
    narrated = on_runner(narrate)(
        scripts, output_dir=out + "/narration", credentials=credentials, return_state=True
    )
    transcribed = on_runner(transcribe)(
        [out + "/narration"], output_dir=out + "/transcripts", formats=["json", "txt"],
        options={"language_code": "en"}, credentials=credentials, return_state=True,
    )
    result = {
        name: {"state": state.type.value, "flow_run_id": str(state.state_details.flow_run_id)}
        for name, state in (("narrate", narrated), ("transcribe", transcribed))
    }
    print("MARKER" + json.dumps(result), flush=True)

if __name__ == "__main__":
    main()
""".replace("MARKER", RESULT_MARKER)

TASK_WORKER = """
from prefect.task_worker import serve
from prefect_elevenlabs.tasks import text_to_speech

serve(text_to_speech, limit=2)
"""

# A process that is not a flow (a web app, say) hands speech requests to the task worker.
BACKGROUND_CLIENT = """
import json, sys
from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.tasks import text_to_speech

block, out, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
credentials = ElevenLabsCredentials.load(block)
futures = [
    text_to_speech.delay(text, credentials, output_dir=out, filename=f"request-{n}.mp3")
    for n, text in enumerate(texts)
]
assets = [future.result(timeout=600) for future in futures]
print("MARKER" + json.dumps({
    "task_run_ids": [str(f.task_run_id) for f in futures],
    "assets": [a.model_dump(mode="json") for a in assets],
}), flush=True)
""".replace("MARKER", RESULT_MARKER)


@pytest.fixture(scope="module")
def credentials_block(prefect_server: PrefectServer, engine: Engine) -> str:
    save_credentials(prefect_server, engine)
    return CREDENTIALS_BLOCK


def _start_flows(server: PrefectServer, runner: str, workdir: Path, block: str) -> Service:
    out = workdir / runner
    return start_service(
        f"flows-{runner}",
        [sys.executable, "-c", FLOWS_ON_A_RUNNER, block, runner, str(out), json.dumps(SCRIPTS)],
        workdir,
        server.env(),
        cwd=workdir,
    )


def _produced(out: Path) -> dict[str, Any]:
    """What a run wrote: each narration's duration and each transcript's text."""
    narration = {p.stem: round(audio_duration(p), 2) for p in (out / "narration").glob("*.mp3")}
    transcripts = {p.stem: p.read_text().strip() for p in (out / "transcripts").glob("*.txt")}
    return {"narration": narration, "transcripts": transcripts}


def _task_runs(server: PrefectServer, flow_run_id: str) -> list[dict[str, Any]]:
    return list(
        server.request(
            "POST", "task_runs/filter", {"task_runs": {"flow_run_id": {"any_": [flow_run_id]}}}
        ).json()
    )


def test_narrate_and_transcribe_give_the_same_results_on_a_dask_cluster(
    prefect_server: PrefectServer,
    credentials_block: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("dask")
    # Side by side: the default thread pool and a Dask cluster, each in its own process.
    started = [_start_flows(prefect_server, r, workdir, credentials_block) for r in RUNNERS]
    try:
        default_runs, dask_runs = (finish(service, RUN_TIMEOUT * 2) for service in started)
    finally:
        for service in started:
            service.stop()
    for runs in (default_runs, dask_runs):
        assert {r["state"] for r in runs.values()} == {"COMPLETED"}, runs

    default = _produced(workdir / "default")
    on_dask = _produced(workdir / "dask")
    assert sorted(default["narration"]) == ["first", "second"]
    assert on_dask == default
    assert "second clip is a little longer" in default["transcripts"]["second"].lower()
    for stem in ("first", "second"):
        assert (workdir / "dask" / "narration" / f"{stem}.mp3").read_bytes() == (
            workdir / "default" / "narration" / f"{stem}.mp3"
        ).read_bytes()

    # The Dask run really spoke and transcribed everything itself (no cache hits), on a
    # temporary LocalCluster.
    log = (workdir / "flows-dask.log").read_text()
    assert "LocalCluster" in log and "Dask dashboard" in log
    for name in ("narrate", "transcribe"):
        states = [
            t["state"]["name"] for t in _task_runs(prefect_server, dask_runs[name]["flow_run_id"])
        ]
        assert states and set(states) == {"Completed"}, states
    scripts = [
        t
        for t in _task_runs(prefect_server, dask_runs["narrate"]["flow_run_id"])
        if t["name"].startswith("narrate ")
    ]
    assert len(scripts) == len(SCRIPTS)
    assert default_runs["narrate"]["flow_run_id"] != dask_runs["narrate"]["flow_run_id"]


@pytest.fixture(scope="module")
def task_worker(
    prefect_server: PrefectServer,
    credentials_block: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("task-worker")
    service = start_service(
        "task-worker",
        [sys.executable, "-c", TASK_WORKER],
        workdir,
        prefect_server.env(PREFECT_RESULTS_PERSIST_BY_DEFAULT="true"),
        cwd=workdir,
    )

    def subscribed() -> bool:
        if not service.alive():
            raise AssertionError(f"the task worker exited:\n{tail_of(service.log)}")
        return "Subscribing to runs of task(s)" in service.log.read_text(errors="replace")

    try:
        wait_until(subscribed, SERVER_START_TIMEOUT, "the task worker to subscribe", service.log)
        yield service
    finally:
        service.stop()


def test_a_task_worker_serves_background_speech_requests(
    prefect_server: PrefectServer,
    credentials_block: str,
    task_worker: Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("background")
    texts = ["A request handed to the task worker.", "Another request, served in the background."]
    result = run_to_end(
        "background-client",
        [
            sys.executable,
            "-c",
            BACKGROUND_CLIENT,
            credentials_block,
            str(workdir / "speech"),
            json.dumps(texts),
        ],
        workdir,
        prefect_server.env(PREFECT_RESULTS_PERSIST_BY_DEFAULT="true"),
        cwd=workdir,
    )

    for n, (text, asset) in enumerate(zip(texts, result["assets"], strict=True)):
        path = workdir / "speech" / f"request-{n}.mp3"
        assert asset["uri"].endswith(f"request-{n}.mp3")
        assert asset["characters"] == len(text)
        assert asset["duration_s"] > 1.0
        assert audio_duration(path) == pytest.approx(asset["duration_s"], abs=0.1)

    worker_log = task_worker.log.read_text(errors="replace")
    for task_run_id in result["task_run_ids"]:
        task_run = prefect_server.request("GET", f"task_runs/{task_run_id}").json()
        assert task_run["state"]["type"] == "COMPLETED"
        assert task_run["flow_run_id"] is None, "a background task belongs to no flow run"
        # The worker process, not the client, ran it.
        assert f"Received task run: {task_run_id}" in worker_log
