"""An in-process concurrency cap that holds across threads and event loops.

Prefect runs async tasks of a sync flow on worker threads, each with its own event loop, so an
``asyncio.Semaphore`` (bound to one loop) cannot cap requests for a whole process. This one keeps
its count under a thread lock and wakes waiters on their own loops.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType


class ConcurrencyLimiter:
    """Caps concurrent holders at ``limit`` (``None``: no cap); FIFO across loops and threads."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(
                f"max_concurrency must be at least 1 (or None for no cap), got {limit}"
            )
        self.limit = limit
        self._lock = threading.Lock()
        self._in_use = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def in_use(self) -> int:
        return self._in_use

    async def acquire(self) -> None:
        if self.limit is None:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_use < self.limit and not self._waiters:
                self._in_use += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
                    raise
            # The slot was handed to us just as we were cancelled: pass it on.
            self.release()
            raise

    def release(self) -> None:
        if self.limit is None:
            return
        with self._lock:
            while self._waiters:
                loop, future = self._waiters.popleft()
                if loop.is_closed():
                    continue
                # The slot moves straight to the waiter, so _in_use stays the same.
                loop.call_soon_threadsafe(_resolve, future)
                return
            self._in_use -= 1

    async def __aenter__(self) -> ConcurrencyLimiter:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
    else:
        # Cancelled before the hand-over ran; its acquire() path already released.
        pass
