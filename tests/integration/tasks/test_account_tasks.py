"""Account tasks in real flow runs: subscription, budget checks and conversation exports."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import fsspec
import pytest
from prefect import flow

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.errors import QuotaExceededError
from prefect_elevenlabs.tasks import (
    check_budget,
    export_conversations,
    get_subscription,
    text_to_speech,
)

from .conftest import FAST_VOICE, fresh_credentials, outcome, task_run_by_id

pytestmark = pytest.mark.usefixtures("prefect_server")


async def test_subscription_reports_what_was_spent(engine, tmp_path):
    credentials = fresh_credentials(engine)
    text = "Twenty-six characters ok."

    @flow
    async def spend_and_check(output_dir: str):
        await text_to_speech(text, credentials, voice_id=FAST_VOICE, output_dir=output_dir)
        return await get_subscription(credentials)

    plan = await spend_and_check(str(tmp_path))

    assert plan.tier == "local"
    assert plan.character_count == len(text)
    assert plan.characters_remaining == plan.character_limit - len(text)


async def test_budget_checks_refuse_work_the_plan_or_the_user_cannot_pay_for(make_engine):
    small = make_engine(character_quota=100)
    credentials = fresh_credentials(small)

    @flow
    async def checks():
        fits = await check_budget(60, credentials)
        over_plan = await check_budget(150, credentials, return_state=True)
        over_budget = await check_budget(60, credentials, max_characters=50, return_state=True)
        return fits, await outcome(over_plan), await outcome(over_budget)

    fits, over_plan, over_budget = await checks()

    assert fits.characters_remaining == 100
    assert isinstance(over_plan.error, QuotaExceededError)
    assert "needs 150 characters" in str(over_plan.error) and "100 left" in str(over_plan.error)
    assert isinstance(over_budget.error, QuotaExceededError)
    assert over_budget.error.status == "budget_exceeded"
    assert "max_characters=50" in str(over_budget.error)
    assert (await task_run_by_id(over_plan.task_run_id)).run_count == 1


# --------------------------------------------------------------------------------------------
# Conversation export: the local engine has no agents, so a small HTTP server on loopback
# answers the two conversation routes with the API's shapes, paging two at a time.

CONVERSATIONS: dict[str, dict[str, Any]] = {
    f"conv_{i}": {
        "conversation_id": f"conv_{i}",
        "agent_id": "agent_a" if i < 4 else "agent_b",
        "status": "done",
        "metadata": {"start_time_unix_secs": 1_700_000_000 + i * 100, "call_duration_secs": 30},
        "analysis": {"call_successful": "success"},
        "transcript": [
            {"role": "user", "message": f"Second line of call {i}", "time_in_call_secs": 5},
            {"role": "agent", "message": None, "time_in_call_secs": 3, "tool_calls": [{}]},
            {"role": "agent", "message": f"Hello caller {i}", "time_in_call_secs": 1},
            {"role": "agent", "message": "Goodbye", "time_in_call_secs": 9},
        ],
    }
    for i in range(5)
}


class _AgentsHandler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.requests.append(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/v1/convai/conversations":
            chosen = [
                c for c in CONVERSATIONS.values()
                if ("agent_id" not in query or c["agent_id"] == query["agent_id"])
                and c["metadata"]["start_time_unix_secs"]
                >= int(query.get("call_start_after_unix", 0))
            ]
            start = int(query.get("cursor", 0))
            page = chosen[start : start + 2]
            more = start + 2 < len(chosen)
            self._json(
                {
                    "conversations": [
                        {
                            "conversation_id": c["conversation_id"],
                            "agent_id": c["agent_id"],
                            "agent_name": "Agent",
                            "start_time_unix_secs": c["metadata"]["start_time_unix_secs"],
                            "call_duration_secs": 30,
                            "message_count": 4,
                            "status": "done",
                            "call_successful": "success",
                        }
                        for c in page
                    ],
                    "has_more": more,
                    "next_cursor": str(start + 2) if more else None,
                }
            )
        elif url.path.startswith("/v1/convai/conversations/"):
            conversation = CONVERSATIONS.get(url.path.rsplit("/", 1)[1])
            if conversation is None:
                self._json({"detail": {"status": "not_found", "message": "no such"}}, 404)
            else:
                self._json(conversation)
        else:
            self._json({"detail": {"status": "not_found", "message": "no route"}}, 404)

    def _json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def agents_api() -> Iterator[str]:
    _AgentsHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AgentsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_conversations_export_one_ordered_file_each_plus_an_index(agents_api):
    credentials = ElevenLabsCredentials(api_key="agents-key", base_url=agents_api)

    @flow
    def export():
        return export_conversations.submit(
            credentials, output_dir="memory://calls", agent_id="agent_a",
            after_unix=1_700_000_100,
        ).result()

    files = export()

    assert files[-1] == "memory:///calls/index.json"
    index = json.loads(fsspec.open(files[-1], "r").open().read())
    assert [c["conversation_id"] for c in index["conversations"]] == ["conv_1", "conv_2", "conv_3"]
    assert index["count"] == 3 and index["agent_id"] == "agent_a"
    assert files[:-1] == [f"memory:///calls/conversation-conv_{i}.json" for i in (1, 2, 3)]
    document = json.loads(fsspec.open(files[0], "r").open().read())
    assert [t["message"] for t in document["turns"]] == [
        "Hello caller 1", "Second line of call 1", "Goodbye",
    ]
    assert [t["time_in_call_secs"] for t in document["turns"]] == [1, 5, 9]
    assert document["start_time_unix_secs"] == 1_700_000_100
    pages = [r for r in _AgentsHandler.requests if r.startswith("/v1/convai/conversations?")]
    assert len(pages) == 2
