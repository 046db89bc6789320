"""Engine speed: real-time factors through the engine's HTTP API against the raw engines called
in process, and one 60-second clip dubbed end to end.

- TTS: a paragraph spoken by the premade voice "Rachel" (piper with a pitch shift), over
  ``POST /v1/text-to-speech/{voice_id}`` as raw PCM, versus ``engines.tts.synthesize`` with the
  same profile and settings in this process.
- STT: about 50 s of English speech (made once with piper and cached) uploaded as WAV to
  ``POST /v1/speech-to-text`` (``scribe_v1``, ``language_code=en``), versus
  ``engines.stt.transcribe`` on the decoded samples in this process.

The real-time factor is processing time over audio duration (the best of a few runs, since
other work on a shared machine only adds time); the ratio compares HTTP with raw (target at
most 1.10: the server adds little to the engines). Both sides are warmed up first so model
loading is not counted, and they take turns so load from elsewhere hits both alike.

- Dubbing: a 60-second test-pattern video whose sound track is that English speech, dubbed into
  Spanish by ``POST /v1/dubbing`` (Whisper, Apertium, piper/espeak, ffmpeg mixing and muxing),
  from the upload until the dubbed file is downloaded, with the engine process held to two CPUs.
  Target: at most 60 s.

Run alone with ``python -m benchmarks.engine_speed [--quick]``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._engine import EngineProcess
from ._media import cache_dir, ffmpeg, speech_clip
from ._prefect import BENCH_API_KEY
from ._report import BenchmarkResult, Row

NAME = "engine_speed"
TITLE = "Engine speed"
TARGET_RATIO = 1.10
TARGET_DUB_S = 60.0
RACHEL = "21m00Tcm4TlvDq8ikWAM"
TTS_MODEL = "eleven_multilingual_v2"
PCM_RATE = 22050

TTS_TEXT = (
    "The river town wakes up slowly. Before the shops open, the baker carries trays of warm "
    "bread to the corner cafe, and the ferry sounds its horn twice as it leaves the dock. "
    "Children walk to school along the water, counting the boats tied to the pier."
)

STORY = (
    "The river town wakes up slowly. Before the shops open, the baker carries trays of warm "
    "bread to the corner cafe, and the ferry sounds its horn twice as it leaves the dock. "
    "Children walk to school along the water, counting the boats that are tied to the pier. "
    "By nine o'clock the market square is full of voices. Farmers sell apples, cheese and "
    "honey from wooden stalls, while tourists ask for directions to the old bridge. In the "
    "afternoon the wind turns, clouds gather over the hills, and a light rain falls on the "
    "roofs. Nobody seems to mind. People wait under the arches, drink coffee and talk about "
    "the weather, the harvest and the football match on Sunday. When evening comes, the lamps "
    "along the river are lit one by one, and the town grows quiet again. On the last boat "
    "home, a fisherman tells his daughter about the winter when the river froze, and the "
    "whole town walked across the ice to the island to watch the fireworks at midnight."
)
"""About 50 seconds of English speech."""


def _story_wav(sentences: int | None = None) -> Path:
    """The story (or its first ``sentences``) spoken by piper's default voice: 22.05 kHz mono
    WAV, cached."""
    text = STORY if sentences is None else ". ".join(STORY.split(". ")[:sentences]) + "."
    final = cache_dir() / f"story-{sentences or 'all'}-22050.wav"
    if final.exists():
        return final
    import soundfile as sf

    from prefect_elevenlabs.local.engines.tts import VoiceProfile, synthesize

    speech = synthesize(text, profile=VoiceProfile())
    partial = final.with_name(f".{final.stem}.partial.wav")
    sf.write(str(partial), speech.samples, speech.sample_rate, subtype="PCM_16")
    partial.replace(final)
    return final


def _stt_input(story: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``story`` as 16 kHz mono WAV (what the upload carries)."""
    final = cache_dir() / f"{story.stem}-16k-{seconds:g}s.wav"
    if not final.exists():
        partial = final.with_name(f".{final.stem}.partial.wav")
        ffmpeg("-i", str(story), "-t", f"{seconds:g}", "-ar", "16000", "-ac", "1",
               str(partial))  # fmt: skip
        partial.replace(final)
    return final


def _rachel_kwargs() -> dict[str, Any]:
    """What the TTS route passes the engine for Rachel with default voice settings."""
    from prefect_elevenlabs.local.engines.voices import premade_voice

    voice = premade_voice(RACHEL)
    assert voice is not None
    return {
        "profile": voice.profile,
        "language": None,
        "speed": 1.0,
        "stability": 0.5,
        "style": 0.0,
        "seed": None,
    }


def _tts_http(http: Any, text: str) -> tuple[float, float]:
    began = time.perf_counter()
    response = http.post(
        f"/v1/text-to-speech/{RACHEL}",
        params={"output_format": f"pcm_{PCM_RATE}"},
        json={"text": text, "model_id": TTS_MODEL},
    )
    elapsed = time.perf_counter() - began
    response.raise_for_status()
    return elapsed, len(response.content) / 2 / PCM_RATE


def _tts_raw(text: str) -> tuple[float, float]:
    from prefect_elevenlabs.local.engines.tts import synthesize

    began = time.perf_counter()
    speech = synthesize(text, **_rachel_kwargs())
    return time.perf_counter() - began, speech.duration


def _stt_http(http: Any, wav: Path) -> tuple[float, float, str]:
    began = time.perf_counter()
    with open(wav, "rb") as handle:
        response = http.post(
            "/v1/speech-to-text",
            data={"model_id": "scribe_v1", "language_code": "en"},
            files={"file": (wav.name, handle, "audio/wav")},
        )
    elapsed = time.perf_counter() - began
    response.raise_for_status()
    body = response.json()
    return elapsed, float(body["audio_duration_secs"]), body["text"]


def _stt_raw(samples: np.ndarray) -> tuple[float, float, str]:
    from prefect_elevenlabs.local.engines.stt import transcribe

    began = time.perf_counter()
    result = transcribe(samples, sample_rate=16000, language="en")
    return time.perf_counter() - began, result.duration, result.text


def _rtf(pairs: list[tuple[float, float]]) -> float:
    # The best run: on a shared machine other work only ever adds time, never removes it.
    return min(elapsed / duration for elapsed, duration in pairs)


def _dub(http: Any, clip: Path, poll_s: float = 0.5, timeout_s: float = 900.0) -> dict[str, Any]:
    began = time.perf_counter()
    with open(clip, "rb") as handle:
        created = http.post(
            "/v1/dubbing",
            data={"source_lang": "en", "target_lang": "es", "num_speakers": "1"},
            files={"file": (clip.name, handle, "video/mp4")},
        )
    created.raise_for_status()
    dubbing_id = created.json()["dubbing_id"]
    uploaded = time.perf_counter() - began
    status = "dubbing"
    while status == "dubbing":
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError(f"dubbing {dubbing_id} still running after {timeout_s:.0f} s")
        time.sleep(poll_s)
        job = http.get(f"/v1/dubbing/{dubbing_id}")
        job.raise_for_status()
        status = job.json()["status"]
    if status != "dubbed":
        raise RuntimeError(f"dubbing {dubbing_id} ended {status}: {job.json().get('error')}")
    done = time.perf_counter() - began
    media = http.get(f"/v1/dubbing/{dubbing_id}/audio/es")
    media.raise_for_status()
    total = time.perf_counter() - began
    return {
        "seconds": total,
        "upload_s": uploaded,
        "until_dubbed_s": done,
        "download_bytes": len(media.content),
        "poll_interval_s": poll_s,
    }


def _two_cpus() -> set[int]:
    try:
        return set(sorted(os.sched_getaffinity(0))[:2])
    except AttributeError:  # pragma: no cover - not Linux
        return set()


def run(quick: bool = False) -> BenchmarkResult:
    """TTS and STT real-time factors (HTTP vs raw) and the time to dub a clip."""
    import httpx
    import soundfile as sf

    reps = 1 if quick else 3
    stt_seconds = 8.0 if quick else 60.0
    clip_seconds = 8.0 if quick else 60.0
    tts_text = TTS_TEXT.split(". ")[0] + "." if quick else TTS_TEXT
    story = _story_wav(2 if quick else None)
    stt_wav = _stt_input(story, stt_seconds)
    samples, rate = sf.read(str(stt_wav), dtype="float32")
    assert rate == 16000
    clip = speech_clip(story, seconds=clip_seconds, name=f"{story.stem}-clip-{clip_seconds:g}s.mp4")
    cpus = _two_cpus()

    tts_http: list[tuple[float, float]] = []
    tts_raw: list[tuple[float, float]] = []
    stt_http: list[tuple[float, float]] = []
    stt_raw: list[tuple[float, float]] = []
    texts: dict[str, str] = {}
    with EngineProcess(fast_voice=False, cpus=cpus or None) as engine:
        headers = {"xi-api-key": BENCH_API_KEY}
        with httpx.Client(base_url=engine.base_url, timeout=900.0, headers=headers) as http:
            # Warm-up: loads piper, the pitch shifter and Whisper on both sides.
            _tts_http(http, "Warming up.")
            _tts_raw("Warming up.")
            warm = samples[: 16000 * 3]
            _stt_raw(warm)
            warm_path = stt_wav.with_name(".warmup-3s.wav")
            sf.write(str(warm_path), warm, 16000, subtype="PCM_16")
            _stt_http(http, warm_path)
            for rep in range(reps):
                first, second = ("http", "raw") if rep % 2 == 0 else ("raw", "http")
                for side in (first, second):
                    if side == "http":
                        tts_http.append(_tts_http(http, tts_text))
                    else:
                        tts_raw.append(_tts_raw(tts_text))
                for side in (first, second):
                    if side == "http":
                        elapsed, duration, texts["http"] = _stt_http(http, stt_wav)
                        stt_http.append((elapsed, duration))
                    else:
                        elapsed, duration, texts["raw"] = _stt_raw(samples)
                        stt_raw.append((elapsed, duration))
            dub = _dub(http, clip)

    tts_ratio = _rtf(tts_http) / _rtf(tts_raw)
    stt_ratio = _rtf(stt_http) / _rtf(stt_raw)
    cpu_note = f"engine pinned to CPUs {sorted(cpus)}" if cpus else "no CPU pinning"
    rows = [
        Row(
            metric="TTS real-time factor, HTTP vs in-process",
            ours=_rtf(tts_http),
            baseline=_rtf(tts_raw),
            unit="x",
            ratio=tts_ratio,
            target=f"<= {TARGET_RATIO:.2f}",
            met=tts_ratio <= TARGET_RATIO,
            ours_label="engine over HTTP",
            baseline_label="synthesize()",
            how=(
                f"{len(tts_text)} characters ({tts_raw[0][1]:.1f} s of audio) with Rachel "
                f"(piper + pitch shift), pcm_{PCM_RATE}; best of {reps} per side after a "
                f"warm-up, alternating; processing seconds per second of audio; {cpu_note}"
            ),
        ),
        Row(
            metric="STT real-time factor, HTTP vs in-process",
            ours=_rtf(stt_http),
            baseline=_rtf(stt_raw),
            unit="x",
            ratio=stt_ratio,
            target=f"<= {TARGET_RATIO:.2f}",
            met=stt_ratio <= TARGET_RATIO,
            ours_label="engine over HTTP",
            baseline_label="transcribe()",
            how=(
                f"{len(samples) / 16000:.1f} s of piper speech as 16 kHz WAV, scribe_v1 with "
                "language_code=en (Whisper tiny.en) over HTTP versus transcribe(language='en') "
                f"on the decoded samples; best of {reps} per side after a warm-up; upload, "
                "decoding and response building count against HTTP"
            ),
        ),
        Row(
            metric=f"{clip_seconds:g}-second clip dubbed end to end (en -> es)",
            ours=dub["seconds"],
            baseline=clip_seconds,
            unit="s",
            ratio=dub["seconds"] / clip_seconds,
            target=f"<= {TARGET_DUB_S:.0f} s" if not quick else "— (quick: 8 s clip)",
            met=dub["seconds"] <= TARGET_DUB_S if not quick else None,
            ours_label="wall time",
            baseline_label="clip length",
            how=(
                "POST /v1/dubbing with a 320x240 H.264 + AAC mp4 (num_speakers=1), polling "
                f"every {dub['poll_interval_s']} s until dubbed, then downloading the dubbed "
                f"mp4; {cpu_note}; ratio is wall time over clip length"
            ),
        ),
    ]
    details = {
        "reps": reps,
        "tts": {
            "characters": len(tts_text),
            "http": [{"seconds": e, "audio_s": d} for e, d in tts_http],
            "raw": [{"seconds": e, "audio_s": d} for e, d in tts_raw],
        },
        "stt": {
            "audio_s": stt_seconds,
            "http": [{"seconds": e, "audio_s": d} for e, d in stt_http],
            "raw": [{"seconds": e, "audio_s": d} for e, d in stt_raw],
            "same_text": texts.get("http") == texts.get("raw"),
            "text_http": texts.get("http", "")[:200],
        },
        "dub": dub,
        "engine_cpus": sorted(cpus),
    }
    return BenchmarkResult(name=NAME, title=TITLE, rows=rows, details=details, quick=quick)


if __name__ == "__main__":
    from .run import run_one

    run_one(NAME)
