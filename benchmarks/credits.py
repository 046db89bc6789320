"""Credits: characters billed for a 100-script ``narrate`` batch, and for running it again.

The engine bills every generated character (``GET /local/stats``, ``characters_billed``) as
ElevenLabs does. The batch runs twice with the same inputs and output folder: the first run
speaks every script; the re-run should find each one in Prefect's cache (keyed on the inputs,
not the credentials) and spend nothing. Billing does not depend on the audio format, so the
batch asks for raw PCM without loudness normalisation and an espeak voice, which keeps the
runs quick.

Run alone with ``python -m benchmarks.credits [--quick]``.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from ._engine import FAST_VOICE_ID, EngineProcess
from ._prefect import credentials_for
from ._report import BenchmarkResult, Row

NAME = "credits"
TITLE = "Credits"
TTS_PATH = "/text-to-speech/"
OUTPUT_FORMAT = "pcm_22050"

_SENTENCES = (
    "Our store opens at nine and closes at six on weekdays.",
    "Please keep your ticket until the end of the journey.",
    "The next train to the airport leaves from platform four.",
    "Thank you for calling; your order has been shipped today.",
)


def _scripts(count: int) -> list[dict[str, str]]:
    return [
        {"id": f"script-{i:03d}", "text": f"Message {i}. {_SENTENCES[i % len(_SENTENCES)]}"}
        for i in range(count)
    ]


def _narrate_once(
    engine: EngineProcess, scripts: list[dict[str, str]], output_dir: str
) -> dict[str, Any]:
    from prefect_elevenlabs.flows.narrate import narrate

    engine.reset()
    began = time.perf_counter()
    summary = narrate(
        scripts,  # type: ignore[arg-type]  # plain dicts validate into ScriptItem
        output_dir=output_dir,
        voice_id=FAST_VOICE_ID,
        output_format=OUTPUT_FORMAT,
        target_lufs=None,
        max_concurrency=5,
        credentials=credentials_for(engine.base_url, max_concurrency=5),
    )
    seconds = time.perf_counter() - began
    stats = engine.stats()
    tts_requests = sum(1 for t in engine.timings() if TTS_PATH in t.path)
    return {
        "seconds": seconds,
        "characters_billed": stats["characters_billed"],
        "tts_requests": tts_requests,
        "summary_characters": summary.characters,
        "items": len(summary.items),
        "failed": len(summary.failed),
    }


def run(quick: bool = False) -> BenchmarkResult:
    """Billed characters: first run versus re-run of the same batch."""
    count = 4 if quick else 100
    scripts = _scripts(count)
    third: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-credits-") as out, EngineProcess() as engine:
        first = _narrate_once(engine, scripts, out)
        again = _narrate_once(engine, scripts, out)
        if again["characters_billed"]:
            # Tells a cache that never holds apart from one that fills only on the second run.
            third = _narrate_once(engine, scripts, out)
    billed_first, billed_again = first["characters_billed"], again["characters_billed"]
    rows = [
        Row(
            metric=f"characters billed, re-run vs first run of a {count}-script narrate",
            ours=float(billed_again),
            baseline=float(billed_first),
            unit="characters",
            ratio=billed_again / billed_first if billed_first else None,
            target="re-run bills 0",
            met=billed_again == 0 and billed_first > 0,
            ours_label="re-run",
            baseline_label="first run",
            how=(
                f"the engine's characters_billed after each run (counters reset in between); "
                f"same {count} scripts ({sum(len(s['text']) for s in scripts)} characters), "
                f"same output folder, {OUTPUT_FORMAT} without loudness normalisation; "
                f"{first['tts_requests']} vs {again['tts_requests']} TTS requests; "
                f"{first['seconds']:.1f} vs {again['seconds']:.1f} s"
            ),
        )
    ]
    details = {"scripts": count, "first_run": first, "re_run": again, "third_run": third}
    notes = []
    if third is not None:
        notes.append(
            f"The re-run billed {billed_again} characters ({again['tts_requests']} requests); "
            f"a third run billed {third['characters_billed']} ({third['tts_requests']} requests)."
        )
    return BenchmarkResult(
        name=NAME, title=TITLE, rows=rows, details=details, notes=notes, quick=quick
    )


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
