"""Conversational-agent conversations: the transcript-export routes of ``/v1/convai``.

The engine runs no live agents, so conversations enter through its own extension route
``POST /local/convai/conversations`` (the agent, the turns, the outcome); from then on they are
served as the API serves them:

- ``GET /v1/convai/conversations``: summaries, newest first by default, with cursor pagination
  and the filters exporters use (agent, user, start-time window, duration, outcome, text search);
- ``GET /v1/convai/conversations/{id}``: metadata, analysis and transcript turns (a turn that
  only called tools carries ``message: null``);
- ``GET /v1/convai/conversations/{id}/audio``: the call as mp3, spoken by the engine's own TTS
  (agent turns in one premade voice, user turns in another), each turn starting at its
  ``time_in_call_secs``; rendered on first request and kept under the data dir;
- ``DELETE /v1/convai/conversations/{id}`` and ``POST /v1/convai/conversations/{id}/feedback``
  (``{"feedback": "like" | "dislike"}``).

Unknown ids answer 404 ``conversation_not_found`` in the API's error shape.

Example::

    POST /local/convai/conversations
      {"agent_id": "support",
       "turns": [{"role": "agent", "message": "Hi!", "time_in_call_secs": 0},
                 {"role": "user", "message": "Hello.", "time_in_call_secs": 2}]}
    -> {"conversation_id": "conv_..."}
    GET /v1/convai/conversations?agent_id=support&page_size=10
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import time
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..state import CONVERSATION_AUDIO, EngineState, InvalidIdError, new_id, validate_id
from ..wire import ApiError, api_error
from ._common import engine_state, run_blocking

__all__ = [
    "AGENT_VOICE_ID",
    "USER_VOICE_ID",
    "ConversationIn",
    "FeedbackIn",
    "ToolCallIn",
    "TurnIn",
    "router",
]

router = APIRouter(tags=["conversational-ai"])

AGENT_VOICE_ID = "cjVigY5qzO86Huf0OWal"
"""Eric, the voice new ElevenLabs agents speak with: the agent's turns in call audio."""

USER_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"
"""Rachel: the caller's turns in call audio, a voice clearly unlike the agent's."""

_LATEST_UNIX = 2**40  # bounds every time SQLite stores or compares (its integers are 64-bit)
# Call audio covers the whole call, silences included, so the length of a call bounds the
# work (and disk) one audio request can cost; four hours is beyond any real agent call.
_LONGEST_CALL_SECS = 4 * 3600
_AUDIO_FORMAT = "mp3_44100_128"
_MIX_CHUNK_SECS = 1.0
_READ_CHUNK_BYTES = 64 * 1024

Outcome = Literal["success", "failure", "unknown"]
FloatArray = npt.NDArray[np.float32]


# -- request bodies -------------------------------------------------------------------------


class ToolCallIn(BaseModel):
    """A tool the agent called during a turn; further fields of the API's shape pass through."""

    model_config = ConfigDict(extra="allow")

    tool_name: str = Field(min_length=1, max_length=200)
    request_id: str | None = Field(default=None, max_length=200)
    params_as_json: str = Field(default="{}", max_length=100_000)
    tool_has_been_called: bool = True


class TurnIn(BaseModel):
    """One turn of a recorded call; ``message`` is null for a turn that only called tools."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "agent"]
    message: str | None = Field(default=None, max_length=20_000)
    time_in_call_secs: int = Field(ge=0, le=_LONGEST_CALL_SECS)
    tool_calls: list[ToolCallIn] = Field(default_factory=list, max_length=100)
    tool_results: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    interrupted: bool = False


class ConversationIn(BaseModel):
    """A finished call to record: who answered, when, what was said, how it went.

    ``start_time_unix_secs`` defaults to now and ``call_duration_secs`` to the time of the last
    turn; the turns may come in any order and are stored in call order.
    """

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    agent_name: str | None = Field(default=None, max_length=200)
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    start_time_unix_secs: int | None = Field(default=None, ge=0, le=_LATEST_UNIX)
    call_duration_secs: int | None = Field(default=None, ge=0, le=_LONGEST_CALL_SECS)
    call_successful: Outcome = "success"
    transcript_summary: str | None = Field(default=None, max_length=20_000)
    call_summary_title: str | None = Field(default=None, max_length=200)
    main_language: str | None = Field(default=None, max_length=16)
    termination_reason: str | None = Field(default=None, max_length=500)
    turns: list[TurnIn] = Field(min_length=1, max_length=5_000)

    @model_validator(mode="after")
    def _duration_covers_turns(self) -> ConversationIn:
        last = max(turn.time_in_call_secs for turn in self.turns)
        if self.call_duration_secs is not None and self.call_duration_secs < last:
            raise ValueError(
                f"call_duration_secs ({self.call_duration_secs}) is shorter than the call: "
                f"a turn starts at {last} s"
            )
        return self


class FeedbackIn(BaseModel):
    """``{"feedback": "like" | "dislike"}``; null (or nothing) withdraws the feedback."""

    model_config = ConfigDict(extra="ignore")

    feedback: Literal["like", "dislike"] | None = None


# -- routes ---------------------------------------------------------------------------------


@router.post("/local/convai/conversations", summary="Record a conversation (engine extension)")
async def record_conversation(request: Request, body: ConversationIn) -> dict[str, str]:
    """Stores a finished call; it is then served by the ``/v1/convai/conversations`` routes."""
    document = _new_document(body, conversation_id=f"conv_{new_id(24)}")
    await run_blocking(engine_state(request).save_conversation, document)
    return {"conversation_id": document["conversation_id"]}


@router.get("/v1/convai/conversations", summary="List conversations")
async def list_conversations(
    request: Request,
    cursor: str | None = Query(default=None, max_length=400),
    page_size: int = Query(default=30, ge=1, le=100),
    agent_id: str | None = None,
    user_id: str | None = None,
    call_successful: Outcome | None = None,
    call_start_before_unix: int | None = Query(default=None, ge=0, le=_LATEST_UNIX),
    call_start_after_unix: int | None = Query(default=None, ge=0, le=_LATEST_UNIX),
    call_duration_min_secs: int | None = Query(default=None, ge=0, le=_LATEST_UNIX),
    call_duration_max_secs: int | None = Query(default=None, ge=0, le=_LATEST_UNIX),
    search: str | None = Query(default=None, max_length=1000),
    sort_direction: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """A page of conversation summaries; ``next_cursor`` continues while ``has_more``."""
    documents, more = await run_blocking(
        engine_state(request).list_conversations,
        agent_id=agent_id,
        user_id=user_id,
        after_unix=call_start_after_unix,
        before_unix=call_start_before_unix,
        min_duration_secs=call_duration_min_secs,
        max_duration_secs=call_duration_max_secs,
        call_successful=call_successful,
        search=search or None,
        newest_first=sort_direction == "desc",
        start_after=_position_of(cursor),
        limit=page_size,
    )
    return {
        "conversations": [_summary(document) for document in documents],
        "next_cursor": _cursor_after(documents[-1]) if more and documents else None,
        "has_more": more,
    }


@router.get("/v1/convai/conversations/{conversation_id}", summary="Get a conversation")
async def get_conversation(request: Request, conversation_id: str) -> dict[str, Any]:
    """The conversation's metadata, analysis and transcript."""
    return _detail(await _found(request, conversation_id))


@router.get("/v1/convai/conversations/{conversation_id}/audio", summary="Conversation audio")
async def get_conversation_audio(request: Request, conversation_id: str) -> StreamingResponse:
    """The call as mp3: every spoken turn at its time in the call, silence between."""
    document = await _found(request, conversation_id)
    if not _spoken(document):
        raise api_error(
            404,
            "audio_not_found",
            f"The conversation {conversation_id} has no spoken turns, so it has no audio.",
            param="conversation_id",
        )
    state = engine_state(request)
    handle = await run_blocking(_open_audio, state, conversation_id)
    if handle is None:
        # One render per conversation at a time: a client retrying a slow first request
        # must not start a second render on the same cores.
        async with _render_lock(request, conversation_id):
            handle = await run_blocking(_open_audio, state, conversation_id)
            if handle is None:
                await run_blocking(_render_call_audio, state, document)
                handle = await run_blocking(_open_audio, state, conversation_id)
    if handle is None or await run_blocking(state.get_conversation, conversation_id) is None:
        # Deleted while rendering: drop what was rendered and answer as for any unknown id.
        if handle is not None:
            handle.close()
        await run_blocking(state.delete_file, CONVERSATION_AUDIO, conversation_id)
        raise _not_found(conversation_id)
    size = os.fstat(handle.fileno()).st_size
    # Streaming from the open handle (not the path) keeps the download whole even if the
    # conversation is deleted meanwhile: the unlinked file stays readable until closed.
    return StreamingResponse(
        _file_chunks(handle),
        media_type="audio/mpeg",
        headers={"content-length": str(size)},
    )


@router.delete("/v1/convai/conversations/{conversation_id}", summary="Delete a conversation")
async def delete_conversation(request: Request, conversation_id: str) -> dict[str, str]:
    """Deletes the conversation and its audio; an unknown id is a 404."""
    if not await run_blocking(engine_state(request).delete_conversation, conversation_id):
        raise _not_found(conversation_id)
    return {"status": "ok"}


@router.post(
    "/v1/convai/conversations/{conversation_id}/feedback", summary="Send conversation feedback"
)
async def send_feedback(request: Request, conversation_id: str, body: FeedbackIn) -> dict[str, Any]:
    """Records a like or dislike (shown in ``metadata.feedback``); null withdraws it."""

    def apply(document: dict[str, Any]) -> None:
        document["metadata"]["feedback"] = _feedback(body.feedback)

    updated = await run_blocking(engine_state(request).update_conversation, conversation_id, apply)
    if updated is None:
        raise _not_found(conversation_id)
    return {}


# -- documents ------------------------------------------------------------------------------


def _new_document(body: ConversationIn, *, conversation_id: str) -> dict[str, Any]:
    # A stable sort: turns at the same second keep the order they were given in.
    turns = sorted(body.turns, key=lambda turn: turn.time_in_call_secs)
    start = body.start_time_unix_secs if body.start_time_unix_secs is not None else int(time.time())
    duration = body.call_duration_secs
    if duration is None:
        duration = turns[-1].time_in_call_secs
    return {
        "agent_id": body.agent_id,
        "agent_name": body.agent_name,
        "conversation_id": conversation_id,
        "status": "done",
        "user_id": body.user_id,
        "metadata": {
            "start_time_unix_secs": start,
            "call_duration_secs": duration,
            "main_language": body.main_language,
            "termination_reason": body.termination_reason or "",
            "feedback": _feedback(None),
            "error": None,
            "phone_call": None,
            "text_only": False,
        },
        "analysis": {
            "call_successful": body.call_successful,
            "transcript_summary": body.transcript_summary or "",
            "call_summary_title": body.call_summary_title,
            "evaluation_criteria_results": {},
            "data_collection_results": {},
        },
        "transcript": [_turn(turn, agent_id=body.agent_id) for turn in turns],
    }


def _turn(turn: TurnIn, *, agent_id: str) -> dict[str, Any]:
    tool_calls = []
    for call in turn.tool_calls:
        shaped = call.model_dump()
        shaped["request_id"] = call.request_id or f"toolu_{new_id(20)}"
        tool_calls.append(shaped)
    return {
        "role": turn.role,
        "agent_metadata": {"agent_id": agent_id} if turn.role == "agent" else None,
        "message": turn.message,
        "tool_calls": tool_calls,
        "tool_results": turn.tool_results,
        "feedback": None,
        "time_in_call_secs": turn.time_in_call_secs,
        "interrupted": turn.interrupted,
        "original_message": None,
        "source_medium": "audio" if turn.message is not None else None,
    }


def _feedback(score: str | None) -> dict[str, Any]:
    return {
        "type": "thumbs" if score else None,
        "overall_score": score,
        "likes": int(score == "like"),
        "dislikes": int(score == "dislike"),
        "rating": None,
        "comment": None,
    }


def _spoken(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The turns with something said, in call order (the API counts only these as messages)."""
    return [turn for turn in document["transcript"] if turn.get("message") is not None]


def _counts(document: dict[str, Any]) -> dict[str, int]:
    spoken = _spoken(document)
    return {
        "message_count": len(spoken),
        "user_message_count": sum(1 for turn in spoken if turn["role"] == "user"),
        "agent_message_count": sum(1 for turn in spoken if turn["role"] == "agent"),
    }


def _detail(document: dict[str, Any]) -> dict[str, Any]:
    # Counts and audio flags are derived on every read, so conversations stored by earlier
    # engine versions (which kept no audio flags) answer in the current shape too.
    counts = _counts(document)
    spoken_roles = {turn["role"] for turn in _spoken(document)}
    detail = dict(document)
    detail["metadata"] = {"feedback": _feedback(None), **document["metadata"]}
    detail.update(
        user_message_count=counts["user_message_count"],
        agent_message_count=counts["agent_message_count"],
        has_audio=bool(spoken_roles),
        has_user_audio="user" in spoken_roles,
        has_response_audio="agent" in spoken_roles,
        has_auxiliary_audio=False,
        tag_ids=document.get("tag_ids", []),
    )
    return detail


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    metadata = document["metadata"]
    analysis = document["analysis"]
    tool_names = sorted(
        {
            call["tool_name"]
            for turn in document["transcript"]
            for call in turn.get("tool_calls") or []
        }
    )
    return {
        "agent_id": document["agent_id"],
        "agent_name": document.get("agent_name"),
        "conversation_id": document["conversation_id"],
        "start_time_unix_secs": metadata["start_time_unix_secs"],
        "call_duration_secs": metadata["call_duration_secs"],
        **_counts(document),
        "status": document["status"],
        "termination_reason": metadata.get("termination_reason"),
        "call_successful": analysis["call_successful"],
        "transcript_summary": analysis["transcript_summary"],
        "call_summary_title": analysis["call_summary_title"],
        "main_language": metadata.get("main_language"),
        "tool_names": tool_names,
        "direction": None,
        "rating": None,
        "tag_ids": document.get("tag_ids", []),
    }


def _not_found(conversation_id: str) -> ApiError:
    return api_error(
        404,
        "conversation_not_found",
        f"A conversation with the conversation_id {conversation_id} was not found.",
        param="conversation_id",
    )


async def _found(request: Request, conversation_id: str) -> dict[str, Any]:
    document = await run_blocking(engine_state(request).get_conversation, conversation_id)
    if document is None:
        raise _not_found(conversation_id)
    return document


# -- cursors --------------------------------------------------------------------------------


def _cursor_after(document: dict[str, Any]) -> str:
    """An opaque cursor naming the position just after ``document`` in the listing order."""
    position = [document["metadata"]["start_time_unix_secs"], document["conversation_id"]]
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _position_of(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start, conversation_id = json.loads(raw)
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= _LATEST_UNIX:
            raise ValueError(start)
        return start, validate_id(conversation_id, what="conversation_id")
    except (binascii.Error, InvalidIdError, TypeError, ValueError) as exc:
        raise api_error(
            422,
            "invalid_parameters",
            "cursor must be a next_cursor value returned by a previous page",
            param="cursor",
        ) from exc


# -- call audio -----------------------------------------------------------------------------

_RENDER_LOCKS: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def _render_lock(request: Request, conversation_id: str) -> asyncio.Lock:
    # Keyed by app as well: each engine in a process runs its own event loop, and a lock
    # must only ever be awaited on one loop.
    key = (id(request.app), conversation_id)
    lock = _RENDER_LOCKS.get(key)
    if lock is None:
        lock = asyncio.Lock()
        _RENDER_LOCKS[key] = lock
    return lock


def _open_audio(state: EngineState, conversation_id: str) -> IO[bytes] | None:
    try:
        return state.safe_path(CONVERSATION_AUDIO, conversation_id).open("rb")
    except FileNotFoundError:
        return None


def _file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_READ_CHUNK_BYTES):
            yield chunk


def _render_call_audio(state: EngineState, document: dict[str, Any]) -> Path:
    """Blocking: speak every turn, mix them on the call's timeline, store the mp3."""
    from ..audio import iter_encode, parse_output_format
    from ..engines.tts import SAMPLE_RATE, UnsupportedLanguageError, resolve_language, synthesize
    from ..engines.voices import premade_voice

    voices = {}
    for role, voice_id in (("agent", AGENT_VOICE_ID), ("user", USER_VOICE_ID)):
        voice = premade_voice(voice_id)
        assert voice is not None, f"premade voice {voice_id} is missing from the catalogue"
        voices[role] = voice.profile
    language = document["metadata"].get("main_language")
    try:
        resolve_language(language)
    except UnsupportedLanguageError:
        # The language is metadata of a recorded call, not a request to speak it: the
        # transcript stays the record, and the audio falls back to the English voice.
        language = None

    def placed() -> Iterator[tuple[int, FloatArray]]:
        for turn in _spoken(document):
            try:
                speech = synthesize(
                    turn["message"], profile=voices[turn["role"]], language=language
                )
            except ValueError:
                continue  # nothing speakable (blank text): the turn stays silent
            offset = int(turn["time_in_call_secs"]) * SAMPLE_RATE
            yield offset, np.asarray(speech.samples, dtype=np.float32)

    total = int(document["metadata"]["call_duration_secs"]) * SAMPLE_RATE
    chunks = _mixdown(placed(), total=total, chunk=int(_MIX_CHUNK_SECS * SAMPLE_RATE))
    encoded = iter_encode(chunks, SAMPLE_RATE, parse_output_format(_AUDIO_FORMAT))
    return state.write_file_stream(CONVERSATION_AUDIO, document["conversation_id"], encoded)


def _mixdown(
    clips: Iterable[tuple[int, FloatArray]], *, total: int, chunk: int
) -> Iterator[FloatArray]:
    """Sum clips placed at sample offsets (ascending) into one track, yielded in order.

    Clips that overlap (a caller talking over the agent) are added together. Only the part
    of the track a later clip can still reach is held in memory, so a long call costs no
    more memory than its longest turn. The track lasts at least ``total`` samples.
    """
    emitted = 0
    pending = np.zeros(0, dtype=np.float32)  # the track from ``emitted`` on, summed so far

    def advance(to: int) -> Iterator[FloatArray]:
        nonlocal emitted, pending
        while emitted < to:
            size = min(to - emitted, chunk)
            piece = np.zeros(size, dtype=np.float32)
            taken = min(size, len(pending))
            piece[:taken] = pending[:taken]
            pending = pending[taken:]
            emitted += size
            yield np.clip(piece, -1.0, 1.0)

    for offset, clip in clips:
        if offset < emitted:
            raise ValueError("clips must come in ascending order of offset")
        yield from advance(offset)
        if len(clip) > len(pending):
            pending = np.concatenate([pending, np.zeros(len(clip) - len(pending), np.float32)])
        pending[: len(clip)] += clip
    yield from advance(max(total, emitted + len(pending)))
