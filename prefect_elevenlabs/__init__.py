"""Prefect integration for ElevenLabs: blocks, tasks, flows and an offline engine.

The credentials block is exposed here so that ``prefect block register -m prefect_elevenlabs``
and the server's automatic registration (the ``prefect.collections`` entry point) find it. It is
imported lazily: the client, media helpers and local engine do not need Prefect loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    ElevenLabsError,
    InvalidRequestError,
    MediaError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)

if TYPE_CHECKING:
    from .blocks import ElevenLabsCredentials

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ElevenLabsCredentials",
    "ElevenLabsError",
    "InvalidRequestError",
    "MediaError",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "ElevenLabsCredentials":
        from .blocks import ElevenLabsCredentials

        return ElevenLabsCredentials
    raise AttributeError(f"module 'prefect_elevenlabs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
