"""Conversational AI (agents): list conversations, read transcripts, fetch call audio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from ._common import Destination, Resource, as_list, invalid, parse, segment
from ._streams import AudioStream, download_audio
from .models import (
    AudioDownload,
    Conversation,
    ConversationsPage,
    ConversationSummary,
    StatusResponse,
)

StrOrList = str | Sequence[str] | None


class Conversations(Resource):
    """``/v1/convai/conversations``: what agents said and heard.

    Example:
        ```python
        async for summary in client.conversations.iter_all(agent_id="agent_123"):
            conversation = await client.conversations.get(summary.conversation_id)
            for turn in conversation.messages():
                print(turn.role, turn.message)
        ```
    """

    async def list(
        self,
        *,
        cursor: str | None = None,
        page_size: int | None = None,
        agent_id: str | None = None,
        call_start_before_unix: int | None = None,
        call_start_after_unix: int | None = None,
        call_duration_min_secs: int | None = None,
        call_duration_max_secs: int | None = None,
        call_successful: Literal["success", "failure", "unknown"] | None = None,
        user_id: str | None = None,
        search: str | None = None,
        summary_mode: Literal["exclude", "include"] | None = None,
        main_languages: StrOrList = None,
        tool_names: StrOrList = None,
        tag_ids: StrOrList = None,
        exclude_statuses: StrOrList = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        branch_id: str | None = None,
        version_id: str | None = None,
        extra_params: dict[str, Any] | None = None,
    ) -> ConversationsPage:
        """One page of conversations; pass ``next_cursor`` back as ``cursor``.

        ``extra_params`` passes any further filter the API offers (data-collection, evaluation
        and dynamic-variable filters) as query parameters.
        """
        if page_size is not None and not 1 <= page_size <= 100:
            raise invalid(f"page_size must be 1-100, got {page_size}", param="page_size")
        params: dict[str, Any] = dict(extra_params or {})
        params.update(
            {
                "cursor": cursor,
                "page_size": page_size,
                "agent_id": agent_id,
                "call_start_before_unix": call_start_before_unix,
                "call_start_after_unix": call_start_after_unix,
                "call_duration_min_secs": call_duration_min_secs,
                "call_duration_max_secs": call_duration_max_secs,
                "call_successful": call_successful,
                "user_id": user_id,
                "search": search,
                "summary_mode": summary_mode,
                "main_languages": as_list(main_languages),
                "tool_names": as_list(tool_names),
                "tag_ids": as_list(tag_ids),
                "exclude_statuses": as_list(exclude_statuses),
                "sort_direction": sort_direction,
                "branch_id": branch_id,
                "version_id": version_id,
            }
        )
        data, meta = await self._transport.request_json(
            "GET",
            "/v1/convai/conversations",
            params=params,
            endpoint="GET /v1/convai/conversations",
        )
        return parse(ConversationsPage, data, meta)

    async def iter_all(self, **filters: Any) -> AsyncIterator[ConversationSummary]:
        """Every conversation matching the :meth:`list` filters, following ``next_cursor``."""
        if "cursor" in filters:
            raise invalid("iter_all pages by itself: do not pass cursor")
        cursor: str | None = None
        while True:
            page = await self.list(cursor=cursor, **filters)
            for summary in page.conversations:
                yield summary
            if not page.has_more or not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def get(
        self, conversation_id: str, *, format: Literal["json", "opentelemetry"] | None = None
    ) -> Conversation:
        """One conversation with its full transcript and analysis."""
        data, meta = await self._transport.request_json(
            "GET",
            f"/v1/convai/conversations/{segment(conversation_id, 'conversation_id')}",
            params={"format": format},
            endpoint="GET /v1/convai/conversations/{conversation_id}",
        )
        return parse(Conversation, data, meta)

    async def get_audio(self, conversation_id: str, dest: Destination) -> AudioDownload:
        """Downloads the recording of a conversation to ``dest``."""
        return await download_audio(
            self._transport,
            "GET",
            f"/v1/convai/conversations/{segment(conversation_id, 'conversation_id')}/audio",
            dest,
            endpoint="GET /v1/convai/conversations/{conversation_id}/audio",
        )

    def iter_audio(self, conversation_id: str) -> AudioStream:
        """The recording of a conversation as a stream of chunks."""
        return AudioStream(
            self._transport,
            "GET",
            f"/v1/convai/conversations/{segment(conversation_id, 'conversation_id')}/audio",
            endpoint="GET /v1/convai/conversations/{conversation_id}/audio",
        )

    async def send_feedback(
        self, conversation_id: str, feedback: Literal["like", "dislike"] | None
    ) -> None:
        """Rates a conversation ``like`` or ``dislike``; ``None`` withdraws the rating.

        The rating shows in the conversation's ``metadata.feedback`` (``overall_score``).
        """
        if feedback not in ("like", "dislike", None):
            raise invalid(
                f"feedback must be 'like', 'dislike' or None, got {feedback!r}", "feedback"
            )
        await self._transport.request_json(
            "POST",
            f"/v1/convai/conversations/{segment(conversation_id, 'conversation_id')}/feedback",
            json={"feedback": feedback},
            endpoint="POST /v1/convai/conversations/{conversation_id}/feedback",
        )

    async def delete(self, conversation_id: str) -> StatusResponse:
        """Deletes a conversation."""
        data, meta = await self._transport.request_json(
            "DELETE",
            f"/v1/convai/conversations/{segment(conversation_id, 'conversation_id')}",
            endpoint="DELETE /v1/convai/conversations/{conversation_id}",
        )
        return parse(StatusResponse, data or {}, meta)
