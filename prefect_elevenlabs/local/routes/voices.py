"""Voice routes: search and list, get, delete, settings, instant cloning and editing.

Premade voices (ElevenLabs' well-known ids) come from the engine's catalogue and cannot be
deleted or edited (their settings can). Cloned voices are derived from the uploaded samples:
the samples are stored under the data dir and their pitch and pace pick the local voice
profile that speaks for the clone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import shutil
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from ..models import TTS_MODELS
from ..state import EngineState, StoredVoice, new_id
from ..wire import api_error
from ._common import (
    DEFAULT_VOICE_SETTINGS,
    VoiceRecord,
    all_voices,
    engine_state,
    lookup_voice,
    run_blocking,
    voice_settings_for,
)
from .tts import VoiceSettingsModel

__all__ = ["router", "voice_to_api"]

router = APIRouter(tags=["voices"])

_SAMPLE_RATE = 16000
_COPY_CHUNK = 1 << 20


def voice_to_api(voice: VoiceRecord, settings: dict[str, Any]) -> dict[str, Any]:
    """The API's ``Voice`` object for a premade, cloned or generated voice."""
    custom = voice.category != "premade"
    return {
        "voice_id": voice.voice_id,
        "name": voice.name,
        "samples": voice.samples if custom else None,
        "category": voice.category,
        "fine_tuning": {
            "is_allowed_to_fine_tune": False,
            "state": {},
            "verification_failures": [],
            "verification_attempts_count": 0,
            "manual_verification_requested": False,
            "language": None,
            "progress": {},
            "message": {},
            "dataset_duration_seconds": None,
            "verification_attempts": None,
            "slice_ids": None,
            "manual_verification": None,
        },
        "labels": voice.labels,
        "description": voice.description,
        "preview_url": None,
        "available_for_tiers": [],
        "settings": settings,
        "sharing": None,
        "high_quality_base_model_ids": list(TTS_MODELS),
        "verified_languages": [],
        "collection_ids": [],
        "safety_control": None,
        "voice_verification": {
            "requires_verification": False,
            "is_verified": False,
            "verification_failures": [],
            "verification_attempts_count": 0,
            "language": None,
            "verification_attempts": None,
        },
        "permission_on_resource": "admin" if custom else None,
        "is_owner": custom,
        "is_legacy": False,
        "is_mixed": False,
        "favorited_at_unix": None,
        "created_at_unix": voice.created_at,
        "is_bookmarked": False,
        "recording_quality": None,
        "labelling_status": None,
    }


def _api_voice(state: EngineState, voice: VoiceRecord) -> dict[str, Any]:
    return voice_to_api(voice, voice_settings_for(state, voice.voice_id))


# -- listing ----------------------------------------------------------------------------------


def _matches_search(voice: VoiceRecord, search: str) -> bool:
    needle = search.casefold()
    haystack = [voice.name, voice.description or "", voice.category, *voice.labels.values()]
    return any(needle in text.casefold() for text in haystack)


def _matches_type(voice: VoiceRecord, voice_type: str | None) -> bool:
    if voice_type in (None, "non-community"):
        return True
    if voice_type == "default":
        return voice.category == "premade"
    if voice_type == "community":
        return False
    # personal, workspace, non-default, saved: the caller's own voices.
    return voice.category != "premade"


def _label_is(voice: VoiceRecord, key: str, wanted: str | None) -> bool:
    return wanted is None or voice.labels.get(key, "").casefold() == wanted.casefold()


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
        if prefix != "offset" or offset < 0:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise api_error(
            400,
            "invalid_parameters",
            "next_page_token is not one this server issued; pass the next_page_token of the "
            "previous page unchanged.",
            param="next_page_token",
        ) from None
    return offset


@router.get("/v2/voices", summary="Search voices")
async def search_voices(
    request: Request,
    next_page_token: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    search: str | None = None,
    sort: Literal["created_at_unix", "name"] | None = None,
    sort_direction: Literal["asc", "desc"] | None = None,
    voice_type: Literal[
        "personal", "community", "default", "workspace", "non-default", "non-community", "saved"
    ]
    | None = None,
    category: Literal["premade", "cloned", "generated", "professional"] | None = None,
    fine_tuning_state: str | None = None,
    collection_id: str | None = None,
    gender: str | None = None,
    age: str | None = None,
    accent: str | None = None,
    language: Annotated[list[str] | None, Query()] = None,
    use_cases: Annotated[list[str] | None, Query()] = None,
    include_total_count: bool = True,
    voice_ids: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Voices matching the filters, a page at a time (continue with ``next_page_token``)."""
    state = engine_state(request)
    voices = [
        voice
        for voice in all_voices(state)
        if (not search or _matches_search(voice, search))
        and _matches_type(voice, voice_type)
        and (category is None or voice.category == category)
        and _label_is(voice, "gender", gender)
        and _label_is(voice, "age", age)
        and _label_is(voice, "accent", accent)
        and (not language or voice.labels.get("language", "en") in language)
        and (not use_cases or voice.labels.get("use_case") in use_cases)
        and (not voice_ids or voice.voice_id in voice_ids)
    ]
    if sort == "name":
        voices.sort(key=lambda v: v.name.casefold(), reverse=sort_direction == "desc")
    elif sort == "created_at_unix" or sort_direction is not None:
        voices.sort(key=lambda v: v.created_at or 0, reverse=sort_direction != "asc")
    offset = _page_offset(next_page_token)
    page = voices[offset : offset + page_size]
    has_more = offset + page_size < len(voices)
    return {
        "voices": [_api_voice(state, voice) for voice in page],
        "has_more": has_more,
        "total_count": len(voices),
        "next_page_token": _page_token(offset + page_size) if has_more else None,
    }


@router.get("/v1/voices", summary="List all voices")
async def list_voices(request: Request, show_legacy: bool | None = None) -> dict[str, Any]:
    """Every voice: the caller's own first (newest first), then the premade catalogue."""
    state = engine_state(request)
    return {"voices": [_api_voice(state, voice) for voice in all_voices(state)]}


@router.get("/v1/voices/settings/default", summary="Default voice settings")
async def default_settings() -> dict[str, Any]:
    """The settings a voice has until someone edits them."""
    return dict(DEFAULT_VOICE_SETTINGS)


@router.get("/v1/voices/{voice_id}", summary="Get a voice")
async def get_voice(
    request: Request, voice_id: str, with_settings: bool | None = None
) -> dict[str, Any]:
    """One voice (404 ``voice_not_found`` when unknown)."""
    state = engine_state(request)
    return _api_voice(state, lookup_voice(state, voice_id))


@router.get("/v1/voices/{voice_id}/settings", summary="Get a voice's settings")
async def get_voice_settings(request: Request, voice_id: str) -> dict[str, Any]:
    """The voice's saved settings over the defaults."""
    state = engine_state(request)
    voice = lookup_voice(state, voice_id)
    return voice_settings_for(state, voice.voice_id)


@router.post("/v1/voices/{voice_id}/settings/edit", summary="Edit a voice's settings")
async def edit_voice_settings(
    request: Request, voice_id: str, settings: VoiceSettingsModel
) -> dict[str, str]:
    """Save the given settings (fields left out keep their value): ``{"status": "ok"}``."""
    state = engine_state(request)
    voice = lookup_voice(state, voice_id)
    merged = {**voice_settings_for(state, voice.voice_id), **settings.model_dump(exclude_none=True)}
    await run_blocking(state.set_voice_settings, voice.voice_id, merged)
    return {"status": "ok"}


@router.delete("/v1/voices/{voice_id}", summary="Delete a voice")
async def delete_voice(request: Request, voice_id: str) -> dict[str, str]:
    """Delete a cloned or generated voice and its samples: ``{"status": "ok"}``."""
    state = engine_state(request)
    voice = lookup_voice(state, voice_id)
    if voice.category == "premade":
        raise api_error(
            400,
            "invalid_parameters",
            f"Voice {voice_id} ({voice.name}) is a premade voice and cannot be deleted; only "
            "cloned and generated voices can.",
            param="voice_id",
        )
    deleted = await run_blocking(state.delete_voice, voice_id)
    if deleted is not None:
        for sample in deleted.samples:
            state.delete_file("samples", sample["sample_id"])
    return {"status": "ok"}


@router.get("/v1/voices/{voice_id}/samples/{sample_id}/audio", summary="Audio of a voice sample")
async def get_sample_audio(request: Request, voice_id: str, sample_id: str) -> FileResponse:
    """A stored sample of a cloned voice, as uploaded."""
    state = engine_state(request)
    voice = lookup_voice(state, voice_id)
    sample = next((s for s in voice.samples if s.get("sample_id") == sample_id), None)
    if sample is None:
        raise api_error(
            404,
            "sample_not_found",
            f"Voice {voice_id} has no sample with the id {sample_id}.",
            param="sample_id",
        )
    return FileResponse(
        state.safe_path("samples", sample_id), media_type=sample.get("mime_type") or "audio/mpeg"
    )


# -- cloning ----------------------------------------------------------------------------------


def _parse_labels(raw: str | None) -> dict[str, str] | None:
    """Labels from a multipart field: a JSON object, or the literal ``null`` (= not given)."""
    if raw is None or raw.strip() in ("", "null"):
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise api_error(
            400,
            "invalid_parameters",
            'labels must be a JSON object of strings, e.g. {"accent": "british", "age": "old"}.',
            param="labels",
        )
    return {key: str(item) for key, item in value.items() if item is not None}


def _store_sample(
    state: EngineState, upload: UploadFile, remove_background_noise: bool
) -> tuple[dict[str, Any], Any]:
    """Blocking: copy an upload to the data dir, decode it; return (sample dict, samples)."""
    from ..audio import AudioDecodeError, decode

    sample_id = new_id()
    path = state.safe_path("samples", sample_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    upload.file.seek(0)
    with path.open("wb") as out:
        while block := upload.file.read(_COPY_CHUNK):
            digest.update(block)
            size += len(block)
            out.write(block)
    name = upload.filename or f"{sample_id}.audio"
    if size == 0:
        path.unlink(missing_ok=True)
        raise api_error(400, "invalid_parameters", f"The file {name!r} is empty.", param="files")
    try:
        audio = decode(path, sample_rate=_SAMPLE_RATE)
    except AudioDecodeError as exc:
        path.unlink(missing_ok=True)
        raise api_error(
            400, "invalid_parameters", f"The file {name!r} is not usable audio: {exc}",
            param="files",
        ) from exc  # fmt: skip
    sample = {
        "sample_id": sample_id,
        "file_name": name,
        "mime_type": upload.content_type or "application/octet-stream",
        "size_bytes": size,
        "hash": digest.hexdigest(),
        "duration_secs": round(len(audio) / _SAMPLE_RATE, 3),
        "remove_background_noise": remove_background_noise,
        "has_isolated_audio": False,
        "has_isolated_audio_preview": False,
        "speaker_separation": None,
        "trim_start": None,
        "trim_end": None,
    }
    return sample, audio


def _clone_profile(
    state: EngineState,
    uploads: list[UploadFile],
    previous: list[dict[str, Any]],
    remove_background_noise: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Blocking: store new samples; derive a profile from them and the voice's earlier ones."""
    from ..audio import decode
    from ..engines.voices import profile_from_samples

    stored: list[dict[str, Any]] = []
    try:
        audios = []
        for upload in uploads:
            sample, audio = _store_sample(state, upload, remove_background_noise)
            stored.append(sample)
            audios.append(audio)
        for sample in previous:
            path = state.safe_path("samples", sample["sample_id"])
            if path.exists():
                audios.append(decode(path, sample_rate=_SAMPLE_RATE))
        try:
            profile = profile_from_samples(audios, _SAMPLE_RATE)
        except ValueError as exc:
            raise api_error(
                400, "invalid_parameters", f"The samples cannot be cloned: {exc}", param="files"
            ) from exc
    except BaseException:
        for sample in stored:
            state.delete_file("samples", sample["sample_id"])
        raise
    return stored, profile.to_dict()


@router.post("/v1/voices/add", summary="Clone a voice from samples")
async def add_voice(
    request: Request,
    name: Annotated[str, Form(min_length=1)],
    files: Annotated[list[UploadFile], File()],
    remove_background_noise: Annotated[bool, Form()] = False,
    description: Annotated[str | None, Form()] = None,
    labels: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Instant voice cloning: ``{"voice_id": ..., "requires_verification": false}``."""
    state = engine_state(request)
    parsed_labels = _parse_labels(labels) or {}
    samples, profile = await run_blocking(
        _clone_profile, state, list(files), [], remove_background_noise
    )
    voice = StoredVoice(
        voice_id=new_id(),
        name=name,
        category="cloned",
        profile=profile,
        description=description,
        labels=parsed_labels,
        samples=samples,
    )
    await run_blocking(state.add_voice, voice)
    return {"voice_id": voice.voice_id, "requires_verification": False}


@router.post("/v1/voices/{voice_id}/edit", summary="Edit a voice")
async def edit_voice(
    request: Request,
    voice_id: str,
    name: Annotated[str, Form(min_length=1)],
    files: Annotated[list[UploadFile] | None, File()] = None,
    remove_background_noise: Annotated[bool, Form()] = False,
    description: Annotated[str | None, Form()] = None,
    labels: Annotated[str | None, Form()] = None,
) -> dict[str, str]:
    """Rename, describe, relabel or add samples to a cloned/generated voice."""
    state = engine_state(request)
    lookup_voice(state, voice_id)
    stored = state.get_voice(voice_id)
    if stored is None:
        raise api_error(
            400,
            "invalid_parameters",
            f"Voice {voice_id} is a premade voice and cannot be edited; clone it instead.",
            param="voice_id",
        )
    new_labels = _parse_labels(labels)
    uploads = [upload for upload in files or [] if upload.filename or upload.size]
    if uploads:
        added, profile = await run_blocking(
            _clone_profile, state, uploads, stored.samples, remove_background_noise
        )
        stored.samples = [*stored.samples, *added]
        stored.profile = profile
    stored.name = name
    if description is not None:
        stored.description = description
    if new_labels is not None:
        stored.labels = new_labels
    await run_blocking(state.add_voice, stored)
    return {"status": "ok"}


def copy_sample_files(state: EngineState, source_kind: str, source_id: str) -> str:
    """Copy a stored audio file into the samples area; return the new sample id."""
    sample_id = new_id()
    target = state.safe_path("samples", sample_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(state.safe_path(source_kind, source_id), target)
    return sample_id
