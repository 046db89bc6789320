"""The ``prefect-elevenlabs`` command line: one command per flow, the offline demo, the engine.

Every flow command runs the Prefect flow in this process (with Prefect's temporary local API
unless ``PREFECT_API_URL`` points at a server) and prints one line per finished item. Exit
codes: 0 when everything completed, 1 when items failed or the API refused (the failed items
are named), 2 for usage errors (bad options, missing credentials, unreadable input files).

Credentials come from ``--credentials BLOCK_NAME`` (a saved block), else ``--local`` (the
offline engine, embedded), else ``ELEVENLABS_CREDENTIALS_BLOCK``, else the environment
(``ELEVENLABS_API_KEY``, ``ELEVENLABS_BASE_URL``).

Example::

    prefect-elevenlabs transcribe talk.mp4 --output-dir out --formats srt,txt --local
    prefect-elevenlabs demo --output-dir demo-output
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

import typer

if TYPE_CHECKING:
    from .blocks import ElevenLabsCredentials
    from .flows import RunSummary, TranscriptFormat

app = typer.Typer(
    name="prefect-elevenlabs",
    help="Run ElevenLabs pipelines with Prefect, online or with the offline local engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
USAGE_ERROR = 2
FAILED = 1


class _State:
    verbose = False


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
            raise typer.Exit(USAGE_ERROR)

        return
    app.add_typer(local_app, name="local", help="The offline ElevenLabs-compatible engine.")


_mount_local_engine()


@app.callback()
def _root(
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show task-level logs and full tracebacks."),
    ] = False,
) -> None:
    """Run ElevenLabs pipelines with Prefect, online or with the offline local engine."""
    _State.verbose = verbose


# --------------------------------------------------------------------------------------------
# Shared plumbing

CredentialsOption = Annotated[
    str | None,
    typer.Option(
        "--credentials",
        metavar="BLOCK_NAME",
        help="A saved ElevenLabs Credentials block to use.",
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option("--local", help="Use the offline engine, embedded in this process."),
]
OutputDirOption = Annotated[
    Path,
    typer.Option("--output-dir", "-o", help="Where to write the outputs.", file_okay=False),
]


def _fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _prepare_prefect() -> None:
    """Environment defaults for running flows from a terminal, set before Prefect loads."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A brand-new Prefect home migrates its database first; on a small, busy machine that
    # takes longer than Prefect's default 20 s for its temporary server to come up.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@contextlib.contextmanager
def _terminal_logs(verbose: bool) -> Iterator[None]:
    """One line per event on the terminal while a command runs; restored afterwards.

    Our typed errors are logged without their traceback (the message says what to fix), and
    unless ``verbose`` the per-task chatter is hidden, leaving the flows' progress lines.
    """
    import prefect.main  # noqa: F401  (sets up Prefect's logging handlers)

    our_errors = _typed_errors()

    class _NoTracebackForTypedErrors(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.exc_info and isinstance(record.exc_info[1], our_errors):
                record.exc_info = None
                record.exc_text = None
            return True

    quiet = _NoTracebackForTypedErrors()
    handlers = (
        [] if verbose else [h for name in ("", "prefect") for h in logging.getLogger(name).handlers]
    )
    levels = {
        name: logging.getLogger(name).level
        for name in ("prefect.task_runs", "prefect.server", "prefect_elevenlabs.client")
    }
    for handler in handlers:
        handler.addFilter(quiet)
    if not verbose:
        for name in levels:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("prefect.server").setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _typed_errors() -> tuple[type[BaseException], ...]:
    from .errors import ElevenLabsError
    from .flows import ItemsFailedError

    return (ElevenLabsError, ItemsFailedError)


def _credentials(block: str | None, local: bool) -> ElevenLabsCredentials | None:
    """The credentials for a command, or None to let the flow resolve them itself."""
    from .blocks import ElevenLabsCredentials
    from .errors import ConfigurationError

    if block and local:
        raise _fail("pass either --credentials or --local, not both")
    if block:
        try:
            loaded = ElevenLabsCredentials.load(block)
        except ValueError as exc:
            raise _fail(
                f"no ElevenLabs Credentials block named {block!r}: create it in the Prefect UI or "
                f"with ElevenLabsCredentials(api_key=...).save({block!r}) ({exc})"
            ) from exc
        assert isinstance(loaded, ElevenLabsCredentials)
        return loaded
    if local:
        return ElevenLabsCredentials(base_url="local")
    if os.environ.get("ELEVENLABS_CREDENTIALS_BLOCK", "").strip():
        return None
    credentials = ElevenLabsCredentials()
    try:
        if not credentials.is_local():
            credentials.limiter()  # resolves the key: fails now, not after Prefect starts
    except ConfigurationError as exc:
        raise _fail(exc.message) from exc
    return credentials


def _run(call: Callable[[], T]) -> T:
    """Runs a flow, turning our typed errors into a message and an exit code."""
    from prefect.exceptions import ParameterTypeError

    from .errors import ConfigurationError, ElevenLabsError, QuotaExceededError
    from .flows import ItemsFailedError, RunSummary, ScriptError

    try:
        with _terminal_logs(_State.verbose):
            return call()
    except ItemsFailedError as exc:
        _print_summary(exc.summary)
        raise _fail(exc.message, FAILED) from None
    except (ConfigurationError, ScriptError) as exc:
        raise _fail(str(exc), USAGE_ERROR) from None
    except ParameterTypeError as exc:
        raise _fail(str(exc), USAGE_ERROR) from None
    except QuotaExceededError as exc:
        if isinstance(exc.summary, RunSummary):  # a batch that ran out part-way
            _print_summary(exc.summary)
        raise _fail(str(exc), FAILED) from None
    except ElevenLabsError as exc:
        raise _fail(str(exc), FAILED) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None


def _print_summary(summary: RunSummary) -> None:
    for item in summary.items:
        if item.status == "failed":
            typer.secho(f"  FAILED  {item.id}: {item.error}", fg=typer.colors.RED)
            continue
        typer.echo(f"  {item.status:<9} {item.id}")
        for path in item.outputs:
            typer.echo(f"            {path}")
    for path in summary.artifacts:
        typer.echo(f"  index     {path}")
    done = len(summary.succeeded)
    typer.echo(
        f"{done} of {len(summary.items)} done, {summary.characters} characters billed; "
        f"outputs in {summary.output_dir}"
    )


def _split_csv(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


# --------------------------------------------------------------------------------------------
# Commands


@app.command()
def transcribe(
    inputs: Annotated[
        list[str], typer.Argument(metavar="INPUT...", help="Media files, folders, globs or URLs.")
    ],
    output_dir: OutputDirOption,
    formats: Annotated[
        str, typer.Option(help="Comma-separated outputs: json, srt, vtt, txt.")
    ] = "json,srt,vtt,txt",
    language: Annotated[
        str | None, typer.Option(help="Spoken language (ISO 639-1/3); detected when omitted.")
    ] = None,
    diarize: Annotated[bool, typer.Option("--diarize", help="Tell speakers apart.")] = False,
    num_speakers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Most speakers expected.")
    ] = None,
    keyterm: Annotated[
        list[str] | None, typer.Option(help="A word or name to favour; repeat for more.")
    ] = None,
    model_id: Annotated[str, typer.Option(help="Speech-to-text model.")] = "scribe_v1",
    credentials: CredentialsOption = None,
    local: LocalOption = False,
) -> None:
    """Transcribe audio or video into JSON, SRT, VTT and TXT files."""
    _prepare_prefect()
    chosen = _split_csv([formats])
    allowed = {"json", "srt", "vtt", "txt"}
    unknown = [f for f in chosen if f not in allowed]
    if unknown or not chosen:
        raise typer.BadParameter(
            f"unknown format(s) {', '.join(unknown) or '(none)'}: choose from json, srt, vtt, txt",
            param_hint="--formats",
        )
    creds = _credentials(credentials, local)
    from .flows import TranscriptionOptions
    from .flows import transcribe as transcribe_flow

    options = TranscriptionOptions(
        model_id=model_id,
        language_code=language,
        diarize=diarize or bool(num_speakers and num_speakers > 1),
        num_speakers=num_speakers,
        keyterms=keyterm or [],
    )
    summary = _run(
        lambda: transcribe_flow(
            inputs,
            output_dir=str(output_dir),
            formats=cast("list[TranscriptFormat]", chosen),
            options=options,
            credentials=creds,
        )
    )
    _print_summary(summary)


@app.command()
def dub(
    input: Annotated[str, typer.Argument(metavar="INPUT", help="An audio or video file or URL.")],
    to: Annotated[
        list[str],
        typer.Option("--to", help="Target language (ISO 639-1); repeat for several."),
    ],
    output_dir: OutputDirOption,
    strategy: Annotated[
        str, typer.Option(help="compose (step by step) or dubbing_api (ElevenLabs' service).")
    ] = "compose",
    source_language: Annotated[
        str | None, typer.Option(help="The spoken language; detected when omitted.")
    ] = None,
    voice: Annotated[
        list[str] | None,
        typer.Option(help="SPEAKER=VOICE_ID, e.g. speaker_0=21m00Tcm4TlvDq8ikWAM (compose)."),
    ] = None,
    clone_speakers: Annotated[
        bool, typer.Option("--clone-speakers", help="Clone each speaker's voice (compose).")
    ] = False,
    num_speakers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Speakers in the media.")
    ] = None,
    credentials: CredentialsOption = None,
    local: LocalOption = False,
) -> None:
    """Dub a video or audio file into other languages, with subtitles."""
    _prepare_prefect()
    if strategy not in ("compose", "dubbing_api"):
        raise typer.BadParameter("use compose or dubbing_api", param_hint="--strategy")
    languages = _split_csv(to)
    voice_map: dict[str, str] = {}
    for entry in voice or []:
        speaker, sep, voice_id = entry.partition("=")
        if not sep or not speaker.strip() or not voice_id.strip():
            raise typer.BadParameter(f"{entry!r} is not SPEAKER=VOICE_ID", param_hint="--voice")
        voice_map[speaker.strip()] = voice_id.strip()
    creds = _credentials(credentials, local)
    from .flows import dub as dub_flow

    summary = _run(
        lambda: dub_flow(
            input,
            target_languages=languages,
            output_dir=str(output_dir),
            strategy=cast(Literal["compose", "dubbing_api"], strategy),
            source_language=source_language,
            voice_map=voice_map or None,
            clone_speakers=clone_speakers,
            num_speakers=num_speakers,
            credentials=creds,
        )
    )
    _print_summary(summary)


@app.command()
def narrate(
    input: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="A JSONL or CSV file, a .txt/.md file, or a folder."),
    ],
    output_dir: OutputDirOption,
    voice_id: Annotated[
        str | None, typer.Option(help="Voice for scripts that name none (default: Rachel).")
    ] = None,
    model_id: Annotated[str | None, typer.Option(help="TTS model.")] = None,
    output_format: Annotated[
        str | None, typer.Option(help="e.g. mp3_44100_128 (default), wav_44100, opus_48000_64.")
    ] = None,
    target_lufs: Annotated[
        float, typer.Option(help="Loudness of the outputs in LUFS.", min=-70, max=-5)
    ] = -16.0,
    chapters: Annotated[
        bool, typer.Option("--chapters", help="One file per Markdown heading plus a joined one.")
    ] = False,
    max_characters: Annotated[
        int | None, typer.Option(min=0, help="Refuse to start above this many characters.")
    ] = None,
    max_concurrency: Annotated[
        int, typer.Option(min=1, help="Scripts in progress at once (requests: the key's cap).")
    ] = 8,
    credentials: CredentialsOption = None,
    local: LocalOption = False,
) -> None:
    """Narrate scripts into audio files named by script id."""
    _prepare_prefect()
    if not input.exists():
        raise typer.BadParameter(f"{input} does not exist", param_hint="INPUT")
    creds = _credentials(credentials, local)
    from .flows import narrate as narrate_flow

    options: dict[str, Any] = {
        key: value
        for key, value in {
            "voice_id": voice_id,
            "model_id": model_id,
            "output_format": output_format,
        }.items()
        if value is not None
    }
    summary = _run(
        lambda: narrate_flow(
            str(input),
            output_dir=str(output_dir),
            target_lufs=target_lufs,
            chapters=chapters,
            max_characters=max_characters,
            max_concurrency=max_concurrency,
            credentials=creds,
            **options,
        )
    )
    _print_summary(summary)


@app.command("sound-design")
def sound_design(
    input: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help='A JSON file {"effects": [...], "music": [...]} or a JSONL file of briefs.',
        ),
    ],
    output_dir: OutputDirOption,
    credentials: CredentialsOption = None,
    local: LocalOption = False,
) -> None:
    """Generate a batch of sound effects and music from a JSON/JSONL file of briefs."""
    _prepare_prefect()
    from .flows import load_sound_briefs

    try:
        effects, music = load_sound_briefs(input)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    creds = _credentials(credentials, local)
    from .flows import sound_design as sound_design_flow

    summary = _run(
        lambda: sound_design_flow(
            effects=effects, music=music, output_dir=str(output_dir), credentials=creds
        )
    )
    _print_summary(summary)


@app.command("design-voice")
def design_voice(
    description: Annotated[str, typer.Argument(help="What the voice should sound like.")],
    output_dir: OutputDirOption,
    text: Annotated[
        str | None, typer.Option(help="What the previews say (100-1000 characters).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable previews.")] = None,
    save_as: Annotated[
        str | None, typer.Option(help="Create a voice with this name from the chosen preview.")
    ] = None,
    choose: Annotated[int, typer.Option(min=0, help="Which preview to save (0 = the first).")] = 0,
    credentials: CredentialsOption = None,
    local: LocalOption = False,
) -> None:
    """Design a voice from a description: write previews, optionally save one as a voice."""
    _prepare_prefect()
    creds = _credentials(credentials, local)
    from .flows import design_voice_flow

    result = _run(
        lambda: design_voice_flow(
            description,
            output_dir=str(output_dir),
            text=text,
            seed=seed,
            save_as=save_as,
            chosen_preview=choose,
            credentials=creds,
        )
    )
    for index, preview in enumerate(result.previews):
        typer.echo(f"  preview {index}: {preview.audio.uri} ({preview.generated_voice_id})")
    if result.voice is not None:
        typer.echo(f"  saved voice {result.voice.name!r}: voice_id {result.voice.voice_id}")


@app.command()
def demo(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Where to write the demo's outputs.")
    ] = Path("demo-output"),
) -> None:
    """Run every pipeline offline on a bundled clip: dub it into Spanish, transcribe it,
    narrate a script and design a sound effect.

    Needs no key and no network: the local engine runs inside this process. Unless
    PREFECT_API_URL points at a Prefect server, Prefect's temporary API keeps its database and
    result cache in OUTPUT_DIR/.prefect (so a second run reuses the cache and spends nothing),
    and the engine keeps its state in OUTPUT_DIR/.engine; nothing is written to ~/.prefect.
    """
    output_dir = output_dir.resolve()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"cannot create {output_dir}: {exc.strerror or exc}") from None
    if not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_HOME"] = str(output_dir / ".prefect")
    os.environ.setdefault("ELEVENLABS_LOCAL_DATA_DIR", str(output_dir / ".engine"))
    _prepare_prefect()
    from .flows.demo import run_demo

    result = _run(lambda: run_demo(output_dir))
    typer.echo("")
    typer.secho("Demo outputs", bold=True)
    for label, paths in result.outputs.items():
        typer.echo(f"  {label}:")
        for path in paths:
            typer.echo(f"    {path}")
    typer.echo(f"Done in {result.seconds:.0f} s; everything is in {output_dir}")


def main() -> None:
    """Entry point of the ``prefect-elevenlabs`` script."""
    app()


if __name__ == "__main__":
    main()
