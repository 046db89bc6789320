"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest

# Keep any developer profile or real key out of the tests.
os.environ.pop("ELEVENLABS_API_KEY", None)
os.environ.pop("ELEVENLABS_BASE_URL", None)


@pytest.fixture(scope="session")
def prefect_server():
    """A throwaway Prefect API (SQLite in a temp dir) for tests that run flows or save blocks.

    Started once per session: it takes about 15 s on this class of machine.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
