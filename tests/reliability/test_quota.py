"""A character quota below a batch's need: refused up front, or stopped mid-batch and resumed."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_elevenlabs.errors import QuotaExceededError
from prefect_elevenlabs.flows import ItemOutcome, RunSummary
from prefect_elevenlabs.flows._summary import quota_ran_out

from .report import QuotaRun, measure_quota


def measured(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test reading the measurement: slow, given time for the measurement to run."""
    for mark in (
        pytest.mark.slow,
        pytest.mark.timeout(1200),
        pytest.mark.usefixtures("prefect_server"),
    ):
        test = mark(test)
    return test


ITEMS = 20
FLOW_CONCURRENCY = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> QuotaRun:
    return measure_quota(
        Path(tmp_path_factory.mktemp("quota")), items=ITEMS, flow_concurrency=FLOW_CONCURRENCY
    )


@measured
def test_a_batch_the_quota_cannot_pay_for_does_not_start(run: QuotaRun) -> None:
    assert run.precheck_is_quota_error, run.precheck_error
    assert "left" in run.precheck_error
    assert run.precheck_requests == 0
    assert run.precheck_new_files == []


@measured
def test_running_out_mid_batch_fails_with_the_quota_error(run: QuotaRun) -> None:
    assert run.is_quota_error, run.error
    assert "quota" in run.error.lower()


@measured
def test_running_out_mid_batch_keeps_what_completed_and_names_the_rest(run: QuotaRun) -> None:
    assert len(run.completed) >= 4
    assert run.not_completed, "the quota ran out, so some scripts cannot have completed"
    assert run.unaccounted == []
    assert run.completed_undecodable == []
    assert set(run.completed).isdisjoint(run.not_completed)


@measured
def test_the_quota_error_says_what_completed_where_and_what_did_not(run: QuotaRun) -> None:
    # Read after a pickle round trip, as a caller of a deployed flow would receive it.
    assert run.error_completed is not None and sorted(run.error_completed) == run.completed
    assert run.error_missing is not None and sorted(run.error_missing) == run.not_completed
    assert run.error_output_dir is not None
    assert Path(run.error_output_dir) == Path(run.output_dir)
    assert run.error_lists_everything, run.error


@measured
def test_no_request_is_retried_or_started_after_the_quota_ran_out(run: QuotaRun) -> None:
    # Each refused script was tried once (no retry of a quota error)...
    assert run.quota_refusals == len(run.refused_items)
    # ...and only the scripts already in flight when the quota ran out were tried at all.
    assert 1 <= run.quota_refusals <= FLOW_CONCURRENCY
    # The rest never started, and are listed as such.
    assert run.not_started, "the quota ran out early enough that scripts were left to start"
    assert sorted(run.refused_items + run.not_started) == run.not_completed


@measured
def test_a_rerun_with_more_quota_generates_only_what_is_missing(run: QuotaRun) -> None:
    assert run.rerun_error is None
    assert run.rerun_missing == []
    assert run.rerun_regenerated == sorted(run.not_completed)
    assert run.rerun_billed == run.rerun_expected


def test_a_batch_of_thousands_names_the_first_hundred_and_carries_them_all() -> None:
    items = [ItemOutcome(id=f"s{n:04d}", outputs=[f"/out/s{n:04d}.mp3"]) for n in range(10)]
    items += [ItemOutcome(id=f"s{n:04d}", status="failed", error="quota") for n in range(10, 12)]
    items += [ItemOutcome(id=f"s{n:04d}", status="skipped") for n in range(12, 2000)]
    cause = QuotaExceededError("no credits", status="quota_exceeded", status_code=401)
    error = pickle.loads(
        pickle.dumps(
            quota_ran_out(
                RunSummary(flow="narrate", output_dir="/out", items=items), cause, "scripts"
            )
        )
    )

    assert isinstance(error, QuotaExceededError)
    assert error.completed == [f"s{n:04d}" for n in range(10)]
    assert error.missing == [f"s{n:04d}" for n in range(10, 2000)]
    assert error.output_dir == "/out"
    assert error.summary.items == items
    assert (error.status, error.status_code) == ("quota_exceeded", 401)
    text = str(error)
    assert "10 of 2000 scripts completed, their files are in /out; 1990 not done" in text
    assert "s0109" in text and "s0110" not in text
    assert "and 1890 more" in text
    assert "no credits" in text
