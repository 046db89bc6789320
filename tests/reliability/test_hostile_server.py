"""Narration against a server that fails 43 % of its requests, and the retry layers behind it.

The batch of 200 runs against ``prefect-elevenlabs local serve`` with seeded faults (slow);
the focused tests pin down the two retry layers on their own: the client's, which must account
for every request it sent, and Prefect's task retries, which take over when the client gives up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.client import ElevenLabsClient
from prefect_elevenlabs.errors import ServerError
from prefect_elevenlabs.local.server import EngineHandle
from prefect_elevenlabs.tasks import text_to_speech
from prefect_elevenlabs.tasks._policy import RETRY_OPTIONS

from .report import (
    FAST_VOICE_ID,
    HOSTILE_FAULTS,
    HostileBatch,
    engine_stats,
    measure_hostile_batch,
)

ITEMS = 200


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> HostileBatch:
    return measure_hostile_batch(Path(tmp_path_factory.mktemp("hostile")), items=ITEMS)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_script_is_delivered_once(batch: HostileBatch) -> None:
    assert batch.failed == []
    assert batch.error is None
    assert batch.delivered == ITEMS
    assert batch.duplicates == []
    assert batch.stray_files == []


@pytest.mark.slow
def test_every_file_is_the_audio_the_engine_generated(batch: HostileBatch) -> None:
    assert batch.undecodable == []
    assert batch.mismatched == []


@pytest.mark.slow
def test_each_fault_kind_was_met_and_survived(batch: HostileBatch) -> None:
    kinds = {name.removeprefix("fault_") for name in HOSTILE_FAULTS}
    assert {kind for kind, count in batch.faults.items() if count} == kinds
    # With 43 % of requests failing, a script takes ~1.75 requests on average.
    assert batch.requests_received > ITEMS * 1.4


@pytest.mark.slow
def test_no_script_was_generated_or_billed_twice(batch: HostileBatch) -> None:
    assert batch.generations_completed == batch.delivered
    delivered_share = batch.delivered / ITEMS
    assert batch.characters_billed <= batch.characters_expected
    assert batch.characters_billed >= batch.characters_expected * delivered_share * 0.9


@pytest.mark.slow
def test_reported_attempts_account_for_every_request(batch: HostileBatch) -> None:
    if batch.task_reruns == 0 and not batch.failed:
        assert batch.attempts_reported == batch.requests_received
    else:
        # Usage describes a script's last task run; earlier runs' requests are not in it.
        assert batch.attempts_reported < batch.requests_received


async def test_attempts_count_the_transfers_cut_off_midway(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    engine = start_engine(fault_rate_truncate=0.5, fault_rate_500=0.2, fault_seed=11)
    attempts = 0

    async def no_wait(seconds: float) -> None:
        """The backoff is not under test here, only the counting."""

    async with ElevenLabsClient(
        "k", base_url=engine.base_url, max_retries=20, sleep=no_wait
    ) as client:
        for index in range(8):
            download = await client.text_to_speech.convert(
                FAST_VOICE_ID,
                text=f"Line {index}.",
                dest=tmp_path / f"{index}.mp3",
                output_format="mp3_22050_32",
            )
            assert download.meta is not None
            attempts += download.meta.attempts
    stats = engine_stats(engine.base_url)
    assert stats["faults"]["truncate"] > 0
    assert attempts == stats["requests"]


@pytest.mark.usefixtures("prefect_server")
async def test_prefect_retries_a_task_after_the_client_gives_up(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    engine = start_engine(fault_rate_500=1.0)
    credentials = ElevenLabsCredentials(
        base_url=engine.base_url, api_key=SecretStr("k"), max_retries=0
    )
    with pytest.raises(ServerError):
        await text_to_speech.with_options(retry_delay_seconds=0)(
            "Hello.", credentials, voice_id=FAST_VOICE_ID, output_dir=str(tmp_path)
        )
    requests = httpx.get(f"{engine.base_url}/local/stats").json()["requests"]
    assert requests == 1 + RETRY_OPTIONS["retries"]
