"""Dubbing: create jobs, poll them, download the dubbed media and the transcripts.

``POST /v1/dubbing`` takes the media (``file``, or a ``file://`` ``source_url``, see
:mod:`.stt`) and answers at once with ``{"dubbing_id", "expected_duration_sec"}``; the work
runs in the background (:mod:`prefect_elevenlabs.local.dubbing_pipeline`) and
``GET /v1/dubbing/{id}`` reports ``dubbing`` -> ``dubbed`` (or ``failed`` with ``error``).
Translation is Apertium, so only its installed pairs can be dubbed; any other pair is refused
when the job is created, with the list of pairs. The dubbed file is video (``video/mp4``) for
video input and ``audio/mpeg`` otherwise.

Before a job is done its audio and transcripts answer 425 Too Early, as the API does; after a
failure they answer 400 with the job's error. Transcripts come as a JSON string for srt and
webvtt (the official SDK parses the body as JSON) and as ``{"language", "utterances"}`` for
json; ``language_code`` may be ``source``.

Supported create fields: ``file``/``source_url``, ``name``, ``source_lang`` (default
``auto``), ``target_lang``, ``num_speakers`` (0 = detect), ``start_time``/``end_time``,
``drop_background_audio``, ``disable_voice_cloning``. ``watermark``, ``highest_resolution``,
``use_profanity_filter``, ``dubbing_studio`` and ``target_accent`` are accepted and have no
effect; CSV (``mode=manual``) and separate foreground/background files are refused. Dubbing
bills no characters; each job is counted in ``/local/stats``.
"""

from __future__ import annotations

import base64
import binascii
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from ..dubbing_pipeline import DubbingRequest, DubbingRunner, job_dir, read_transcript
from ..state import DubbingJob, EngineState, new_id, validate_id
from ..wire import RequestContext, api_error, authenticate
from ._common import admit, engine_state, run_blocking
from .stt import UploadForm, language_code_or_400, read_form, resolve_source_url

__all__ = ["dubbing_runner", "job_metadata", "router"]

router = APIRouter(tags=["dubbing"])

_COPY_CHUNK = 1 << 20
# Rough wall-clock cost on a two-core machine: model start-up plus a few times the duration.
_EXPECTED_BASE_SECONDS = 15.0
_EXPECTED_PER_SECOND = 4.0
_VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
                ".webm": "video/webm", ".m4v": "video/mp4", ".avi": "video/x-msvideo"}  # fmt: skip
_AUDIO_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg",
                ".opus": "audio/opus", ".flac": "audio/flac", ".m4a": "audio/mp4",
                ".aac": "audio/aac"}  # fmt: skip


def dubbing_runner(request: Request) -> DubbingRunner:
    """The app's job runner, started on first use (it resumes interrupted jobs)."""
    runner: DubbingRunner | None = getattr(request.app.state, "dubbing_runner", None)
    if runner is None:
        runner = DubbingRunner(engine_state(request))
        request.app.state.dubbing_runner = runner
    return runner


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def job_metadata(job: DubbingJob) -> dict[str, Any]:
    """The API's dubbing metadata object for a job."""
    media = job.metadata.get("media_metadata")
    return {
        "dubbing_id": job.dubbing_id,
        "name": job.name,
        "status": job.status,
        "source_language": job.source_language,
        "target_languages": list(job.target_languages),
        "editable": False,
        "created_at": _iso(job.created_at),
        "media_metadata": dict(media) if media else None,
        "error": job.error,
    }


def _require_job(state: EngineState, dubbing_id: str) -> DubbingJob:
    validate_id(dubbing_id, what="dubbing_id")
    job = state.get_dubbing(dubbing_id)
    if job is None:
        raise api_error(
            404,
            "dubbing_not_found",
            f"No dubbing job with the dubbing_id {dubbing_id} exists.",
            param="dubbing_id",
        )
    return job


def _language_key(job: DubbingJob, language_code: str) -> str:
    """``source`` or the job's target language matching ``language_code``; 404 otherwise."""
    if language_code == "source":
        return "source"
    from ..engines.stt import UnsupportedLanguageError, to_iso639_1

    try:
        code = to_iso639_1(language_code)
    except UnsupportedLanguageError:
        code = language_code
    if code in job.target_languages:
        return code
    if job.source_language and code == job.source_language:
        return "source"
    languages = ", ".join(["source", *job.target_languages])
    raise api_error(
        404,
        "language_not_found",
        f"Dubbing {job.dubbing_id} has no language {language_code!r}; use one of: {languages}.",
        param="language_code",
    )


def _require_done(job: DubbingJob) -> None:
    if job.status == "dubbed":
        return
    if job.status == "failed":
        raise api_error(
            400,
            "dubbing_failed",
            f"Dubbing {job.dubbing_id} failed, so it has no output: {job.error}",
            param="dubbing_id",
        )
    raise api_error(
        425,
        "dubbing_not_ready",
        f"Dubbing {job.dubbing_id} is still in progress (status {job.status!r}); poll "
        "GET /v1/dubbing/{dubbing_id} until it is 'dubbed'.",
        param="dubbing_id",
    )


# -- create -----------------------------------------------------------------------------------


def _parse_create(form: UploadForm) -> tuple[DubbingRequest, dict[str, Any]]:
    from ..engines.translate import supported_pairs

    if form.upload("csv_file") is not None or form.text("mode") == "manual":
        raise api_error(
            400,
            "not_supported_locally",
            "The local engine does not offer manual (CSV) dubbing; send the media with "
            "mode=automatic.",
            param="mode",
        )
    for name in ("foreground_audio_file", "background_audio_file"):
        if form.upload(name) is not None:
            raise api_error(400, "not_supported_locally",
                            f"{name} is only used with CSV dubbing, which the local engine does "
                            "not offer.", param=name)  # fmt: skip
    target_raw = form.text("target_lang")
    if target_raw is None:
        raise api_error(
            400, "invalid_parameters", "target_lang is required: the language to dub into "
            "(ISO 639-1 or 639-3, e.g. 'es').", param="target_lang",
        )  # fmt: skip
    target = language_code_or_400(target_raw, param="target_lang")
    source_raw = form.text("source_lang")
    source = None
    if source_raw is not None and source_raw.lower() != "auto":
        source = language_code_or_400(source_raw, param="source_lang")
    assert target is not None
    pairs = supported_pairs()
    listing = ", ".join(f"{s}->{t}" for s, t in sorted(pairs)) or "none installed"
    if source is not None and source != target and (source, target) not in pairs:
        raise api_error(
            400,
            "unsupported_language_pair",
            f"The local engine cannot translate {source_raw!r} to {target_raw!r}; available "
            f"translation pairs: {listing}.",
            param="target_lang",
        )
    if source is None and not any(t == target for _, t in pairs):
        raise api_error(
            400,
            "unsupported_language_pair",
            f"The local engine cannot translate into {target_raw!r}; available translation "
            f"pairs: {listing}.",
            param="target_lang",
        )
    start = form.integer("start_time", ge=0)
    end = form.integer("end_time", ge=0)
    if start is not None and end is not None and end <= start:
        raise api_error(400, "invalid_parameters", "end_time must be after start_time.",
                        param="end_time")  # fmt: skip
    for ignored in ("watermark", "highest_resolution", "use_profanity_filter", "dubbing_studio"):
        form.boolean(ignored, False)
    request = DubbingRequest(
        target_lang=target,
        source_file="",
        has_video=False,
        source_lang=source,
        num_speakers=form.integer("num_speakers", ge=0, le=32) or 0,
        start_time=float(start) if start is not None else None,
        end_time=float(end) if end is not None else None,
        drop_background_audio=form.boolean("drop_background_audio", False),
        disable_voice_cloning=form.boolean("disable_voice_cloning", False),
    )
    extras = {"name": form.text("name")}
    return request, extras


def _store_source(
    state: EngineState, directory: Path, upload: Any, url_path: Path | None
) -> tuple[Path, str]:
    """Blocking: copy the media into the job directory; return (path, original file name)."""
    directory.mkdir(parents=True, exist_ok=True)
    if url_path is not None:
        name = url_path.name
        dest = directory / ("source" + url_path.suffix.lower()[:10])
        shutil.copyfile(url_path, dest)
        return dest, name
    name = upload.filename or "media"
    dest = directory / ("source" + Path(name).suffix.lower()[:10])
    size = 0
    upload.file.seek(0)
    with dest.open("wb") as out:
        while block := upload.file.read(_COPY_CHUNK):
            out.write(block)
            size += len(block)
    if size == 0:
        raise api_error(400, "invalid_parameters", f"The uploaded file {name!r} is empty.",
                        param="file")  # fmt: skip
    return dest, name


def _probe_source(path: Path) -> Any:
    from ...errors import MediaError
    from ...media import probe

    try:
        info = probe(path)
    except MediaError as exc:
        raise api_error(
            400, "invalid_media", f"The uploaded file is not audio or video: {exc}", param="file"
        ) from exc
    if not info.has_audio:
        raise api_error(400, "invalid_media", "The media has no audio track to dub.",
                        param="file")  # fmt: skip
    return info


def _create_job(
    state: EngineState,
    dubbing_id: str,
    request: DubbingRequest,
    name: str | None,
    upload: Any,
    url_path: Path | None,
) -> DubbingJob:
    """Blocking: store the source, probe it and save the job."""
    directory = job_dir(state, dubbing_id)
    try:
        source, original_name = _store_source(state, directory, upload, url_path)
        info = _probe_source(source)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    duration = info.duration
    if request.start_time is not None and request.start_time >= duration:
        shutil.rmtree(directory, ignore_errors=True)
        raise api_error(
            400,
            "invalid_parameters",
            f"start_time {request.start_time:g} s is past the end of the media ({duration:.1f} s).",
            param="start_time",
        )
    if request.start_time is not None or request.end_time is not None:
        end = min(request.end_time if request.end_time is not None else duration, duration)
        duration = max(0.0, end - (request.start_time or 0.0))
    request.source_file = source.name
    request.has_video = info.has_video
    content_type = "video/mp4" if info.has_video else "audio/mpeg"
    job = DubbingJob(
        dubbing_id=dubbing_id,
        name=name or Path(original_name).stem or "Untitled",
        status="dubbing",
        source_language=request.source_lang,
        target_languages=[request.target_lang],
        paths={"source": f"{directory.name}/{source.name}"},
        expected_duration_sec=round(_EXPECTED_BASE_SECONDS + _EXPECTED_PER_SECOND * duration, 1),
        metadata={
            "request": request.to_dict(),
            "media_metadata": {"content_type": content_type, "duration": round(duration, 3)},
            "source_content_type": _content_type(source, info.has_video),
        },
    )
    state.save_dubbing(job)
    return job


def _content_type(path: Path, video: bool) -> str:
    table = _VIDEO_TYPES if video else _AUDIO_TYPES
    return table.get(path.suffix.lower(), "video/mp4" if video else "application/octet-stream")


@router.post("/v1/dubbing", summary="Create a dubbing job")
async def create_dubbing(
    request: Request, context: Annotated[RequestContext, Depends(authenticate)]
) -> dict[str, Any]:
    """Multipart media + languages -> ``{"dubbing_id", "expected_duration_sec"}``."""
    state = engine_state(request)
    runner = dubbing_runner(request)
    async with read_form(request) as form:
        job_request, extras = _parse_create(form)
        upload = form.upload("file")
        url = form.text("source_url")
        if (upload is None) == (url is None):
            raise api_error(400, "invalid_parameters",
                            "Send exactly one of 'file' (the media) or 'source_url'.",
                            param="file")  # fmt: skip
        url_path = resolve_source_url(request, url) if url is not None else None
        generation = await admit(request, context, characters=0)
        try:
            job = await run_blocking(
                _create_job, state, new_id(), job_request, extras["name"], upload, url_path
            )
        except BaseException:
            await generation.finish(success=False)
            raise
    await generation.finish(success=True)
    runner.submit(job.dubbing_id)
    return {"dubbing_id": job.dubbing_id, "expected_duration_sec": job.expected_duration_sec}


# -- read -------------------------------------------------------------------------------------


@router.get("/v1/dubbing/{dubbing_id}", summary="Dubbing job status")
async def get_dubbing(request: Request, dubbing_id: str) -> dict[str, Any]:
    """The job's metadata: ``status`` is ``dubbing``, ``dubbed`` or ``failed``."""
    dubbing_runner(request)
    job = await run_blocking(_require_job, engine_state(request), dubbing_id)
    return job_metadata(job)


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset = int(text.removeprefix("offset:"))
        if offset < 0 or not text.startswith("offset:"):
            raise ValueError(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise api_error(
            400,
            "invalid_parameters",
            "cursor is not one this server issued; pass the next_cursor of the previous page.",
            param="cursor",
        ) from None
    return offset


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


@router.get("/v1/dubbing", summary="List dubbing jobs")
async def list_dubbing(
    request: Request,
    cursor: str | None = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 100,
    dubbing_status: str | None = None,
    dubbing_statuses: Annotated[list[str] | None, Query()] = None,
    target_language_codes: Annotated[list[str] | None, Query()] = None,
    order_by: Literal["created_at", "name"] = "created_at",
    order_direction: Literal["DESCENDING", "ASCENDING"] = "DESCENDING",
    filter_by_creator: Literal["personal", "others", "all"] = "all",
    dubbing_models: Annotated[list[str] | None, Query()] = None,
    creation_sources: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """``{"dubs": [...], "next_cursor", "has_more"}``; continue with ``cursor=next_cursor``."""
    dubbing_runner(request)
    offset = _cursor_offset(cursor)
    statuses = [*(dubbing_statuses or []), *([dubbing_status] if dubbing_status else [])]
    jobs = await run_blocking(engine_state(request).list_dubbing, statuses=statuses or None)
    if target_language_codes:
        wanted = set(target_language_codes)
        jobs = [job for job in jobs if wanted & set(job.target_languages)]
    descending = order_direction == "DESCENDING"
    if order_by == "name":
        jobs.sort(key=lambda job: (job.name.lower(), job.dubbing_id), reverse=descending)
    else:
        jobs.sort(key=lambda job: (job.created_at, job.dubbing_id), reverse=descending)
    page = jobs[offset : offset + page_size]
    has_more = offset + page_size < len(jobs)
    return {
        "dubs": [job_metadata(job) for job in page],
        "next_cursor": _cursor(offset + page_size) if has_more else None,
        "has_more": has_more,
    }


@router.get("/v1/dubbing/{dubbing_id}/audio/{language_code}", summary="Download dubbed media")
async def get_dubbed_audio(request: Request, dubbing_id: str, language_code: str) -> FileResponse:
    """The dubbed file (``video/mp4`` or ``audio/mpeg``); 425 until the job is done."""
    state = engine_state(request)
    job = await run_blocking(_require_job, state, dubbing_id)
    key = _language_key(job, language_code)
    _require_done(job)
    name = job.paths.get(key)
    if name is None:
        raise api_error(404, "language_not_found",
                        f"Dubbing {dubbing_id} has no media for {language_code!r}.",
                        param="language_code")  # fmt: skip
    path = state.audio_dir / "dubbing" / name
    if key == "source":
        media_type = job.metadata.get("source_content_type", "application/octet-stream")
    else:
        media_type = job.metadata.get("media_metadata", {}).get("content_type", "audio/mpeg")
    if not path.is_file():
        raise api_error(404, "file_not_found", f"The media of dubbing {dubbing_id} is missing.")
    return FileResponse(path, media_type=media_type, filename=path.name)


def _render_transcript(transcript: dict[str, Any], fmt: str) -> Any:
    from ...subtitles import build_cues, to_srt, to_vtt

    if fmt == "json":
        return transcript
    words = [
        {"text": word["text"], "start": word["start_s"], "end": word["end_s"],
         "speaker_id": utterance.get("speaker_id")}
        for utterance in transcript["utterances"]
        for word in utterance.get("words") or []
    ]  # fmt: skip
    cues = build_cues(words)
    return to_srt(cues) if fmt == "srt" else to_vtt(cues)


def _transcript(state: EngineState, dubbing_id: str, language_code: str) -> dict[str, Any]:
    job = _require_job(state, dubbing_id)
    key = _language_key(job, language_code)
    _require_done(job)
    transcript = read_transcript(state, job, key)
    if transcript is None:
        raise api_error(404, "transcript_not_found",
                        f"Dubbing {dubbing_id} has no transcript for {language_code!r}.",
                        param="language_code")  # fmt: skip
    return transcript


@router.get("/v1/dubbing/{dubbing_id}/transcript/{language_code}", summary="Subtitles of a dub")
async def get_transcript(
    request: Request,
    dubbing_id: str,
    language_code: str,
    format_type: Literal["srt", "webvtt", "json"] = "srt",
) -> JSONResponse:
    """srt/webvtt as a JSON string body, json as the transcript object."""
    transcript = await run_blocking(_transcript, engine_state(request), dubbing_id, language_code)
    return JSONResponse(_render_transcript(transcript, format_type))


@router.get(
    "/v1/dubbing/{dubbing_id}/transcripts/{language_code}/format/{format_type}",
    summary="Transcript of a dub in one format",
)
async def get_transcript_format(
    request: Request,
    dubbing_id: str,
    language_code: str,
    format_type: Literal["srt", "webvtt", "json"],
) -> dict[str, Any]:
    """``{"transcript_format", "srt", "webvtt", "json"}`` with only the asked one set."""
    transcript = await run_blocking(_transcript, engine_state(request), dubbing_id, language_code)
    body: dict[str, Any] = {"transcript_format": format_type, "srt": None, "webvtt": None,
                            "json": None}  # fmt: skip
    body[format_type] = _render_transcript(transcript, format_type)
    return body


@router.delete("/v1/dubbing/{dubbing_id}", summary="Delete a dubbing job")
async def delete_dubbing(request: Request, dubbing_id: str) -> dict[str, str]:
    """Remove the job, its files and its state: ``{"status": "ok"}``."""
    state = engine_state(request)
    runner = dubbing_runner(request)
    await run_blocking(_require_job, state, dubbing_id)
    runner.cancel(dubbing_id)

    def remove() -> None:
        state.delete_dubbing(dubbing_id)
        shutil.rmtree(job_dir(state, dubbing_id), ignore_errors=True)

    await run_blocking(remove)
    return {"status": "ok"}
