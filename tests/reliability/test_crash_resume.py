"""Resuming: a narrate process killed with SIGKILL mid-batch, then run again; and re-runs.

A resumed or repeated batch must spend characters only on what is missing, and no file a
crash left unfinished may ever pass for an output.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_elevenlabs.client import ElevenLabsClient
from prefect_elevenlabs.flows import ItemsFailedError
from prefect_elevenlabs.local.server import EngineHandle

from .report import (
    FAST_VOICE_ID,
    CrashRun,
    audio_duration,
    credentials_for,
    engine_stats,
    measure_crash_resume,
    results_in,
    run_narrate,
)
from .report import scripts_for as make_scripts

pytestmark = pytest.mark.usefixtures("prefect_server")

ITEMS = 30


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> CrashRun:
    return measure_crash_resume(Path(tmp_path_factory.mktemp("crash")), items=ITEMS)


def test_an_identical_rerun_spends_nothing(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    engine = start_engine()
    scripts = make_scripts(3, prefix="again")
    credentials = credentials_for(engine.base_url, "k")
    first = run_narrate(scripts, tmp_path / "out", credentials)
    assert first.error is None
    billed = engine_stats(engine.base_url)["characters_billed"]
    assert billed == sum(len(s["text"]) for s in scripts)

    second = run_narrate(scripts, tmp_path / "out", credentials)
    assert second.error is None
    assert engine_stats(engine.base_url)["characters_billed"] == billed
    assert second.summary.characters == 0


def test_a_script_failing_after_its_speech_was_generated_does_not_pay_again(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    # The speech of the first script is generated, then publishing its file fails (a folder
    # holds the name). The speech's cache record must outlive the failure of the task around
    # it, as it must outlive a process killed at that point: the re-run pays nothing.
    engine = start_engine()
    scripts = make_scripts(2, prefix="blocked")
    credentials = credentials_for(engine.base_url, "k")
    out = tmp_path / "out"
    blocker = out / f"{scripts[0]['id']}.mp3"
    blocker.mkdir(parents=True)
    (blocker / "occupant.txt").write_text("not audio", encoding="utf-8")
    with results_in(tmp_path / "results"):
        first = run_narrate(scripts, out, credentials)
        assert isinstance(first.error, ItemsFailedError), first.error
        assert first.error.failed == [scripts[0]["id"]]
        billed = engine_stats(engine.base_url)["characters_billed"]
        assert billed == sum(len(s["text"]) for s in scripts)

        shutil.rmtree(blocker)
        second = run_narrate(scripts, out, credentials)
    assert second.error is None
    assert engine_stats(engine.base_url)["characters_billed"] == billed
    assert second.summary.characters == 0
    assert audio_duration(out / f"{scripts[0]['id']}.mp3") > 0.2


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


async def test_downloads_get_the_permissions_of_any_file_this_process_writes(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    # Writing through a private temporary file must not leave the result private (0600).
    engine = start_engine()
    async with ElevenLabsClient("k", base_url=engine.base_url) as client:
        await client.text_to_speech.convert(
            FAST_VOICE_ID, text="Hi.", dest=tmp_path / "hi.mp3", output_format="mp3_22050_32"
        )
    assert stat.S_IMODE((tmp_path / "hi.mp3").stat().st_mode) == _default_mode()


def test_outputs_get_the_permissions_of_any_file_this_process_writes(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    engine = start_engine()
    narrated = run_narrate(
        make_scripts(1, prefix="mode"), tmp_path / "out", credentials_for(engine.base_url, "k")
    )
    assert narrated.error is None
    written = Path(narrated.summary.items[0].outputs[0])
    assert stat.S_IMODE(written.stat().st_mode) == _default_mode()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_kill_landed_mid_batch(run: CrashRun) -> None:
    assert 1 <= run.killed_after < ITEMS


@pytest.mark.slow
def test_no_visible_file_is_partial_after_the_kill(run: CrashRun) -> None:
    # Unfinished files are hidden staging files; whatever carries an output's name is whole.
    assert run.undecodable_at_kill == []
    assert all(".part" not in name for name in run.visible_at_kill)
    assert all(Path(name).name.startswith(".") for name in run.staging_left_at_kill)


@pytest.mark.slow
def test_the_rerun_clears_what_the_killed_run_left_half_written(run: CrashRun) -> None:
    assert run.staging_left_after == []


@pytest.mark.slow
def test_the_rerun_completes_every_script(run: CrashRun) -> None:
    assert run.rerun_exit_code == 0
    assert run.missing_after == []
    assert run.undecodable_after == []
    assert run.partial_outputs_reported == []


@pytest.mark.slow
def test_the_rerun_does_not_regenerate_completed_scripts(run: CrashRun) -> None:
    assert run.regenerated_but_completed == []
    assert len(run.regenerated) <= ITEMS - run.killed_after
    assert run.rerun_billed == run.rerun_billed_expected


@pytest.mark.slow
def test_only_the_scripts_in_flight_at_the_kill_are_paid_twice(run: CrashRun) -> None:
    # A request the engine finished after its client died is billed and never delivered; nothing
    # else the first run generated may be generated again.
    assert len(run.paid_twice) <= run.flow_concurrency
    # ...and the re-run itself generated no script twice.
    assert len(run.regenerated) == len(set(run.regenerated))
