"""Voices: search and page the catalogue, clone from samples, edit, tune settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

from ._common import (
    FileInput,
    Resource,
    as_list,
    build,
    file_part,
    form_fields,
    invalid,
    json_text,
    parse,
    segment,
)
from ._transport import Multipart
from .models import StatusResponse, Voice, VoiceCreated, VoiceSettings, VoicesPage

StrOrList = str | Sequence[str] | None


class Voices(Resource):
    """``/v1/voices`` and ``/v2/voices``: the voices an account can use.

    Example:
        ```python
        async for voice in client.voices.iter_all(category="premade"):
            print(voice.voice_id, voice.name, voice.labels.get("accent"))
        ```
    """

    async def search(
        self,
        *,
        next_page_token: str | None = None,
        page_size: int | None = None,
        search: str | None = None,
        sort: Literal["created_at_unix", "name"] | None = None,
        sort_direction: Literal["asc", "desc"] | None = None,
        voice_type: str | None = None,
        category: str | None = None,
        fine_tuning_state: str | None = None,
        collection_id: str | None = None,
        gender: str | None = None,
        age: str | None = None,
        language: StrOrList = None,
        accent: str | None = None,
        use_cases: StrOrList = None,
        min_notice_period_days: int | None = None,
        include_custom_rates: bool | None = None,
        include_live_moderated: bool | None = None,
        high_quality: bool | None = None,
        include_total_count: bool | None = None,
        voice_ids: StrOrList = None,
    ) -> VoicesPage:
        """One page of ``GET /v2/voices``; pass ``next_page_token`` back for the next page."""
        if page_size is not None and not 1 <= page_size <= 100:
            raise invalid(f"page_size must be 1-100, got {page_size}", param="page_size")
        ids = as_list(voice_ids)
        if ids is not None and len(ids) > 100:
            raise invalid(f"voice_ids takes at most 100 ids, got {len(ids)}", param="voice_ids")
        data, meta = await self._transport.request_json(
            "GET",
            "/v2/voices",
            params={
                "next_page_token": next_page_token,
                "page_size": page_size,
                "search": search,
                "sort": sort,
                "sort_direction": sort_direction,
                "voice_type": voice_type,
                "category": category,
                "fine_tuning_state": fine_tuning_state,
                "collection_id": collection_id,
                "gender": gender,
                "age": age,
                "language": as_list(language),
                "accent": accent,
                "use_cases": as_list(use_cases),
                "min_notice_period_days": min_notice_period_days,
                "include_custom_rates": include_custom_rates,
                "include_live_moderated": include_live_moderated,
                "high_quality": high_quality,
                "include_total_count": include_total_count,
                "voice_ids": ids,
            },
            endpoint="GET /v2/voices",
        )
        return parse(VoicesPage, data, meta)

    async def iter_all(self, **filters: Any) -> AsyncIterator[Voice]:
        """Every voice matching the :meth:`search` filters, following ``next_page_token``."""
        if "next_page_token" in filters:
            raise invalid("iter_all pages by itself: do not pass next_page_token")
        token: str | None = None
        while True:
            page = await self.search(next_page_token=token, **filters)
            for voice in page.voices:
                yield voice
            if not page.has_more or not page.next_page_token or page.next_page_token == token:
                return
            token = page.next_page_token

    async def list(self, *, show_legacy: bool | None = None) -> VoicesPage:
        """Every voice in one response (legacy ``GET /v1/voices``; slow for large accounts)."""
        data, meta = await self._transport.request_json(
            "GET", "/v1/voices", params={"show_legacy": show_legacy}, endpoint="GET /v1/voices"
        )
        return parse(VoicesPage, data, meta)

    async def get(self, voice_id: str) -> Voice:
        """One voice by id (raises :class:`NotFoundError` for an unknown id)."""
        data, meta = await self._transport.request_json(
            "GET",
            f"/v1/voices/{segment(voice_id, 'voice_id')}",
            endpoint="GET /v1/voices/{voice_id}",
        )
        return parse(Voice, data, meta)

    async def delete(self, voice_id: str) -> StatusResponse:
        """Deletes a voice from the account."""
        data, meta = await self._transport.request_json(
            "DELETE",
            f"/v1/voices/{segment(voice_id, 'voice_id')}",
            endpoint="DELETE /v1/voices/{voice_id}",
        )
        return parse(StatusResponse, data or {}, meta)

    async def add(
        self,
        name: str,
        files: Sequence[FileInput],
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        remove_background_noise: bool | None = None,
    ) -> VoiceCreated:
        """Creates an instant voice clone from audio samples (paths are streamed from disk).

        ``labels`` (e.g. ``{"accent": "irish", "gender": "female"}``) travel as a JSON string,
        the literal ``null`` when not given, as the API expects.
        """
        if not name or not name.strip():
            raise invalid("name is required for a new voice", param="name")
        if isinstance(files, (str, bytes)) or not files:
            raise invalid("files must be a non-empty list of audio samples", param="files")
        parts = [
            ("files", file_part(f, "files", default_filename=f"sample-{i}"))
            for i, f in enumerate(files)
        ]
        fields = form_fields(
            {
                "name": name,
                "description": description,
                "remove_background_noise": remove_background_noise,
            }
        )
        fields.append(("labels", json_text(dict(labels) if labels is not None else None)))
        data, meta = await self._transport.request_json(
            "POST",
            "/v1/voices/add",
            multipart=Multipart(fields=fields, files=parts),
            endpoint="POST /v1/voices/add",
        )
        return parse(VoiceCreated, data, meta)

    async def edit(
        self,
        voice_id: str,
        *,
        name: str,
        files: Sequence[FileInput] | None = None,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        remove_background_noise: bool | None = None,
    ) -> StatusResponse:
        """Renames a voice, adds samples, or changes its description or labels."""
        if not name or not name.strip():
            raise invalid("name is required when editing a voice", param="name")
        if isinstance(files, (str, bytes)):
            raise invalid("files must be a list of audio samples", param="files")
        parts = [
            ("files", file_part(f, "files", default_filename=f"sample-{i}"))
            for i, f in enumerate(files or [])
        ]
        fields = form_fields(
            {
                "name": name,
                "description": description,
                "remove_background_noise": remove_background_noise,
                "labels": json_text(dict(labels)) if labels is not None else None,
            }
        )
        data, meta = await self._transport.request_json(
            "POST",
            f"/v1/voices/{segment(voice_id, 'voice_id')}/edit",
            multipart=Multipart(fields=fields, files=parts),
            endpoint="POST /v1/voices/{voice_id}/edit",
        )
        return parse(StatusResponse, data or {}, meta)

    async def get_default_settings(self) -> VoiceSettings:
        """The settings voices use when a request does not override them."""
        data, _ = await self._transport.request_json(
            "GET", "/v1/voices/settings/default", endpoint="GET /v1/voices/settings/default"
        )
        return VoiceSettings.from_api(data)

    async def get_settings(self, voice_id: str) -> VoiceSettings:
        """The stored settings of one voice."""
        data, _ = await self._transport.request_json(
            "GET",
            f"/v1/voices/{segment(voice_id, 'voice_id')}/settings",
            endpoint="GET /v1/voices/{voice_id}/settings",
        )
        return VoiceSettings.from_api(data)

    async def edit_settings(
        self, voice_id: str, settings: VoiceSettings | Mapping[str, Any]
    ) -> StatusResponse:
        """Stores new default settings for one voice (ranges checked before sending)."""
        checked = (
            settings if isinstance(settings, VoiceSettings) else build(VoiceSettings, **settings)
        )
        data, meta = await self._transport.request_json(
            "POST",
            f"/v1/voices/{segment(voice_id, 'voice_id')}/settings/edit",
            json=checked.model_dump(mode="json", exclude_none=True),
            endpoint="POST /v1/voices/{voice_id}/settings/edit",
        )
        return parse(StatusResponse, data or {}, meta)
