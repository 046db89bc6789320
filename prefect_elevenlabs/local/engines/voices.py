"""The local engine's voice catalogue, and voices derived from a description or from recordings.

- :data:`PREMADE_VOICES` carries ElevenLabs' well-known premade voice ids and names with
  gender/age/accent labels and a :class:`~.tts.VoiceProfile` that fits them (female voices are
  pitched up and use a female espeak variant for other languages, British voices use espeak's
  British English when spoken by espeak, and so on).
- :func:`design_profiles` turns a free-text description ("a deep, slow old man with a British
  accent") into distinct profiles, deterministically for a given seed.
- :func:`profile_from_samples` clones a speaker's pitch and pace: it measures the median
  fundamental frequency (YIN) and the syllable rate (peaks of the speech-band energy
  envelope) and sets the profile's pitch shift and rate so that the synthetic voice lands near
  them, relative to the measured pitch and pace of the default piper voice.

Example:
    >>> premade_voice("21m00Tcm4TlvDq8ikWAM").name
    'Rachel'
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..audio import resample
from .tts import SAMPLE_RATE, VoiceProfile

__all__ = [
    "DEFAULT_VOICE_ID",
    "PREMADE_VOICES",
    "PremadeVoice",
    "design_profiles",
    "estimate_f0",
    "estimate_syllable_rate",
    "premade_voice",
    "profile_from_samples",
]

Gender = Literal["male", "female"]


@dataclass(frozen=True)
class PremadeVoice:
    """A catalogue voice: its ElevenLabs id and labels, and the local profile that speaks it."""

    voice_id: str
    name: str
    gender: Gender
    age: str
    accent: str
    description: str
    use_case: str
    profile: VoiceProfile

    @property
    def labels(self) -> dict[str, str]:
        """The ``labels`` object ElevenLabs returns for this voice."""
        return {
            "accent": self.accent,
            "description": self.description,
            "age": self.age,
            "gender": self.gender,
            "use_case": self.use_case,
        }


def _voice(
    voice_id: str,
    name: str,
    gender: Gender,
    age: str,
    accent: str,
    description: str,
    use_case: str,
    *,
    pitch: float,
    rate: float = 1.0,
    variant: str,
) -> PremadeVoice:
    espeak_voice = "en" if accent in ("british", "english", "irish") else "en-us"
    profile = VoiceProfile(
        engine="piper",
        espeak_voice=espeak_voice,
        pitch_semitones=pitch,
        rate=rate,
        variant=variant,
    )
    return PremadeVoice(voice_id, name, gender, age, accent, description, use_case, profile)


# Piper's joe voice is an adult American man (about 90 Hz); female voices are pitched up by
# eight to eleven semitones, older and deeper voices down, each to a slightly different place so
# that no two catalogue voices sound the same.
PREMADE_VOICES: tuple[PremadeVoice, ...] = (
    _voice("21m00Tcm4TlvDq8ikWAM", "Rachel", "female", "young", "american", "calm", "narration",
           pitch=9.5, rate=0.97, variant="f3"),
    _voice("pNInz6obpgDQGcFmaJgB", "Adam", "male", "middle aged", "american", "deep", "narration",
           pitch=-2.5, rate=0.96, variant="m3"),
    _voice("EXAVITQu4vr4xnSDxMaL", "Bella", "female", "young", "american", "soft",
           "narration", pitch=10.0, rate=0.94, variant="f2"),
    _voice("ErXwobaYiN019PkySvjV", "Antoni", "male", "young", "american", "well-rounded",
           "narration", pitch=0.5, rate=1.02, variant="m1"),
    _voice("TxGEqnHWrfWFTfGW9XjX", "Josh", "male", "young", "american", "deep", "narration",
           pitch=-1.5, rate=1.0, variant="m2"),
    _voice("VR6AewLTigWG4xSOukaG", "Arnold", "male", "middle aged", "american", "crisp",
           "narration", pitch=-1.0, rate=0.95, variant="m7"),
    _voice("AZnzlk1XvdvUeBnXmlld", "Domi", "female", "young", "american", "strong",
           "narration", pitch=8.5, rate=1.06, variant="f4"),
    _voice("nPczCjzI2devNBz1zQrb", "Brian", "male", "middle aged", "american", "deep",
           "narration", pitch=-3.0, rate=0.93, variant="m3"),
    _voice("onwK4e9ZLuTAKqWW03F9", "Daniel", "male", "middle aged", "british", "authoritative",
           "news", pitch=-1.0, rate=1.0, variant="m6"),
    _voice("pFZP5JQG7iQjIQuC4Bku", "Lily", "female", "middle aged", "british", "warm",
           "narration", pitch=9.0, rate=0.95, variant="f1"),
    _voice("JBFqnCBsd6RMkjVDRZzb", "George", "male", "middle aged", "british", "warm",
           "narration", pitch=-2.0, rate=0.94, variant="m4"),
    _voice("CwhRBWXzGAHq8TQ4Fs17", "Roger", "male", "middle aged", "american", "confident",
           "social media", pitch=-0.5, rate=1.04, variant="m5"),
    _voice("FGY2WhTYpPnrIDTdsKH5", "Laura", "female", "young", "american", "upbeat",
           "social media", pitch=10.5, rate=1.08, variant="f5"),
    _voice("IKne3meq5aSn9XLyUdCD", "Charlie", "male", "young", "australian", "natural",
           "conversational", pitch=1.0, rate=1.05, variant="m2"),
    _voice("N2lVS1w4EtoT3dr4eOWO", "Callum", "male", "middle aged", "american", "husky",
           "characters", pitch=-1.8, rate=0.98, variant="m8"),
    _voice("TX3LPaxmHKxFdv7VOQHJ", "Liam", "male", "young", "american", "energetic",
           "social media", pitch=1.5, rate=1.08, variant="m1"),
    _voice("Xb7hH8MSUJpSbSDYk0k2", "Alice", "female", "middle aged", "british", "clear",
           "educational", pitch=8.8, rate=1.0, variant="f2"),
    _voice("XrExE9yKIg1WjnnlVkGX", "Matilda", "female", "middle aged", "american", "friendly",
           "narration", pitch=9.2, rate=0.98, variant="f3"),
    _voice("cgSgspJ2msm6clMCkdW9", "Jessica", "female", "young", "american", "expressive",
           "conversational", pitch=10.8, rate=1.05, variant="f4"),
    _voice("cjVigY5qzO86Huf0OWal", "Eric", "male", "middle aged", "american", "friendly",
           "conversational", pitch=0.0, rate=1.0, variant="m3"),
    _voice("iP95p4xoKVk53GoZ742B", "Chris", "male", "middle aged", "american", "casual",
           "conversational", pitch=0.8, rate=1.03, variant="m5"),
    _voice("bIHbv24MWmeRgasZH58o", "Will", "male", "young", "american", "friendly",
           "social media", pitch=1.2, rate=1.06, variant="m2"),
    _voice("pqHfZKP75CvOlQylNhV4", "Bill", "male", "old", "american", "trustworthy",
           "narration", pitch=-3.5, rate=0.9, variant="m7"),
    _voice("SAz9YHcvj6GT2YYXdXww", "River", "female", "middle aged", "american", "relaxed",
           "conversational", pitch=7.0, rate=0.97, variant="f1"),
    _voice("9BWtsMINqrJLrRacOk9x", "Aria", "female", "middle aged", "american", "husky",
           "social media", pitch=8.0, rate=1.0, variant="f5"),
)  # fmt: skip

#: The voice used when none is given: Rachel.
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"

_BY_ID = {voice.voice_id: voice for voice in PREMADE_VOICES}


def premade_voice(voice_id: str) -> PremadeVoice | None:
    """The catalogue voice with ``voice_id``, or None when it is not a premade voice."""
    return _BY_ID.get(voice_id)


# --------------------------------------------------------------------------- voice design

_WORDS = {
    "female": ("female", "woman", "women", "girl", "lady", "feminine", "she", "her", "mother",
               "grandmother", "grandma", "actress", "queen", "princess", "sister", "daughter"),
    "male": ("male", "man", "men", "boy", "guy", "gentleman", "masculine", "he", "his", "father",
             "grandfather", "grandpa", "actor", "king", "prince", "brother", "son"),
    "child": ("child", "kid", "kids", "little", "toddler", "childlike", "girl", "boy"),
    "young": ("young", "youthful", "teen", "teenage", "teenager", "student", "twenties"),
    "old": ("old", "elderly", "aged", "senior", "ancient", "grandmother", "grandfather",
            "grandma", "grandpa", "wise", "weathered", "seventies", "eighties"),
    "deep": ("deep", "low", "bass", "baritone", "booming", "gravelly", "husky", "gruff",
             "resonant", "dark", "rumbling"),
    "high": ("high", "squeaky", "bright", "shrill", "chirpy", "light", "airy", "soprano",
             "falsetto"),
    "fast": ("fast", "quick", "rapid", "energetic", "excited", "hurried", "enthusiastic",
             "lively", "upbeat", "frantic", "brisk"),
    "slow": ("slow", "calm", "measured", "relaxed", "soothing", "deliberate", "sleepy",
             "gentle", "meditative", "languid", "thoughtful"),
    "british": ("british", "english", "london", "uk", "posh", "scottish", "irish", "rp",
                "cockney", "welsh"),
    "robotic": ("robot", "robotic", "synthetic", "android", "computer", "mechanical"),
}  # fmt: skip


def _keyword_counts(description: str) -> dict[str, int]:
    tokens = re.findall(r"[a-z]+", description.lower())
    return {key: sum(tokens.count(w) for w in words) for key, words in _WORDS.items()}


def design_profiles(
    description: str, *, seed: int | None = None, count: int = 3
) -> list[VoiceProfile]:
    """Profiles matching a voice description, ``count`` audibly different variants of it.

    Gender, age, pitch ("deep", "high"), pace ("fast", "calm") and accent ("British") words are
    read from the description; the variants spread around that target by at least a semitone
    of pitch and a few percent of pace. The same description and seed give the same profiles.

    Example:
        >>> [p.pitch_semitones > 3 for p in design_profiles("a young woman", seed=1)]
        [True, True, True]
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    words = _keyword_counts(description)
    female = words["female"] > words["male"]
    pitch = 9.0 if female else 0.0
    rate = 1.0
    if words["child"] and not words["old"]:
        pitch += 3.5
        rate *= 1.05
    if words["young"]:
        pitch += 1.0
        rate *= 1.04
    if words["old"]:
        pitch -= 1.5
        rate *= 0.9
    pitch += 2.0 * min(words["high"], 2) - 2.5 * min(words["deep"], 2)
    if words["fast"] > words["slow"]:
        rate *= 1.14
    elif words["slow"] > words["fast"]:
        rate *= 0.88
    pitch = float(np.clip(pitch, -9.0, 12.0))
    espeak_voice = "en" if words["british"] else "en-us"
    engine: Literal["piper", "espeak"] = "espeak" if words["robotic"] else "piper"
    pool = ("f1", "f2", "f3", "f4", "f5") if female else ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
    key = zlib.crc32(description.strip().lower().encode("utf-8"))
    rng = np.random.default_rng([key, 0 if seed is None else seed + 1])
    # Spread the variants over a pitch ladder a semitone and a half apart, in a random order.
    ladder = (np.arange(count) - (count - 1) / 2.0) * 1.5
    offsets = rng.permutation(ladder) + rng.uniform(-0.3, 0.3, size=count)
    variants = rng.permutation(pool)
    profiles: list[VoiceProfile] = []
    for i in range(count):
        profiles.append(
            VoiceProfile(
                engine=engine,
                espeak_voice=espeak_voice,
                pitch_semitones=round(float(np.clip(pitch + offsets[i], -12.0, 12.0)), 2),
                rate=round(float(np.clip(rate * rng.uniform(0.95, 1.05), 0.6, 1.6)), 3),
                variant=str(variants[i % len(variants)]),
            )
        )
    return profiles


# --------------------------------------------------------------------------- analysis

_ANALYSIS_RATE = 16000
_F0_MIN, _F0_MAX = 60.0, 500.0
_MAX_ANALYSED_FRAMES = 3000


def _mono(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 2:
        array = array.mean(axis=1)
    if array.ndim != 1:
        raise ValueError(f"samples must be a mono or stereo array, got shape {array.shape}")
    return array


def _frames(signal: npt.NDArray[np.float32], size: int, hop: int) -> npt.NDArray[np.float32]:
    if len(signal) < size:
        return np.zeros((0, size), dtype=np.float32)
    count = 1 + (len(signal) - size) // hop
    index = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return signal[index]


def estimate_f0(samples: npt.ArrayLike, sample_rate: int) -> float | None:
    """Median fundamental frequency (Hz) of the voiced parts of ``samples``, or None.

    Uses the YIN cumulative-mean-normalised difference over 30 ms windows every 10 ms, on the
    louder frames only; None when fewer than ten frames are clearly voiced (silence, noise or
    less than a fraction of a second of speech).

    Example:
        >>> t = np.arange(16000) / 16000
        >>> round(estimate_f0(np.sin(2 * np.pi * 150 * t), 16000))
        150
    """
    signal = _mono(samples)
    if sample_rate != _ANALYSIS_RATE and len(signal):
        signal = resample(signal, sample_rate, _ANALYSIS_RATE)
    window = int(0.03 * _ANALYSIS_RATE)
    max_lag = int(_ANALYSIS_RATE / _F0_MIN)
    min_lag = int(_ANALYSIS_RATE / _F0_MAX)
    frames = _frames(signal, window + max_lag, _ANALYSIS_RATE // 100)
    if not len(frames):
        return None
    energy = np.sqrt(np.mean(frames[:, :window] ** 2, axis=1))
    if energy.max() < 1e-4:
        return None
    frames = frames[energy > max(energy.max() * 0.1, 1e-4)]
    if len(frames) > _MAX_ANALYSED_FRAMES:
        frames = frames[np.linspace(0, len(frames) - 1, _MAX_ANALYSED_FRAMES).astype(int)]
    frames = frames - frames.mean(axis=1, keepdims=True)
    size = 1 << math.ceil(math.log2(2 * (window + max_lag)))
    head = np.fft.rfft(frames[:, :window], size)
    whole = np.fft.rfft(frames, size)
    cross = np.fft.irfft(np.conj(head) * whole, size)[:, : max_lag + 1]
    squares = np.concatenate(
        [np.zeros((len(frames), 1)), np.cumsum(frames.astype(np.float64) ** 2, axis=1)], axis=1
    )
    lags = np.arange(max_lag + 1)
    tail_energy = squares[:, lags + window] - squares[:, lags]
    diff = squares[:, window : window + 1] + tail_energy - 2.0 * cross
    cumulative = np.cumsum(diff[:, 1:], axis=1)
    normalised = np.ones_like(diff)
    normalised[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)
    estimates: list[float] = []
    for row in normalised:
        candidates = np.flatnonzero(row[min_lag:max_lag] < 0.2) + min_lag
        if len(candidates):
            lag = int(candidates[0])
            while lag + 1 < max_lag and row[lag + 1] < row[lag]:
                lag += 1
        else:
            lag = int(np.argmin(row[min_lag:max_lag])) + min_lag
            if row[lag] > 0.35:
                continue
        # Parabolic interpolation around the dip for sub-sample precision.
        a, b, c = row[lag - 1], row[lag], row[min(lag + 1, max_lag)]
        denominator = a - 2 * b + c
        shift = 0.5 * (a - c) / denominator if abs(denominator) > 1e-12 else 0.0
        estimates.append(_ANALYSIS_RATE / (lag + float(np.clip(shift, -1, 1))))
    if len(estimates) < 10:
        return None
    return float(np.median(estimates))


def estimate_syllable_rate(samples: npt.ArrayLike, sample_rate: int) -> float | None:
    """Syllables per second of speaking time, from peaks of the 300-3000 Hz energy envelope.

    Pauses (frames well below the speech level) are excluded from the time. None when there is
    too little speech to tell.
    """
    signal = _mono(samples)
    if sample_rate != _ANALYSIS_RATE and len(signal):
        signal = resample(signal, sample_rate, _ANALYSIS_RATE)
    size, hop = 400, 160
    frames = _frames(signal, size, hop)
    if len(frames) < 50:
        return None
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1)) ** 2
    freqs = np.fft.rfftfreq(size, 1 / _ANALYSIS_RATE)
    band = spectrum[:, (freqs >= 300) & (freqs <= 3000)].sum(axis=1)
    level = 10 * np.log10(band + 1e-12)
    smooth = np.convolve(level, np.ones(5) / 5, mode="same")
    top = np.percentile(smooth, 95)
    speaking = smooth > top - 25
    if speaking.sum() < 30:
        return None
    peaks: list[int] = []
    valley = smooth[0]
    for i in range(1, len(smooth) - 1):
        valley = min(valley, smooth[i])
        is_peak = smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1]
        if not is_peak or smooth[i] < top - 18 or smooth[i] - valley < 3.0:
            continue
        if peaks and i - peaks[-1] < 8:  # closer than 80 ms: one syllable
            if smooth[i] > smooth[peaks[-1]]:
                peaks[-1] = i
            continue
        peaks.append(i)
        valley = smooth[i]
    seconds = speaking.sum() * hop / _ANALYSIS_RATE
    return len(peaks) / seconds if peaks else None


@functools.lru_cache(maxsize=1)
def _reference_syllable_rate() -> float:
    from .tts import _REFERENCE_TEXT, _Piper

    samples, _ = _Piper.get().speak(_REFERENCE_TEXT, 1.0)
    rate = estimate_syllable_rate(samples, SAMPLE_RATE)
    if rate is None:  # pragma: no cover - the reference sentence is plain speech
        raise RuntimeError("could not measure the pace of the default voice")
    return rate


def profile_from_samples(samples: Sequence[npt.ArrayLike], sample_rate: int) -> VoiceProfile:
    """A profile whose synthetic voice has the pitch and pace of the recorded speaker.

    Raises:
        ValueError: no samples, less than one second of audio in total, or no voiced speech
            (silence or noise).

    Example:
        >>> profile = profile_from_samples([recording], 16000)  # doctest: +SKIP
    """
    from .tts import reference_f0

    if not samples:
        raise ValueError("at least one audio sample is needed to clone a voice")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    parts = [_mono(s) for s in samples]
    gap = np.zeros(int(0.2 * sample_rate), dtype=np.float32)
    joined = np.concatenate([p for part in parts for p in (part, gap)])
    total = sum(len(p) for p in parts) / sample_rate
    if total < 1.0:
        raise ValueError(
            f"the samples hold {total:.2f} s of audio; upload at least 1 second of clear speech"
        )
    f0 = estimate_f0(joined, sample_rate)
    if f0 is None:
        raise ValueError(
            "no voiced speech was found in the samples (they are silent, noise or too short); "
            "upload at least a few seconds of one person speaking"
        )
    pitch = 12.0 * math.log2(f0 / reference_f0("piper"))
    measured_rate = estimate_syllable_rate(joined, sample_rate)
    rate = 1.0 if measured_rate is None else measured_rate / _reference_syllable_rate()
    return replace(
        VoiceProfile(),
        pitch_semitones=round(float(np.clip(pitch, -12.0, 12.0)), 2),
        rate=round(float(np.clip(rate, 0.75, 1.35)), 3),
        variant="f3" if f0 >= 165.0 else "m3",
    )
