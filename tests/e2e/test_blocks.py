"""The credentials block type on a real Prefect server: registered by the server itself through
the package's ``prefect.collections`` entry point, and by ``prefect block register``."""

from __future__ import annotations

from typing import Any

from .conftest import PrefectServer

SLUG = "elevenlabs-credentials"


def _block_type(server: PrefectServer) -> dict[str, Any] | None:
    response = server.request("GET", f"block_types/slug/{SLUG}")
    return response.json() if response.status_code == 200 else None


def _schema_fields(server: PrefectServer, block_type_id: str) -> dict[str, Any]:
    schemas = server.request(
        "POST",
        "block_schemas/filter",
        {"block_schemas": {"block_type_id": {"any_": [block_type_id]}}},
    ).json()
    assert schemas, f"the {SLUG} block type has no schema on the server"
    return dict(schemas[0]["fields"])


def _assert_documented(block_type: dict[str, Any]) -> None:
    assert block_type["name"] == "ElevenLabs Credentials"
    assert block_type["description"].startswith("Credentials and connection settings")
    # The code example is what the UI shows on the block's page: a load call and local mode.
    assert 'ElevenLabsCredentials.load("BLOCK_NAME")' in block_type["code_example"]
    assert 'base_url="local"' in block_type["code_example"]
    assert block_type["documentation_url"].startswith("https://")


def test_the_server_registers_the_block_type_by_itself(prefect_server: PrefectServer) -> None:
    """Before any client registered anything, the server had loaded the package through its
    ``prefect.collections`` entry point and registered the block type while starting."""
    at_start = {b["slug"]: b for b in prefect_server.block_types_at_start}
    assert "secret" in at_start, "the server registered no block types at all"
    assert SLUG in at_start, (
        f"{SLUG} was not registered when the server started; registered: {sorted(at_start)}. "
        "The prefect.collections entry point must import the module defining the block."
    )
    _assert_documented(at_start[SLUG])

    fields = _schema_fields(prefect_server, at_start[SLUG]["id"])
    assert fields["secret_fields"] == ["api_key"]
    properties = fields["properties"]
    assert {"api_key", "base_url", "timeout", "max_retries", "max_concurrency"} <= set(properties)
    assert properties["api_key"]["title"] == "API Key"
    assert "xi-api-key" in properties["api_key"]["description"]


def test_prefect_block_register_registers_it_again(prefect_server: PrefectServer) -> None:
    """``prefect block register -m prefect_elevenlabs`` (the way to register on Prefect Cloud)
    brings back a block type that the server no longer has."""
    existing = _block_type(prefect_server)
    if existing is not None:
        deleted = prefect_server.request("DELETE", f"block_types/{existing['id']}")
        assert deleted.status_code == 204, deleted.text
    assert _block_type(prefect_server) is None

    result = prefect_server.prefect("block", "register", "-m", "prefect_elevenlabs")
    assert "ElevenLabs Credentials" in result.stdout

    registered = _block_type(prefect_server)
    assert registered is not None, f"still no {SLUG} after the CLI said:\n{result.stdout}"
    _assert_documented(registered)
    assert _schema_fields(prefect_server, registered["id"])["secret_fields"] == ["api_key"]
