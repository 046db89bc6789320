"""Serve every deployment of ``deployments/prefect.yaml`` from this process, with no work pool.

The deployments (names, default parameters, schedules, tags, concurrency) are read from the same
``prefect.yaml`` that ``prefect deploy`` uses, so serving and deploying never drift apart. The
process creates or updates each deployment on the Prefect server named by ``PREFECT_API_URL``,
then polls for their runs (scheduled, or started from the UI's Run button, the CLI or
``run_deployment``) and executes each one in a subprocess until it is stopped with Ctrl-C.

Usage::

    python deployments/serve.py                            # every deployment in prefect.yaml
    python deployments/serve.py --limit 2 --credentials-block prod
    python deployments/serve.py --only narrate-scripts --only transcribe-media

Options fall back to environment variables: ``ELEVENLABS_SERVE_LIMIT`` (concurrent runs, 4),
``ELEVENLABS_CREDENTIALS_BLOCK`` (a saved ``ElevenLabsCredentials`` block name, preselected in
every run form and used by runs that pass no credentials), ``ELEVENLABS_SERVE_ONLY``
(comma-separated deployment names) and ``ELEVENLABS_PREFECT_FILE``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow
    from prefect.schedules import Schedule

DEFAULT_PREFECT_FILE = Path(__file__).with_name("prefect.yaml")
DEFAULT_LIMIT = 4
CREDENTIALS_BLOCK_ENV = "ELEVENLABS_CREDENTIALS_BLOCK"
CREDENTIALS_PARAMETER = "credentials"


class ServeConfigError(ValueError):
    """``prefect.yaml`` or an option cannot be served as given; the message says what to fix."""


@dataclass(frozen=True)
class ServeOptions:
    """What to serve and how: resolved from arguments, then environment, then defaults."""

    prefect_file: Path
    limit: int
    credentials_block: str | None
    only: tuple[str, ...]


def parse_options(argv: Sequence[str] | None = None) -> ServeOptions:
    """Reads the command line, falling back to the ``ELEVENLABS_*`` environment variables.

    Example:
        ```python
        options = parse_options(["--limit", "2", "--only", "narrate-scripts"])
        assert options.limit == 2
        ```
    """
    parser = argparse.ArgumentParser(
        description="Serve the prefect-elevenlabs deployments from this process."
    )
    parser.add_argument(
        "--prefect-file",
        type=Path,
        default=Path(os.environ.get("ELEVENLABS_PREFECT_FILE") or DEFAULT_PREFECT_FILE),
        help="The prefect.yaml whose deployments are served (default: next to this script).",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"Most flow runs at once (env ELEVENLABS_SERVE_LIMIT, default {DEFAULT_LIMIT}).",
    )
    parser.add_argument(
        "--credentials-block",
        default=os.environ.get(CREDENTIALS_BLOCK_ENV) or None,
        help=(
            "Name of a saved ElevenLabs Credentials block: the default of every flow's "
            f"credentials parameter (env {CREDENTIALS_BLOCK_ENV})."
        ),
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="DEPLOYMENT",
        help="Serve only this deployment (repeatable; env ELEVENLABS_SERVE_ONLY, comma-separated).",
    )
    args = parser.parse_args(argv)

    limit = args.limit
    if limit is None:
        raw = os.environ.get("ELEVENLABS_SERVE_LIMIT", "").strip()
        try:
            limit = int(raw) if raw else DEFAULT_LIMIT
        except ValueError:
            raise ServeConfigError(
                f"ELEVENLABS_SERVE_LIMIT must be a whole number, got {raw!r}"
            ) from None
    if limit < 1:
        raise ServeConfigError(f"the run limit must be 1 or more, got {limit}")

    only = args.only
    if only is None:
        only = [n for n in os.environ.get("ELEVENLABS_SERVE_ONLY", "").split(",") if n.strip()]
    return ServeOptions(
        prefect_file=args.prefect_file,
        limit=limit,
        credentials_block=(args.credentials_block or "").strip() or None,
        only=tuple(name.strip() for name in only),
    )


def load_deployment_configs(prefect_file: Path, only: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ``deployments`` entries of ``prefect_file``, ``{{ $VAR }}`` placeholders filled in.

    Placeholders naming unset variables are left as they are, exactly as ``prefect deploy``
    does. ``only`` keeps the named deployments, in file order, and rejects unknown names.
    """
    from prefect.utilities.templating import apply_values

    try:
        document = yaml.safe_load(prefect_file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ServeConfigError(f"cannot read {prefect_file}: {exc}") from exc
    entries = document.get("deployments") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ServeConfigError(f"{prefect_file}: 'deployments' must be a list of mappings")
    # Prefect reads {{ $VAR }} from the environment itself; other placeholders stay as written.
    entries = cast("list[dict[str, Any]]", apply_values(entries, {}, False))
    names = [str(e.get("name", "")) for e in entries]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ServeConfigError(
            f"no deployment named {', '.join(unknown)} in {prefect_file}; known: {', '.join(names)}"
        )
    return [e for e in entries if not only or e.get("name") in only]


def schedule_from_config(config: Mapping[str, Any]) -> Schedule:
    """One ``schedules`` item of ``prefect.yaml`` (``cron``, ``interval`` or ``rrule``) as a
    Prefect schedule, keeping ``timezone``, ``active``, ``parameters``, ``slug`` and ``day_or``.
    """
    from prefect.schedules import Cron, Interval, RRule

    common: dict[str, Any] = {
        "timezone": config.get("timezone"),
        "active": config.get("active", True),
        "parameters": config.get("parameters") or None,
        "slug": config.get("slug"),
    }
    kinds = [k for k in ("cron", "interval", "rrule") if config.get(k) is not None]
    if len(kinds) != 1:
        raise ServeConfigError(
            f"a schedule needs exactly one of cron, interval or rrule; got {dict(config)!r}"
        )
    if kinds == ["cron"]:
        return Cron(str(config["cron"]), day_or=config.get("day_or", True), **common)
    if kinds == ["interval"]:
        interval = config["interval"]
        if isinstance(interval, int | float):
            interval = datetime.timedelta(seconds=interval)
        anchor = config.get("anchor_date")
        if isinstance(anchor, str):
            anchor = datetime.datetime.fromisoformat(anchor)
        return Interval(interval, anchor_date=anchor, **common)
    return RRule(str(config["rrule"]), **common)


def _concurrency(value: Any) -> Any:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        from prefect.client.schemas.objects import ConcurrencyLimitConfig

        return ConcurrencyLimitConfig.model_validate(dict(value))
    raise ServeConfigError(
        f"concurrency_limit must be a number or {{limit, collision_strategy}}, got {value!r}"
    )


def build_deployment(config: Mapping[str, Any], credentials: Any | None = None) -> RunnerDeployment:
    """A served deployment for one ``prefect.yaml`` entry.

    ``credentials`` (a saved block) becomes the default of the flow's ``credentials``
    parameter; the server stores it as a reference to the block document, never its secret.
    """
    from prefect.deployments.runner import EntrypointType, RunnerDeployment
    from prefect.flows import load_flow_from_entrypoint

    name = config.get("name")
    entrypoint = config.get("entrypoint")
    if not name or not entrypoint:
        raise ServeConfigError(f"every deployment needs a name and an entrypoint: {config!r}")
    flow: Flow[..., Any] = load_flow_from_entrypoint(str(entrypoint))
    parameters = dict(config.get("parameters") or {})
    if credentials is not None and CREDENTIALS_PARAMETER in flow.parameters.properties:
        parameters.setdefault(CREDENTIALS_PARAMETER, credentials)
    # A module-path entrypoint lets the runner import the flow from the installed package,
    # whatever directory this process was started in.
    module_path = ":" not in str(entrypoint)
    deployment = flow.to_deployment(
        name=str(name),
        parameters=parameters,
        description=config.get("description"),
        tags=list(config.get("tags") or []),
        version=config.get("version"),
        schedules=[schedule_from_config(s) for s in config.get("schedules") or []],
        paused=config.get("paused"),
        concurrency_limit=_concurrency(config.get("concurrency_limit")),
        enforce_parameter_schema=bool(config.get("enforce_parameter_schema", True)),
        entrypoint_type=EntrypointType.MODULE_PATH if module_path else EntrypointType.FILE_PATH,
    )
    # to_deployment is typed as possibly async; called from sync code it returns the object.
    assert isinstance(deployment, RunnerDeployment)
    return deployment


def load_credentials(block_name: str) -> Any:
    """Loads the saved ``ElevenLabsCredentials`` block, failing with what to do if it is absent."""
    from prefect_elevenlabs import ElevenLabsCredentials

    try:
        return ElevenLabsCredentials.load(block_name)
    except ValueError as exc:
        raise ServeConfigError(
            f"no saved ElevenLabs Credentials block named {block_name!r} on this Prefect server: "
            "create one in the UI (Blocks > ElevenLabs Credentials) or with "
            f"ElevenLabsCredentials(api_key=..., base_url=...).save({block_name!r}) ({exc})"
        ) from exc


def main(argv: Sequence[str] | None = None) -> None:
    """Serves the selected deployments until interrupted."""
    from prefect import serve

    try:
        options = parse_options(argv)
        credentials = None
        if options.credentials_block:
            credentials = load_credentials(options.credentials_block)
            # Runs started without credentials (e.g. by code that passes none) load it too.
            os.environ[CREDENTIALS_BLOCK_ENV] = options.credentials_block
        configs = load_deployment_configs(options.prefect_file, options.only)
        deployments = [build_deployment(c, credentials) for c in configs]
    except ServeConfigError as exc:
        sys.exit(f"error: {exc}")
    if not deployments:
        sys.exit(f"error: {options.prefect_file} defines no deployments to serve")
    serve(*deployments, limit=options.limit)


if __name__ == "__main__":
    main()
