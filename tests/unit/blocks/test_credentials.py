"""The credentials block: settings, environment fallbacks, secrets and client sharing."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from pydantic import ValidationError

from prefect_elevenlabs import ConfigurationError, ElevenLabsCredentials

CANARY = "sk_canary_5f1b9e2d7c"


def test_key_never_in_repr_str_or_dump():
    creds = ElevenLabsCredentials(api_key=CANARY)
    assert CANARY not in repr(creds)
    assert CANARY not in str(creds)
    assert CANARY not in creds.model_dump_json()
    assert CANARY not in repr(creds.model_dump())


def test_missing_key_error_names_all_three_fixes(monkeypatch):
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("ELEVENLABS_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        ElevenLabsCredentials().get_client()
    message = str(info.value)
    assert "api_key" in message
    assert "ELEVENLABS_API_KEY" in message
    assert "base_url='local'" in message


def test_environment_fallbacks(monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", CANARY)
    monkeypatch.setenv("ELEVENLABS_BASE_URL", "https://api.eu.residency.elevenlabs.io/")
    creds = ElevenLabsCredentials()
    assert creds.resolved_base_url() == "https://api.eu.residency.elevenlabs.io"
    client = creds.get_client()
    assert client.transport.base_url == "https://api.eu.residency.elevenlabs.io"
    assert CANARY not in repr(client)


def test_field_wins_over_environment(monkeypatch):
    monkeypatch.setenv("ELEVENLABS_BASE_URL", "https://api.us.elevenlabs.io")
    creds = ElevenLabsCredentials(api_key="k", base_url="http://127.0.0.1:8011")
    assert creds.resolved_base_url() == "http://127.0.0.1:8011"


@pytest.mark.parametrize("bad", ["ftp://host", "not a url", "api.elevenlabs.io", "http://"])
def test_malformed_base_url_is_rejected(bad):
    with pytest.raises(ValidationError, match="base_url"):
        ElevenLabsCredentials(api_key="k", base_url=bad)


def test_malformed_base_url_from_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("ELEVENLABS_BASE_URL", "ftp://nowhere")
    with pytest.raises(ConfigurationError, match="ELEVENLABS_BASE_URL"):
        ElevenLabsCredentials(api_key="k").resolved_base_url()


def test_limits_are_validated():
    with pytest.raises(ValidationError):
        ElevenLabsCredentials(api_key="k", max_concurrency=0)
    with pytest.raises(ValidationError):
        ElevenLabsCredentials(api_key="k", timeout=0)
    with pytest.raises(ValidationError):
        ElevenLabsCredentials(api_key="k", max_retries=-1)


def test_one_client_per_loop_and_one_limiter_per_process():
    creds = ElevenLabsCredentials(api_key="k", base_url="http://127.0.0.1:9", max_concurrency=3)
    seen = {}

    async def grab(name):
        first, second = creds.get_client(), creds.get_client()
        assert first is second
        seen[name] = first

    asyncio.run(grab("a"))
    thread = threading.Thread(target=lambda: asyncio.run(grab("b")))
    thread.start()
    thread.join()
    assert seen["a"] is not seen["b"]
    assert seen["a"].transport.limiter is seen["b"].transport.limiter
    assert seen["a"].transport.limiter.limit == 3


def test_different_keys_do_not_share_a_client():
    async def grab():
        a = ElevenLabsCredentials(api_key="k1", base_url="http://127.0.0.1:9").get_client()
        b = ElevenLabsCredentials(api_key="k2", base_url="http://127.0.0.1:9").get_client()
        return a, b

    a, b = asyncio.run(grab())
    assert a is not b


def test_logging_the_block_does_not_leak(caplog):
    creds = ElevenLabsCredentials(api_key=CANARY)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("creds %r / %s / %s", creds, creds, creds.api_key)
    assert CANARY not in caplog.text


def test_a_finished_event_loop_closes_its_clients_and_is_forgotten():
    # Prefect runs each async task of a sync flow under asyncio.run on a loop of its own; the
    # registry must neither keep those loops (and their sockets) alive nor leave pools open.
    from prefect_elevenlabs.blocks import credentials as module

    creds = ElevenLabsCredentials(api_key="k", base_url="http://127.0.0.1:9")
    handed_out = []

    async def grab():
        client = creds.get_client()
        assert creds.get_client() is client
        assert asyncio.get_running_loop() in module._clients
        handed_out.append(client)

    for _ in range(30):
        asyncio.run(grab())

    assert len(module._clients) == 0
    assert len({id(c) for c in handed_out}) == 30
    assert all(c.transport._http.is_closed for c in handed_out)


def test_a_loop_closed_by_hand_is_dropped_on_the_next_call():
    from prefect_elevenlabs.blocks import credentials as module

    creds = ElevenLabsCredentials(api_key="k", base_url="http://127.0.0.1:9")
    loop = asyncio.new_event_loop()

    async def grab():
        return creds.get_client()

    loop.run_until_complete(grab())
    loop.close()  # without shutdown_asyncgens(): the loop never ran the closing generator
    assert loop in module._clients

    asyncio.run(grab())
    assert loop not in module._clients
    assert len(module._clients) == 0
