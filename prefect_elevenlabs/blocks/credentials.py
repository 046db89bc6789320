"""The credentials block: where an ElevenLabs key and connection settings live."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, ClassVar

from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block, schema_extra
from pydantic import ConfigDict, Field, HttpUrl, SecretStr, field_validator

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..client import ElevenLabsClient
    from ..client._limiter import ConcurrencyLimiter

PRODUCTION_URL = "https://api.elevenlabs.io"
LOCAL = "local"
API_KEY_ENV = "ELEVENLABS_API_KEY"
BASE_URL_ENV = "ELEVENLABS_BASE_URL"

# One limiter per credentials for the whole process (shared by every thread and event loop),
# and one client (connection pool) per credentials per event loop, since httpx pools are bound
# to the loop that first uses them.
_limiters: dict[str, ConcurrencyLimiter] = {}
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


class _LoopClients:
    """The clients shared on one event loop, closed when that loop shuts down.

    Prefect runs every async task of a sync flow on a loop of its own (``asyncio.run`` in a
    worker thread), so a batch creates and ends a loop per item. A client's open connections
    refer to their loop, so a registry holding the clients would keep every finished loop and
    its sockets alive. Instead, each loop gets a suspended async generator: ``asyncio.run``
    (and ``asyncio.Runner``, anyio) close such generators while the loop can still run them,
    and this one's ``finally`` closes the loop's clients and drops the entry.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: dict[str, ElevenLabsClient] = {}
        self._closer: AsyncGenerator[None, None] | None = None

    def close_at_shutdown(self) -> None:
        """Registers the closing generator with the running loop (must be called on it)."""
        closer = self._close_when_the_loop_ends()
        try:
            # Runs the generator to its first yield, which registers it with the loop's
            # async-generator hooks, without awaiting anything.
            closer.asend(None).send(None)
        except StopIteration:
            self._closer = closer

    async def _close_when_the_loop_ends(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with _lock:
                if _clients.get(self.loop) is self:
                    del _clients[self.loop]
            if not self.loop.is_closed():
                for client in list(self.clients.values()):
                    with contextlib.suppress(Exception):
                        await client.aclose()

    def discard(self) -> None:
        """Forgets a loop that closed without shutting its generators down."""
        closer, self._closer = self._closer, None
        if closer is not None:
            # The loop is closed, so the generator's finally runs without awaiting: finishing
            # it here spares the interpreter from handing it to a loop that cannot run it.
            with contextlib.suppress(StopIteration, RuntimeError):
                closer.aclose().send(None)
        self.clients.clear()


def _forget_closed_loops() -> None:
    """Drops loops closed by hand (``loop.close()`` without ``shutdown_asyncgens``)."""
    with _lock:
        closed = [entry for loop, entry in _clients.items() if loop.is_closed()]
        for entry in closed:
            _clients.pop(entry.loop, None)
    for entry in closed:
        entry.discard()


def _schema_with_a_required_field(schema: dict[str, Any], model: type[Block]) -> None:
    """Prefect's block schema, with ``timeout`` marked required.

    Every field has a default, so without one required field the UI's block reference
    (``{"$ref": ...}``) also validates as a credentials object, and the server refuses a run
    whose parameter "matches more than one" schema. Saved documents always carry ``timeout``.
    """
    schema_extra(schema, model)
    schema["required"] = ["timeout"]


class ElevenLabsCredentials(CredentialsBlock):
    """Credentials and connection settings for the ElevenLabs API or the offline local engine.

    With no API key, the key is read from the ``ELEVENLABS_API_KEY`` environment variable; with no
    base URL, from ``ELEVENLABS_BASE_URL``, else the production API. ``base_url="local"`` runs the
    offline ElevenLabs-compatible engine inside this process: no key, no network, no credits.

    Examples:
        Load saved credentials and call the API:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials

        credentials = ElevenLabsCredentials.load("BLOCK_NAME")
        async with credentials.get_client() as client:
            voices = await client.voices.search(search="narration")
        ```

        Work offline against the local engine:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials

        credentials = ElevenLabsCredentials(base_url="local")
        ```
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        **{**CredentialsBlock.model_config, "json_schema_extra": _schema_with_a_required_field}
    )

    _block_type_name: ClassVar[str] = "ElevenLabs Credentials"
    _block_type_slug: ClassVar[str] = "elevenlabs-credentials"
    _logo_url = HttpUrl("https://elevenlabs.io/favicon.ico")
    _documentation_url = HttpUrl("https://elevenlabs.io/docs/api-reference/authentication")

    api_key: SecretStr | None = Field(
        default=None,
        title="API Key",
        description=(
            "The ElevenLabs API key, sent as the xi-api-key header. Leave empty to read "
            "ELEVENLABS_API_KEY from the environment, or when using the local engine."
        ),
    )
    base_url: str | None = Field(
        default=None,
        title="Base URL",
        description=(
            "API origin without /v1, e.g. https://api.elevenlabs.io, a regional host such as "
            "https://api.eu.residency.elevenlabs.io, a standalone local engine such as "
            "http://127.0.0.1:8011, or 'local' for the embedded offline engine. Leave empty to "
            "read ELEVENLABS_BASE_URL, else use the production API."
        ),
        examples=["https://api.elevenlabs.io", "local"],
    )
    timeout: float = Field(
        default=240.0,
        gt=0,
        description="Seconds to wait for a response before the attempt fails and is retried.",
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        le=20,
        description=(
            "Retries inside one call for rate limits (429), server errors (5xx) and dropped "
            "connections; waits honour Retry-After, else back off exponentially with jitter."
        ),
    )
    max_concurrency: int | None = Field(
        default=4,
        ge=1,
        description=(
            "Most requests in flight at once from this process with these credentials. Match it "
            "to your plan's concurrency (e.g. 5 on Creator); empty means no in-process cap."
        ),
    )
    concurrency_limit_name: str | None = Field(
        default=None,
        description=(
            "Name of a Prefect global concurrency limit that every worker holds a slot of per "
            "request, to cap requests across processes and machines. The limit must exist."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if value != LOCAL:
            _validate_url(value)
        return value.rstrip("/")

    def resolved_base_url(self) -> str:
        """The origin calls go to: the field, else ``ELEVENLABS_BASE_URL``, else production."""
        value = self.base_url or os.environ.get(BASE_URL_ENV, "").strip() or PRODUCTION_URL
        if value != LOCAL:
            _validate_url(value, source=None if self.base_url else BASE_URL_ENV)
        return value.rstrip("/")

    def is_local(self) -> bool:
        """Whether calls go to the embedded offline engine."""
        return self.resolved_base_url() == LOCAL

    def _resolved_key(self) -> str | None:
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        return os.environ.get(API_KEY_ENV) or None

    def _endpoint(self) -> tuple[str, str | None]:
        base_url = self.resolved_base_url()
        key = self._resolved_key()
        if base_url == LOCAL:
            return _embedded_engine_url(), key or "local"
        if key is None:
            raise ConfigurationError(
                "No ElevenLabs API key. Fix it one of three ways: set api_key on the "
                "ElevenLabsCredentials block, set the ELEVENLABS_API_KEY environment variable, or "
                "use the offline engine with base_url='local' (or ELEVENLABS_BASE_URL=local).",
                status="missing_api_key",
            )
        return base_url, key

    def _fingerprint(self, base_url: str, key: str | None) -> str:
        digest = hashlib.sha256((key or "").encode()).hexdigest()[:16]
        return f"{base_url}|{digest}|{self.timeout}|{self.max_retries}|{self.max_concurrency}"

    def limiter(self) -> ConcurrencyLimiter:
        """The process-wide in-flight cap shared by every client made from these credentials."""
        from ..client._limiter import ConcurrencyLimiter

        base_url, key = self._endpoint()
        fingerprint = self._fingerprint(base_url, key)
        with _lock:
            if fingerprint not in _limiters:
                _limiters[fingerprint] = ConcurrencyLimiter(self.max_concurrency)
            return _limiters[fingerprint]

    def get_client(self) -> ElevenLabsClient:
        """An async client for these credentials.

        Inside a running event loop the client (and its connection pool) is shared by every
        caller on that loop; do not close it. Outside a loop a new client is returned: use it as
        an async context manager.
        """
        base_url, key = self._endpoint()
        from ..client import ElevenLabsClient

        fingerprint = self._fingerprint(base_url, key)
        limiter = self.limiter()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            return self._new_client(ElevenLabsClient, base_url, key, limiter)
        with _lock:
            entry = _clients.get(loop)
            client = entry.clients.get(fingerprint) if entry is not None else None
        if client is not None:
            return client
        # Only this thread runs this loop, and nothing below awaits, so no other caller can
        # add a client for it meanwhile: building it outside the lock is safe and keeps other
        # threads (other loops) from waiting on it.
        client = self._new_client(ElevenLabsClient, base_url, key, limiter)
        client._shared = True
        if entry is None:
            _forget_closed_loops()
            entry = _LoopClients(loop)
            entry.close_at_shutdown()
            with _lock:
                _clients[loop] = entry
        entry.clients[fingerprint] = client
        return client

    def _new_client(
        self,
        client_cls: type[ElevenLabsClient],
        base_url: str,
        key: str | None,
        limiter: ConcurrencyLimiter,
    ) -> ElevenLabsClient:
        return client_cls(
            key,
            base_url=base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            limiter=limiter,
        )


def _embedded_engine_url() -> str:
    try:
        from ..local.server import start_embedded
    except ImportError as exc:
        raise ConfigurationError(
            "base_url='local' needs the offline engine, which is not installed: "
            "pip install 'prefect-elevenlabs[local]' (and the Debian packages in the README). "
            f"Import failed with: {exc}",
            status="local_engine_unavailable",
        ) from exc
    return start_embedded()


def _validate_url(value: str, source: str | None = None) -> None:
    import httpx

    where = f" (from {source})" if source else ""
    try:
        url = httpx.URL(value)
    except Exception as exc:
        raise ConfigurationError(
            f"base_url {value!r}{where} is not a valid URL: {exc}", status="invalid_base_url"
        ) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base_url {value!r}{where} must be an http(s) origin such as "
            "https://api.elevenlabs.io, or 'local' for the offline engine",
            status="invalid_base_url",
        )
