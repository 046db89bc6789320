"""The ``prefect-elevenlabs`` command line: exit codes, messages, and the offline demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import prefect.main  # noqa: F401  (Prefect's log handlers bind to the real stderr, not a runner's)
import pytest
from typer.testing import CliRunner

from prefect_elevenlabs.cli import app
from prefect_elevenlabs.local.config import EngineConfig
from prefect_elevenlabs.local.server import EngineHandle, start_in_thread
from tests.integration.engines import FAST_VOICE_ID, install_fast_voice

SAMPLE_CLIP = Path(__file__).parents[2] / "prefect_elevenlabs" / "assets" / "sample_clip.mp4"
CLI = Path(sys.executable).with_name("prefect-elevenlabs")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    handle = start_in_thread(EngineConfig(data_dir=tmp_path_factory.mktemp("cli-engine"), port=0))
    install_fast_voice(handle)
    yield handle
    handle.stop()


@pytest.fixture
def online(engine: EngineHandle, monkeypatch: pytest.MonkeyPatch) -> EngineHandle:
    """Credentials from the environment, pointing at a standalone engine."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", f"cli-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("ELEVENLABS_BASE_URL", engine.base_url)
    monkeypatch.delenv("ELEVENLABS_CREDENTIALS_BLOCK", raising=False)
    return engine


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# --------------------------------------------------------------------------------------------
# Usage errors: exit code 2, no traceback


def test_bad_formats_are_a_usage_error(tmp_path: Path) -> None:
    code, output = invoke("transcribe", str(SAMPLE_CLIP), "-o", str(tmp_path), "--formats", "pdf")
    assert code == 2
    assert "unknown format(s) pdf" in output
    assert "Traceback" not in output


def test_missing_output_dir_is_a_usage_error() -> None:
    code, output = invoke("narrate", "scripts.jsonl")
    assert code == 2
    assert "--output-dir" in output


def test_credentials_and_local_together_are_refused(tmp_path: Path) -> None:
    code, output = invoke(
        "design-voice", "A calm narrator with a warm voice.", "-o", str(tmp_path),
        "--credentials", "prod", "--local",
    )  # fmt: skip
    assert code == 2
    assert "either --credentials or --local" in output


def test_no_key_names_the_three_ways_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL", "ELEVENLABS_CREDENTIALS_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    script = tmp_path / "s.jsonl"
    script.write_text('{"id": "a", "text": "Hi."}\n')
    code, output = invoke("narrate", str(script), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "ELEVENLABS_API_KEY" in output and "base_url='local'" in output
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Flow commands against a standalone engine (credentials from the environment)


@pytest.mark.engine
@pytest.mark.usefixtures("prefect_server")
def test_narrate_prints_each_file_and_exits_0(online: EngineHandle, tmp_path: Path) -> None:
    script = tmp_path / "scripts.jsonl"
    script.write_text(
        '{"id": "hello", "text": "Hello from the command line."}\n'
        '{"id": "bye", "text": "Goodbye."}\n'
    )
    out = tmp_path / "out"
    code, output = invoke(
        "narrate", str(script), "-o", str(out), "--voice-id", FAST_VOICE_ID,
        "--output-format", "mp3_22050_32",
    )  # fmt: skip
    assert code == 0, output
    assert str(out / "hello.mp3") in output and str(out / "bye.mp3") in output
    assert "2 of 2 done" in output
    assert (out / "hello.mp3").stat().st_size > 1000


@pytest.mark.engine
@pytest.mark.usefixtures("prefect_server")
def test_failed_items_exit_1_and_are_named(online: EngineHandle, tmp_path: Path) -> None:
    script = tmp_path / "scripts.csv"
    script.write_text("id,text,voice_id\nfine,It works.,\nbroken,It does not.,missingVoice42\n")
    code, output = invoke("narrate", str(script), "-o", str(tmp_path), "--voice-id", FAST_VOICE_ID)
    assert code == 1
    assert "FAILED  broken" in output
    assert "1 of 2 scripts failed" in output
    assert "missingVoice42" in output
    assert (tmp_path / "fine.mp3").exists()


@pytest.mark.engine
@pytest.mark.usefixtures("prefect_server")
def test_a_failing_run_shows_no_traceback_in_the_terminal(
    engine: EngineHandle, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    script = tmp_path / "scripts.jsonl"
    script.write_text('{"id": "lost", "text": "Nobody speaks this.", "voice_id": "noOne404"}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ELEVENLABS_"))}
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        ELEVENLABS_API_KEY="cli-subprocess",
        ELEVENLABS_BASE_URL=engine.base_url,
    )
    result = subprocess.run(
        [str(CLI), "narrate", str(script), "-o", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    terminal = result.stdout + result.stderr
    assert "FAILED  lost" in terminal and "noOne404" in terminal
    assert "[1/1] lost failed" in terminal  # the flow's own progress line
    assert "Traceback" not in terminal


@pytest.mark.engine
@pytest.mark.usefixtures("prefect_server")
def test_a_bad_script_file_exits_2_with_its_line(online: EngineHandle, tmp_path: Path) -> None:
    script = tmp_path / "scripts.jsonl"
    script.write_text('{"id": "a", "text": "Fine."}\n{"id": "b"\n')
    code, output = invoke("narrate", str(script), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "line 2 is not valid JSON" in output


@pytest.mark.engine
@pytest.mark.usefixtures("prefect_server")
def test_transcribe_and_sound_design_commands(online: EngineHandle, tmp_path: Path) -> None:
    code, output = invoke(
        "transcribe", str(SAMPLE_CLIP), "-o", str(tmp_path / "t"), "--formats", "srt,txt",
        "--language", "en",
    )  # fmt: skip
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "sample_clip.srt",
        "sample_clip.txt",
    ]
    assert "small studio" in (tmp_path / "t" / "sample_clip.txt").read_text()

    briefs = tmp_path / "briefs.json"
    briefs.write_text(json.dumps({"effects": [{"id": "ping", "text": "a short metal ping"}]}))
    code, output = invoke("sound-design", str(briefs), "-o", str(tmp_path / "s"))
    assert code == 0, output
    assert (tmp_path / "s" / "ping.mp3").exists()
    assert "index" in output and str(tmp_path / "s" / "index.json") in output


@pytest.mark.engine
@pytest.mark.usefixtures("prefect_server")
def test_dub_and_design_voice_commands(online: EngineHandle, tmp_path: Path) -> None:
    code, output = invoke(
        "dub", str(SAMPLE_CLIP), "--to", "es", "-o", str(tmp_path / "d"), "--num-speakers", "1",
        "--voice", "speaker_0=" + FAST_VOICE_ID,
    )  # fmt: skip
    assert code == 0, output
    assert str(tmp_path / "d" / "sample_clip.es.mp4") in output
    assert (tmp_path / "d" / "sample_clip.es.srt").exists()

    code, output = invoke(
        "dub", str(SAMPLE_CLIP), "--to", "es", "-o", str(tmp_path), "--voice", "x"
    )
    assert code == 2 and "is not SPEAKER=VOICE_ID" in output

    code, output = invoke(
        "design-voice", "A bright young woman with a quick, cheerful way of speaking.",
        "-o", str(tmp_path / "v"), "--save-as", "Cheerful", "--choose", "2",
    )  # fmt: skip
    assert code == 0, output
    assert output.count("preview ") == 3
    assert "saved voice 'Cheerful'" in output


# --------------------------------------------------------------------------------------------
# The demo, as a user runs it: a fresh process with no Prefect server configured


@pytest.mark.engine
def test_demo_runs_offline_end_to_end(tmp_path: Path) -> None:
    from .flows.conftest import duration_of, streams_of

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "ELEVENLABS_"))
    }
    env["HOME"] = str(tmp_path / "home")
    out = tmp_path / "demo-output"
    result = subprocess.run(
        [str(CLI), "demo", "--output-dir", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for path in (
        "dub/sample_clip.es.mp4",
        "dub/sample_clip.es.srt",
        "dub/sample_clip.es.vtt",
        "transcript/sample_clip.json",
        "transcript/sample_clip.srt",
        "transcript/sample_clip.vtt",
        "transcript/sample_clip.txt",
        "narration/welcome.mp3",
        "sounds/door-knock.mp3",
        "sounds/index.json",
    ):
        assert (out / path).is_file(), path
        assert str(out / path) in result.stdout
    assert set(streams_of(out / "dub/sample_clip.es.mp4")) == {"video", "audio", "subtitle"}
    assert duration_of(out / "dub/sample_clip.es.mp4") == pytest.approx(8.08, abs=0.5)
    assert "gracias" in (out / "dub/sample_clip.es.srt").read_text().lower()
    assert "small studio" in (out / "transcript/sample_clip.txt").read_text()
    assert duration_of(out / "narration/welcome.mp3") > 3.0
    assert duration_of(out / "sounds/door-knock.mp3") == pytest.approx(2.0, abs=0.2)
    # Prefect's database and the engine's state stay inside the output folder.
    assert (out / ".prefect" / "prefect.db").is_file()
    assert (out / ".engine").is_dir()
    assert not (tmp_path / "home" / ".prefect").exists()
