"""The local engine's dubbing jobs: a small worker pool and the pipeline each job runs.

``POST /v1/dubbing`` stores the source media under ``<data_dir>/audio/dubbing/<dubbing_id>/``,
records the job in SQLite with status ``dubbing`` and hands its id to :class:`DubbingRunner`.
One worker thread (two at most: speech recognition already uses both cores of a small
machine) runs :func:`run_job`, which does what a dubbing studio would:

1. cut the media to ``start_time``/``end_time`` and extract its audio;
2. transcribe it with word timings (Whisper), with speakers when ``num_speakers`` is not 1;
3. group the words into utterance segments and translate all of them in one Apertium call;
4. give every speaker a voice: a profile with the pitch and pace of that speaker's own speech
   (:func:`~prefect_elevenlabs.local.engines.voices.profile_from_samples`), or with
   ``disable_voice_cloning`` a premade voice of the same gender (guessed from pitch);
5. speak each translated segment and fit it into its time slot (faster, never slower and never
   cut: a phrase that cannot fit at 1.6x runs past its slot instead);
6. mix the speech over the original audio, which is ducked by 18 dB while anyone speaks (the
   engine cannot separate voices from background, so the original speech stays faintly
   audible beneath the dub, as in a voice-over), or over silence with
   ``drop_background_audio``;
7. mux the mix back onto the video (``.mp4``), or write it as mp3 for audio input;
8. keep the source and target transcripts (utterances with word timings) for the transcript
   routes.

The job then turns ``dubbed`` (or ``failed`` with ``error``). State lives in SQLite, so
``GET /v1/dubbing/{id}`` survives a restart, and a runner started over an existing data dir
takes up the jobs that were still in progress.

Example::

    runner = DubbingRunner(state)
    runner.submit(dubbing_id)
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .state import DubbingJob, EngineState

__all__ = [
    "DUCK_DB",
    "DubbingError",
    "DubbingRequest",
    "DubbingRunner",
    "fit_target",
    "job_dir",
    "join_words",
    "read_transcript",
    "run_job",
    "speech_onset",
]

logger = logging.getLogger(__name__)

DUCK_DB = -18.0
"""How far the original audio is lowered while dubbed speech plays."""

_STT_RATE = 16000
_MIX_RATE = 44100
_MAX_TEMPO = 1.6
_SEGMENT_GAP_SECONDS = 0.6
_SEGMENT_MAX_SECONDS = 12.0
_FEMALE_F0 = 165.0
_TRANSCRIPT_FILE = "transcript_{}.json"


class DubbingError(RuntimeError):
    """A dubbing job cannot be completed; the message is what ``GET`` reports as ``error``."""


@dataclass
class DubbingRequest:
    """What a job was asked to do (kept in the job's ``metadata["request"]``)."""

    target_lang: str
    source_file: str
    has_video: bool
    source_lang: str | None = None
    num_speakers: int = 0
    start_time: float | None = None
    end_time: float | None = None
    drop_background_audio: bool = False
    disable_voice_cloning: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The request as stored in the job's metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DubbingRequest:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def job_dir(state: EngineState, dubbing_id: str) -> Path:
    """``<data_dir>/audio/dubbing/<dubbing_id>``: where a job keeps its files."""
    return state.safe_path("dubbing", dubbing_id)


def read_transcript(state: EngineState, job: DubbingJob, language: str) -> dict[str, Any] | None:
    """A finished job's transcript (``"source"`` or a target language), or None."""
    name = job.paths.get(f"transcript_{language}")
    if name is None:
        return None
    path = state.audio_dir / "dubbing" / name
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def fit_target(natural: float, slot: float, *, max_tempo: float = _MAX_TEMPO) -> float:
    """Seconds a dubbed phrase of ``natural`` seconds should last in a ``slot`` of seconds.

    A phrase that fits keeps its own pace (slowing synthetic speech down only hurts it); a
    longer one is sped up to fill the slot, by ``max_tempo`` at most. Since the tempo never
    exceeds the limit, the fitted phrase is never cut; if even that is too long, it runs past
    the slot.

    Example::

        fit_target(2.0, 3.0)   # 2.0: fits as is
        fit_target(4.0, 3.0)   # 3.0: 1.33x faster
        fit_target(6.0, 3.0)   # 3.75: 1.6x faster, 0.75 s past the slot
    """
    if natural <= 0:
        raise ValueError(f"natural duration must be positive, got {natural}")
    if natural <= slot:
        return natural
    return max(slot, natural / max_tempo)


def speech_onset(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    """When speech really begins in ``[start, end)`` seconds of mono ``samples``.

    Whisper tends to start a phrase's first word early, at the end of the preceding silence;
    the first 20 ms frame within a tenth of the phrase's peak level (and above -45 dBFS) is
    where the voice starts.

    Example::

        speech_onset(samples, 16000, 0.14, 2.9)   # 0.5 when the voice starts at 0.5 s
    """
    frame = max(1, int(0.02 * rate))
    region = np.asarray(samples[max(0, int(start * rate)) : max(0, int(end * rate))])
    count = region.size // frame
    if count == 0:
        return start
    levels = np.sqrt(np.mean(np.square(region[: count * frame].reshape(count, frame)), axis=1))
    threshold = max(float(levels.max()) * 0.1, 10 ** (-45 / 20))
    loud = np.flatnonzero(levels >= threshold)
    return start + (int(loud[0]) * frame / rate if loud.size else 0.0)


# -- the runner -------------------------------------------------------------------------------


class DubbingRunner:
    """Runs dubbing jobs on ``workers`` daemon threads, oldest first.

    Creating a runner takes up the jobs of ``state`` still marked ``dubbing`` (interrupted by a
    restart). :meth:`cancel` makes a queued or running job's results be discarded (used when a
    job is deleted).
    """

    def __init__(self, state: EngineState, *, workers: int = 1) -> None:
        if not 1 <= workers <= 2:
            raise ValueError(f"workers must be 1 or 2, got {workers}")
        self.state = state
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"dubbing-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        for job in reversed(state.list_dubbing(statuses=["dubbing"])):
            self.submit(job.dubbing_id)

    def submit(self, dubbing_id: str) -> None:
        """Queue a job that is already saved with status ``dubbing``."""
        self._queue.put(dubbing_id)

    def cancel(self, dubbing_id: str) -> None:
        """Forget a job: skip it if queued, discard its results if running."""
        with self._lock:
            self._cancelled.add(dubbing_id)

    def is_cancelled(self, dubbing_id: str) -> bool:
        """Whether :meth:`cancel` was called for this job."""
        with self._lock:
            return dubbing_id in self._cancelled

    def close(self) -> None:
        """Stop the workers once they finish their current job."""
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            dubbing_id = self._queue.get()
            if dubbing_id is None:
                return
            if self.is_cancelled(dubbing_id):
                continue
            started = time.perf_counter()
            try:
                run_job(self.state, dubbing_id, cancelled=self.is_cancelled)
                logger.info("dubbing %s done in %.1f s", dubbing_id, time.perf_counter() - started)
            except Exception as exc:
                if self.is_cancelled(dubbing_id):
                    # A deleted job may have recreated files after the delete removed them.
                    shutil.rmtree(job_dir(self.state, dubbing_id), ignore_errors=True)
                    continue
                logger.warning("dubbing %s failed: %r", dubbing_id, exc, exc_info=exc)
                message = str(exc) or type(exc).__name__
                with contextlib.suppress(KeyError):
                    self.state.update_dubbing(dubbing_id, status="failed", error=message[:1000])


# -- the pipeline -----------------------------------------------------------------------------


def _trim(src: Path, dest: Path, start: float | None, end: float | None) -> Path:
    """Cut ``src`` to [start, end] seconds (re-encoding, so the cut is exact)."""
    from ..media import ffmpeg_binary

    args = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if start:
        args += ["-ss", f"{start:.3f}"]
    args += ["-i", str(src)]
    if end is not None:
        args += ["-t", f"{max(end - (start or 0.0), 0.1):.3f}"]
    args.append(str(dest))
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not dest.is_file():
        tail = " ".join(result.stderr.strip().splitlines()[-2:])
        raise DubbingError(f"could not cut the media to start_time/end_time: {tail}")
    return dest


@dataclass
class _Segment:
    text: str
    start: float
    end: float
    speaker: str
    words: list[dict[str, Any]]


_ATTACHED = re.compile("^(?:['\u2019][a-z]|[.,!?;:%)\\]}\u2026])", re.IGNORECASE)


def join_words(words: Sequence[str]) -> str:
    """Words back into text, re-attaching pieces Whisper splits off (``o`` + ``'clock``).

    Example::

        join_words(["at", "8", "o", "'clock."])   # "at 8 o'clock."
    """
    text = ""
    for word in words:
        if text and not _ATTACHED.match(word):
            text += " "
        text += word
    return text


def _segments(words: Sequence[Any]) -> list[_Segment]:
    from ..subtitles import segments

    return [
        _Segment(join_words([w["text"] for w in s["words"]]), float(s["start_time"]),
                 float(s["end_time"]), s["speaker"] or "speaker_0", s["words"])
        for s in segments(
            words,
            segment_on_silence_longer_than_s=_SEGMENT_GAP_SECONDS,
            max_segment_duration_s=_SEGMENT_MAX_SECONDS,
        )
    ]  # fmt: skip


def _speaker_audio(samples: np.ndarray, segs: Sequence[_Segment]) -> dict[str, list[np.ndarray]]:
    audio: dict[str, list[np.ndarray]] = {}
    for seg in segs:
        lo, hi = int(seg.start * _STT_RATE), int(seg.end * _STT_RATE)
        if hi > lo:
            audio.setdefault(seg.speaker, []).append(samples[lo:hi])
    return audio


def _speaker_voices(
    samples: np.ndarray, segs: Sequence[_Segment], *, clone: bool
) -> dict[str, Any]:
    """A voice profile per speaker: cloned from their speech, or a premade of their gender."""
    from .engines.voices import PREMADE_VOICES, estimate_f0, profile_from_samples

    by_gender = {
        gender: [voice for voice in PREMADE_VOICES if voice.gender == gender]
        for gender in ("female", "male")
    }
    used = {"female": 0, "male": 0}
    voices: dict[str, Any] = {}
    for speaker, pieces in _speaker_audio(samples, segs).items():
        joined = np.concatenate(pieces)
        if clone:
            try:
                voices[speaker] = profile_from_samples(pieces, _STT_RATE)
                continue
            except ValueError:
                pass  # too little voiced speech to measure: fall back to a premade voice
        f0 = estimate_f0(joined, _STT_RATE) if joined.size else None
        gender = "female" if f0 is not None and f0 >= _FEMALE_F0 else "male"
        choices = by_gender[gender]
        voices[speaker] = choices[used[gender] % len(choices)].profile
        used[gender] += 1
    return voices


def _utterance(seg: _Segment, words: Sequence[dict[str, Any]], text: str) -> dict[str, Any]:
    return {
        "text": text,
        "speaker_id": seg.speaker,
        "start_s": round(seg.start if not words else float(words[0]["start"]), 3),
        "end_s": round(seg.end if not words else float(words[-1]["end"]), 3),
        "words": [
            {
                "text": word["text"],
                "word_type": "word",
                "start_s": round(float(word["start"]), 3),
                "end_s": round(float(word["end"]), 3),
            }
            for word in words
        ],
    }


def _write_transcript(
    directory: Path, language_key: str, language: str, utterances: list[dict[str, Any]]
) -> str:
    name = _TRANSCRIPT_FILE.format(language_key)
    body = {"language": language, "utterances": utterances}
    (directory / name).write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return f"{directory.name}/{name}"


def _silence_like(info: Any, dest: Path) -> Path:
    import soundfile as sf

    rate = info.sample_rate or _MIX_RATE
    channels = min(info.channels or 1, 2)
    frames = max(1, round(info.duration * rate))
    sf.write(str(dest), np.zeros((frames, channels), dtype=np.float32), rate, subtype="PCM_16")
    return dest


def run_job(
    state: EngineState, dubbing_id: str, *, cancelled: Any = lambda _id: False
) -> DubbingJob:
    """Run one job's pipeline (blocking) and mark it ``dubbed``; returns the updated job.

    Raises whatever stopped it (the runner records it as the job's ``error``).
    """
    import soundfile as sf

    from ..media import convert, extract_audio, fit_to_duration, mix_over, mux, probe
    from ..subtitles import words_from_alignment
    from .audio import decode
    from .engines.diarize import assign_speakers
    from .engines.stt import transcribe
    from .engines.translate import supported_pairs, translate
    from .engines.tts import synthesize

    job = state.get_dubbing(dubbing_id)
    if job is None:
        raise DubbingError(f"dubbing job {dubbing_id} no longer exists")
    request = DubbingRequest.from_dict(job.metadata["request"])
    directory = job_dir(state, dubbing_id)
    work = directory / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = directory / request.source_file
    target = request.target_lang

    media = source
    if request.start_time or request.end_time is not None:
        media = _trim(source, work / f"trimmed{source.suffix}", request.start_time,
                      request.end_time)  # fmt: skip
    info = probe(media)
    if not info.has_audio:
        raise DubbingError("the media has no audio track to dub")
    original = extract_audio(
        media, work / "original.wav", sample_rate=_MIX_RATE, channels=min(info.channels or 1, 2)
    )
    speech16 = decode(original, sample_rate=_STT_RATE)

    result = transcribe(speech16, sample_rate=_STT_RATE, language=request.source_lang)
    language = result.language
    if language != target and (language, target) not in supported_pairs():
        pairs = ", ".join(f"{s}->{t}" for s, t in sorted(supported_pairs())) or "none"
        raise DubbingError(
            f"the speech is in {language!r}, which cannot be translated to {target!r}; "
            f"available translation pairs: {pairs}"
        )
    words = result.words
    if request.num_speakers != 1 and len(words) > 1:
        words = assign_speakers(
            speech16, _STT_RATE, words, num_speakers=request.num_speakers or None
        )
    else:
        for word in words:
            word.speaker_id = "speaker_0"
    segs = _segments(words)
    texts = translate([seg.text for seg in segs], language, target) if segs else []
    voices = _speaker_voices(speech16, segs, clone=not request.disable_voice_cloning)

    placed: list[tuple[Path, float]] = []
    source_utterances = [_utterance(seg, seg.words, seg.text) for seg in segs]
    target_utterances = []
    for index, (seg, text) in enumerate(zip(segs, texts, strict=True)):
        if cancelled(dubbing_id):
            raise DubbingError("the job was deleted")
        if not text.strip():
            continue
        seg.start = speech_onset(speech16, _STT_RATE, seg.start, seg.end)
        speech = synthesize(text, profile=voices[seg.speaker], language=target)
        raw = work / f"segment_{index:04d}.wav"
        sf.write(str(raw), speech.samples, speech.sample_rate, subtype="PCM_16")
        following = segs[index + 1].start if index + 1 < len(segs) else info.duration
        slot = max(following - seg.start, seg.end - seg.start, 0.05)
        fitted = fit_to_duration(
            raw, work / f"fitted_{index:04d}.wav", fit_target(speech.duration, slot),
            min_tempo=0.5, max_tempo=_MAX_TEMPO, pad=False,
        )  # fmt: skip
        placed.append((fitted.path, seg.start))
        spoken = [
            {**word, "start": seg.start + word["start"] / fitted.tempo,
             "end": seg.start + word["end"] / fitted.tempo}
            for word in words_from_alignment(speech.alignment())
        ]  # fmt: skip
        target_utterances.append(_utterance(seg, spoken, text))

    background = original
    if request.drop_background_audio:
        background = _silence_like(probe(original), work / "silence.wav")
    mix = mix_over(background, placed, work / "mix.wav", duck_db=DUCK_DB if placed else 0.0)
    if request.has_video:
        output = directory / f"dubbed_{target}.mp4"
        mux(media, mix, output, audio_language=target)
        content_type = "video/mp4"
    else:
        output = directory / f"dubbed_{target}.mp3"
        convert(mix, output, bitrate="128k")
        content_type = "audio/mpeg"
    if cancelled(dubbing_id):
        raise DubbingError("the job was deleted")

    paths = dict(job.paths)
    paths[target] = f"{directory.name}/{output.name}"
    paths["transcript_source"] = _write_transcript(directory, "source", language,
                                                   source_utterances)  # fmt: skip
    paths[f"transcript_{target}"] = _write_transcript(directory, target, target,
                                                      target_utterances)  # fmt: skip
    metadata = dict(job.metadata)
    metadata["media_metadata"] = {
        "content_type": content_type,
        "duration": round(probe(output).duration, 3),
    }
    metadata["speakers"] = sorted(voices)
    shutil.rmtree(work, ignore_errors=True)
    return state.update_dubbing(
        dubbing_id,
        status="dubbed",
        source_language=language,
        paths=paths,
        metadata=metadata,
        error=None,
    )
