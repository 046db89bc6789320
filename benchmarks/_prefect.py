"""Running benchmark flows: an isolated Prefect home, quiet logs, credentials for an engine.

Call :func:`configure_prefect` before Prefect is imported; the benchmark modules import Prefect
only inside their functions for that reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect_elevenlabs.blocks import ElevenLabsCredentials

__all__ = ["BENCH_API_KEY", "DEFAULT_PREFECT_HOME", "configure_prefect", "credentials_for"]

BENCH_API_KEY = "benchmark-key"
"""Sent as ``xi-api-key``; the benchmark engines accept any key."""

DEFAULT_PREFECT_HOME = Path.home() / ".cache" / "prefect-elevenlabs" / "bench-prefect-home"
"""Where benchmark flow runs are recorded unless ``PREFECT_HOME`` is already set. Kept between
runs so only the first run pays for creating Prefect's database."""


def configure_prefect() -> None:
    """Points Prefect at a home of its own (so a profile's remote API is never used by
    accident; an explicit ``PREFECT_API_URL`` still wins) and keeps run logs to warnings."""
    if "PREFECT_HOME" not in os.environ:
        DEFAULT_PREFECT_HOME.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(DEFAULT_PREFECT_HOME)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")
    # A busy two-core machine can take longer than Prefect's default 20 s to start its API.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def credentials_for(base_url: str, *, max_concurrency: int | None = 5) -> ElevenLabsCredentials:
    """Credentials pointing at a benchmark engine."""
    from prefect_elevenlabs.blocks import ElevenLabsCredentials

    return ElevenLabsCredentials(
        api_key=BENCH_API_KEY,  # type: ignore[arg-type]  # pydantic turns it into a SecretStr
        base_url=base_url,
        max_concurrency=max_concurrency,
    )
