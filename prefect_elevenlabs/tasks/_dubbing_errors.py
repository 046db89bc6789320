"""Errors of the dubbing tasks: a job that failed, and a job that did not finish in time."""

from __future__ import annotations

from typing import Any

from ..errors import ElevenLabsError

__all__ = ["DubbingFailedError", "DubbingTimeoutError"]


class DubbingFailedError(ElevenLabsError):
    """The dubbing job ended with status ``failed``; the message carries the job's own error."""

    def __init__(
        self,
        message: str,
        *,
        dubbing_id: str | None = None,
        job_error: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("status", "dubbing_failed")
        super().__init__(message, **kwargs)
        self.dubbing_id = dubbing_id
        self.job_error = job_error

    def _extra_state(self) -> dict[str, Any]:
        return {"dubbing_id": self.dubbing_id, "job_error": self.job_error}


class DubbingTimeoutError(ElevenLabsError):
    """The dubbing job was still running when the wait ran out; the job itself goes on."""

    def __init__(
        self,
        message: str,
        *,
        dubbing_id: str | None = None,
        waited_s: float | None = None,
        last_status: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("status", "dubbing_timeout")
        super().__init__(message, **kwargs)
        self.dubbing_id = dubbing_id
        self.waited_s = waited_s
        self.last_status = last_status

    def _extra_state(self) -> dict[str, Any]:
        return {
            "dubbing_id": self.dubbing_id,
            "waited_s": self.waited_s,
            "last_status": self.last_status,
        }
