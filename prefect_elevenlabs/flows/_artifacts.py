"""The summary artifact every batch flow publishes: one row per item with its status."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from ..tasks._policy import run_logger
from ..tasks.artifacts import artifact_key
from ._summary import RunSummary


def publish_summary(summary: RunSummary, key: str, title: str) -> UUID | None:
    """Publishes ``summary`` as a table artifact (item, status, files, duration, characters).

    Failures to publish are logged, never raised: a report must not fail the batch.
    """
    from prefect.artifacts import create_table_artifact

    failed = len(summary.failed)
    description = (
        f"**{title}**: {len(summary.items) - failed} of {len(summary.items)} completed"
        + (f", {failed} failed" if failed else "")
        + f"; {summary.characters} characters; output in `{summary.output_dir}`"
    )
    try:
        # _sync forces the blocking implementation even when called from async code.
        artifact_id: Any = create_table_artifact(
            table=summary.table(),
            key=artifact_key(key),
            description=description,
            _sync=True,  # type: ignore[call-arg]
        )
        return cast(UUID, artifact_id)
    except Exception as exc:
        run_logger().warning("could not publish the %s summary artifact: %s", title, exc)
        return None
