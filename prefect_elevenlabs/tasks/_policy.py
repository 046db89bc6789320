"""What every task shares: the retry rule, the credit-saving cache and the request guard.

Two layers of retry: the client retries flow control and server faults inside one call
(honouring Retry-After); Prefect's task retries, visible in the UI, are the outer layer for what
outlives those attempts. ``retry_unless_permanent`` stops the outer layer from retrying errors
that cannot succeed (bad input, auth, quota).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

# Maps a task's inputs to the URI (or URIs) it writes; None when it cannot tell.
ExpectedUris = Callable[[dict[str, Any]], "str | list[str] | None"]

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
class OutputsPresentCache(CachePolicy):
    """A cache policy whose hits last only while the task's output files still exist.

    The key is ``base``'s key, the same before and after the outputs are written. When an
    expected output is missing, the record stored under that key is marked expired before
    Prefect looks it up, so the task runs again and its new result replaces the record; the
    next run hits again. (A key that changed with the files' presence would store the first
    result under the "missing" key and miss on the second run.)
    """

    base: CachePolicy | None = None
    expected_uris: ExpectedUris | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.base is None:
            return None
        key = self.base.compute_key(
            task_ctx=task_ctx, inputs=inputs, flow_parameters=flow_parameters, **kwargs
        )
        if key is None or self.expected_uris is None:
            return key
        try:
            uris = self.expected_uris(inputs)
            if isinstance(uris, str):
                uris = [uris]
            present = all(_storage.exists(uri) for uri in uris or [])
        except Exception:
            present = False
        if not present:
            _expire_record(task_ctx, key)
        return key


def _expire_record(task_ctx: TaskRunContext | None, key: str) -> None:
    store = getattr(task_ctx, "result_store", None)
    if store is None:
        return
    try:
        if store.exists(key):
            store.write(None, key=key, expiration=datetime.now(UTC) - timedelta(seconds=1))
    except Exception as exc:  # a failed clean-up only costs a regeneration later
        run_logger().debug("could not expire cache record %s: %s", key, exc)


def generation_cache(expected_uris: ExpectedUris | None = None) -> CachePolicy:
    """The cache policy of generation tasks: inputs minus credentials and the cache version,
    valid while every file ``expected_uris(inputs)`` names (one URI or a list) still exists."""
    return OutputsPresentCache(
        base=(INPUTS - "credentials") + _Constant(), expected_uris=expected_uris
    )


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
