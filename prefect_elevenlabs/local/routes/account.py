"""Models, user, subscription and speech history routes.

``/v1/user/subscription`` reports the calling key's usage: ``character_count`` is what the
engine billed to that key, ``character_limit`` the configured per-key quota (or the
configured ``character_limit`` when there is no quota).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from ..models import catalogue
from ..state import HistoryItem
from ..wire import RequestContext, api_error, authenticate
from ._common import engine_config, engine_state, run_blocking

__all__ = ["router"]

router = APIRouter(tags=["account"])

# The engine has no real signup date; report a fixed, plausible one.
_CREATED_AT = 1_700_000_000


@router.get("/v1/models", summary="List models")
async def list_models() -> list[dict[str, Any]]:
    """The model catalogue: a bare JSON list, as the real API returns."""
    return catalogue()


def _subscription(request: Request, context: RequestContext) -> dict[str, Any]:
    config = engine_config(request)
    state = engine_state(request)
    limit = config.character_quota if config.character_quota is not None else config.character_limit
    return {
        "tier": "local",
        "character_count": state.characters_used(context.key_id),
        "character_limit": limit,
        "max_character_limit_extension": 0,
        "max_credit_limit_extension": 0,
        "can_extend_character_limit": False,
        "allowed_to_extend_character_limit": False,
        "next_character_count_reset_unix": None,
        "voice_slots_used": state.count_voices(),
        "professional_voice_slots_used": 0,
        "professional_voice_slots_used_in_workspace": 0,
        "voice_limit": 10_000,
        "max_voice_add_edits": None,
        "voice_add_edit_counter": 0,
        "professional_voice_limit": 0,
        "can_extend_voice_limit": False,
        "can_use_instant_voice_cloning": True,
        "can_use_professional_voice_cloning": False,
        "currency": "usd",
        "current_overage": {"amount": "0", "currency": "usd"},
        "status": "active",
        "billing_period": "monthly_period",
        "character_refresh_period": "monthly_period",
        "next_invoice": None,
        "open_invoices": [],
        "has_open_invoices": False,
        "cancels_immediately": False,
        "pending_change": None,
        "has_used_starter_coupon_on_account": False,
        "has_used_creator_coupon_on_account": False,
        "is_eligible_for_starter_promo": False,
    }


@router.get("/v1/user/subscription", summary="Subscription of the calling key")
async def get_subscription(
    request: Request, context: Annotated[RequestContext, Depends(authenticate)]
) -> dict[str, Any]:
    """Tier ``local``, status ``active``, and this key's character usage and limit."""
    return _subscription(request, context)


@router.get("/v1/user", summary="User of the calling key")
async def get_user(
    request: Request, context: Annotated[RequestContext, Depends(authenticate)]
) -> dict[str, Any]:
    """A local user record with its subscription."""
    key = context.api_key
    return {
        "user_id": f"local-{context.key_id}",
        "workspace_id": "local-workspace",
        "subscription": _subscription(request, context),
        "is_new_user": False,
        "can_use_delayed_payment_methods": False,
        "is_onboarding_completed": True,
        "is_onboarding_checklist_completed": True,
        "show_compliance_terms": False,
        "first_name": "Local",
        "is_api_key_hashed": True,
        # Like the real API: only a masked hint of the key, never the key itself.
        "xi_api_key_preview": f"****{key[-4:]}" if key and len(key) >= 8 else None,
        "referral_link_code": None,
        "partnerstack_partner_default_link": None,
        "created_at": _CREATED_AT,
        "seat_type": "workspace_admin",
    }


def history_item_to_api(item: HistoryItem) -> dict[str, Any]:
    """The API's history item object."""
    return {
        "history_item_id": item.history_item_id,
        "request_id": item.request_id,
        "voice_id": item.voice_id,
        "model_id": item.model_id,
        "voice_name": item.voice_name,
        "voice_category": item.voice_category,
        "text": item.text,
        "date_unix": item.date_unix,
        "character_count_change_from": item.character_count_change_from,
        "character_count_change_to": item.character_count_change_to,
        "content_type": item.content_type,
        "state": "created",
        "settings": item.settings,
        "share_link_id": None,
        "source": item.source,
        "alignments": None,
        "dialogue": None,
        "output_format": item.output_format,
    }


def _history_not_found(history_item_id: str) -> Exception:
    return api_error(
        404,
        "history_item_not_found",
        f"A history item with the id {history_item_id} was not found.",
        param="history_item_id",
    )


@router.get("/v1/history", summary="List generated audio")
async def list_history(
    request: Request,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    start_after_history_item_id: str | None = None,
    voice_id: str | None = None,
    model_id: str | None = None,
    date_before_unix: int | None = None,
    date_after_unix: int | None = None,
    sort_direction: Literal["asc", "desc"] = "desc",
    search: str | None = None,
    source: Literal["TTS", "STS", "Flows"] | None = None,
) -> dict[str, Any]:
    """A page of history, newest first by default; continue with ``last_history_item_id``."""
    state = engine_state(request)
    try:
        items, has_more = await run_blocking(
            state.list_history,
            page_size=page_size,
            start_after=start_after_history_item_id,
            voice_id=voice_id,
            model_id=model_id,
            date_before_unix=date_before_unix,
            date_after_unix=date_after_unix,
            sort_direction=sort_direction,
            search=search,
            source=source,
        )
    except KeyError:
        raise api_error(
            400,
            "invalid_parameters",
            f"start_after_history_item_id {start_after_history_item_id!r} is not a history "
            "item id; pass the last_history_item_id of the previous page.",
            param="start_after_history_item_id",
        ) from None
    return {
        "history": [history_item_to_api(item) for item in items],
        "last_history_item_id": items[-1].history_item_id if items else None,
        "has_more": has_more,
        "scanned_until": items[-1].date_unix if items else int(time.time()),
    }


@router.get("/v1/history/{history_item_id}", summary="Get a history item")
async def get_history_item(request: Request, history_item_id: str) -> dict[str, Any]:
    """One history item (404 ``history_item_not_found`` when unknown)."""
    item = engine_state(request).get_history(history_item_id)
    if item is None:
        raise _history_not_found(history_item_id)
    return history_item_to_api(item)


@router.get("/v1/history/{history_item_id}/audio", summary="Audio of a history item")
async def get_history_audio(request: Request, history_item_id: str) -> FileResponse:
    """The stored audio, with the content type it was generated in."""
    state = engine_state(request)
    item = state.get_history(history_item_id)
    if item is None:
        raise _history_not_found(history_item_id)
    path = state.safe_path("history", history_item_id)
    if not path.exists():
        raise api_error(
            404,
            "history_audio_not_found",
            f"The audio of history item {history_item_id} is no longer stored.",
            param="history_item_id",
        )
    return FileResponse(path, media_type=item.content_type)


@router.delete("/v1/history/{history_item_id}", summary="Delete a history item")
async def delete_history_item(request: Request, history_item_id: str) -> dict[str, str]:
    """Delete the item and its audio: ``{"status": "ok"}``."""
    deleted = await run_blocking(engine_state(request).delete_history, history_item_id)
    if not deleted:
        raise _history_not_found(history_item_id)
    return {"status": "ok"}
