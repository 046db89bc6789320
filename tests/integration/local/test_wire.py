"""The wire contract: error bodies, request ids, authentication, body limits, safe ids, serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from elevenlabs.core.api_error import ApiError
from elevenlabs.errors import UnprocessableEntityError
from typer.testing import CliRunner

from prefect_elevenlabs.local.cli import app as cli_app
from prefect_elevenlabs.local.cli import build_config
from prefect_elevenlabs.local.config import EngineConfig
from prefect_elevenlabs.local.server import EngineHandle, start_embedded
from prefect_elevenlabs.local.state import EngineState, InvalidIdError

from .conftest import FAST_TTS, FAST_VOICE_ID, RACHEL, sdk_for

pytestmark = pytest.mark.engine


def _detail(error: ApiError) -> dict:
    assert isinstance(error.body, dict), error.body
    return error.body["detail"]


def test_business_error_has_both_status_and_code_and_the_request_id(client) -> None:
    with pytest.raises(ApiError) as caught:
        client.voices.get("doesNotExist123")
    error = caught.value
    assert error.status_code == 404
    detail = _detail(error)
    assert detail["status"] == detail["code"] == "voice_not_found"
    assert detail["message"] == "A voice with the voice_id doesNotExist123 was not found."
    assert detail["param"] == "voice_id"
    assert detail["type"] == "not_found"
    assert detail["request_id"] == error.headers["request-id"]
    assert len(detail["request_id"]) == 32


def test_schema_validation_is_422_in_fastapi_list_shape(client) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        client.history.list(page_size=0)
    detail = caught.value.body["detail"]
    assert isinstance(detail, list)
    assert detail[0]["loc"] == ["query", "page_size"]
    assert {"loc", "msg", "type"} <= set(detail[0])
    assert caught.value.headers.get("request-id")


def test_every_response_carries_a_fresh_request_id(engine: EngineHandle) -> None:
    with httpx.Client(base_url=engine.base_url) as http:
        responses = [
            http.get("/health"),
            http.get("/v1/models"),
            http.get("/v1/no-such-route"),
            http.delete("/v1/models"),
        ]
    ids = [response.headers["request-id"] for response in responses]
    assert len(set(ids)) == len(ids)
    assert [r.status_code for r in responses] == [200, 200, 404, 405]
    not_found = responses[2].json()["detail"]
    assert not_found["status"] == "not_found"
    assert not_found["request_id"] == ids[2]


def test_generation_headers_and_request_id_match(client) -> None:
    with client.text_to_speech.with_raw_response.convert(FAST_VOICE_ID, **FAST_TTS) as response:
        audio = b"".join(response.data)
        headers = response.headers
    assert audio
    assert headers["character-cost"] == str(len(FAST_TTS["text"]))
    assert len(headers["request-id"]) == 32
    assert headers["history-item-id"]
    assert headers["current-concurrent-requests"] == "1"
    item = client.history.get(headers["history-item-id"])
    assert item.request_id == headers["request-id"]


def test_auth_off_accepts_any_key_or_none(engine: EngineHandle) -> None:
    for key in (None, "anything", "another"):
        models = sdk_for(engine, api_key=key).models.list()
        assert any(m.model_id == "eleven_multilingual_v2" for m in models)


def test_auth_on_requires_a_configured_key(make_engine: Callable[..., EngineHandle]) -> None:
    secured = make_engine(api_keys=["key-one", "key-two"])
    for key, expected in ((None, "No API key was sent"), ("wrong", "Invalid API key")):
        with pytest.raises(ApiError) as caught:
            sdk_for(secured, api_key=key).user.get()
        assert caught.value.status_code == 401
        detail = _detail(caught.value)
        assert detail["status"] == "invalid_api_key"
        assert expected in detail["message"]
    assert sdk_for(secured, api_key="key-two").user.get().subscription.tier == "local"
    # Generation routes are guarded too, and the health check is open.
    with pytest.raises(ApiError) as caught:
        b"".join(sdk_for(secured, api_key="nope").text_to_speech.convert(RACHEL, **FAST_TTS))
    assert caught.value.status_code == 401
    assert httpx.get(f"{secured.base_url}/health").json()["status"] == "ok"


def test_api_keys_come_from_a_comma_separated_env_var(monkeypatch) -> None:
    monkeypatch.setenv("ELEVENLABS_LOCAL_API_KEYS", " alpha, beta ,")
    monkeypatch.setenv("ELEVENLABS_LOCAL_MAX_CONCURRENCY", "3")
    config = EngineConfig()
    assert config.api_keys == ["alpha", "beta"]
    assert config.max_concurrency == 3
    assert config.host == "127.0.0.1"


def test_fault_rates_must_fit_in_one() -> None:
    with pytest.raises(ValueError, match=r"add up to 1\.2"):
        EngineConfig(fault_rate_429=0.7, fault_rate_500=0.5)


def test_bodies_over_the_upload_limit_are_refused(make_engine) -> None:
    small = make_engine(max_upload_mb=0.01)  # about 10 kB
    blob = b"\0" * 20_000
    with pytest.raises(ApiError) as caught:
        sdk_for(small).voices.ivc.create(name="big", files=[("big.wav", blob, "audio/wav")])
    assert caught.value.status_code == 413
    assert _detail(caught.value)["status"] == "payload_too_large"

    # A declared Content-Length over the limit is answered before the body is read.
    host, port = small.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/voices/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream"
            b"\r\nContent-Length: 999999999\r\n\r\n"
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"request-id" in reply.lower()


def test_path_traversal_ids_never_reach_the_file_system(engine: EngineHandle) -> None:
    with httpx.Client(base_url=engine.base_url) as http:
        for path in (
            "/v1/history/..%2F..%2Fetc%2Fpasswd/audio",
            "/v1/history/%2E%2E/audio",
            "/v1/text-to-voice/..%2Fengine.sqlite3/stream",
            "/v1/voices/..%2F..%2Fx",
        ):
            response = http.get(path)
            assert response.status_code in (400, 404), path
            assert response.headers["content-type"] == "application/json", path


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "", "x" * 65, "a.b", "a b", "é"])
def test_safe_path_rejects_anything_but_plain_ids(tmp_path, bad: str) -> None:
    state = EngineState(tmp_path)
    try:
        with pytest.raises(InvalidIdError):
            state.safe_path("history", bad)
        with pytest.raises(InvalidIdError):
            state.safe_path(bad, "abc")
        assert state.safe_path("history", "Ab_9-z").parent == tmp_path / "audio" / "history"
    finally:
        state.close()


def test_openapi_lists_the_routes(engine: EngineHandle) -> None:
    paths = httpx.get(f"{engine.base_url}/openapi.json").json()["paths"]
    for route in (
        "/v1/text-to-speech/{voice_id}",
        "/v1/text-to-speech/{voice_id}/stream/with-timestamps",
        "/v2/voices",
        "/v1/text-to-voice/design",
        "/v1/history",
        "/local/stats",
    ):
        assert route in paths


def test_embedded_engine_starts_once_per_process(tmp_path) -> None:
    first = start_embedded(EngineConfig(data_dir=tmp_path))
    second = start_embedded()
    assert first == second
    assert first.startswith("http://127.0.0.1:")
    assert httpx.get(f"{first}/health").status_code == 200


def test_cli_options_build_the_config(tmp_path) -> None:
    config = build_config(
        api_keys=["a", "b"], data_dir=tmp_path, max_concurrency=2, fault_rate_429=0.5,
        character_quota=None,
    )  # fmt: skip
    assert config.api_keys == ["a", "b"]
    assert config.max_concurrency == 2
    assert config.fault_rate_429 == 0.5
    result = CliRunner().invoke(cli_app, ["serve", "--fault-429", "0.9", "--fault-500", "0.9"])
    assert result.exit_code != 0
    assert "add up to" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_serve_runs_a_real_server(tmp_path) -> None:
    port = _free_port()
    command = [
        sys.executable, "-m", "prefect_elevenlabs.local.cli", "serve",
        "--port", str(port), "--api-key", "cli-key", "--data-dir", str(tmp_path),
        "--log-level", "warning",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEVENLABS_LOCAL_")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the CLI server did not start"
            time.sleep(0.1)
        assert httpx.get(f"{base}/v1/user").status_code == 401
        user = httpx.get(f"{base}/v1/user", headers={"xi-api-key": "cli-key"}).json()
        assert user["subscription"]["status"] == "active"
        assert (tmp_path / "engine.sqlite3").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)
