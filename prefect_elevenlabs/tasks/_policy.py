"""What every task shares: the retry rule, the credit-saving cache and the request guard.

Two layers of retry: the client retries flow control and server faults inside one call
(honouring Retry-After); Prefect's task retries, visible in the UI, are the outer layer for what
outlives those attempts. ``retry_unless_permanent`` stops the outer layer from retrying errors
that cannot succeed (bad input, auth, quota).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import INPUTS, CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger
from prefect.tasks import Task, exponential_backoff

from ..blocks import ElevenLabsCredentials
from ..client._retry import is_retryable
from ..client._transport import log_calls_to
from ..errors import ConfigurationError, ElevenLabsError
from . import _storage

# Bump when the content a cached task produces changes meaning, so old cache entries stop matching.
CACHE_VERSION = "prefect-elevenlabs/1"

DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAYS = exponential_backoff(backoff_factor=5)(DEFAULT_RETRIES)  # 5 s, 10 s
DEFAULT_RETRY_JITTER = 0.5


def retry_unless_permanent(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: yes for rate limits, server faults and dropped connections; no otherwise."""
    try:
        state.result(_sync=True)  # type: ignore[call-overload]
    except ElevenLabsError as error:
        return is_retryable(error)
    except (ValueError, TypeError, KeyError, FileNotFoundError, PermissionError):
        return False
    except Exception:
        return True
    return False


RETRY_OPTIONS: dict[str, Any] = {
    "retries": DEFAULT_RETRIES,
    "retry_delay_seconds": DEFAULT_RETRY_DELAYS,
    "retry_jitter_factor": DEFAULT_RETRY_JITTER,
    "retry_condition_fn": retry_unless_permanent,
}


@dataclass
class _Constant(CachePolicy):
    """Adds a fixed version string to the cache key."""

    value: str = CACHE_VERSION

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return self.value


@dataclass
class _OutputsPresent(CachePolicy):
    """Keeps the key only while the task's output file still exists.

    ``expected_uri`` maps the task's inputs to the URI it will write. When that file is gone the
    key changes, so the cache misses and the file is generated again; the next run matches the
    original key once more and finds the file back in place.
    """

    expected_uri: Callable[[dict[str, Any]], str | None] | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.expected_uri is None:
            return "outputs"
        try:
            uri = self.expected_uri(inputs)
        except Exception:
            uri = None
        if uri is None or _storage.exists(uri):
            return "outputs"
        return f"missing-{uuid.uuid4().hex}"


def generation_cache(
    expected_uri: Callable[[dict[str, Any]], str | None] | None = None,
) -> CachePolicy:
    """The cache policy of generation tasks: inputs minus credentials, the version, the output."""
    return (INPUTS - "credentials") + _Constant() + _OutputsPresent(expected_uri=expected_uri)


def run_logger() -> Any:
    try:
        return get_run_logger()
    except Exception:
        import logging

        return logging.getLogger("prefect_elevenlabs.tasks")


@contextlib.asynccontextmanager
async def api_call(credentials: ElevenLabsCredentials) -> AsyncIterator[Any]:
    """A client for one call: logs to the task run, holds a global concurrency slot if named."""
    client = credentials.get_client()
    logger = run_logger()
    with log_calls_to(logger):
        if credentials.concurrency_limit_name:
            async with _global_slot(credentials.concurrency_limit_name):
                yield client
        else:
            yield client


@contextlib.asynccontextmanager
async def _global_slot(name: str) -> AsyncIterator[None]:
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.asyncio import concurrency

    async with contextlib.AsyncExitStack() as stack:
        try:
            # strict: a missing limit must fail loudly, not silently run unthrottled.
            await stack.enter_async_context(concurrency(name, occupy=1, strict=True))
        except ConcurrencySlotAcquisitionError as exc:
            raise ConfigurationError(
                f"the Prefect global concurrency limit {name!r} (the credentials' "
                "concurrency_limit_name) does not exist or cannot be acquired: create it with "
                f"`prefect gcl create {name} --limit N`, or clear concurrency_limit_name ({exc})",
                status="concurrency_limit_missing",
            ) from exc
        yield
