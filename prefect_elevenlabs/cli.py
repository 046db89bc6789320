"""The ``prefect-elevenlabs`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="prefect-elevenlabs",
    help="Run ElevenLabs pipelines with Prefect, online or with the offline local engine.",
    no_args_is_help=True,
    add_completion=False,
)


def _mount_local_engine() -> None:
    try:
        from .local.cli import app as local_app
    except ImportError as exc:
        missing = str(exc)

        @app.command("local", help="The offline engine (needs the 'local' extra).")
        def local_unavailable() -> None:
            typer.echo(
                "The offline engine is not installed: pip install 'prefect-elevenlabs[local]' "
                f"({missing})",
                err=True,
            )
            raise typer.Exit(2)

        return
    app.add_typer(local_app, name="local", help="The offline ElevenLabs-compatible engine.")


_mount_local_engine()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
