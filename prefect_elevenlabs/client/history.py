"""Generation history: list past generations, fetch their audio, delete them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from ._common import Destination, Resource, invalid, parse, segment
from ._streams import AudioStream, download_audio
from .models import AudioDownload, HistoryItem, HistoryPage, StatusResponse


class History(Resource):
    """``/v1/history``: past text-to-speech and speech-to-speech generations.

    Example:
        ```python
        async for item in client.history.iter_all(voice_id="21m00Tcm4TlvDq8ikWAM"):
            await client.history.get_audio(item.history_item_id, dest=f"{item.history_item_id}.mp3")
        ```
    """

    async def list(
        self,
        *,
        page_size: int | None = None,
        start_after_history_item_id: str | None = None,
        voice_id: str | None = None,
        model_id: str | None = None,
        date_before_unix: int | None = None,
        date_after_unix: int | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        search: str | None = None,
        source: Literal["TTS", "STS", "Flows"] | None = None,
    ) -> HistoryPage:
        """One page of history; pass ``last_history_item_id`` as ``start_after_history_item_id``."""
        if page_size is not None and not 1 <= page_size <= 1000:
            raise invalid(f"page_size must be 1-1000, got {page_size}", param="page_size")
        data, meta = await self._transport.request_json(
            "GET",
            "/v1/history",
            params={
                "page_size": page_size,
                "start_after_history_item_id": start_after_history_item_id,
                "voice_id": voice_id,
                "model_id": model_id,
                "date_before_unix": date_before_unix,
                "date_after_unix": date_after_unix,
                "sort_direction": sort_direction,
                "search": search,
                "source": source,
            },
            endpoint="GET /v1/history",
        )
        return parse(HistoryPage, data, meta)

    async def iter_all(
        self,
        *,
        page_size: int | None = None,
        voice_id: str | None = None,
        model_id: str | None = None,
        date_before_unix: int | None = None,
        date_after_unix: int | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        search: str | None = None,
        source: Literal["TTS", "STS", "Flows"] | None = None,
    ) -> AsyncIterator[HistoryItem]:
        """Every history item matching the filters, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(
                page_size=page_size,
                start_after_history_item_id=cursor,
                voice_id=voice_id,
                model_id=model_id,
                date_before_unix=date_before_unix,
                date_after_unix=date_after_unix,
                sort_direction=sort_direction,
                search=search,
                source=source,
            )
            for item in page.history:
                yield item
            last = page.last_history_item_id
            if not page.has_more or not last or last == cursor:
                return
            cursor = last

    async def get(self, history_item_id: str) -> HistoryItem:
        """One history item."""
        data, meta = await self._transport.request_json(
            "GET",
            f"/v1/history/{segment(history_item_id, 'history_item_id')}",
            endpoint="GET /v1/history/{history_item_id}",
        )
        return parse(HistoryItem, data, meta)

    async def get_audio(self, history_item_id: str, dest: Destination) -> AudioDownload:
        """Downloads the audio of one history item to ``dest``."""
        return await download_audio(
            self._transport,
            "GET",
            f"/v1/history/{segment(history_item_id, 'history_item_id')}/audio",
            dest,
            endpoint="GET /v1/history/{history_item_id}/audio",
        )

    def iter_audio(self, history_item_id: str) -> AudioStream:
        """The audio of one history item as a stream of chunks."""
        return AudioStream(
            self._transport,
            "GET",
            f"/v1/history/{segment(history_item_id, 'history_item_id')}/audio",
            endpoint="GET /v1/history/{history_item_id}/audio",
        )

    async def delete(self, history_item_id: str) -> StatusResponse:
        """Deletes one history item."""
        data, meta = await self._transport.request_json(
            "DELETE",
            f"/v1/history/{segment(history_item_id, 'history_item_id')}",
            endpoint="DELETE /v1/history/{history_item_id}",
        )
        return parse(StatusResponse, data or {}, meta)
