"""A character quota below a batch's need: refused up front, or stopped mid-batch and resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .report import QuotaRun, measure_quota

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.usefixtures("prefect_server"),
]

ITEMS = 20
FLOW_CONCURRENCY = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> QuotaRun:
    return measure_quota(
        Path(tmp_path_factory.mktemp("quota")), items=ITEMS, flow_concurrency=FLOW_CONCURRENCY
    )


def test_a_batch_the_quota_cannot_pay_for_does_not_start(run: QuotaRun) -> None:
    assert run.precheck_is_quota_error, run.precheck_error
    assert "left" in run.precheck_error
    assert run.precheck_requests == 0
    assert run.precheck_new_files == []


def test_running_out_mid_batch_fails_with_the_quota_error(run: QuotaRun) -> None:
    assert run.is_quota_error, run.error
    assert "quota" in run.error.lower()


def test_running_out_mid_batch_keeps_what_completed_and_names_the_rest(run: QuotaRun) -> None:
    assert len(run.completed) >= 4
    assert run.not_completed, "the quota ran out, so some scripts cannot have completed"
    assert run.unaccounted == []
    assert run.completed_undecodable == []
    assert set(run.completed).isdisjoint(run.not_completed)


def test_no_request_is_retried_or_started_after_the_quota_ran_out(run: QuotaRun) -> None:
    # Each refused script was tried once (no retry of a quota error)...
    assert run.quota_refusals == run.refused_items
    # ...and only the scripts already in flight when the quota ran out were tried at all.
    assert 1 <= run.quota_refusals <= FLOW_CONCURRENCY


def test_a_rerun_with_more_quota_generates_only_what_is_missing(run: QuotaRun) -> None:
    assert run.rerun_error is None
    assert run.rerun_missing == []
    assert run.rerun_regenerated == sorted(run.not_completed)
    assert run.rerun_billed == run.rerun_expected
