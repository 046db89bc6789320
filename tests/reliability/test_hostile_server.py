"""A batch of 200 narrations against a standalone engine that fails 43 % of its requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .report import HOSTILE_FAULTS, HostileBatch, measure_hostile_batch

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

ITEMS = 200


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> HostileBatch:
    return measure_hostile_batch(Path(tmp_path_factory.mktemp("hostile")), items=ITEMS)


def test_every_script_is_delivered_once(batch: HostileBatch) -> None:
    assert batch.error is None
    assert batch.failed == []
    assert batch.delivered == ITEMS
    assert batch.duplicates == []
    assert batch.stray_files == []


def test_every_file_is_the_audio_the_engine_generated(batch: HostileBatch) -> None:
    assert batch.undecodable == []
    assert batch.mismatched == []


def test_each_fault_kind_was_survived(batch: HostileBatch) -> None:
    kinds = {name.removeprefix("fault_") for name in HOSTILE_FAULTS}
    assert {kind for kind, count in batch.faults.items() if count} == kinds
    # With a 43 % fault rate, ~1.75 requests per script: far more than one each.
    assert batch.requests_received > ITEMS * 1.4


def test_no_script_was_billed_twice(batch: HostileBatch) -> None:
    assert batch.generations_completed == ITEMS
    assert batch.characters_billed == batch.characters_expected


def test_reported_attempts_match_the_requests_the_engine_received(batch: HostileBatch) -> None:
    assert batch.attempts_reported == batch.requests_received
