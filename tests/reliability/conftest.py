"""Fixtures of the reliability tests: engines in this process, Prefect, file snapshots.

Engines started here live in a daemon thread of the test process (``start_in_thread``) with a
fresh data dir each, and hold :data:`~tests.reliability.report.FAST_VOICE_ID`, an espeak-ng
voice cheap enough for batches. Measurements that need a separate engine process use
:class:`~tests.reliability.report.EngineProcess` directly.

The ``slow`` marker tags measurements that take a minute or more; CI runs them all, and
``pytest -m "not slow"`` leaves them out while iterating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_elevenlabs.local.config import EngineConfig
from prefect_elevenlabs.local.server import EngineHandle, start_in_thread

from .report import install_fast_voice


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: reliability measurement taking a minute or more (CI runs it)"
    )


@pytest.fixture(scope="session")
def start_engine(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., EngineHandle]]:
    """Factory: ``start_engine(**EngineConfig fields)`` -> a running in-process engine.

    ``data_dir`` may be given to reuse an earlier engine's state (stop that one first).
    """
    started: list[EngineHandle] = []

    def start(**fields: Any) -> EngineHandle:
        data_dir = Path(fields.pop("data_dir", None) or tmp_path_factory.mktemp("engine"))
        install_fast_voice(data_dir)
        handle = start_in_thread(EngineConfig(data_dir=data_dir, port=0, **fields))
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
