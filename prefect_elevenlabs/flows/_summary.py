"""What a batch flow returns: one outcome per item, and the error raised when some failed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import QuotaExceededError

ItemStatus = Literal["completed", "failed", "skipped"]


class ItemOutcome(BaseModel):
    """How one item of a batch (an input file, a script, a language, a prompt) went."""

    id: str = Field(description="The item: a script id, an input path, a language code...")
    status: ItemStatus = "completed"
    outputs: list[str] = Field(default_factory=list, description="Files written for the item.")
    characters: int = Field(default=0, description="Characters (credits) its calls were billed.")
    duration_s: float | None = Field(default=None, description="Length of its main output.")
    error: str | None = Field(default=None, description="Why it failed.")
    details: dict[str, Any] = Field(default_factory=dict)


class RunSummary(BaseModel):
    """The result of a batch flow: every item's outcome plus totals.

    Example:
        ```python
        summary = narrate(scripts, output_dir="audio")
        for item in summary.items:
            print(item.id, item.status, item.outputs)
        ```
    """

    flow: str
    output_dir: str
    items: list[ItemOutcome] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list, description="Extra files (indexes).")

    @property
    def failed(self) -> list[ItemOutcome]:
        """The items that failed."""
        return [item for item in self.items if item.status == "failed"]

    @property
    def succeeded(self) -> list[ItemOutcome]:
        """The items that completed."""
        return [item for item in self.items if item.status == "completed"]

    @property
    def characters(self) -> int:
        """Characters billed across the batch (cached items count what they cost first)."""
        return sum(item.characters for item in self.items)

    @property
    def outputs(self) -> list[str]:
        """Every file written, item by item, then the extra files."""
        files = [path for item in self.items for path in item.outputs]
        return files + list(self.artifacts)

    def table(self) -> list[dict[str, Any]]:
        """Rows for a Prefect table artifact."""
        return [
            {
                "item": item.id,
                "status": item.status,
                "outputs": ", ".join(_name(p) for p in item.outputs),
                "duration_s": round(item.duration_s, 2) if item.duration_s is not None else None,
                "characters": item.characters,
                "error": item.error or "",
            }
            for item in self.items
        ]


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


class ItemsFailedError(Exception):
    """Some items of a batch failed; the others completed and their outputs are in place.

    ``failed`` names the items (with ``summary.failed`` holding their errors) and ``summary`` is
    the full :class:`RunSummary`, so a caller can report or retry exactly what is missing.
    """

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.message = message
        self.summary = summary

    @property
    def failed(self) -> list[str]:
        """The ids of the failed items."""
        return [item.id for item in self.summary.failed]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.summary))

    @classmethod
    def from_summary(cls, summary: RunSummary, what: str = "items") -> ItemsFailedError:
        """The error for a summary with failures, naming each failed item and why."""
        failed = summary.failed
        lines = [f"{len(failed)} of {len(summary.items)} {what} failed:"]
        lines += [f"  - {item.id}: {item.error}" for item in failed]
        return cls("\n".join(lines), summary)


def raise_for_failures(
    summary: RunSummary, what: str = "items", stopped_by: QuotaExceededError | None = None
) -> RunSummary:
    """Returns ``summary`` when every item completed, else raises :class:`ItemsFailedError`.

    A batch ``stopped_by`` the account running out of credits raises
    :class:`~prefect_elevenlabs.errors.QuotaExceededError` instead, listing what is done and
    what is not.
    """
    if stopped_by is not None:
        raise quota_ran_out(summary, stopped_by, what)
    if summary.failed:
        raise ItemsFailedError.from_summary(summary, what)
    return summary


def describe_error(exc: BaseException) -> str:
    """A one-line reason for an item's failure, without a traceback."""
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0] if text else type(exc).__name__
    known = type(exc).__module__.startswith("prefect_elevenlabs")
    return first if known else f"{type(exc).__name__}: {first}"


NOT_STARTED_FOR_QUOTA = "not started: the account's credits ran out during the batch"
_MISSING_LISTED = 100  # ids named in the message; a batch of thousands would flood the logs


def quota_ran_out(
    summary: RunSummary, cause: QuotaExceededError, what: str = "items"
) -> QuotaExceededError:
    """The error ending a batch that ran out of credits: what is done, where, what is not."""
    completed = [item.id for item in summary.succeeded]
    missing = [item.id for item in summary.items if item.status != "completed"]
    listed = ", ".join(missing[:_MISSING_LISTED])
    if len(missing) > _MISSING_LISTED:
        listed += f" and {len(missing) - _MISSING_LISTED} more (the error's .missing has all)"
    message = (
        f"the account ran out of credits mid-batch: {len(completed)} of {len(summary.items)} "
        f"{what} completed, their files are in {summary.output_dir}; {len(missing)} not done: "
        f"{listed}. Add credits (or raise the quota) and run the same batch again: completed "
        f"{what} are not generated again. First refusal: {cause.message}"
    )
    return QuotaExceededError(
        message,
        completed=completed,
        missing=missing,
        output_dir=summary.output_dir,
        summary=summary,
        status_code=cause.status_code,
        status=cause.status,
        request_id=cause.request_id,
        body=cause.body,
    )
