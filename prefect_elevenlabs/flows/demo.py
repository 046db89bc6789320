"""The offline demo: every pipeline, run on the bundled sample clip with the embedded engine.

``prefect-elevenlabs demo`` calls :func:`run_demo`. It needs no key and no network: the
credentials are ``ElevenLabsCredentials(base_url="local")``, so the ElevenLabs-compatible
engine runs inside the process (piper and espeak-ng speak, Whisper listens, Apertium
translates).
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from prefect import flow
from pydantic import BaseModel, Field

from ..blocks import ElevenLabsCredentials
from ._params import ScriptItem, SoundEffectBrief, TranscriptionOptions
from .dub import dub
from .narrate import narrate
from .sound_design import sound_design
from .transcribe import transcribe

__all__ = ["DEMO_SCRIPT", "DemoResult", "demo", "run_demo", "sample_clip"]

SAMPLE_CLIP = "sample_clip.mp4"
DEMO_SCRIPT = (
    "Welcome to the offline studio. Everything you hear was made on this computer, "
    "with no key and no network."
)
DEMO_EFFECT = "a wooden door knock, three knocks"


class DemoResult(BaseModel):
    """Where the demo put each output, grouped by pipeline, and how long it took."""

    outputs: dict[str, list[str]] = Field(default_factory=dict)
    seconds: float = 0.0


def sample_clip() -> Path:
    """The bundled sample: 8 s of English speech over a small test-pattern video."""
    path = Path(str(resources.files("prefect_elevenlabs") / "assets" / SAMPLE_CLIP))
    if not path.is_file():
        raise FileNotFoundError(
            f"the bundled sample clip is missing at {path}: reinstall the package, or rebuild "
            "it with scripts/make_sample_clip.py"
        )
    return path


@flow(name="ElevenLabs offline demo")
def demo(output_dir: str = "demo-output") -> DemoResult:
    """Dubs the sample clip into Spanish, transcribes it, narrates a script and makes a sound.

    Outputs (all under ``output_dir``): ``dub/sample_clip.es.mp4`` with Spanish audio and a
    Spanish subtitle track, ``dub/sample_clip.es.srt``/``.vtt``; ``transcript/sample_clip``
    ``.json``/``.srt``/``.vtt``/``.txt`` (English); ``narration/welcome.mp3``;
    ``sounds/door-knock.mp3`` with ``sounds/index.json``.

    Example:
        ```python
        from prefect_elevenlabs.flows.demo import demo

        print(demo("demo-output").outputs)
        ```
    """
    started = time.monotonic()
    root = Path(output_dir)
    clip = str(sample_clip())
    credentials = ElevenLabsCredentials(base_url="local")
    # The clip has one speaker: saying so keeps every word with one voice, and makes the
    # dub's transcription the same call as the transcript's, answered from the task cache.
    options = TranscriptionOptions(language_code="en", diarize=True, num_speakers=1)
    transcript = transcribe(
        [clip], output_dir=str(root / "transcript"), options=options, credentials=credentials
    )
    dubbed = dub(
        clip,
        ["es"],
        output_dir=str(root / "dub"),
        strategy="compose",
        source_language="en",
        num_speakers=1,
        credentials=credentials,
    )
    narration = narrate(
        [ScriptItem(id="welcome", text=DEMO_SCRIPT)],
        output_dir=str(root / "narration"),
        credentials=credentials,
    )
    sounds = sound_design(
        effects=[SoundEffectBrief(id="door-knock", text=DEMO_EFFECT, duration_seconds=2.0)],
        output_dir=str(root / "sounds"),
        credentials=credentials,
    )
    return DemoResult(
        outputs={
            "Spanish dub (compose)": [p for p in dubbed.outputs if not p.endswith(".json")],
            "English transcript": transcript.outputs,
            "Narration": narration.outputs,
            "Sound effect": sounds.outputs,
        },
        seconds=time.monotonic() - started,
    )


def run_demo(output_dir: str | Path) -> DemoResult:
    """Runs :func:`demo` into ``output_dir`` (the CLI's entry point)."""
    return demo(str(output_dir))
