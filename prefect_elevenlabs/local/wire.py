"""The wire contract shared by every route: error bodies, request ids, authentication, body limits.

Errors leave the engine in the shape ElevenLabs uses today, carrying both the legacy ``status``
and the current ``code`` so old and new clients parse them::

    {"detail": {"status": "voice_not_found", "code": "voice_not_found", "type": "not_found",
                "message": "A voice with the voice_id x was not found.",
                "request_id": "3c80...", "param": "voice_id"}}

Schema validation failures keep FastAPI's list shape (``{"detail": [{"loc", "msg", "type"}]}``)
with status 422. Every response, errors included, carries a ``request-id`` header.

Example::

    raise api_error(404, "voice_not_found", "A voice with the voice_id x was not found.",
                    param="voice_id")
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from .config import EngineConfig

__all__ = [
    "RAW_SEND_KEY",
    "REQUEST_ID_HEADER",
    "ApiError",
    "RequestContext",
    "api_error",
    "authenticate",
    "check_api_key",
    "error_body",
    "install_error_handlers",
    "key_id",
    "request_context",
    "request_id_of",
    "wire_entry",
]

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "request-id"
# Where the server's own ``send`` callable is kept in the ASGI scope (see modes.drop_connection).
RAW_SEND_KEY = "prefect_elevenlabs.raw_send"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ERROR_TYPES = {
    400: "validation_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "invalid_request",
    409: "conflict",
    413: "validation_error",
    415: "validation_error",
    422: "validation_error",
    425: "not_ready",
    429: "rate_limit_error",
}

_GENERIC_STATUSES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameters",
    425: "not_ready",
    429: "too_many_requests",
}


class ApiError(HTTPException):
    """An error answered with the ElevenLabs ``{"detail": {...}}`` body.

    Raise it anywhere while handling a request; the engine's handler turns it into the response.
    """

    def __init__(
        self,
        status_code: int,
        status: str,
        message: str,
        *,
        param: str | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=dict(headers or {}))
        self.status = status
        self.message = message
        self.param = param
        self.error_type = error_type or _error_type(status_code)
        self.extra = dict(extra or {})

    def body(self, request_id: str | None) -> dict[str, Any]:
        """The JSON body for this error."""
        detail = error_body(
            self.status,
            self.message,
            request_id=request_id,
            param=self.param,
            error_type=self.error_type,
        )
        detail["detail"].update(self.extra)
        return detail


def api_error(
    status_code: int,
    status: str,
    message: str,
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    error_type: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ApiError:
    """Build the exception for an ElevenLabs-style error response.

    ``status`` is the machine-readable code (``voice_not_found``, ``invalid_parameters``...);
    ``param`` names the offending field when there is one; ``extra`` adds keys to ``detail``.

    Example::

        raise api_error(400, "max_character_limit_exceeded", "Text is too long.", param="text")
    """
    return ApiError(
        status_code,
        status,
        message,
        param=param,
        headers=headers,
        error_type=error_type,
        extra=extra,
    )


def error_body(
    status: str,
    message: str,
    *,
    request_id: str | None,
    param: str | None = None,
    error_type: str = "validation_error",
) -> dict[str, Any]:
    """The ``{"detail": {...}}`` dictionary with both ``status`` and ``code``."""
    return {
        "detail": {
            "status": status,
            "code": status,
            "type": error_type,
            "message": message,
            "request_id": request_id,
            "param": param,
        }
    }


def _error_type(status_code: int) -> str:
    if status_code >= 500:
        return "server_error"
    return _ERROR_TYPES.get(status_code, "invalid_request")


@dataclass(frozen=True)
class RequestContext:
    """Who is calling and under which request id.

    ``key_id`` identifies the API key without revealing it (a digest), ``"anonymous"`` when the
    request carried no key; it is what usage and quotas are counted against.
    """

    request_id: str
    api_key: str | None
    key_id: str

    def __repr__(self) -> str:
        # The key is a secret: keep it out of logs and tracebacks.
        return f"RequestContext(request_id={self.request_id!r}, key_id={self.key_id!r})"


def key_id(api_key: str | None) -> str:
    """A stable, non-reversible identifier for an API key (``"anonymous"`` for none)."""
    if not api_key:
        return "anonymous"
    return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:16]


def request_id_of(connection: HTTPConnection) -> str:
    """The id the engine gave this request (also sent back in the ``request-id`` header)."""
    state = connection.scope.setdefault("state", {})
    rid = state.get("request_id")
    if not rid:
        rid = uuid.uuid4().hex
        state["request_id"] = rid
    return str(rid)


def check_api_key(config: EngineConfig, api_key: str | None) -> bool:
    """Whether ``api_key`` may use the engine (always true when no keys are configured)."""
    if not config.api_keys:
        return True
    if not api_key:
        return False
    given = api_key.encode()
    # Compare against every key so the time taken does not reveal which one nearly matched.
    matches = [secrets.compare_digest(given, key.encode()) for key in config.api_keys]
    return any(matches)


TOKEN_TYPES = ("realtime_scribe", "batch_scribe", "tts_websocket")
"""Kinds of single-use token ``POST /v1/single-use-token/{token_type}`` issues."""

TOKEN_ROUTES: dict[str, str] = {"/v1/speech-to-text": "batch_scribe"}
"""HTTP routes that take a single-use token (``?token=``) in place of a key, and its kind."""

_TOKEN_TTL_SECONDS = 15 * 60


@dataclass
class SingleUseToken:
    """A token standing in for the key that asked for it: one use, one kind, 15 minutes."""

    token_type: str
    api_key: str | None
    expires_at: float


def _token_store(app: Any) -> dict[str, SingleUseToken]:
    tokens: dict[str, SingleUseToken] | None = getattr(app.state, "single_use_tokens", None)
    if tokens is None:
        tokens = {}
        app.state.single_use_tokens = tokens
    now = time.monotonic()
    for token in [t for t, item in tokens.items() if item.expires_at < now]:
        del tokens[token]
    return tokens


def issue_single_use_token(app: Any, token_type: str, api_key: str | None) -> str:
    """A new token of ``token_type`` for the holder of ``api_key``."""
    token = "sutkn_" + secrets.token_urlsafe(24)
    _token_store(app)[token] = SingleUseToken(
        token_type, api_key, time.monotonic() + _TOKEN_TTL_SECONDS
    )
    return token


def redeem_single_use_token(app: Any, token: str, token_type: str) -> SingleUseToken | None:
    """Uses up ``token``; None when it is unknown, expired, used or of another kind."""
    issued = _token_store(app).pop(token, None)
    return issued if issued is not None and issued.token_type == token_type else None


def _http_caller_key(
    connection: HTTPConnection, config: EngineConfig, api_key: str | None
) -> str | None:
    """The key an HTTP request acts with: its own, or the one behind its single-use token.

    Raises 401 ``invalid_api_key`` when the engine requires a key and neither lets it in.
    """
    token_type = TOKEN_ROUTES.get(connection.url.path)
    token = connection.query_params.get("token") if token_type and not api_key else None
    if token and token_type:
        issued = redeem_single_use_token(connection.app, token, token_type)
        if issued is None and config.auth_required:
            raise api_error(
                401,
                "invalid_api_key",
                f"The single-use token is unknown, expired or already used: ask for a new one "
                f"with POST /v1/single-use-token/{token_type}.",
            )
        return issued.api_key if issued is not None else None
    if not check_api_key(config, api_key):
        if not api_key:
            message = "No API key was sent: pass your key in the xi-api-key header."
        else:
            message = "Invalid API key"
        raise api_error(401, "invalid_api_key", message)
    return api_key


def authenticate(connection: HTTPConnection) -> RequestContext:
    """FastAPI dependency: check ``xi-api-key`` and return the request's context.

    With keys configured, a missing or unknown key is answered 401 ``invalid_api_key``. The
    routes of :data:`TOKEN_ROUTES` also take a single-use token of their kind as ``?token=``
    (without a key), used up by the request. WebSocket routes are let through: they
    authenticate themselves (header, query or first message) with :func:`check_api_key`.
    """
    existing = connection.scope.get("state", {}).get("context")
    if isinstance(existing, RequestContext):
        return existing
    config: EngineConfig = connection.app.state.config
    api_key = connection.headers.get("xi-api-key") or None
    rid = request_id_of(connection)
    if connection.scope["type"] == "http":
        api_key = _http_caller_key(connection, config, api_key)
    context = RequestContext(request_id=rid, api_key=api_key, key_id=key_id(api_key))
    connection.scope.setdefault("state", {})["context"] = context
    return context


def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the context :func:`authenticate` stored (authenticating if needed)."""
    return authenticate(request)


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        exc.body(request_id_of(request)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    rid = request_id_of(request)
    if isinstance(exc.detail, dict):
        # Already an ElevenLabs-shaped detail: pass it through, adding the request id.
        detail = {"request_id": rid, **exc.detail}
        content: dict[str, Any] = {"detail": detail}
    else:
        status = _GENERIC_STATUSES.get(exc.status_code, "server_error")
        content = error_body(
            status,
            str(exc.detail),
            request_id=rid,
            error_type=_error_type(exc.status_code),
        )
    return JSONResponse(content, status_code=exc.status_code, headers=exc.headers)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {key: value for key, value in error.items() if key != "url"} for error in exc.errors()
    ]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id_of(request)
    logger.error("request %s failed: %r", rid, exc, exc_info=exc)
    return JSONResponse(
        error_body(
            "internal_server_error",
            "The local engine failed to handle this request; see its log for details.",
            request_id=rid,
            error_type="server_error",
        ),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the ElevenLabs body shape."""
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)


async def wire_entry(
    scope: Scope, receive: Receive, send: Send, *, app: ASGIApp, max_body_bytes: int
) -> None:
    """Outermost layer of the engine's ASGI app.

    Gives each HTTP request its id (``request-id`` header on every response), keeps the
    server's own ``send`` in the scope for fault injection, and refuses bodies over
    ``max_body_bytes`` with 413 before they are read into memory or spooled to disk.
    """
    if scope["type"] != "http":
        if scope["type"] == "websocket":
            scope.setdefault("state", {}).setdefault("request_id", uuid.uuid4().hex)
            scope[RAW_SEND_KEY] = send
        await app(scope, receive, send)
        return

    rid = uuid.uuid4().hex
    scope.setdefault("state", {})["request_id"] = rid
    scope[RAW_SEND_KEY] = send
    rid_header = (REQUEST_ID_HEADER.encode(), rid.encode())

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == rid_header[0] for name, _ in headers):
                headers.append(rid_header)
            message["headers"] = headers
        await send(message)

    declared = _content_length(scope)
    if declared is not None and declared > max_body_bytes:
        await _send_too_large(send_with_id, rid, max_body_bytes, receive)
        return

    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body_bytes:
                raise _too_large(max_body_bytes)
        return message

    await app(scope, limited_receive, send_with_id)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(max_body_bytes: int) -> ApiError:
    megabytes = max_body_bytes / (1024 * 1024)
    return api_error(
        413,
        "payload_too_large",
        f"The request body is larger than this engine accepts ({megabytes:.3g} MB); "
        "send a smaller file or raise max_upload_mb.",
    )


async def _send_too_large(send: Send, rid: str, max_body_bytes: int, receive: Receive) -> None:
    error = _too_large(max_body_bytes)
    response = JSONResponse(error.body(rid), status_code=413)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [*response.raw_headers, (b"connection", b"close")],
        }
    )
    # The answer goes out at once, but the response stays open while the body the client is
    # still sending is read and dropped: closing now would reset the connection under a client
    # that reads only after uploading (httpx, requests), which would then see a dropped
    # connection (and retry the upload) instead of this 413.
    await send({"type": "http.response.body", "body": response.body, "more_body": True})
    await _discard_body(receive, _DRAIN_LIMIT_BYTES)
    await send({"type": "http.response.body", "body": b""})


_DRAIN_LIMIT_BYTES = 1024 * 1024 * 1024
"""Most of an oversized body read and dropped before the connection is closed under it."""


async def _discard_body(receive: Receive, limit: int) -> None:
    """Reads the request body without keeping it, until it ends, the client leaves or
    ``limit`` bytes went by."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
