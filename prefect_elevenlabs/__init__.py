"""Prefect integration for ElevenLabs: blocks, tasks, flows and an offline engine.

The credentials block is re-exported here so that ``prefect block register -m prefect_elevenlabs``
and the server's automatic registration (the ``prefect.collections`` entry point) find it.
"""

from ._version import __version__
from .blocks import ElevenLabsCredentials
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
