"""Agent conversations: recorded through the engine's extension route, served as the API does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from elevenlabs.core.api_error import ApiError
from prefect import flow

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.tasks import export_conversations

from .conftest import sdk_for

SUPPORT_CALL = {
    "agent_id": "support",
    "agent_name": "Support line",
    "start_time_unix_secs": 1_767_000_000,
    "call_successful": "success",
    "transcript_summary": "The caller asked about opening hours.",
    "turns": [
        {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
        {"role": "user", "message": "When do you open tomorrow?", "time_in_call_secs": 3},
        {
            "role": "agent",
            "message": None,
            "time_in_call_secs": 5,
            "tool_calls": [{"tool_name": "opening_hours", "params_as_json": "{}"}],
        },
        {"role": "agent", "message": "We open at nine.", "time_in_call_secs": 7},
    ],
}


def record(engine, call: dict) -> str:
    response = httpx.post(
        f"{engine.base_url}/local/convai/conversations",
        json=call,
        headers={"xi-api-key": "local"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["conversation_id"]


@pytest.fixture
def fresh_engine(make_engine):
    return make_engine()


def test_recorded_calls_page_and_filter_through_the_official_sdk(fresh_engine):
    ids = [
        record(
            fresh_engine,
            {
                **SUPPORT_CALL,
                "start_time_unix_secs": 1_767_000_000 + n,
                "call_successful": "failure" if n == 4 else "success",
            },
        )
        for n in range(5)
    ]
    record(fresh_engine, {**SUPPORT_CALL, "agent_id": "sales"})
    sdk = sdk_for(fresh_engine)

    seen, cursor = [], None
    while True:
        page = sdk.conversational_ai.conversations.list(
            agent_id="support", page_size=2, cursor=cursor
        )
        seen += [c.conversation_id for c in page.conversations]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == ids[::-1]  # newest first

    failed = sdk.conversational_ai.conversations.list(agent_id="support", call_successful="failure")
    assert [c.conversation_id for c in failed.conversations] == [ids[4]]
    window = sdk.conversational_ai.conversations.list(
        agent_id="support",
        call_start_after_unix=1_767_000_001,
        call_start_before_unix=1_767_000_003,
    )
    assert {c.conversation_id for c in window.conversations} == {ids[1], ids[2]}
    summary = failed.conversations[0]
    assert summary.message_count == 4 and summary.call_duration_secs == 7

    detail = sdk.conversational_ai.conversations.get(ids[0])
    assert [turn.message for turn in detail.transcript] == [
        "Hello, how can I help?",
        "When do you open tomorrow?",
        None,
        "We open at nine.",
    ]
    assert detail.metadata.start_time_unix_secs == 1_767_000_000


def test_unknown_ids_bad_cursors_and_deletion(fresh_engine):
    sdk = sdk_for(fresh_engine)
    conversation_id = record(fresh_engine, SUPPORT_CALL)

    with pytest.raises(ApiError) as missing:
        sdk.conversational_ai.conversations.get("conv_nope")
    assert missing.value.status_code == 404
    assert missing.value.body["detail"]["status"] == "conversation_not_found"

    too_big = httpx.get(
        f"{fresh_engine.base_url}/v1/convai/conversations",
        params={"page_size": 101},
        headers={"xi-api-key": "local"},
    )
    assert too_big.status_code == 422
    bad_cursor = httpx.get(
        f"{fresh_engine.base_url}/v1/convai/conversations",
        params={"cursor": "../x"},
        headers={"xi-api-key": "local"},
    )
    assert bad_cursor.status_code == 422

    sdk.conversational_ai.conversations.delete(conversation_id)
    assert sdk.conversational_ai.conversations.list().conversations == []
    with pytest.raises(ApiError):
        sdk.conversational_ai.conversations.delete(conversation_id)


@pytest.mark.usefixtures("prefect_server")
def test_the_export_task_writes_spoken_turns_in_call_order(fresh_engine, tmp_path: Path):
    first = record(fresh_engine, SUPPORT_CALL)
    turns = list(reversed(SUPPORT_CALL["turns"]))  # stored in call order whatever the input order
    second = record(
        fresh_engine, {**SUPPORT_CALL, "start_time_unix_secs": 1_767_000_500, "turns": turns}
    )
    credentials = ElevenLabsCredentials(base_url=fresh_engine.base_url, api_key="local")

    @flow
    def export():
        return export_conversations(credentials, output_dir=str(tmp_path), agent_id="support")

    files = export()

    names = [Path(f).name for f in files]
    assert names[-1] == "index.json"
    assert sorted(names[:-1]) == sorted(
        [f"conversation-{first}.json", f"conversation-{second}.json"]
    )
    index = json.loads(Path(files[-1]).read_text())
    assert [c["conversation_id"] for c in index["conversations"]] == [first, second]
    document = json.loads((tmp_path / f"conversation-{second}.json").read_text())
    assert [t["message"] for t in document["turns"]] == [
        "Hello, how can I help?",
        "When do you open tomorrow?",
        "We open at nine.",
    ]
