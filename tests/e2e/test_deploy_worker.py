"""``prefect deploy`` from ``deployments/prefect.yaml`` onto a ``process`` work pool, a worker
subprocess, and runs started the way the UI starts them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    CREDENTIALS_BLOCK,
    PREFECT_FILE,
    WORK_POOL,
    Engine,
    PrefectServer,
    Service,
    assert_completed,
    audio_duration,
    block_reference,
    deploy_from_yaml,
    deployment_by_name,
    save_credentials,
    speak,
    start_worker,
    trigger_run,
    wait_for_final_state,
)

VOICEMAIL = "Hello, please call me back tomorrow morning about the recording."

FLOW_NAMES = {
    "narrate-scripts": "Narrate scripts",
    "transcribe-media": "Transcribe media",
    "nightly-transcription": "Transcribe media",
    "dub-media": "Dub media",
    "sound-design": "Sound design",
    "design-voice": "Design a voice",
}


@dataclass
class Deployed:
    """Deployments on the work pool, with a worker polling it."""

    server: PrefectServer
    workdir: Path
    worker: Service
    credentials_id: str


@pytest.fixture(scope="module")
def deployed(
    prefect_server: PrefectServer, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    credentials_id = save_credentials(prefect_server, engine)
    workdir = tmp_path_factory.mktemp("deploy")
    deploy_from_yaml(prefect_server, workdir)
    # Runs that pass no credentials load the block this variable names.
    worker = start_worker(prefect_server, workdir, ELEVENLABS_CREDENTIALS_BLOCK=CREDENTIALS_BLOCK)
    yield Deployed(prefect_server, workdir, worker, credentials_id)
    worker.stop()


def test_every_deployment_in_prefect_yaml_is_deployed_to_the_pool(deployed: Deployed) -> None:
    entries = yaml.safe_load(PREFECT_FILE.read_text())["deployments"]
    assert {e["name"] for e in entries} == set(FLOW_NAMES)
    for entry in entries:
        deployment = deployment_by_name(deployed.server, FLOW_NAMES[entry["name"]], entry["name"])
        assert deployment["work_pool_name"] == WORK_POOL
        assert deployment["entrypoint"] == entry["entrypoint"]
        assert deployment["parameters"] == entry["parameters"]
        assert deployment["enforce_parameter_schema"] is True
        # No pull section: runs start in the directory `prefect deploy` ran from.
        assert deployment["pull_steps"] == [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": str(deployed.workdir.resolve())
                }
            }
        ]
        limit = entry["concurrency_limit"]
        assert deployment["global_concurrency_limit"]["limit"] == limit["limit"]


def test_the_nightly_deployment_has_its_cron_schedule_switched_off(deployed: Deployed) -> None:
    deployment = deployment_by_name(deployed.server, "Transcribe media", "nightly-transcription")
    assert deployment["paused"] is False
    [schedule] = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Paris"
    assert schedule["active"] is False
    assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"

    # Switched off, so the scheduler creates no runs for it.
    runs = deployed.server.request(
        "POST",
        "flow_runs/filter",
        {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}},
    ).json()
    assert runs == []
    # Every other deployment has no schedule at all.
    others = deployed.server.request("POST", "deployments/filter", {}).json()
    assert [d["name"] for d in others if d["schedules"]] == ["nightly-transcription"]


def test_the_worker_runs_what_the_run_form_starts(deployed: Deployed) -> None:
    narrate = deployment_by_name(deployed.server, "Narrate scripts", "narrate-scripts")
    sounds = deployment_by_name(deployed.server, "Sound design", "sound-design")
    # Both at once (the worker takes two): a narration with the block picked in the form, and a
    # sound design run left at every default, whose credentials come from the worker's
    # ELEVENLABS_CREDENTIALS_BLOCK.
    narrate_id = trigger_run(
        deployed.server,
        narrate["id"],
        {
            "scripts": [{"id": "from-worker", "text": "A process worker spoke this sentence."}],
            "credentials": block_reference(deployed.credentials_id),
        },
    )
    sounds_id = trigger_run(deployed.server, sounds["id"], {})
    logs = [deployed.worker.log]
    for run_id in (narrate_id, sounds_id):
        run = wait_for_final_state(deployed.server, run_id, logs)
        assert_completed(deployed.server, run, logs)

    # Relative output folders resolve against the directory recorded by `prefect deploy`.
    assert audio_duration(deployed.workdir / "narration" / "from-worker.mp3") > 1.5
    index = json.loads((deployed.workdir / "sounds" / "index.json").read_text())
    produced = json.dumps(index)
    for name in ("door-creak", "rain-loop", "intro-theme"):
        assert name in produced
        assert audio_duration(deployed.workdir / "sounds" / f"{name}.mp3") > 1.0


def test_a_run_of_the_nightly_deployment_transcribes_the_inbox(
    deployed: Deployed, engine: Engine
) -> None:
    """What the schedule would start at 02:00, started now: the inbox folder, transcribed."""
    speak(engine, VOICEMAIL, deployed.workdir / "inbox" / "voicemail.mp3")

    nightly = deployment_by_name(deployed.server, "Transcribe media", "nightly-transcription")
    run_id = trigger_run(deployed.server, nightly["id"], {})
    run = wait_for_final_state(deployed.server, run_id, [deployed.worker.log])
    assert_completed(deployed.server, run, [deployed.worker.log])

    out = deployed.workdir / "transcripts" / "nightly"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "voicemail.json",
        "voicemail.srt",
        "voicemail.txt",
    ]
    text = (out / "voicemail.txt").read_text().lower()
    for word in ("call", "back", "tomorrow", "morning"):
        assert word in text, text
    transcript: dict[str, Any] = json.loads((out / "voicemail.json").read_text())
    assert transcript["words"]
