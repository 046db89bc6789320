"""The API key never leaves the request header: not in logs, artifacts, results or errors."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from pathlib import Path

import pytest

from .report import count_secret, measure_secret_exposure, secret_patterns

CANARY = "sk_canary_" + secrets.token_hex(16)

SOURCES = (
    "log records",
    "Prefect API logs",
    "Prefect API artifacts",
    "Prefect API flow runs",
    "Prefect API task runs",
    "exceptions, results and reprs",
    "result storage",
    "Prefect database",
    "output files",
)


def test_the_patterns_find_the_key_in_every_encoding() -> None:
    patterns = secret_patterns(CANARY)
    for shift in range(3):
        hidden = base64.b64encode(b"x" * shift + CANARY.encode() + b"tail")
        assert count_secret(hidden, patterns) >= 1
        assert count_secret(base64.urlsafe_b64encode(b"x" * shift + CANARY.encode()), patterns)
    assert count_secret(json.dumps({"key": CANARY}), patterns) == 1
    assert count_secret(CANARY.encode().hex(), patterns) == 1
    assert count_secret("nothing to see " + CANARY[:-1], patterns) == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.usefixtures("prefect_server")
def test_every_flow_runs_with_the_key_and_leaves_it_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scan = measure_secret_exposure(tmp_path, CANARY)

    assert scan.flows == {
        "narrate": "completed",
        "transcribe": "completed",
        "dub (compose)": "completed",
        "dub (dubbing_api)": "completed",
        "sound_design": "completed",
        "design_voice_flow": "completed",
        "narrate (wrong key)": "AuthenticationError",
    }
    for source in SOURCES:
        assert scan.scanned.get(source, 0) > 0, f"nothing was scanned in {source}"
    assert {name: hits for name, hits in scan.occurrences.items() if hits} == {}
    every = secret_patterns(CANARY) + secret_patterns(CANARY[::-1])
    assert caplog.records, "caplog saw no records, so it proves nothing"
    assert count_secret(caplog.text, every) == 0
