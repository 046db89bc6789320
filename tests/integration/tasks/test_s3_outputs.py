"""Outputs written to ``s3://`` through s3fs, against an S3-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect import flow

from prefect_elevenlabs.tasks import text_to_speech

from .conftest import FAST_VOICE, decode, fresh_credentials, subscription

s3fs = pytest.importorskip("s3fs", reason="s3:// outputs need the s3fs package")
moto_server = pytest.importorskip("moto.server", reason="the S3 test server needs moto[server]")

pytestmark = pytest.mark.usefixtures("prefect_server")

BUCKET = "narrations"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> s3fs.S3FileSystem:
    """An empty bucket; s3fs finds the server and its credentials in the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if fs.exists(BUCKET):
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()


def test_speech_lands_in_s3_and_a_rerun_is_cached_until_the_object_is_deleted(engine, bucket):
    credentials = fresh_credentials(engine)
    text = "Stored in a bucket."
    target = f"s3://{BUCKET}/episode-1"

    @flow
    def narrate():
        return text_to_speech(
            text, credentials, voice_id=FAST_VOICE, output_dir=target, return_state=True
        )

    first = narrate()
    asset = first.result()
    assert asset.uri.startswith(f"{target}/") and asset.uri.endswith(".mp3")
    key = asset.uri.removeprefix("s3://")
    assert bucket.ls(f"{BUCKET}/episode-1") == [key]  # no temporary object left behind
    assert decode(asset.uri).duration > 0.5

    again = narrate()
    assert again.name == "Cached"
    assert subscription(engine, credentials)["character_count"] == len(text)

    bucket.rm(key)
    bucket.invalidate_cache()
    regenerated = narrate()
    assert regenerated.name == "Completed"
    assert bucket.exists(key)
    assert subscription(engine, credentials)["character_count"] == 2 * len(text)
