"""Agent conversations: recorded through the engine's extension route, served as the API does."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from elevenlabs.core.api_error import ApiError
from prefect import flow

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.client import ElevenLabsClient
from prefect_elevenlabs.errors import NotFoundError, RequestValidationError
from prefect_elevenlabs.local.routes.convai import _mixdown
from prefect_elevenlabs.local.server import EngineHandle
from prefect_elevenlabs.local.state import CONVERSATION_AUDIO, EngineState
from prefect_elevenlabs.tasks import export_conversations

from .conftest import read_audio, rms, sdk_for

HEADERS = {"xi-api-key": "local"}

SUPPORT_CALL: dict[str, Any] = {
    "agent_id": "support",
    "agent_name": "Support line",
    "start_time_unix_secs": 1_767_000_000,
    "call_successful": "success",
    "transcript_summary": "The caller asked about opening hours.",
    "turns": [
        {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
        {"role": "user", "message": "When do you open tomorrow?", "time_in_call_secs": 4},
        {
            "role": "agent",
            "message": None,
            "time_in_call_secs": 6,
            "tool_calls": [{"tool_name": "opening_hours", "params_as_json": "{}"}],
        },
        {"role": "agent", "message": "We open at nine.", "time_in_call_secs": 8},
    ],
}
SPOKEN = ["Hello, how can I help?", "When do you open tomorrow?", "We open at nine."]


def record(engine: EngineHandle, call: dict[str, Any]) -> str:
    """Record ``call`` through the extension route and return its conversation id."""
    response = httpx.post(
        f"{engine.base_url}/local/convai/conversations", json=call, headers=HEADERS, timeout=30
    )
    assert response.status_code == 200, response.text
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


def engine_state(engine: EngineHandle) -> EngineState:
    state: EngineState = engine.app.state.engine_state  # type: ignore[attr-defined]
    return state


def median_pitch(samples: np.ndarray, rate: int) -> float:
    """Median fundamental frequency (Hz) over the voiced 40 ms frames, by autocorrelation."""
    frame = int(0.04 * rate)
    shortest, longest = int(rate / 400), int(rate / 60)
    loudest = max(rms(samples[i : i + frame]) for i in range(0, len(samples) - frame, frame))
    pitches = []
    for start in range(0, len(samples) - frame, frame):
        window = samples[start : start + frame].astype(np.float64)
        if rms(window) < 0.3 * loudest:
            continue
        window = window - window.mean()
        correlation = np.correlate(window, window, mode="full")[frame - 1 :]
        lag = shortest + int(np.argmax(correlation[shortest:longest]))
        if correlation[lag] > 0.3 * correlation[0]:
            pitches.append(rate / lag)
    assert len(pitches) >= 5, "too few voiced frames to measure pitch"
    return float(np.median(pitches))


@pytest.fixture
def fresh_engine(make_engine) -> EngineHandle:
    return make_engine()


def test_recorded_calls_page_and_filter_through_the_official_sdk(fresh_engine):
    ids = [
        record(
            fresh_engine,
            {
                **SUPPORT_CALL,
                "start_time_unix_secs": 1_767_000_000 + n,
                "call_duration_secs": 10 + 10 * n,
                "call_successful": "failure" if n == 4 else "success",
            },
        )
        for n in range(5)
    ]
    sales = record(
        fresh_engine,
        {
            **SUPPORT_CALL,
            "agent_id": "sales",
            "start_time_unix_secs": 1_767_000_100,
            "transcript_summary": "A question about the ÜBERGRÖSSE range.",
            "turns": [
                {"role": "user", "message": "Do you sell winter boots?", "time_in_call_secs": 0}
            ],
        },
    )
    sdk = sdk_for(fresh_engine)

    def every(**filters: Any) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            page = sdk.conversational_ai.conversations.list(page_size=2, cursor=cursor, **filters)
            seen += [c.conversation_id for c in page.conversations]
            if not page.has_more:
                assert page.next_cursor is None
                return seen
            assert len(page.conversations) == 2 and page.next_cursor
            cursor = page.next_cursor

    assert every(agent_id="support") == ids[::-1]  # newest first by default
    assert every(agent_id="support", sort_direction="asc") == ids
    assert every() == [sales, *ids[::-1]]  # the sales call started last

    def listed(**filters: Any) -> list[str]:
        page = sdk.conversational_ai.conversations.list(sort_direction="asc", **filters)
        return [c.conversation_id for c in page.conversations]

    assert listed(call_successful="failure") == [ids[4]]
    assert listed(call_start_after_unix=1_767_000_001, call_start_before_unix=1_767_000_003) == [
        ids[1],
        ids[2],
    ]
    assert listed(call_duration_min_secs=20, call_duration_max_secs=40) == ids[1:4]
    # search: any message or the summary, ignoring case in every script
    assert listed(search="WINTER boots") == [sales]
    assert listed(search="übergröße") == [sales]  # "ß" folds to "ss", "Ü" to "ü"
    assert listed(search="opening hours", agent_id="support") == ids
    assert listed(search="open at NINE") == ids
    assert listed(search="opening_hours") == []  # tool names are not transcript text

    summary = sdk.conversational_ai.conversations.list(call_successful="failure").conversations[0]
    assert summary.agent_name == "Support line"
    assert summary.call_duration_secs == 50
    # the tool-only turn is not a message
    assert (summary.message_count, summary.user_message_count, summary.agent_message_count) == (
        3,
        1,
        2,
    )
    assert summary.tool_names == ["opening_hours"]
    assert summary.status == "done" and summary.call_successful == "failure"

    detail = sdk.conversational_ai.conversations.get(ids[0])
    assert [turn.message for turn in detail.transcript] == [SPOKEN[0], SPOKEN[1], None, SPOKEN[2]]
    assert [turn.role for turn in detail.transcript] == ["agent", "user", "agent", "agent"]
    tool_turn = detail.transcript[2]
    assert tool_turn.tool_calls[0].tool_name == "opening_hours"
    assert tool_turn.tool_calls[0].request_id  # filled in when the recording had none
    assert detail.metadata.start_time_unix_secs == 1_767_000_000
    assert detail.metadata.call_duration_secs == 10
    assert detail.analysis.transcript_summary == SUPPORT_CALL["transcript_summary"]
    assert (detail.has_audio, detail.has_user_audio, detail.has_response_audio) == (
        True,
        True,
        True,
    )
    sales_detail = sdk.conversational_ai.conversations.get(sales)
    assert (sales_detail.has_user_audio, sales_detail.has_response_audio) == (True, False)


async def test_our_client_pages_through_and_reads_the_spoken_turns(fresh_engine):
    ids = [
        record(fresh_engine, {**SUPPORT_CALL, "start_time_unix_secs": 1_767_000_000 + n})
        for n in range(5)
    ]
    async with ElevenLabsClient("local", base_url=fresh_engine.base_url) as client:
        summaries = [s async for s in client.conversations.iter_all(page_size=2)]
        assert [s.conversation_id for s in summaries] == ids[::-1]
        conversation = await client.conversations.get(ids[2])
        assert [turn.message for turn in conversation.messages()] == SPOKEN
        assert conversation.has_audio is True

        await client.conversations.send_feedback(ids[2], "dislike")
        rated = await client.conversations.get(ids[2])
        assert rated.metadata["feedback"]["overall_score"] == "dislike"
        await client.conversations.send_feedback(ids[2], None)
        withdrawn = await client.conversations.get(ids[2])
        assert withdrawn.metadata["feedback"]["overall_score"] is None
        with pytest.raises(RequestValidationError):
            await client.conversations.send_feedback(ids[2], "love")  # type: ignore[arg-type]

        await client.conversations.delete(ids[2])
        with pytest.raises(NotFoundError) as missing:
            await client.conversations.get(ids[2])
        assert missing.value.status == "conversation_not_found"
        assert missing.value.status_code == 404


def test_paging_neither_skips_nor_repeats_when_calls_are_deleted_meanwhile(fresh_engine):
    # Same start time for all: the order then rests on the id alone.
    ids = sorted(record(fresh_engine, SUPPORT_CALL) for _ in range(6))
    sdk = sdk_for(fresh_engine)
    first = sdk.conversational_ai.conversations.list(page_size=3, sort_direction="asc")
    assert [c.conversation_id for c in first.conversations] == ids[:3]
    # An exporter that deletes what it has exported: a count-based cursor would now skip three.
    for summary in first.conversations:
        sdk.conversational_ai.conversations.delete(summary.conversation_id)
    second = sdk.conversational_ai.conversations.list(
        page_size=3, sort_direction="asc", cursor=first.next_cursor
    )
    assert [c.conversation_id for c in second.conversations] == ids[3:]
    assert second.has_more is False


def test_unknown_ids_bad_parameters_and_deletion(fresh_engine):
    sdk = sdk_for(fresh_engine)
    conversation_id = record(fresh_engine, SUPPORT_CALL)
    base = f"{fresh_engine.base_url}/v1/convai/conversations"

    for method, path in (
        ("GET", "conv_nope"),
        ("GET", "conv_nope/audio"),
        ("DELETE", "conv_nope"),
        ("POST", "conv_nope/feedback"),
        ("GET", "..%2F..%2Fengine.sqlite3"),
        ("GET", "..%2F..%2Fengine.sqlite3/audio"),
    ):
        body = {"feedback": "like"} if method == "POST" else None
        response = httpx.request(method, f"{base}/{path}", json=body, headers=HEADERS)
        assert response.status_code == 404, (method, path, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, dict) and detail["message"], (method, path)

    with pytest.raises(ApiError) as missing:
        sdk.conversational_ai.conversations.get("conv_nope")
    assert missing.value.status_code == 404
    detail = missing.value.body["detail"]
    assert detail["status"] == detail["code"] == "conversation_not_found"
    assert detail["param"] == "conversation_id" and "conv_nope" in detail["message"]

    for params in (
        {"page_size": 101},
        {"page_size": 0},
        {"cursor": "../x"},
        {"cursor": "WzEsIi4uL2V0YyJd"},  # a well-formed cursor naming "../etc"
        {"call_successful": "maybe"},
        {"sort_direction": "sideways"},
    ):
        response = httpx.get(base, params=params, headers=HEADERS)
        assert response.status_code == 422, (params, response.text)

    invalid_calls = [
        {**SUPPORT_CALL, "turns": []},
        {**SUPPORT_CALL, "agent_id": "../agents"},
        {**SUPPORT_CALL, "call_duration_secs": 5},  # shorter than the last turn's start
        {**SUPPORT_CALL, "turns": [{"role": "robot", "message": "hi", "time_in_call_secs": 0}]},
    ]
    for call in invalid_calls:
        response = httpx.post(
            f"{fresh_engine.base_url}/local/convai/conversations", json=call, headers=HEADERS
        )
        assert response.status_code == 422, (call, response.text)

    sdk.conversational_ai.conversations.delete(conversation_id)
    assert sdk.conversational_ai.conversations.list().conversations == []
    with pytest.raises(ApiError) as gone:
        sdk.conversational_ai.conversations.delete(conversation_id)
    assert gone.value.status_code == 404


def test_feedback_is_recorded_changed_and_withdrawn(fresh_engine):
    sdk = sdk_for(fresh_engine)
    conversation_id = record(fresh_engine, SUPPORT_CALL)
    feedback = sdk.conversational_ai.conversations.feedback

    def current() -> Any:
        return sdk.conversational_ai.conversations.get(conversation_id).metadata.feedback

    assert current().overall_score is None
    feedback.create(conversation_id, feedback="like")
    assert (current().overall_score, current().likes, current().dislikes) == ("like", 1, 0)
    feedback.create(conversation_id, feedback="dislike")
    assert (current().overall_score, current().likes, current().dislikes) == ("dislike", 0, 1)
    feedback.create(conversation_id)  # no score: withdrawn
    assert current().overall_score is None

    response = httpx.post(
        f"{fresh_engine.base_url}/v1/convai/conversations/{conversation_id}/feedback",
        json={"feedback": "love"},
        headers=HEADERS,
    )
    assert response.status_code == 422


def test_concurrent_recordings_and_feedback_all_land(fresh_engine):
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            conversation_id = record(
                fresh_engine, {**SUPPORT_CALL, "start_time_unix_secs": 1_767_000_000 + n}
            )
            with lock:
                ids.append(conversation_id)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sdk = sdk_for(fresh_engine)
    listed = sdk.conversational_ai.conversations.list(page_size=100).conversations
    assert sorted(c.conversation_id for c in listed) == sorted(ids) and len(set(ids)) == 16


def test_call_audio_speaks_each_turn_at_its_time_in_two_voices(fresh_engine, tmp_path: Path):
    conversation_id = record(fresh_engine, SUPPORT_CALL)
    sdk = sdk_for(fresh_engine)

    with sdk.conversational_ai.conversations.audio.with_raw_response.get(conversation_id) as raw:
        assert raw.headers["content-type"] == "audio/mpeg"
        data = b"".join(raw.data)
    audio = read_audio(data)
    assert audio.duration >= 8.0  # the last turn starts 8 s into the call
    rate, samples = audio.sample_rate, audio.samples

    def level(start: float, end: float) -> float:
        return rms(samples[int(start * rate) : int(end * rate)])

    # Speech where each spoken turn begins; silence before the caller speaks at 4 s.
    assert level(0.0, 1.0) > 0.02
    assert level(3.3, 3.95) < 0.002
    assert level(4.0, 5.0) > 0.02
    assert level(8.0, 8.8) > 0.02
    # The caller's voice is not the agent's: a clearly higher pitch.
    agent = median_pitch(samples[: int(2.0 * rate)], rate)
    caller = median_pitch(samples[int(4.0 * rate) : int(6.0 * rate)], rate)
    assert caller > 1.3 * agent, (agent, caller)

    # Rendered once and kept: our client downloads the very same bytes.
    stored = engine_state(fresh_engine).safe_path(CONVERSATION_AUDIO, conversation_id)
    assert stored.read_bytes() == data

    async def download() -> bytes:
        async with ElevenLabsClient("local", base_url=fresh_engine.base_url) as client:
            result = await client.conversations.get_audio(conversation_id, tmp_path / "call.mp3")
            assert result.bytes_written == len(data)
            return (tmp_path / "call.mp3").read_bytes()

    assert asyncio.run(download()) == data

    sdk.conversational_ai.conversations.delete(conversation_id)
    assert not stored.exists()


def test_a_call_with_no_spoken_turn_has_no_audio(fresh_engine):
    tools_only = {
        **SUPPORT_CALL,
        "turns": [
            {
                "role": "agent",
                "message": None,
                "time_in_call_secs": 0,
                "tool_calls": [{"tool_name": "end_call"}],
            }
        ],
    }
    conversation_id = record(fresh_engine, tools_only)
    detail = sdk_for(fresh_engine).conversational_ai.conversations.get(conversation_id)
    assert detail.has_audio is False
    response = httpx.get(
        f"{fresh_engine.base_url}/v1/convai/conversations/{conversation_id}/audio",
        headers=HEADERS,
    )
    assert response.status_code == 404
    assert response.json()["detail"]["status"] == "audio_not_found"


def test_overlapping_turns_are_summed_and_the_track_covers_the_call():
    clips = [(0, np.full(15, 0.25, np.float32)), (10, np.full(10, 0.5, np.float32))]
    track = np.concatenate(list(_mixdown(iter(clips), total=40, chunk=4)))
    assert len(track) == 40
    assert np.allclose(track[:10], 0.25)
    assert np.allclose(track[10:15], 0.75)  # both speakers at once
    assert np.allclose(track[15:20], 0.5)
    assert np.allclose(track[20:], 0.0)
    loud = [(0, np.full(5, 0.8, np.float32)), (0, np.full(5, 0.8, np.float32))]
    assert np.concatenate(list(_mixdown(iter(loud), total=0, chunk=4))).max() == 1.0  # clipped
    backwards = [(10, np.ones(3, np.float32)), (0, np.ones(3, np.float32))]
    with pytest.raises(ValueError, match="ascending"):
        list(_mixdown(iter(backwards), total=0, chunk=4))


@pytest.mark.usefixtures("prefect_server")
def test_the_export_task_writes_spoken_turns_in_call_order(fresh_engine, tmp_path: Path):
    first = record(fresh_engine, SUPPORT_CALL)
    turns = list(reversed(SUPPORT_CALL["turns"]))  # stored in call order whatever the input order
    second = record(
        fresh_engine, {**SUPPORT_CALL, "start_time_unix_secs": 1_767_000_500, "turns": turns}
    )
    record(fresh_engine, {**SUPPORT_CALL, "agent_id": "sales"})  # another agent: not exported
    credentials = ElevenLabsCredentials(base_url=fresh_engine.base_url, api_key="local")

    @flow
    def export() -> list[str]:
        return export_conversations(credentials, output_dir=str(tmp_path), agent_id="support")

    files = export()

    names = [Path(f).name for f in files]
    assert names[-1] == "index.json"
    assert sorted(names[:-1]) == sorted(
        [f"conversation-{first}.json", f"conversation-{second}.json"]
    )
    index = json.loads(Path(files[-1]).read_text())
    assert [c["conversation_id"] for c in index["conversations"]] == [first, second]
    for conversation_id in (first, second):
        document = json.loads((tmp_path / f"conversation-{conversation_id}.json").read_text())
        assert document["conversation_id"] == conversation_id
        assert [t["message"] for t in document["turns"]] == SPOKEN
        assert [t["role"] for t in document["turns"]] == ["agent", "user", "agent"]
        times = [t["time_in_call_secs"] for t in document["turns"]]
        assert times == [0, 4, 8]
