"""``deployments/serve.py`` against a real Prefect server, with runs started the way the UI's Run
button starts them: ``POST /api/deployments/{id}/create_flow_run`` with the form's parameters,
credentials given as a reference to a saved block."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    CREDENTIALS_BLOCK,
    PREFECT_FILE,
    SERVE_SCRIPT,
    SERVER_START_TIMEOUT,
    Engine,
    PrefectServer,
    Service,
    artifacts_of,
    assert_completed,
    audio_duration,
    block_reference,
    deployment_by_name,
    save_credentials,
    start_service,
    tail_of,
    trigger_run,
    wait_for_final_state,
    wait_until,
)

NARRATION = "This narration was started from the run form of the deployment."


def yaml_deployments() -> list[dict[str, Any]]:
    """The deployments declared in ``deployments/prefect.yaml``."""
    return list(yaml.safe_load(PREFECT_FILE.read_text())["deployments"])


def flow_name_of(entrypoint: str) -> str:
    """The Prefect flow name behind a module-path entrypoint."""
    from prefect.flows import load_flow_from_entrypoint

    return str(load_flow_from_entrypoint(entrypoint).name)


@dataclass
class Served:
    """``serve.py`` running against the session's server."""

    server: PrefectServer
    service: Service
    workdir: Path
    credentials_id: str


def start_serve(server: PrefectServer, workdir: Path, *args: str, **env: str) -> Service:
    """Starts ``deployments/serve.py`` in ``workdir`` and waits until it polls for runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    service = start_service(
        "serve",
        [sys.executable, str(SERVE_SCRIPT), *args],
        workdir,
        server.env(**env),
        cwd=workdir,
    )

    def serving() -> bool:
        if not service.alive():
            raise AssertionError(f"serve.py exited:\n{tail_of(service.log)}")
        return "deployments are being served" in service.log.read_text(errors="replace")

    try:
        wait_until(serving, SERVER_START_TIMEOUT, "serve.py to start serving", service.log)
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(scope="module")
def served(
    prefect_server: PrefectServer, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    credentials_id = save_credentials(prefect_server, engine)
    workdir = tmp_path_factory.mktemp("serve")
    service = start_serve(
        prefect_server,
        workdir,
        "--credentials-block",
        CREDENTIALS_BLOCK,
        ELEVENLABS_SERVE_LIMIT="3",
    )
    yield Served(prefect_server, service, workdir, credentials_id)
    service.stop()


@pytest.fixture(scope="module")
def narration_run(served: Served) -> dict[str, Any]:
    """A narrate run started from the form: new scripts, the saved block picked as credentials."""
    deployment = deployment_by_name(served.server, "Narrate scripts", "narrate-scripts")
    run_id = trigger_run(
        served.server,
        deployment["id"],
        {
            "scripts": [{"id": "form-run", "text": NARRATION}],
            "credentials": block_reference(served.credentials_id),
        },
    )
    run = wait_for_final_state(served.server, run_id, [served.service.log])
    assert_completed(served.server, run, [served.service.log])
    return run


def test_serve_creates_every_deployment_of_prefect_yaml(served: Served) -> None:
    for entry in yaml_deployments():
        deployment = deployment_by_name(
            served.server, flow_name_of(entry["entrypoint"]), entry["name"]
        )
        assert deployment["entrypoint"] == entry["entrypoint"]
        assert deployment["enforce_parameter_schema"] is True
        # The block given to serve.py is the form's default: a reference, not the secret.
        assert deployment["parameters"]["credentials"] == block_reference(served.credentials_id)
        for name, value in entry.get("parameters", {}).items():
            assert deployment["parameters"][name] == value
        limit = entry["concurrency_limit"]
        assert deployment["global_concurrency_limit"]["limit"] == limit["limit"]
        assert (
            deployment["concurrency_options"]["collision_strategy"] == limit["collision_strategy"]
        )
        assert set(entry["tags"]) <= set(deployment["tags"])


def test_the_form_schema_offers_saved_credentials_blocks(served: Served) -> None:
    deployment = deployment_by_name(served.server, "Narrate scripts", "narrate-scripts")
    schema = deployment["parameter_openapi_schema"]
    credentials = schema["definitions"]["ElevenLabsCredentials"]
    assert credentials["block_type_slug"] == "elevenlabs-credentials"
    assert credentials["secret_fields"] == ["api_key"]
    item = schema["definitions"]["ScriptItem"]["properties"]
    assert {"id", "text", "voice_id", "markdown"} <= set(item)
    assert schema["required"] == ["scripts"]


def test_a_run_from_the_form_writes_narration_and_artifacts(
    served: Served, narration_run: dict[str, Any]
) -> None:
    # output_dir was left at its default ("narration"): relative to where serve.py runs.
    audio = served.workdir / "narration" / "form-run.mp3"
    assert audio.is_file(), sorted(p.name for p in served.workdir.rglob("*"))
    assert audio_duration(audio) > 1.5

    artifacts = {a["key"]: a for a in artifacts_of(served.server, narration_run["id"]) if a["key"]}
    assert {"narration-summary", "narration-outputs", "narration-usage"} <= set(artifacts)
    summary = json.loads(artifacts["narration-summary"]["data"])
    assert [row for row in summary if "form-run" in json.dumps(row)], summary
    assert "form-run.mp3" in artifacts["narration-outputs"]["data"]
    usage = artifacts["narration-usage"]["data"]
    assert str(len(NARRATION)) in usage, usage


def test_a_transcription_run_reads_the_narration_back(
    served: Served, narration_run: dict[str, Any]
) -> None:
    deployment = deployment_by_name(served.server, "Transcribe media", "transcribe-media")
    audio = served.workdir / "narration" / "form-run.mp3"
    run_id = trigger_run(
        served.server,
        deployment["id"],
        {
            "inputs": [str(audio)],
            "formats": ["json", "txt"],
            "options": {"model_id": "scribe_v1", "language_code": "en"},
            "credentials": block_reference(served.credentials_id),
        },
    )
    run = wait_for_final_state(served.server, run_id, [served.service.log])
    assert_completed(served.server, run, [served.service.log])

    text = (served.workdir / "transcripts" / "form-run.txt").read_text().lower()
    for word in ("narration", "started", "form", "deployment"):
        assert word in text, text
    transcript = json.loads((served.workdir / "transcripts" / "form-run.json").read_text())
    assert transcript["language"].startswith("en")
    assert transcript["words"], "the transcript has no word timings"

    markdown = [a for a in artifacts_of(served.server, run_id) if a["type"] == "markdown"]
    assert any("narration" in (a["data"] or "").lower() for a in markdown), markdown


def test_a_run_with_the_deployment_defaults_uses_the_served_credentials(served: Served) -> None:
    """Pressing Run without touching the form: every default, credentials included."""
    deployment = deployment_by_name(served.server, "Sound design", "sound-design")
    run_id = trigger_run(served.server, deployment["id"], {})
    run = wait_for_final_state(served.server, run_id, [served.service.log])
    assert_completed(served.server, run, [served.service.log])

    sounds = served.workdir / "sounds"
    for name in ("door-creak", "rain-loop", "intro-theme"):
        assert audio_duration(sounds / f"{name}.mp3") > 1.0
    index = json.loads((sounds / "index.json").read_text())
    assert "door-creak" in json.dumps(index)


def test_the_server_refuses_parameters_the_form_would_refuse(served: Served) -> None:
    deployment = deployment_by_name(served.server, "Narrate scripts", "narrate-scripts")
    response = served.server.request(
        "POST",
        f"deployments/{deployment['id']}/create_flow_run",
        {"parameters": {"max_concurrency": "lots"}},
    )
    assert response.status_code == 409, response.text
    assert "max_concurrency" in response.text
