"""When to retry a failed call and how long to wait first."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import (
    ConnectionFailedError,
    ElevenLabsError,
    RateLimitError,
    ServerError,
    TimeoutError,
)

RETRYABLE_ERRORS: tuple[type[ElevenLabsError], ...] = (
    RateLimitError,
    ServerError,
    ConnectionFailedError,
    TimeoutError,
)


def is_retryable(error: BaseException) -> bool:
    """Whether a failure is worth another attempt (flow control, server faults, dropped links)."""
    return isinstance(error, RETRYABLE_ERRORS)


@dataclass
class RetryPolicy:
    """Bounded, jittered exponential backoff that defers to the server's ``Retry-After``.

    ``max_retries`` counts retries after the first attempt. The wait before retry ``n`` (0-based)
    is ``Retry-After`` when the server sent one (capped at ``max_retry_after``), else
    ``initial_backoff * 2**n`` capped at ``max_backoff``, spread by +/- ``jitter`` so that many
    workers throttled together do not return together.
    """

    max_retries: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after)
        base = min(self.initial_backoff * (2**retry_number), self.max_backoff)
        spread = base * self.jitter
        return max(0.0, base + self.rng.uniform(-spread, spread))


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
