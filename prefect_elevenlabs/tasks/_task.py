"""The ``task`` decorator of this package: Prefect's, plus direct calls from sync code.

Prefect 3.8 returns an un-awaited coroutine when an async task is called directly from a sync
flow, although its own docs say the call runs the task. Sync flows are what many users write
(and what ``prefect deploy`` templates produce), so our async tasks finish the job themselves:
when the nearest Prefect-run function up the call stack is a sync flow or sync task, with no
coroutine in between that could await the result, the coroutine is run to completion and its
value returned. Everywhere else (async flows, ``asyncio.gather`` over task calls, calls outside a
flow) the coroutine is handed back unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext
from prefect.tasks import Task
from prefect.utilities.asyncutils import run_coro_as_sync

_ASYNC_FRAMES = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


class SyncCallableTask(Task[Any, Any]):
    """A Prefect task whose async function also runs when called directly from sync code."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        outcome = super().__call__(*args, **kwargs)
        if inspect.iscoroutine(outcome) and _caller_is_sync(inspect.currentframe()):
            return run_coro_as_sync(outcome)
        return outcome

    def with_options(self, *args: Any, **kwargs: Any) -> Any:
        # Prefect's with_options builds a plain Task; keep the behaviour above on the copy.
        copy = super().with_options(*args, **kwargs)
        copy.__class__ = type(self)
        return copy


def _sync_owners() -> set[CodeType]:
    owners: set[CodeType] = set()
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow is not None and not flow_ctx.flow.isasync:
        owners.add(flow_ctx.flow.fn.__code__)
    task_ctx = TaskRunContext.get()
    if task_ctx is not None and not task_ctx.task.isasync:
        owners.add(task_ctx.task.fn.__code__)
    return owners


def _caller_is_sync(here: FrameType | None) -> bool:
    owners = _sync_owners()
    if not owners or here is None:
        return False
    frame = here.f_back
    while frame is not None:
        if frame.f_code.co_flags & _ASYNC_FRAMES:
            return False
        if frame.f_code in owners:
            return True
        frame = frame.f_back
    return False


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Prefect's ``@task`` (same options), building a :class:`SyncCallableTask`."""
    if fn is None:
        return lambda function: SyncCallableTask(fn=function, **options)
    return SyncCallableTask(fn=fn, **options)
