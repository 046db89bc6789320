"""Helpers every resource module shares: input checks, form encoding, response parsing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from ..errors import ElevenLabsError, RequestValidationError
from ._transport import FileSpec, ResponseMeta, Transport

ModelT = TypeVar("ModelT", bound=BaseModel)

# A file to upload: a path streamed from disk, raw bytes, or a prepared part.
FileInput = str | os.PathLike[str] | bytes | FileSpec
# Where audio goes: a path (written atomically) or an open binary file.
Destination = str | os.PathLike[str] | IO[bytes]

# §3 of the API contract: which output_format values each endpoint group accepts.
_MP3 = (
    "mp3_22050_32",
    "mp3_24000_48",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
)
_PCM = (
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_32000",
    "pcm_44100",
    "pcm_48000",
    "ulaw_8000",
    "alaw_8000",
)
_OPUS = ("opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128", "opus_48000_192")
_WAV = ("wav_8000", "wav_16000", "wav_22050", "wav_24000", "wav_32000", "wav_44100", "wav_48000")
_MP3_48K = ("mp3_48000_128", "mp3_48000_192", "mp3_48000_240", "mp3_48000_320")

STREAMING_FORMATS: frozenset[str] = frozenset(_MP3 + _PCM + _OPUS)
"""The 21 formats of streamed endpoints (TTS stream, STS stream, voice design, ...)."""
CONVERT_FORMATS: frozenset[str] = STREAMING_FORMATS | frozenset(_WAV)
"""The 28 formats of whole-file endpoints (TTS convert, with-timestamps, SFX, STS convert)."""
MUSIC_FORMATS: frozenset[str] = STREAMING_FORMATS | frozenset(_MP3_48K) | {"auto"}
"""The 26 formats of the music compose family."""
REALTIME_INPUT_FORMATS: frozenset[str] = frozenset(
    ("pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000", "ulaw_8000")
)
"""Input audio formats the realtime speech-to-text socket accepts."""


def invalid(message: str, param: str | None = None) -> RequestValidationError:
    """A client-side validation error in the same shape as the API's ``invalid_parameters``."""
    return RequestValidationError(message, status="invalid_parameters", param=param)


def check_output_format(value: str | None, accepted: frozenset[str], endpoint: str) -> str | None:
    """Returns ``value`` if ``endpoint`` accepts it (``None`` means the server default)."""
    if value is None or value in accepted:
        return value
    raise invalid(
        f"output_format {value!r} is not accepted by {endpoint}; use one of: "
        f"{', '.join(sorted(accepted))}",
        param="output_format",
    )


def segment(value: str, name: str) -> str:
    """Percent-encodes an id for use as one path segment, so it can never change the route."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} must be a non-empty string, got {value!r}", param=name)
    return quote(value, safe="")


def file_part(value: FileInput, name: str, *, default_filename: str | None = None) -> FileSpec:
    """Turns a path, bytes or ready part into a multipart file part re-read on every attempt."""
    if isinstance(value, FileSpec):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return FileSpec(content=bytes(value), filename=default_filename or name)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: {path} does not exist or is not a file")
        return FileSpec.from_path(path)
    raise invalid(
        f"{name} must be a file path, bytes or FileSpec, got {type(value).__name__}", param=name
    )


def form_value(value: Any) -> str:
    """Renders one multipart field value the way the API parses it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=True)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value)


def form_fields(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Multipart text fields: ``None`` omitted, lists and tuples repeated under the same name."""
    fields: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            fields.extend((name, form_value(item)) for item in value)
        else:
            fields.append((name, form_value(value)))
    return fields


def json_text(value: Any) -> str:
    """A JSON-encoded string field; ``None`` becomes the literal ``null`` the API expects."""
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=True)
    return json.dumps(value)


def as_list(value: str | Iterable[str] | None) -> list[str] | None:
    """Accepts one string or several for fields the API takes repeatedly."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)


def build(model: type[ModelT], **values: Any) -> ModelT:
    """Validates request arguments, turning pydantic's error into a typed, explanatory one."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise validation_error(exc, model.__name__) from None


def validation_error(exc: ValidationError, what: str) -> RequestValidationError:
    """Pydantic's complaints about ``what`` as one typed error naming the first bad field."""
    problems = []
    first: str | None = None
    for item in exc.errors():
        loc = ".".join(str(p) for p in item.get("loc", ()))
        first = first or (str(item["loc"][0]) if item.get("loc") else None)
        problems.append(f"{loc or what}: {item.get('msg', 'invalid')}")
    return invalid(f"invalid {what}: " + "; ".join(problems), param=first)


def body(model: BaseModel) -> dict[str, Any]:
    """The JSON body of a validated request model: unset optional fields are left out."""
    return model.model_dump(mode="json", exclude_none=True)


def parse(model: type[ModelT], data: Any, meta: ResponseMeta | None) -> ModelT:
    """Builds a response model from JSON and attaches the response metadata."""
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        where = meta.endpoint if meta else model.__name__
        raise ElevenLabsError(
            f"{where}: the response does not have the expected shape of {model.__name__}: {exc}",
            status_code=meta.status_code if meta else None,
            request_id=meta.request_id if meta else None,
            body=data,
        ) from None
    if meta is not None and "meta" in type(result).model_fields:
        result.meta = meta  # type: ignore[attr-defined]
    return result


def exactly_one(**sources: Any) -> str:
    """Returns the name of the one source given; refuses none or several before any request."""
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(sources)
        found = f"got {', '.join(given)}" if given else "got none"
        raise invalid(f"give exactly one of {names} ({found})")
    return given[0]


class Resource:
    """Base of the endpoint groups: holds the shared transport."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._transport.base_url!r})"
