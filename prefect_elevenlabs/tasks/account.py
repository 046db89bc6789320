"""Account tasks: the subscription and its credits, a budget check, and conversation exports."""

from __future__ import annotations

import json
from typing import Any

from ..blocks import ElevenLabsCredentials
from ..client import Subscription
from ..errors import InvalidRequestError, QuotaExceededError
from . import _storage
from ._policy import RETRY_OPTIONS, api_call, run_logger
from ._task import task

__all__ = ["check_budget", "export_conversations", "get_subscription"]


@task(name="ElevenLabs get subscription", **RETRY_OPTIONS)
async def get_subscription(credentials: ElevenLabsCredentials) -> Subscription:
    """Reads the plan: tier, characters used and allowed this period, and what is left.

    Example:
        ```python
        plan = get_subscription(credentials)
        print(plan.tier, plan.character_count, plan.character_limit, plan.characters_remaining)
        ```
    """
    async with api_call(credentials) as client:
        subscription: Subscription = await client.user.get_subscription()
    run_logger().info(
        "plan %s: %d of %d characters used, %d left",
        subscription.tier,
        subscription.character_count,
        subscription.character_limit,
        subscription.characters_remaining,
    )
    return subscription


@task(name="ElevenLabs check budget", **RETRY_OPTIONS)
async def check_budget(
    characters_needed: int,
    credentials: ElevenLabsCredentials,
    max_characters: int | None = None,
) -> Subscription:
    """Refuses to start work the plan (or your own budget) cannot pay for.

    Call it before a batch with the characters the batch will send (for speech, the length of
    the texts). It spends nothing.

    Args:
        characters_needed: Characters the work will cost.
        credentials: The ElevenLabs credentials block.
        max_characters: Your own ceiling for this work, below the plan's.

    Returns:
        The subscription that was checked.

    Raises:
        QuotaExceededError: The need exceeds ``max_characters`` or what the plan has left.

    Example:
        ```python
        check_budget(sum(len(t) for t in texts), credentials, max_characters=50_000)
        assets = text_to_speech.map(texts, credentials=credentials)
        ```
    """
    if characters_needed < 0:
        raise InvalidRequestError(
            f"characters_needed must be 0 or more, got {characters_needed}",
            status="invalid_parameters",
            param="characters_needed",
        )
    if max_characters is not None and characters_needed > max_characters:
        raise QuotaExceededError(
            f"this work needs {characters_needed} characters, over the budget of "
            f"max_characters={max_characters}: raise max_characters or send less text",
            status="budget_exceeded",
            param="max_characters",
        )
    async with api_call(credentials) as client:
        subscription: Subscription = await client.user.get_subscription()
    remaining = subscription.characters_remaining
    if characters_needed > remaining:
        raise QuotaExceededError(
            f"this work needs {characters_needed} characters but the {subscription.tier} plan has "
            f"{remaining} left ({subscription.character_count} of "
            f"{subscription.character_limit} used): upgrade, wait for the reset, or send less text",
            status="quota_exceeded",
        )
    run_logger().info(
        "budget ok: %d characters needed, %d left on the plan", characters_needed, remaining
    )
    return subscription


def _conversation_document(conversation: Any) -> dict[str, Any]:
    """One conversation as exported: who, when, and the spoken turns in order."""
    metadata = conversation.metadata or {}
    return {
        "conversation_id": conversation.conversation_id,
        "agent_id": conversation.agent_id,
        "status": conversation.status,
        "user_id": conversation.user_id,
        "start_time_unix_secs": metadata.get("start_time_unix_secs"),
        "call_duration_secs": metadata.get("call_duration_secs"),
        "main_language": metadata.get("main_language"),
        "termination_reason": metadata.get("termination_reason"),
        "analysis": conversation.analysis,
        "turns": [
            {
                "role": turn.role,
                "time_in_call_secs": turn.time_in_call_secs,
                "message": turn.message,
                "interrupted": turn.interrupted,
                "source_medium": turn.source_medium,
            }
            for turn in conversation.messages()
        ],
    }


@task(name="ElevenLabs export conversations", **RETRY_OPTIONS)
async def export_conversations(
    credentials: ElevenLabsCredentials,
    output_dir: str | None = None,
    agent_id: str | None = None,
    after_unix: int | None = None,
    before_unix: int | None = None,
) -> list[str]:
    """Exports agent conversations as JSON: one file per conversation plus an ``index.json``.

    Each conversation file holds its metadata, analysis and the spoken turns in call order
    (tool-only turns are left out); the index lists every exported conversation with its file.

    Args:
        credentials: The ElevenLabs credentials block.
        output_dir: A folder or fsspec URL.
        agent_id: Only this agent's conversations.
        after_unix: Only calls started at or after this Unix time.
        before_unix: Only calls started before this Unix time.

    Returns:
        The URIs of the conversation files, then the index's.

    Example:
        ```python
        files = export_conversations(credentials, output_dir="s3://bucket/calls",
                                     agent_id="agent_123", after_unix=1735689600)
        ```
    """
    target = _storage.OutputDir(output_dir)
    written: list[str] = []
    index: list[dict[str, Any]] = []
    async with api_call(credentials) as client:
        async for summary in client.conversations.iter_all(
            agent_id=agent_id,
            call_start_after_unix=after_unix,
            call_start_before_unix=before_unix,
            page_size=100,
        ):
            conversation = await client.conversations.get(summary.conversation_id)
            document = _conversation_document(conversation)
            name = f"conversation-{_file_safe(summary.conversation_id)}.json"
            _write_json(target, name, document)
            written.append(target.uri_of(name))
            index.append(
                {
                    "conversation_id": summary.conversation_id,
                    "agent_id": summary.agent_id,
                    "agent_name": summary.agent_name,
                    "start_time_unix_secs": summary.start_time_unix_secs,
                    "call_duration_secs": summary.call_duration_secs,
                    "status": summary.status,
                    "call_successful": summary.call_successful,
                    "turns": len(document["turns"]),
                    "file": name,
                }
            )
    index.sort(key=lambda item: (item["start_time_unix_secs"] or 0, item["conversation_id"]))
    _write_json(
        target,
        "index.json",
        {
            "agent_id": agent_id,
            "after_unix": after_unix,
            "before_unix": before_unix,
            "count": len(index),
            "conversations": index,
        },
    )
    written.append(target.uri_of("index.json"))
    run_logger().info("exported %d conversations to %s", len(index), target.uri_of(""))
    return written


def _file_safe(identifier: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in identifier)
    return cleaned[:100] or "unnamed"


def _write_json(target: _storage.OutputDir, name: str, document: Any) -> None:
    with target.staged(name) as staged, open(staged, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
