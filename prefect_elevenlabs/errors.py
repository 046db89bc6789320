"""Typed errors for every way an ElevenLabs call can fail.

The API reports a machine-readable status string in the body (``{"detail": {"status": ...}}``);
that string decides the error class first, the HTTP status code second, because the same code
means different things (``quota_exceeded`` arrives as 401 on some accounts and 429 on others).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ElevenLabsError",
    "InvalidRequestError",
    "MediaError",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestValidationError",
    "ServerError",
    "TimeoutError",
    "error_from_response",
]

# Status strings that mean "wait and try again": flow control rather than failure.
RATE_LIMIT_STATUSES = frozenset(
    {
        "too_many_concurrent_requests",
        "concurrent_limit_exceeded",
        "system_busy",
        "rate_limit_exceeded",
    }
)
QUOTA_STATUSES = frozenset({"quota_exceeded"})
AUTH_STATUSES = frozenset({"invalid_api_key", "missing_permissions", "detected_unusual_activity"})
NOT_FOUND_STATUSES = frozenset(
    {"voice_not_found", "not_found", "dubbing_not_found", "history_item_not_found"}
)


class ElevenLabsError(Exception):
    """Base class: something went wrong talking to ElevenLabs (or the local engine)."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        status: str | None = None,
        request_id: str | None = None,
        param: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.status = status
        self.request_id = request_id
        self.param = param
        self.body = body

    def __str__(self) -> str:
        parts = [self.message]
        meta = []
        if self.status_code is not None:
            meta.append(f"HTTP {self.status_code}")
        if self.status:
            meta.append(f"status={self.status}")
        if self.param:
            meta.append(f"param={self.param}")
        if self.request_id:
            meta.append(f"request_id={self.request_id}")
        if meta:
            parts.append(f"({', '.join(meta)})")
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: pickle (Prefect results, process pools) needs this.
        return (
            _rebuild_error,
            (
                type(self),
                self.message,
                {
                    "status_code": self.status_code,
                    "status": self.status,
                    "request_id": self.request_id,
                    "param": self.param,
                    "body": self.body,
                    **self._extra_state(),
                },
            ),
        )

    def _extra_state(self) -> dict[str, Any]:
        return {}


def _rebuild_error(
    cls: type[ElevenLabsError], message: str, state: dict[str, Any]
) -> ElevenLabsError:
    return cls(message, **state)


class AuthenticationError(ElevenLabsError):
    """The API key is missing, wrong, or lacks a permission the call needs (401)."""


class QuotaExceededError(ElevenLabsError):
    """The account has no credits left for this request; retrying will not help.

    Raised by a batch flow that ran out of credits mid-batch, it also says what the batch got
    done: ``completed`` and ``missing`` list item ids, ``output_dir`` is where the completed
    items' files are, and ``summary`` is the flow's full ``RunSummary``. All four are empty
    when a single call was refused.
    """

    def __init__(
        self,
        message: str,
        *,
        completed: Sequence[str] = (),
        missing: Sequence[str] = (),
        output_dir: str | None = None,
        summary: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.completed = list(completed)
        self.missing = list(missing)
        self.output_dir = output_dir
        self.summary = summary

    def _extra_state(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "missing": self.missing,
            "output_dir": self.output_dir,
            "summary": self.summary,
        }


class PermissionDeniedError(ElevenLabsError):
    """The plan or key may not use this feature (403)."""


class NotFoundError(ElevenLabsError):
    """The voice, job, item or route does not exist (404)."""


class InvalidRequestError(ElevenLabsError):
    """The request was rejected as malformed or out of range (400, 409, 413, 415, 422)."""


class NotReadyError(ElevenLabsError):
    """The resource exists but is not ready yet, e.g. a dubbing still in progress (425)."""

    retryable = True


class RateLimitError(ElevenLabsError):
    """Too many requests in flight or the system is busy (429): wait and retry."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _extra_state(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class ServerError(ElevenLabsError):
    """The server failed (5xx); the same request may succeed later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _extra_state(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class ConnectionFailedError(ElevenLabsError):
    """The connection failed or dropped before a complete response arrived."""

    retryable = True


class TimeoutError(ElevenLabsError):  # mirrors httpx's name, inside our namespace
    """No complete response within the configured timeout."""

    retryable = True


class RequestValidationError(InvalidRequestError, ValueError):
    """A request was refused before sending: an argument is missing or out of range."""


class ConfigurationError(ElevenLabsError, ValueError):
    """The credentials or settings cannot work as given; the message says what to change."""


class MediaError(ElevenLabsError, ValueError):
    """A media file is missing, corrupt or in a form that cannot be processed."""


def parse_error_body(content: bytes | str | None) -> tuple[str | None, str | None, str | None, Any]:
    """Returns (status, message, param, parsed body) from any of the API's error body shapes."""
    if content is None:
        return None, None, None, None
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    try:
        body = json.loads(text)
    except ValueError:
        return None, text.strip()[:500] or None, None, text
    detail = body.get("detail") if isinstance(body, Mapping) else None
    if isinstance(detail, Mapping):
        status = detail.get("status") or detail.get("code")
        return (
            str(status) if status else None,
            detail.get("message"),
            detail.get("param"),
            body,
        )
    if isinstance(detail, list):  # FastAPI-style validation errors
        messages = []
        param = None
        for item in detail:
            if isinstance(item, Mapping):
                loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
                if loc and param is None:
                    param = ".".join(loc)
                messages.append(f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid')}")
        return "invalid_parameters", "; ".join(messages) or None, param, body
    if isinstance(detail, str):
        return None, detail, None, body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body.get("status"), body["message"], None, body
    return None, None, None, body


def error_from_response(
    status_code: int,
    content: bytes | str | None,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    endpoint: str | None = None,
) -> ElevenLabsError:
    """Maps an HTTP error response to the most specific error class."""
    status, message, param, body = parse_error_body(content)
    where = f"{endpoint}: " if endpoint else ""
    text = where + (message or f"request failed with HTTP {status_code}")
    common: dict[str, Any] = {
        "status_code": status_code,
        "status": status,
        "request_id": request_id,
        "param": param,
        "body": body,
    }
    if status in QUOTA_STATUSES:
        return QuotaExceededError(text, **common)
    if status in RATE_LIMIT_STATUSES:
        return RateLimitError(text, retry_after=retry_after, **common)
    if status in AUTH_STATUSES:
        return AuthenticationError(text, **common)
    if status in NOT_FOUND_STATUSES:
        return NotFoundError(text, **common)
    if status_code == 401:
        return AuthenticationError(text, **common)
    if status_code == 403:
        return PermissionDeniedError(text, **common)
    if status_code == 404:
        return NotFoundError(text, **common)
    if status_code == 425:
        return NotReadyError(text, **common)
    if status_code == 429:
        return RateLimitError(text, retry_after=retry_after, **common)
    if status_code >= 500:
        return ServerError(text, retry_after=retry_after, **common)
    return InvalidRequestError(text, **common)
