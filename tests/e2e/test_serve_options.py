"""How ``deployments/serve.py`` reads its options and ``prefect.yaml`` (no server needed)."""

from __future__ import annotations

import datetime
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import PREFECT_FILE, SERVE_SCRIPT


@pytest.fixture(scope="module")
def serve() -> ModuleType:
    spec = importlib.util.spec_from_file_location("elevenlabs_serve_script", SERVE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_options_come_from_arguments_then_environment(
    serve: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEVENLABS_SERVE_LIMIT", "7")
    monkeypatch.setenv("ELEVENLABS_CREDENTIALS_BLOCK", "from-env")
    monkeypatch.setenv("ELEVENLABS_SERVE_ONLY", "narrate-scripts, sound-design")
    options = serve.parse_options([])
    assert (options.limit, options.credentials_block) == (7, "from-env")
    assert options.only == ("narrate-scripts", "sound-design")
    assert options.prefect_file == PREFECT_FILE

    options = serve.parse_options(["--limit", "2", "--credentials-block", "prod", "--only", "x"])
    assert (options.limit, options.credentials_block, options.only) == (2, "prod", ("x",))


def test_bad_options_say_what_to_fix(serve: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELEVENLABS_SERVE_LIMIT", "many")
    with pytest.raises(serve.ServeConfigError, match="ELEVENLABS_SERVE_LIMIT must be a whole"):
        serve.parse_options([])
    with pytest.raises(serve.ServeConfigError, match="1 or more"):
        serve.parse_options(["--limit", "0"])
    with pytest.raises(
        serve.ServeConfigError, match=r"no deployment named dubbing in .*; known: narrate-scripts"
    ):
        serve.load_deployment_configs(PREFECT_FILE, ["dubbing"])


def test_environment_placeholders_are_filled_like_prefect_deploy(
    serve: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIO_ROOT", "/srv/audio")
    monkeypatch.delenv("UNSET_VOICE", raising=False)
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(
        "deployments:\n"
        "  - name: a\n"
        "    entrypoint: prefect_elevenlabs.flows.narrate.narrate\n"
        "    parameters: {output_dir: '{{ $AUDIO_ROOT }}/out', voice_id: '{{ $UNSET_VOICE }}'}\n"
        "  - name: b\n"
        "    entrypoint: prefect_elevenlabs.flows.transcribe.transcribe\n"
    )
    [entry] = serve.load_deployment_configs(prefect_file, ["a"])
    assert entry["parameters"] == {"output_dir": "/srv/audio/out", "voice_id": "{{ $UNSET_VOICE }}"}


def test_schedules_keep_their_timezone_switch_and_parameters(serve: ModuleType) -> None:
    cron = serve.schedule_from_config(
        {"cron": "0 2 * * *", "timezone": "Europe/Paris", "active": False, "slug": "nightly"}
    )
    assert (cron.cron, cron.timezone, cron.active, cron.slug) == (
        "0 2 * * *",
        "Europe/Paris",
        False,
        "nightly",
    )
    every = serve.schedule_from_config({"interval": 3600, "parameters": {"output_dir": "x"}})
    assert every.interval == datetime.timedelta(hours=1)
    assert every.parameters == {"output_dir": "x"} and every.active is True
    rule = serve.schedule_from_config({"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"})
    assert rule.rrule == "FREQ=WEEKLY;BYDAY=MO"
    with pytest.raises(serve.ServeConfigError, match="exactly one of cron, interval or rrule"):
        serve.schedule_from_config({"cron": "0 2 * * *", "interval": 60})


def test_every_deployment_of_prefect_yaml_builds(serve: ModuleType) -> None:
    configs = serve.load_deployment_configs(PREFECT_FILE)
    deployments = [serve.build_deployment(config) for config in configs]
    by_name = {d.name: d for d in deployments}
    assert set(by_name) == {
        "narrate-scripts",
        "transcribe-media",
        "nightly-transcription",
        "dub-media",
        "sound-design",
        "design-voice",
    }
    nightly = by_name["nightly-transcription"]
    [schedule] = nightly.schedules
    assert schedule.active is False
    assert nightly.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    # Module-path entrypoints: runs import the flows from the installed package.
    assert by_name["dub-media"].entrypoint == "prefect_elevenlabs.flows.dub.dub"
