"""A narrate process killed with SIGKILL mid-batch, then run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from .report import CrashRun, measure_crash_resume

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ITEMS = 30


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> CrashRun:
    return measure_crash_resume(Path(tmp_path_factory.mktemp("crash")), items=ITEMS)


def test_the_kill_landed_mid_batch(run: CrashRun) -> None:
    assert 1 <= run.killed_after < ITEMS


def test_no_visible_file_is_partial_after_the_kill(run: CrashRun) -> None:
    # Unfinished files are hidden staging files; whatever carries an output's name is whole.
    assert run.undecodable_at_kill == []
    assert all(".part" not in name for name in run.visible_at_kill)
    assert all(Path(name).name.startswith(".") for name in run.staging_left_at_kill)


def test_the_rerun_completes_every_script(run: CrashRun) -> None:
    assert run.rerun_exit_code == 0
    assert run.missing_after == []
    assert run.undecodable_after == []
    assert run.partial_outputs_reported == []


def test_the_rerun_does_not_regenerate_completed_scripts(run: CrashRun) -> None:
    assert run.regenerated_but_completed == []
    assert len(run.regenerated) <= ITEMS - run.killed_after
    assert run.rerun_billed == run.rerun_billed_expected
