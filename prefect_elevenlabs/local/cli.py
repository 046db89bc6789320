"""Command line for the local engine (mounted as ``prefect-elevenlabs local``).

Example::

    prefect-elevenlabs local serve --port 8011 --api-key secret --max-concurrency 4
    prefect-elevenlabs local serve --fault-429 0.1 --fault-drop 0.02 --fault-seed 7

Options left out fall back to the ``ELEVENLABS_LOCAL_*`` environment variables, then to the
defaults of :class:`~prefect_elevenlabs.local.config.EngineConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from .config import EngineConfig

__all__ = ["app", "build_config"]

app = typer.Typer(
    name="local",
    help="Run the offline ElevenLabs-compatible engine.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _local() -> None:
    """Run the offline ElevenLabs-compatible engine."""


def build_config(**options: Any) -> EngineConfig:
    """An :class:`EngineConfig` from the options that were given (None = not given).

    Raises ``typer.BadParameter`` naming the offending settings when a value is out of range.
    """
    given = {name: value for name, value in options.items() if value not in (None, [], ())}
    try:
        return EngineConfig(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'config'}: {error['msg']}"
            for error in exc.errors()
        )
        raise typer.BadParameter(problems) from exc


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default 127.0.0.1, loopback only).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8011).")] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="Accepted xi-api-key; repeat for several. None given: any key is accepted.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where voices, history and audio are kept.")
    ] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(help="Generations in flight before answering 429.")
    ] = None,
    quota: Annotated[
        int | None, typer.Option(help="Characters each API key may spend (401 past it).")
    ] = None,
    character_limit: Annotated[
        int | None, typer.Option(help="character_limit shown by the subscription.")
    ] = None,
    latency_ms: Annotated[
        float | None, typer.Option(help="Delay added to every generation request.")
    ] = None,
    ttfb_ms: Annotated[
        float | None, typer.Option(help="Delay before the first byte of audio.")
    ] = None,
    fault_429: Annotated[
        float | None, typer.Option("--fault-429", help="Share answered 429 system_busy.")
    ] = None,
    fault_500: Annotated[
        float | None, typer.Option("--fault-500", help="Share answered 500.")
    ] = None,
    fault_503: Annotated[
        float | None, typer.Option("--fault-503", help="Share answered 503.")
    ] = None,
    fault_drop: Annotated[
        float | None,
        typer.Option("--fault-drop", help="Share whose connection drops before any header."),
    ] = None,
    fault_truncate: Annotated[
        float | None,
        typer.Option("--fault-truncate", help="Share whose body is cut off midway."),
    ] = None,
    fault_retry_after: Annotated[
        float | None,
        typer.Option("--fault-retry-after", help="Retry-After seconds on injected 429/503."),
    ] = None,
    fault_seed: Annotated[
        int | None, typer.Option("--fault-seed", help="Seed for a repeatable fault sequence.")
    ] = None,
    max_upload_mb: Annotated[
        float | None, typer.Option(help="Largest request body accepted, in MB.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the engine in the foreground until Ctrl-C."""
    from .server import serve as run_server

    config = build_config(
        host=host,
        port=port,
        api_keys=api_key,
        data_dir=data_dir,
        max_concurrency=max_concurrency,
        character_quota=quota,
        character_limit=character_limit,
        latency_ms=latency_ms,
        ttfb_ms=ttfb_ms,
        fault_rate_429=fault_429,
        fault_rate_500=fault_500,
        fault_rate_503=fault_503,
        fault_rate_drop=fault_drop,
        fault_rate_truncate=fault_truncate,
        fault_retry_after=fault_retry_after,
        fault_seed=fault_seed,
        max_upload_mb=max_upload_mb,
    )
    typer.echo(
        f"ElevenLabs-compatible engine on http://{config.host}:{config.port} "
        f"(data in {config.data_dir}); point clients at base_url=http://{config.host}:{config.port}"
    )
    run_server(config, log_level=log_level)


if __name__ == "__main__":  # pragma: no cover
    app()
