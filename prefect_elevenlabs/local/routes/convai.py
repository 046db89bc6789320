"""Conversational-agent conversations: the transcript-export routes of ``/v1/convai``.

The engine runs no live agents, so conversations enter through its own extension route
``POST /local/convai/conversations`` (an agent id, the turns, the outcome); from then on they
are listed, read and deleted exactly as the API serves them: cursor pagination, the filters
exporters use (agent, start-time window, outcome), detail documents with metadata, analysis
and transcript turns (tool-only turns carry ``message: null``). No audio is recorded, so the
``has_*_audio`` flags are false and the audio route answers 404.

Example::

    POST /local/convai/conversations
      {"agent_id": "support",
       "turns": [{"role": "agent", "message": "Hi!", "time_in_call_secs": 0}]}
    -> {"conversation_id": "conv_..."}
    GET /v1/convai/conversations?agent_id=support&page_size=10
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..state import new_id
from ..wire import api_error
from ._common import engine_state

__all__ = ["ConversationIn", "TurnIn", "router"]

router = APIRouter(tags=["conversational-ai"])

_LATEST_UNIX = 2**40  # bounds every time SQLite stores or compares (its integers are 64-bit)

Outcome = Literal["success", "failure", "unknown"]


class TurnIn(BaseModel):
    """One turn of a recorded call; ``message`` is null for a turn that only called tools."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "agent"]
    message: str | None = Field(default=None, max_length=20_000)
    time_in_call_secs: int = Field(ge=0, le=10**7)
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_results: list[dict[str, Any]] = Field(default_factory=list)


class ConversationIn(BaseModel):
    """A finished call to record: who answered, when, what was said, how it went."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    agent_name: str | None = Field(default=None, max_length=200)
    start_time_unix_secs: int | None = Field(default=None, ge=0, le=_LATEST_UNIX)
    call_successful: Outcome = "success"
    transcript_summary: str | None = Field(default=None, max_length=20_000)
    call_summary_title: str | None = Field(default=None, max_length=200)
    main_language: str | None = Field(default=None, max_length=16)
    turns: list[TurnIn] = Field(min_length=1, max_length=5_000)


@router.post("/local/convai/conversations", summary="Record a conversation (engine extension)")
async def record_conversation(request: Request, body: ConversationIn) -> dict[str, str]:
    """Stores a finished call; it is then served by the ``/v1/convai/conversations`` routes."""
    conversation_id = f"conv_{new_id(24)}"
    turns = sorted(body.turns, key=lambda turn: turn.time_in_call_secs)
    duration = turns[-1].time_in_call_secs if turns else 0
    start = body.start_time_unix_secs if body.start_time_unix_secs is not None else int(time.time())
    document: dict[str, Any] = {
        "agent_id": body.agent_id,
        "agent_name": body.agent_name,
        "conversation_id": conversation_id,
        "status": "done",
        "user_id": None,
        "metadata": {
            "start_time_unix_secs": start,
            "call_duration_secs": duration,
            "main_language": body.main_language,
            "termination_reason": "",
        },
        "analysis": {
            "call_successful": body.call_successful,
            "transcript_summary": body.transcript_summary or "",
            "call_summary_title": body.call_summary_title,
            "evaluation_criteria_results": {},
            "data_collection_results": {},
        },
        "has_audio": False,
        "has_user_audio": False,
        "has_response_audio": False,
        "has_auxiliary_audio": False,
        "transcript": [turn.model_dump() for turn in turns],
    }
    engine_state(request).save_conversation(document)
    return {"conversation_id": conversation_id}


@router.get("/v1/convai/conversations", summary="List conversations")
async def list_conversations(
    request: Request,
    cursor: str | None = None,
    page_size: int = Query(default=30, ge=1, le=100),
    agent_id: str | None = None,
    call_successful: Outcome | None = None,
    call_start_before_unix: int | None = Query(default=None, ge=0, le=_LATEST_UNIX),
    call_start_after_unix: int | None = Query(default=None, ge=0, le=_LATEST_UNIX),
    sort_direction: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """A page of conversation summaries; ``next_cursor`` continues while ``has_more``."""
    offset = _offset_of(cursor)
    documents, more = engine_state(request).list_conversations(
        agent_id=agent_id,
        after_unix=call_start_after_unix,
        before_unix=call_start_before_unix,
        call_successful=call_successful,
        newest_first=sort_direction == "desc",
        offset=offset,
        limit=page_size,
    )
    return {
        "conversations": [_summary(document) for document in documents],
        "next_cursor": str(offset + len(documents)) if more else None,
        "has_more": more,
    }


@router.get("/v1/convai/conversations/{conversation_id}", summary="Get a conversation")
async def get_conversation(request: Request, conversation_id: str) -> dict[str, Any]:
    """The conversation's metadata, analysis and transcript."""
    return _found(request, conversation_id)


@router.get("/v1/convai/conversations/{conversation_id}/audio", summary="Conversation audio")
async def get_conversation_audio(request: Request, conversation_id: str) -> None:
    """Recorded conversations carry no audio here: always a 404 after the existence check."""
    _found(request, conversation_id)
    raise api_error(
        404,
        "audio_not_found",
        f"The conversation {conversation_id} has no audio: the local engine records "
        "transcripts only.",
    )


@router.delete("/v1/convai/conversations/{conversation_id}", summary="Delete a conversation")
async def delete_conversation(request: Request, conversation_id: str) -> dict[str, str]:
    """Deletes the conversation; an unknown id is a 404."""
    _found(request, conversation_id)
    engine_state(request).delete_conversation(conversation_id)
    return {"status": "ok"}


def _found(request: Request, conversation_id: str) -> dict[str, Any]:
    document = engine_state(request).get_conversation(conversation_id)
    if document is None:
        raise api_error(
            404,
            "conversation_not_found",
            f"A conversation with the conversation_id {conversation_id} was not found.",
            param="conversation_id",
        )
    return document


def _offset_of(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 12:
        raise api_error(
            422,
            "invalid_parameters",
            "cursor must be a next_cursor value returned by a previous page",
            param="cursor",
        )
    return int(cursor)


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    turns = document["transcript"]
    return {
        "agent_id": document["agent_id"],
        "agent_name": document.get("agent_name"),
        "conversation_id": document["conversation_id"],
        "start_time_unix_secs": document["metadata"]["start_time_unix_secs"],
        "call_duration_secs": document["metadata"]["call_duration_secs"],
        "message_count": len(turns),
        "user_message_count": sum(1 for turn in turns if turn["role"] == "user"),
        "agent_message_count": sum(1 for turn in turns if turn["role"] == "agent"),
        "status": document["status"],
        "call_successful": document["analysis"]["call_successful"],
        "transcript_summary": document["analysis"]["transcript_summary"],
        "call_summary_title": document["analysis"]["call_summary_title"],
        "main_language": document["metadata"]["main_language"],
        "direction": None,
    }
