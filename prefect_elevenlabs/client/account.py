"""The account: models it can use, the user, and the subscription's credit usage."""

from __future__ import annotations

from ..errors import ElevenLabsError
from ._common import Resource, parse
from .models import Model, Subscription, User


class Models(Resource):
    """``/v1/models``: the models available to the account.

    Example:
        ```python
        limits = {m.model_id: m.maximum_text_length_per_request for m in await client.models.list()}
        ```
    """

    async def list(self) -> list[Model]:
        """Every model with its capabilities and per-request text limit."""
        data, meta = await self._transport.request_json(
            "GET", "/v1/models", endpoint="GET /v1/models"
        )
        if not isinstance(data, list):
            raise ElevenLabsError(
                f"GET /v1/models: expected a JSON array of models, got {type(data).__name__}",
                status_code=meta.status_code,
                request_id=meta.request_id,
                body=data,
            )
        return [parse(Model, item, meta) for item in data]


class Users(Resource):
    """``/v1/user``: who the key belongs to and what the plan allows.

    Example:
        ```python
        subscription = await client.user.get_subscription()
        print(subscription.tier, subscription.characters_remaining)
        ```
    """

    async def get(self) -> User:
        """The account behind the API key."""
        data, meta = await self._transport.request_json("GET", "/v1/user", endpoint="GET /v1/user")
        return parse(User, data, meta)

    async def get_subscription(self) -> Subscription:
        """The plan, this period's credit usage and limits."""
        data, meta = await self._transport.request_json(
            "GET", "/v1/user/subscription", endpoint="GET /v1/user/subscription"
        )
        return parse(Subscription, data, meta)
