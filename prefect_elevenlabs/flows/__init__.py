"""Prefect flows for the pipelines people run: transcribe, dub, narrate, sound design, voices.

Each flow takes plain values and pydantic models (rendered as forms in the Prefect UI) and an
``ElevenLabsCredentials`` block. Left empty, the credentials are the saved block named by
``ELEVENLABS_CREDENTIALS_BLOCK`` when that variable is set, else ``ElevenLabsCredentials()``,
which reads ``ELEVENLABS_API_KEY`` and ``ELEVENLABS_BASE_URL`` (``local`` runs offline).

The flows are synchronous (call them from scripts, notebooks or other flows; from async code,
use ``await asyncio.to_thread(flow, ...)``) and run their tasks on a thread pool of
``DEFAULT_MAX_WORKERS`` threads; a batch flow's ``max_concurrency`` sets how many of its items
run at once. Give a flow more threads with
``narrate.with_options(task_runner=task_runner(max_workers=32))``.

Batch flows return a :class:`RunSummary` with one :class:`ItemOutcome` per item; when items
failed, the others still finish and the flow then raises :class:`ItemsFailedError` naming them
(its ``summary`` holds everything). When the account runs out of credits part-way, a batch
starts nothing more, lets the items in flight end and raises
:class:`~prefect_elevenlabs.errors.QuotaExceededError` whose ``completed``, ``missing`` and
``summary`` say what is done; a re-run with more credits generates only what is missing.

Example:
    ```python
    from prefect_elevenlabs import ElevenLabsCredentials
    from prefect_elevenlabs.flows import dub, narrate, transcribe

    local = ElevenLabsCredentials(base_url="local")
    transcribe(["talk.mp4"], output_dir="out", credentials=local)
    dub("talk.mp4", ["es"], output_dir="out", credentials=local)
    narrate([{"id": "intro", "text": "Hello."}], output_dir="out", credentials=local)
    ```
"""

from ._params import (
    DubbingApiOptions,
    MixOptions,
    MusicBrief,
    SegmentEdit,
    SoundEffectBrief,
    TranscriptFormat,
    TranscriptionOptions,
    VoiceSettingsInput,
)
from ._runtime import CREDENTIALS_BLOCK_ENV, DEFAULT_MAX_WORKERS, resolve_credentials, task_runner
from ._scripts import ScriptError, ScriptItem, load_scripts, markdown_chapters, markdown_to_speech
from ._summary import ItemOutcome, ItemsFailedError, RunSummary
from .design_voice import VoiceDesignResult, design_voice_flow
from .dub import DubSegment, VoicedSegment, dub, plan_segments
from .narrate import join_with_chapters, narrate
from .sound_design import load_sound_briefs, sound_design
from .transcribe import transcribe, write_transcript

__all__ = [
    "CREDENTIALS_BLOCK_ENV",
    "DEFAULT_MAX_WORKERS",
    "DubSegment",
    "DubbingApiOptions",
    "ItemOutcome",
    "ItemsFailedError",
    "MixOptions",
    "MusicBrief",
    "RunSummary",
    "ScriptError",
    "ScriptItem",
    "SegmentEdit",
    "SoundEffectBrief",
    "TranscriptFormat",
    "TranscriptionOptions",
    "VoiceDesignResult",
    "VoiceSettingsInput",
    "VoicedSegment",
    "design_voice_flow",
    "dub",
    "join_with_chapters",
    "load_scripts",
    "load_sound_briefs",
    "markdown_chapters",
    "markdown_to_speech",
    "narrate",
    "plan_segments",
    "resolve_credentials",
    "sound_design",
    "task_runner",
    "transcribe",
    "write_transcript",
]
