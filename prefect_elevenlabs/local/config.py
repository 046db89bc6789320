"""Settings of the local engine, from arguments or ``ELEVENLABS_LOCAL_*`` environment variables.

Example::

    config = EngineConfig(api_keys=["secret"], max_concurrency=4, fault_rate_429=0.1)
    # or, from the environment:
    #   ELEVENLABS_LOCAL_API_KEYS=key-a,key-b ELEVENLABS_LOCAL_PORT=9000
    config = EngineConfig()
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["EngineConfig", "default_data_dir", "is_loopback_host"]

_FAULT_FIELDS = (
    "fault_rate_429",
    "fault_rate_500",
    "fault_rate_503",
    "fault_rate_drop",
    "fault_rate_truncate",
)


def default_data_dir() -> Path:
    """The engine's state directory: ``$XDG_DATA_HOME/prefect-elevenlabs/engine``.

    Falls back to ``~/.local/share/prefect-elevenlabs/engine`` when ``XDG_DATA_HOME`` is unset.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "prefect-elevenlabs" / "engine"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EngineConfig(BaseSettings):
    """Everything that shapes how the local engine behaves.

    Each field can also be set through an environment variable named ``ELEVENLABS_LOCAL_<FIELD>``
    (``ELEVENLABS_LOCAL_API_KEYS`` takes a comma-separated list).

    Example::

        EngineConfig(data_dir="/tmp/engine", character_quota=10_000, latency_ms=200)
    """

    model_config = SettingsConfigDict(
        env_prefix="ELEVENLABS_LOCAL_", extra="forbid", validate_assignment=True
    )

    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Accepted xi-api-key values. Empty: any key, or none, is accepted.",
    )
    host: str = Field(default="127.0.0.1", description="Interface to bind; loopback by default.")
    port: int = Field(default=8011, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where voices, history, dubbing jobs and stored audio live.",
    )
    max_concurrency: int | None = Field(
        default=None, ge=1, description="Generation requests allowed in flight; 429 above it."
    )
    character_quota: int | None = Field(
        default=None,
        ge=0,
        description="Characters each API key may spend; 401 quota_exceeded past it.",
    )
    character_limit: int = Field(
        default=1_000_000,
        ge=0,
        description="character_limit reported by the subscription when no quota.",
    )
    latency_ms: float = Field(
        default=0.0, ge=0, description="Delay added to every generation request."
    )
    ttfb_ms: float = Field(default=0.0, ge=0, description="Delay before the first byte of audio.")
    fault_rate_429: float = Field(
        default=0.0, ge=0, le=1, description="Share answered 429 system_busy."
    )
    fault_rate_500: float = Field(default=0.0, ge=0, le=1, description="Share answered 500.")
    fault_rate_503: float = Field(default=0.0, ge=0, le=1, description="Share answered 503.")
    fault_rate_drop: float = Field(
        default=0.0, ge=0, le=1, description="Share whose connection is closed before any header."
    )
    fault_rate_truncate: float = Field(
        default=0.0, ge=0, le=1, description="Share whose body is cut off after a Content-Length."
    )
    fault_retry_after: float = Field(
        default=1.0, ge=0, description="Seconds advertised in Retry-After on injected 429/503."
    )
    fault_seed: int | None = Field(
        default=None, description="Seed making the fault sequence repeatable."
    )
    max_upload_mb: float = Field(
        default=200.0, gt=0, description="Largest request body accepted (MB)."
    )
    source_url_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Directories whose files may be named by file:// source_url values (the engine "
            "fetches nothing from the network). Empty: file:// URLs are refused."
        ),
    )

    @field_validator("api_keys", "source_url_roots", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, value: list[str]) -> list[str]:
        if any(not key.strip() for key in value):
            raise ValueError("api_keys must not contain blank keys")
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _faults_fit_in_one(self) -> EngineConfig:
        total = sum(getattr(self, name) for name in _FAULT_FIELDS)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"the fault rates add up to {total:g}; each request gets at most one fault, "
                "so their sum must be 1 or less"
            )
        return self

    @property
    def auth_required(self) -> bool:
        """Whether requests must carry one of :attr:`api_keys`."""
        return bool(self.api_keys)

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def fault_rates(self) -> dict[str, float]:
        """Fault kind -> rate, in the order faults are drawn."""
        return {
            "429": self.fault_rate_429,
            "500": self.fault_rate_500,
            "503": self.fault_rate_503,
            "drop": self.fault_rate_drop,
            "truncate": self.fault_rate_truncate,
        }
