"""The engine's own translation routes (``/local/translate``), backed by Apertium."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from prefect_elevenlabs.local.server import EngineHandle


def test_translates_every_text_in_order(engine: EngineHandle) -> None:
    texts = ["Good morning.", "", "The children played in the park.", "Where is the house?"]
    response = httpx.post(
        f"{engine.base_url}/local/translate",
        json={"texts": texts, "source": "en", "target": "es"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "en" and body["target"] == "es"
    translated = body["texts"]
    assert len(translated) == len(texts)
    assert translated[0] == "Buenos días."
    assert translated[1] == ""
    assert "parque" in translated[2] and "niños" in translated[2]
    assert "casa" in translated[3]


def test_three_letter_codes_and_the_reverse_direction(engine: EngineHandle) -> None:
    response = httpx.post(
        f"{engine.base_url}/local/translate",
        json={"texts": ["Los niños jugaron en el parque."], "source": "spa", "target": "eng"},
    )
    assert response.status_code == 200
    assert "park" in response.json()["texts"][0]


def test_pairs_lists_the_installed_directions(engine: EngineHandle) -> None:
    pairs = httpx.get(f"{engine.base_url}/local/translate/pairs").json()["pairs"]
    assert {"source": "en", "target": "es"} in pairs
    assert {"source": "es", "target": "en"} in pairs


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"texts": ["Bonjour"], "source": "fr", "target": "de"}, 400, "en->es"),
        ({"texts": ["Hello"], "source": "en", "target": "zz-nope"}, 400, "language code"),
        ({"texts": "Hello", "source": "en", "target": "es"}, 422, "texts"),
        ({"texts": ["x" * 200_001], "source": "en", "target": "es"}, 400, "200000"),
    ],
)
def test_bad_requests_are_refused(
    engine: EngineHandle, body: dict, status: int, expected: str
) -> None:
    response = httpx.post(f"{engine.base_url}/local/translate", json=body)
    assert response.status_code == status, response.text
    assert expected in response.text


def test_requires_the_key_when_keys_are_configured(
    make_engine: Callable[..., EngineHandle],
) -> None:
    guarded = make_engine(api_keys=["secret"])
    body = {"texts": ["Hello"], "source": "en", "target": "es"}
    assert httpx.post(f"{guarded.base_url}/local/translate", json=body).status_code == 401
    allowed = httpx.post(
        f"{guarded.base_url}/local/translate", json=body, headers={"xi-api-key": "secret"}
    )
    assert allowed.status_code == 200 and allowed.json()["texts"] == ["Hola"]
