"""Procedural sound-effect synthesizer behind the offline ``/v1/sound-generation`` route.

A prompt is read for sound categories (rain, thunder, footsteps, a door knock, ...) and for
modifiers (distant, muffled, heavy, fast, metal, ...). Every category has its own recipe built
from filtered noise, modal resonators, chirps and scheduled events, so different prompts give
recognisably different sounds; several categories in one prompt are mixed. Everything is plain
numpy: no model weights, no samples, and the same inputs always give the same samples.

Example:
    >>> from prefect_elevenlabs.local.engines import sfx
    >>> sfx.describe("heavy rain with distant thunder")
    ['rain', 'thunder']
    >>> audio = sfx.generate("heavy rain with distant thunder", duration_seconds=5.0)
    >>> audio.shape, audio.dtype
    ((220500,), dtype('float32'))
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAX_DURATION_SECONDS",
    "MIN_DURATION_SECONDS",
    "describe",
    "generate",
    "natural_duration",
]

MIN_DURATION_SECONDS = 0.5
MAX_DURATION_SECONDS = 30.0
DEFAULT_PROMPT_INFLUENCE = 0.3

FloatArray = NDArray[np.float64]
GainFn = Callable[[FloatArray], FloatArray]

_TWO_PI = 2.0 * math.pi
# -1 dBFS: leaves headroom for lossy encoders, whose reconstruction overshoots the PCM peak.
_PEAK_DBFS = -1.0
_BED_WEIGHT = 0.55


# --------------------------------------------------------------------------------------------
# DSP building blocks
# --------------------------------------------------------------------------------------------


def _fast_len(n: int) -> int:
    """Smallest 2^a * 3^b * 5^c >= n: numpy's FFT is many times slower on sizes with big primes."""
    best = 1 << max(n - 1, 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = -(-n // p35)
            p2 = 1 << (q - 1).bit_length() if q > 1 else 1
            best = min(best, p2 * p35)
            p35 *= 3
        p5 *= 5
    return best


def _freqs(nfft: int, sr: float) -> FloatArray:
    return np.asarray(np.fft.rfftfreq(nfft, 1.0 / sr), dtype=np.float64)


def _filter(x: FloatArray, sr: int, gain: GainFn) -> FloatArray:
    """Zero-phase filtering by a magnitude response evaluated on the FFT frequency grid."""
    n = len(x)
    if n == 0:
        return x
    nfft = _fast_len(n + min(n, 8192))
    spectrum = np.fft.rfft(x, nfft)
    freqs = _freqs(nfft, sr)
    return np.fft.irfft(spectrum * gain(freqs), nfft)[:n]


def _lp(f: FloatArray, fc: float | FloatArray, order: int = 2) -> FloatArray:
    return 1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order))


def _hp(f: FloatArray, fc: float | FloatArray, order: int = 2) -> FloatArray:
    ratio = fc / np.maximum(f, 1e-3)
    return 1.0 / np.sqrt(1.0 + ratio ** (2 * order))


def _bp(f: FloatArray, f0: float | FloatArray, q: float) -> FloatArray:
    safe = np.maximum(f, 1e-3)
    detune = safe / f0 - f0 / safe
    return 1.0 / np.sqrt(1.0 + (q * detune) ** 2)


def _bandpass(f0: float, q: float) -> GainFn:
    return lambda f: _bp(f, f0, q)


def _unit(x: FloatArray) -> FloatArray:
    """Scale to unit RMS (silence stays silence)."""
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return x / rms if rms > 1e-12 else x


def _peak_norm(x: FloatArray, peak: float = 1.0) -> FloatArray:
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (peak / top) if top > 1e-12 else x


def _limit_crest(x: FloatArray, crest: float) -> FloatArray:
    """Soft-limit peaks above ``crest`` times the RMS, so rare outliers cannot dominate a bed."""
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    if rms <= 1e-12:
        return x
    knee = crest * rms
    return knee * np.tanh(x / knee)


def _noise(rng: np.random.Generator, n: int, sr: int, color: str = "white") -> FloatArray:
    """Unit-RMS noise; pink falls 3 dB and brown 6 dB per octave."""
    white = rng.standard_normal(n)
    if color == "white":
        return white
    power = 0.5 if color == "pink" else 1.0
    return _unit(_filter(white, sr, lambda f: (np.maximum(f, 20.0) / 20.0) ** -power))


def _convolve(x: FloatArray, kernel: FloatArray) -> FloatArray:
    nfft = _fast_len(len(x) + len(kernel))
    out = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(kernel, nfft), nfft)
    return out[: len(x)]


def _reverb(
    x: FloatArray, sr: int, rng: np.random.Generator, rt60: float, wet: float
) -> FloatArray:
    """Synthetic room: exponentially decaying, darkening noise tail mixed under the dry sound."""
    length = max(int(rt60 * sr), 64)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.91 * t / rt60)
    tail = _filter(tail, sr, lambda f: _lp(f, 5000.0, 1))
    tail[: int(0.012 * sr)] = 0.0  # pre-delay keeps the direct sound distinct from the room
    tail /= np.sqrt(np.sum(tail * tail)) + 1e-12
    dry_rms = float(np.sqrt(np.mean(x * x))) + 1e-12
    room = _convolve(x, tail)
    room *= dry_rms / (float(np.sqrt(np.mean(room * room))) + 1e-12)
    return (1.0 - wet) * x + wet * room


def _random_curve(rng: np.random.Generator, times: FloatArray, rate: float) -> FloatArray:
    """A smooth random curve in [0, 1] that changes about ``rate`` times per second."""
    rate = max(rate, 1e-3)
    start = float(times.min()) if len(times) else 0.0
    span = float(times.max()) - start if len(times) else 0.0
    points = rng.uniform(0.0, 1.0, int(span * rate) + 3)
    pos = (times - start) * rate
    idx = np.floor(pos).astype(np.int64)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - idx))
    return points[idx] * (1.0 - w) + points[idx + 1] * w


def _slow_curve(rng: np.random.Generator, times: FloatArray, rate: float) -> FloatArray:
    """:func:`_random_curve` for slow curves on long buffers: computed sparsely, interpolated."""
    coarse = times[::64]
    return np.interp(times, coarse, _random_curve(rng, coarse, rate))


def _spectral_noise(
    rng: np.random.Generator,
    n: int,
    sr: int,
    shape: Callable[[FloatArray, FloatArray], FloatArray],
    frame: int = 2048,
) -> FloatArray:
    """Noise whose spectrum follows ``shape(times, freqs) -> (len(times), len(freqs))``.

    Random-phase frames overlap-added with a Hann window: the cheap way to get a filter that
    moves smoothly over time (wind gusts, a whoosh's sweep, a wave's swell) without IIR loops.
    """
    hop = frame // 4
    pre = frame
    n_frames = (n + 2 * frame) // hop + 1
    times = (np.arange(n_frames) * hop + frame / 2 - pre) / sr
    freqs = _freqs(frame, sr)
    mag = np.asarray(shape(times, freqs), dtype=np.float64)
    mag[:, 0] = 0.0
    phase = rng.uniform(0.0, _TWO_PI, mag.shape)
    frames = np.fft.irfft(mag * np.exp(1j * phase), frame, axis=1)
    frames *= np.hanning(frame + 1)[:frame]
    ola = np.zeros((n_frames - 1) * hop + frame)
    for r in range(4):
        block = frames[r::4].reshape(-1)
        ola[r * hop : r * hop + len(block)] += block
    return ola[pre : pre + n]


def _modes(
    sr: int, freqs: Sequence[float], taus: Sequence[float], amps: Sequence[float], seconds: float
) -> FloatArray:
    """A struck resonator: a sum of exponentially decaying sines (wood, metal, glass, bells)."""
    t = np.arange(max(int(seconds * sr), 1)) / sr
    out = np.zeros_like(t)
    nyquist = sr / 2
    for f, tau, a in zip(freqs, taus, amps, strict=True):
        if f < nyquist * 0.95:
            out += a * np.exp(-t / tau) * np.sin(_TWO_PI * f * t)
    return out


def _burst(
    rng: np.random.Generator, sr: int, tau: float, seconds: float, gain: GainFn | None = None
) -> FloatArray:
    """A noise transient with an instant attack and exponential decay."""
    t = np.arange(max(int(seconds * sr), 1)) / sr
    x = rng.standard_normal(len(t)) * np.exp(-t / tau)
    return _filter(x, sr, gain) if gain is not None else x


def _tone(sr: int, freq: float, seconds: float, harmonics: Sequence[float] = (1.0,)) -> FloatArray:
    """A steady tone with 5 ms raised-cosine edges, so tones never click on or off."""
    t = np.arange(max(int(seconds * sr), 1)) / sr
    x = np.zeros_like(t)
    for k, amp in enumerate(harmonics, start=1):
        if freq * k < sr * 0.45:
            x += amp * np.sin(_TWO_PI * freq * k * t)
    return x * _edges(len(t), int(0.005 * sr))


def _edges(n: int, ramp: int) -> FloatArray:
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        env[:ramp] = rise
        env[n - ramp :] = rise[::-1]
    return env


def _chirp(sr: int, track: FloatArray) -> FloatArray:
    """A sine following a per-sample frequency track."""
    return np.sin(_TWO_PI * np.cumsum(track) / sr)


def _add(out: FloatArray, start: int, sig: FloatArray, gain: float = 1.0) -> None:
    if start >= len(out) or start + len(sig) <= 0:
        return
    s0 = max(start, 0)
    end = min(len(out), start + len(sig))
    out[s0:end] += gain * sig[s0 - start : end - start]


def _scatter(
    n: int,
    starts: NDArray[np.int64],
    templates: Sequence[FloatArray],
    choice: NDArray[np.int64],
    gains: FloatArray,
) -> FloatArray:
    """Place many short sounds (rain drops, claps, crackles) into a buffer of ``n`` samples."""
    longest = max(len(t) for t in templates)
    out = np.zeros(n + longest)
    for start, k, g in zip(starts.tolist(), choice.tolist(), gains.tolist(), strict=True):
        if 0 <= start < n:
            tpl = templates[k]
            out[start : start + len(tpl)] += g * tpl
    return out[:n]


# --------------------------------------------------------------------------------------------
# Prompt reading: categories and modifiers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Modifiers:
    """What the prompt says about how a sound is heard, beyond what it is."""

    distance: int = 0  # -1 close, 0 neutral, 1 distant
    muffled: bool = False
    level_db: float = 0.0
    drive: bool = False
    weight: float = 0.0  # -1 light ... +1 heavy
    speed: float = 1.0
    material: str | None = None
    space: float = 0.0  # 0 dry ... 1 cavernous


_MODIFIER_RULES: tuple[tuple[str, dict[str, object]], ...] = (
    (
        r"distant|in the distance|far[- ]?(?:away|off)|faraway|from afar|far\b|background",
        {"distance": 1, "level_db": -7.0},
    ),
    (r"close[- ]?up|up close|nearby|close by|close\b|right next to|in front of", {"distance": -1}),
    (
        r"muffled|behind (?:a|the) (?:wall|door)|through (?:a|the) (?:wall|door|floor|ceiling)"
        r"|underwater|next room|another room|neighbou?r",
        {"muffled": True, "level_db": -4.0},
    ),
    (r"loud|deafening|booming|blaring|intense", {"drive": True, "level_db": 0.0}),
    (r"quiet|faint|barely audible|subtle|soft(?:ly)?\b", {"level_db": -6.0}),
    (
        r"heavy|huge|massive|big|large|giant|powerful|strong|violent|torrential|enormous|hard",
        {"weight": 1.0},
    ),
    (r"light|gentle|small|tiny|little|soft|delicate|subtle|drizzl\w*", {"weight": -1.0}),
    (r"(?:very|really|extremely|super) (?:fast|quick|rapid)", {"speed": 2.0}),
    (r"fast|quick(?:ly)?|rapid(?:ly)?|hurried|frantic|hasty|racing", {"speed": 1.5}),
    (r"(?:very|really|extremely|super) slow(?:ly)?", {"speed": 0.45}),
    (r"slow(?:ly)?|leisurely|lazy|sluggish", {"speed": 0.65}),
    (
        r"metal(?:lic)?|steel|iron|tin\b|alumin(?:i)?um|chains?\b|grate|grating",
        {"material": "metal"},
    ),
    (r"wood(?:en)?|timber|oak|planks?|floorboards?|hardwood", {"material": "wood"}),
    (r"gravel|pebbles?|rocks?\b|rocky", {"material": "gravel"}),
    (r"snow(?:y)?", {"material": "snow"}),
    (r"leaves|grass|twigs?|forest floor|undergrowth", {"material": "leaves"}),
    (
        r"concrete|stone|tiles?d?\b|marble|pavement|asphalt|sidewalk|street|hallway|corridor",
        {"material": "stone"},
    ),
    (
        r"cave|cavern|cathedral|church|tunnel|\bhall\b|warehouse|stairwell|echo\w*|reverb\w*"
        r"|large room|parking garage|gymnasium",
        {"space": 0.8},
    ),
    (r"\broom\b|indoors?|inside|kitchen|office|bathroom|apartment", {"space": 0.3}),
)
_MODIFIER_PATTERNS = tuple((re.compile(r"\b(?:" + p + r")"), v) for p, v in _MODIFIER_RULES)


def _terms(*terms: str) -> re.Pattern[str]:
    """Word-start pattern: plain words also match their plural/verb forms, ``re:`` is raw."""
    parts = []
    for term in terms:
        if term.startswith("re:"):
            parts.append(term[3:])
        else:
            parts.append(re.escape(term).replace(r"\ ", r"\s+") + r"(?:s|es|ed|ing|y|ies)?")
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b")


@dataclass(frozen=True)
class _Context:
    """Everything one recipe needs to render one layer."""

    text: str
    sr: int
    n: int
    rng: np.random.Generator
    mods: _Modifiers
    influence: float

    @property
    def seconds(self) -> float:
        return self.n / self.sr

    def has(self, pattern: str) -> bool:
        return re.search(r"\b(?:" + pattern + r")", self.text) is not None

    def vary(self, value: float, spread: float = 0.1) -> float:
        """Nominal ``value`` nudged by seeded variation that vanishes as prompt influence -> 1."""
        return value * math.exp(self.rng.normal() * spread * (1.0 - self.influence))

    def times(self) -> FloatArray:
        return np.arange(self.n) / self.sr


Recipe = Callable[[_Context], FloatArray]


@dataclass(frozen=True)
class _Category:
    name: str
    pattern: re.Pattern[str]
    natural: Callable[[str, _Modifiers], float]
    render: Recipe
    bed: bool = False


def _const(seconds: float) -> Callable[[str, _Modifiers], float]:
    return lambda _text, _mods: seconds


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------


def _rain(ctx: _Context) -> FloatArray:
    n, sr, rng, w = ctx.n, ctx.sr, ctx.rng, ctx.mods.weight
    lo, hi = ctx.vary(450.0 - 150.0 * w), ctx.vary(8500.0 - 1500.0 * w)
    bed = _filter(_noise(rng, n, sr, "pink"), sr, lambda f: _hp(f, lo) * _lp(f, hi))
    bed = _unit(bed) * (0.8 + 0.4 * _random_curve(rng, ctx.times(), 0.3 * ctx.mods.speed))
    pingy = ctx.mods.material == "metal" or ctx.has("roof|umbrella|tent|window|car")
    templates = []
    for _ in range(24):
        f0 = math.exp(rng.uniform(math.log(1700.0), math.log(6000.0))) * (1.0 - 0.2 * w)
        length = 0.06 if pingy else 0.03
        t = np.arange(int(length * sr)) / sr
        tau = rng.uniform(0.002, 0.007) * (3.0 if pingy else 1.0)
        track = f0 * (1.0 + rng.uniform(-8.0, 15.0) * t)
        drop = _chirp(sr, track) * np.exp(-t / tau)
        click = np.zeros_like(t)
        k = int(0.001 * sr)
        click[:k] = rng.standard_normal(k) * np.exp(-np.arange(k) / (0.0002 * sr))
        templates.append(drop + 0.5 * click)
    density = ctx.vary(90.0 * 2.2**w, 0.2)
    count = int(rng.poisson(density * ctx.seconds))
    starts = rng.integers(0, n, count)
    drops = _scatter(n, starts, templates, rng.integers(0, 24, count), rng.lognormal(0, 0.6, count))
    mix = 0.55 * bed + 0.6 * _unit(drops)
    if w > 0:
        rumble = _filter(_noise(rng, n, sr, "brown"), sr, lambda f: _lp(f, 300.0))
        mix += 0.35 * w * _unit(rumble)
    return mix


def _wind(ctx: _Context) -> FloatArray:
    rng, w, speed = ctx.rng, ctx.mods.weight, ctx.mods.speed
    howl = ctx.has(r"howl|whistl|wail|gale|blizzard|storm")
    base = ctx.vary(340.0, 0.2) * (1.5 if w < 0 else 1.0)
    rate = ctx.vary(0.12, 0.3) * speed

    def shape(t: FloatArray, f: FloatArray) -> FloatArray:
        gust = _random_curve(rng, t, rate)
        flutter = _random_curve(rng, t, rate * 5.0)
        depth = 0.85 if w > 0 else (0.45 if w < 0 else 0.7)
        amp = (1.0 - depth + depth * gust**1.5) * (0.85 + 0.15 * flutter)
        fc = base * (1.0 + 1.6 * gust)
        mag = amp[:, None] * (
            _bp(f[None, :], fc[:, None], 1.3) + (0.3 + 0.2 * w) * _lp(f[None, :], 140.0)
        )
        if howl:
            tone = base * 1.6 * (1.0 + 0.8 * _random_curve(rng, t, rate * 1.5))
            mag += 0.9 * (amp**2)[:, None] * _bp(f[None, :], tone[:, None], 14.0)
        return mag

    return _spectral_noise(rng, ctx.n, ctx.sr, shape)


def _thunder_strike(ctx: _Context, seconds: float, crack: bool) -> FloatArray:
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    n = int(seconds * sr)
    t = np.arange(n) / sr
    tau = ctx.vary(1.7 + 0.6 * w, 0.2)
    swells = np.ones(n)
    for _ in range(int(rng.integers(3, 7))):
        centre, width = rng.uniform(0.2, max(0.6 * seconds, 0.25)), rng.uniform(0.15, 0.6)
        swells += rng.uniform(0.4, 1.4) * np.exp(-0.5 * ((t - centre) / width) ** 2)
    env = (1.0 - np.exp(-t / 0.12)) * np.exp(-t / tau) * swells
    rumble = _filter(_noise(rng, n, sr, "brown"), sr, lambda f: _lp(f, 170.0 - 40.0 * w))
    mid = _filter(_noise(rng, n, sr), sr, lambda f: _bp(f, 380.0, 0.8))
    out = env * (_unit(rumble) + 0.3 * _unit(mid))
    if crack:
        snap = _burst(rng, sr, 0.035, 0.4, lambda f: _hp(f, 900.0))
        for _ in range(int(rng.integers(2, 6))):
            _add(snap, int(rng.uniform(0.02, 0.3) * sr), _burst(rng, sr, 0.01, 0.08), 0.3)
        _add(out, 0, _peak_norm(snap), 0.5 * float(np.max(np.abs(out[: int(0.5 * sr)]))))
    return out


def _thunder(ctx: _Context) -> FloatArray:
    out = np.zeros(ctx.n)
    crack = ctx.mods.distance <= 0 and not ctx.mods.muffled
    start = 0.05
    while start < ctx.seconds - 0.1:
        strike = _thunder_strike(ctx, min(9.0, ctx.seconds - start + 0.1), crack)
        _add(out, int(start * ctx.sr), strike, ctx.rng.uniform(0.6, 1.0) if start > 0.05 else 1.0)
        start += ctx.rng.uniform(6.0, 12.0) / ctx.mods.speed
    return out


def _explosion(ctx: _Context) -> FloatArray:
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    out = np.zeros(ctx.n)
    start = int(0.03 * sr)
    n = ctx.n - start
    t = np.arange(n) / sr
    body_tau = ctx.vary(0.9 + 0.45 * w, 0.15)
    # Everything starts at full strength within ~2 ms: the blast front arrives all at once.
    attack = 1.0 - np.exp(-t / 0.0015)
    boom = _chirp(sr, 32.0 + 60.0 * np.exp(-t / 0.25)) * np.exp(-t / (0.6 * body_tau))
    body = _peak_norm(_filter(_noise(rng, n, sr, "brown"), sr, lambda f: _lp(f, 350.0)))
    body *= np.exp(-t / body_tau)
    mid = _peak_norm(_filter(_noise(rng, n, sr), sr, lambda f: _bp(f, 700.0, 0.6)))
    mid *= np.exp(-t / 0.3)
    blast = _peak_norm(_filter(rng.standard_normal(n), sr, lambda f: _lp(f, 5000.0)))
    blast *= np.exp(-t / 0.03)
    debris = np.zeros(n)
    for _ in range(int(40 * (1.0 + w * 0.5))):
        when = rng.exponential(0.6) + 0.15
        if when < t[-1]:
            _add(debris, int(when * sr), _burst(rng, sr, 0.003, 0.02), rng.uniform(0.1, 0.5))
    debris = _peak_norm(_filter(debris, sr, lambda f: _lp(f, 3500.0)))
    sound = attack * (0.5 * boom + 1.0 * body + 0.35 * mid) + 0.7 * blast + 0.08 * debris
    out[start:] = _reverb(sound, sr, rng, rt60=2.2, wet=0.2)
    return out


_WOOD_MODES = (
    (190.0, 420.0, 740.0, 1180.0, 1900.0),
    (0.045, 0.03, 0.02, 0.012, 0.008),
    (1.0, 0.7, 0.5, 0.35, 0.2),
)
_METAL_MODES = (
    (310.0, 780.0, 1460.0, 2350.0, 3470.0, 4800.0),
    (0.5, 0.4, 0.3, 0.2, 0.15, 0.1),
    (0.6, 1.0, 0.8, 0.6, 0.4, 0.3),
)


def _impact(ctx: _Context, material: str, scale: float, seconds: float = 0.6) -> FloatArray:
    """One hit on a wooden or metal surface: excitation noise plus its resonant modes."""
    rng = ctx.rng
    freqs, taus, amps = _METAL_MODES if material == "metal" else _WOOD_MODES
    shifted = [f * scale * rng.uniform(0.96, 1.04) for f in freqs]
    body = _modes(ctx.sr, shifted, taus, amps, seconds)
    hit = _burst(rng, ctx.sr, 0.0015, 0.02, lambda f: _lp(f, 3500.0))
    _add(body, 0, hit, 0.6)
    return body


def _creak(ctx: _Context, seconds: float, metal: bool) -> FloatArray:
    """Stick-slip friction: an irregular pulse train exciting the door's resonances."""
    sr, rng = ctx.sr, ctx.rng
    n = max(int(seconds * sr), 1)
    t = np.arange(n) / sr
    lo, hi = (300.0, 700.0) if metal else (30.0, 120.0)
    rate = lo + (hi - lo) * _random_curve(rng, t, 1.5)
    phase = np.cumsum(rate) / sr
    ticks = np.flatnonzero(np.diff(np.floor(phase), prepend=0.0) > 0)
    train = np.zeros(n)
    train[ticks] = rng.lognormal(0.0, 0.35, len(ticks)) * (0.5 + _random_curve(rng, t, 2.0)[ticks])
    if metal:
        body: GainFn = lambda f: _bp(f, 1800.0, 6) + 0.6 * _bp(f, 3100.0, 8)  # noqa: E731
    else:
        body = lambda f: (  # noqa: E731
            _bp(f, 520.0, 8)
            + 0.7 * _bp(f, 1050.0, 10)
            + 0.4 * _bp(f, 1900.0, 12)
            + 0.3 * _bp(f, 280.0, 6)
        )
    env = np.minimum(1.0, t / 0.15) * np.minimum(1.0, (t[-1] - t) / 0.25 + 1e-9)
    return _filter(train, sr, body) * env


def _door(ctx: _Context) -> FloatArray:
    sr, rng, speed, w = ctx.sr, ctx.rng, ctx.mods.speed, ctx.mods.weight
    metal = ctx.mods.material == "metal" or ctx.has(r"car door|gate|locker|vault|cell door")
    material = "metal" if metal else "wood"
    scale = 1.0 - 0.2 * w
    out = np.zeros(ctx.n)
    cursor = 0.04
    if ctx.has(r"knock"):
        while cursor < ctx.seconds - 0.3:
            for k in range(3 if not ctx.has("twice|two knocks") else 2):
                knock = _impact(ctx, material, scale, 0.5)
                _add(out, int((cursor + k * 0.18 / speed) * sr), knock, rng.uniform(0.8, 1.0))
            cursor += ctx.vary(1.6, 0.1) / speed
        return out
    if ctx.has(r"unlock|lock|latch|handle|open"):
        _add(
            out,
            int(cursor * sr),
            _modes(sr, (2100.0, 3300.0, 4700.0), (0.015, 0.01, 0.006), (1.0, 0.6, 0.4), 0.1),
            0.5,
        )
        cursor += 0.15
    slam = ctx.has(r"slam|bang|shut|close|clos")
    creak = ctx.has(r"creak|squeak|open|hinge") or not slam
    if creak:
        length = min(ctx.vary(1.4, 0.15) / speed, max(ctx.seconds - cursor - 0.6, 0.2))
        _add(out, int(cursor * sr), _peak_norm(_creak(ctx, length, metal)), 0.8)
        cursor += length
    if slam or not ctx.has(r"open"):
        hit_len = int(0.8 * sr)
        t = np.arange(hit_len) / sr
        thump = _unit(_filter(_noise(rng, hit_len, sr, "brown"), sr, lambda f: _lp(f, 160.0)))
        thump *= (1.0 - np.exp(-t / 0.001)) * np.exp(-t / (0.09 if slam else 0.05))
        strike = _impact(ctx, material, scale * 0.55, 0.8)
        hit = _peak_norm(thump + 0.6 * _unit(strike))
        if slam:
            for _ in range(3):
                _add(hit, int(rng.uniform(0.04, 0.12) * sr), _impact(ctx, material, 1.3, 0.2), 0.1)
            hit = _reverb(hit, sr, rng, rt60=0.7, wet=0.3)
        where = min(cursor, max(ctx.seconds - 0.5, 0.0))
        _add(out, int(where * sr), hit, 1.0 if slam else 0.6)
    return out


def _step_sound(ctx: _Context, surface: str, running: bool) -> FloatArray:
    """One footfall: a low heel thump, a softer toe contact, and the surface's own texture."""
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    n = int(0.35 * sr)
    t = np.arange(n) / sr
    heel_lp = 260.0 * (1.0 - 0.3 * w)
    heel = _peak_norm(_filter(rng.standard_normal(n), sr, lambda f: _lp(f, heel_lp)))
    heel *= (1.0 - np.exp(-t / 0.003)) * np.exp(-t / (0.03 * (1.0 + 0.3 * w)))
    mid = _peak_norm(_filter(rng.standard_normal(n), sr, lambda f: _bp(f, 900.0, 1.0)))
    out = _peak_norm(heel + 0.4 * mid * np.exp(-t / 0.02))
    toe = _burst(rng, sr, 0.015, 0.08, lambda f: _bp(f, 2000.0, 0.7))
    _add(out, int((0.03 if running else 0.06) * sr), _peak_norm(toe), 0.25)
    if surface == "wood":
        out += 0.5 * _peak_norm(
            _modes(
                sr,
                (110.0, 240.0, 480.0, 900.0),
                (0.06, 0.05, 0.03, 0.02),
                (1.0, 0.8, 0.5, 0.3),
                0.35,
            )
        )
    elif surface == "metal":
        out += 0.5 * _peak_norm(_impact(ctx, "metal", 1.2, 0.35))
    elif surface in ("gravel", "snow", "leaves"):
        grains = {"gravel": 45, "snow": 70, "leaves": 35}[surface]
        band = {"gravel": (1500.0, 7000.0), "snow": (400.0, 3000.0), "leaves": (2500.0, 8000.0)}
        lo, hi = band[surface]
        crunch = np.zeros(n)
        for _ in range(grains):
            grain = _burst(rng, sr, 0.0004, 0.004)
            _add(crunch, int(rng.gamma(2.0, 0.025) * sr), grain, rng.lognormal(0, 0.5))
        crunch = _filter(crunch, sr, lambda f: _hp(f, lo) * _lp(f, hi))
        out = (0.6 if surface == "snow" else 0.8) * out + 0.7 * _peak_norm(crunch)
    elif ctx.has(r"heels|high heel|stiletto"):
        out += 0.7 * _peak_norm(
            _modes(sr, (2600.0, 3900.0, 5200.0), (0.015, 0.01, 0.006), (1.0, 0.6, 0.4), 0.35)
        )
    else:
        out += 0.25 * _peak_norm(_burst(rng, sr, 0.002, 0.35, lambda f: _hp(f, 1500.0)))
    return out * np.exp(-t / 0.12)


def _footsteps(ctx: _Context) -> FloatArray:
    rng, sr = ctx.rng, ctx.sr
    running = ctx.has(r"run|sprint|jog|chase")
    sneaking = ctx.has(r"sneak|tiptoe|creep")
    rate = 2.9 if running else (1.3 if sneaking else 1.85)
    if ctx.has(r"jog"):
        rate = 2.5
    rate = ctx.vary(rate * ctx.mods.speed, 0.05)
    surface = ctx.mods.material or "stone"
    variants = [_step_sound(ctx, surface, running) for _ in range(6)]
    out = np.zeros(ctx.n)
    when, side = 0.08, 0
    while when < ctx.seconds:
        gain = (1.0 if side == 0 else 0.82) * rng.uniform(0.85, 1.0) * (0.6 if sneaking else 1.0)
        _add(out, int(when * sr), variants[int(rng.integers(0, len(variants)))], gain)
        when += (1.0 / rate) * (1.0 + rng.normal() * 0.02)
        side ^= 1
    return out


def _beep(ctx: _Context) -> FloatArray:
    sr, speed = ctx.sr, ctx.mods.speed
    freq = 2000.0 if ctx.has("high") else (500.0 if ctx.has("low|error|wrong") else 1000.0)
    freq = ctx.vary(freq, 0.1)
    out = np.zeros(ctx.n)
    repeated = ctx.has(r"beeps|beeping|repeat|countdown|monitor|revers|backing up|microwave")
    if not repeated and ctx.seconds <= 2.5:
        length = min(0.3, ctx.seconds - 0.12)
        _add(out, int(0.05 * sr), _tone(sr, freq, length))
        return out
    period, length = 1.0 / speed, 0.18
    if ctx.has("monitor"):
        period, length = 0.85 / speed, 0.12
    elif ctx.has(r"revers|backing up"):
        period, length = 1.0 / speed, 0.5
    elif ctx.has("microwave"):
        period, length = 0.9, 0.45
    when = 0.05
    while when < ctx.seconds - 0.05:
        _add(out, int(when * sr), _tone(sr, freq, min(length, ctx.seconds - when - 0.02)))
        when += period
    return out


def _alarm(ctx: _Context) -> FloatArray:
    sr, speed = ctx.sr, ctx.mods.speed
    t = ctx.times()
    square = (1.0, 0.0, 0.3, 0.0, 0.15)
    if ctx.has(r"fire alarm|smoke"):
        out = np.zeros(ctx.n)
        cycle = 0.05
        while cycle < ctx.seconds:
            for k in range(3):
                _add(out, int((cycle + k) * sr), _tone(sr, 3100.0, 0.5, square))
            cycle += 4.5
        return out
    if ctx.has(r"alarm clock|wake"):
        out = np.zeros(ctx.n)
        cycle = 0.05
        while cycle < ctx.seconds:
            for k in range(4):
                _add(out, int((cycle + k * 0.14 / speed) * sr), _tone(sr, 2500.0, 0.07, square))
            cycle += 1.0 / speed
        return out
    if ctx.has(r"car alarm|warbl"):
        freq = 900.0 + 300.0 * np.sin(_TWO_PI * 6.0 * speed * t)
        return _chirp(sr, freq) + 0.3 * _chirp(sr, freq * 3.0)
    # Two-tone alternation, the default "alarm": a square-ish 960/770 Hz pair at 2 Hz.
    which = np.floor(t * 2.0 * speed) % 2
    freq = np.where(which == 0, 960.0, 770.0)
    phase = np.cumsum(freq) / sr
    return np.sin(_TWO_PI * phase) + 0.3 * np.sin(3 * _TWO_PI * phase)


def _notification(ctx: _Context) -> FloatArray:
    sr = ctx.sr
    down = ctx.has(r"error|fail|wrong|denied|negative")
    notes = [1318.5, 1975.5] if not down else [987.8, 659.3]
    if ctx.has(r"success|complete|achievement|level up"):
        notes = [1046.5, 1318.5, 1568.0]
    out = np.zeros(ctx.n)
    cycle = 0.03
    while cycle < ctx.seconds - 0.1:
        for k, f in enumerate(notes):
            chime = _modes(sr, (f, 2 * f, 3 * f), (0.3, 0.12, 0.05), (1.0, 0.3, 0.1), 0.8)
            _add(out, int((cycle + k * 0.12) * sr), chime * _edges(len(chime), int(0.002 * sr)))
        cycle += 3.0
    return out


def _phone(ctx: _Context) -> FloatArray:
    sr = ctx.sr
    out = np.zeros(ctx.n)
    t = np.arange(int(2.0 * sr)) / sr
    # Bell-type phones: a hammer at ~20 Hz striking two small bells.
    hammer = (np.sin(_TWO_PI * 20.0 * t) > 0).astype(np.float64)
    bells = np.sin(_TWO_PI * 1800.0 * t) + 0.7 * np.sin(_TWO_PI * 2350.0 * t)
    ring = bells * (0.35 + 0.65 * _filter(hammer, sr, lambda f: _lp(f, 60.0)))
    ring *= _edges(len(ring), int(0.01 * sr))
    cycle = 0.05
    while cycle < ctx.seconds - 0.1:
        _add(out, int(cycle * sr), ring)
        cycle += 4.0
    return out


def _glass(ctx: _Context) -> FloatArray:
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    out = np.zeros(ctx.n)
    start = int(0.03 * sr)
    crash = _burst(rng, sr, 0.01, 0.3, lambda f: _hp(f, 2000.0))
    ring_f = rng.uniform(2500.0, 4000.0)
    crash = _unit(crash) + 0.6 * _unit(
        _modes(sr, (ring_f, ring_f * 1.47, ring_f * 2.1), (0.15, 0.1, 0.06), (1, 0.6, 0.4), 0.3)
    )
    _add(out, start, crash)
    shards = int(ctx.vary(90.0 * (1.0 + 0.6 * w), 0.2))
    for _ in range(shards):
        when = rng.exponential(0.4 * (1.0 + 0.3 * w)) + 0.02
        if when > ctx.seconds:
            continue
        f0 = rng.uniform(3000.0, 10000.0)
        tinkle = _modes(
            sr,
            (f0, f0 * rng.uniform(1.3, 1.7), f0 * rng.uniform(2.0, 2.6)),
            (rng.uniform(0.01, 0.06), 0.02, 0.01),
            (1.0, 0.5, 0.3),
            0.1,
        )
        _add(out, start + int(when * sr), tinkle, rng.lognormal(-1.2, 0.6) * math.exp(-when))
    return out


def _bubbles(ctx: _Context, density: float, low: float, high: float) -> FloatArray:
    """Rising-pitch decaying sines: the sound of small air bubbles in water."""
    sr, rng = ctx.sr, ctx.rng
    templates = []
    for _ in range(24):
        f0 = math.exp(rng.uniform(math.log(low), math.log(high)))
        tau = rng.uniform(0.006, 0.02) * (1000.0 / f0) ** 0.5
        t = np.arange(int(min(8 * tau, 0.2) * sr)) / sr
        templates.append(_chirp(sr, f0 * (1.0 + rng.uniform(5.0, 25.0) * t)) * np.exp(-t / tau))
    count = int(rng.poisson(density * ctx.seconds))
    return _scatter(
        ctx.n,
        rng.integers(0, ctx.n, count),
        templates,
        rng.integers(0, 24, count),
        rng.lognormal(0.0, 0.5, count),
    )


def _water(ctx: _Context) -> FloatArray:
    n, sr, rng, w = ctx.n, ctx.sr, ctx.rng, ctx.mods.weight
    if ctx.has(r"drip"):
        out = np.zeros(n)
        when = 0.05
        while when < ctx.seconds:
            t = np.arange(int(0.12 * sr)) / sr
            f0 = rng.uniform(700.0, 1100.0)
            plop = _chirp(sr, f0 * (1.0 + 8.0 * t)) * np.exp(-t / 0.025)
            _add(out, int(when * sr), plop, rng.uniform(0.7, 1.0))
            when += ctx.vary(0.9, 0.2) / ctx.mods.speed * rng.uniform(0.8, 1.2)
        return _reverb(out, sr, rng, rt60=1.2, wet=0.3)
    waterfall = ctx.has(r"waterfall|rapids|torrent")
    bed = _filter(
        _noise(rng, n, sr, "pink"),
        sr,
        lambda f: _hp(f, 150.0) * _lp(f, 6000.0 if waterfall else 2500.0),
    )
    bed = _unit(bed) * (0.75 + 0.5 * _random_curve(rng, ctx.times(), 1.5))
    bubbles = _unit(_bubbles(ctx, ctx.vary(70.0 * 2.0**w, 0.2), 350.0, 1800.0))
    mix = (1.0 if waterfall else 0.45) * bed + (0.4 if waterfall else 0.8) * bubbles
    if ctx.has(r"splash"):
        t = np.arange(int(0.8 * sr)) / sr
        splash = _unit(_filter(rng.standard_normal(len(t)), sr, lambda f: _bp(f, 1500.0, 0.5)))
        _add(mix, int(0.05 * sr), splash * np.exp(-t / 0.15), 2.0)
    return mix


def _fire(ctx: _Context) -> FloatArray:
    n, sr, rng, w = ctx.n, ctx.sr, ctx.rng, ctx.mods.weight
    big = w > 0 or ctx.has(r"bonfire|wildfire|inferno|blaze")
    roar_cut = 450.0 if big else 300.0
    roar = _unit(_filter(_noise(rng, n, sr, "brown"), sr, lambda f: _lp(f, roar_cut)))
    roar *= (
        0.6
        + 0.4 * _random_curve(rng, ctx.times(), 0.6)
        + 0.2 * _random_curve(rng, ctx.times(), 3.0)
    )
    hiss = _unit(_filter(rng.standard_normal(n), sr, lambda f: _hp(f, 4000.0))) * 0.05
    crackles = []
    for _ in range(16):
        crackles.append(
            _burst(rng, sr, rng.uniform(0.0003, 0.0015), 0.01, lambda f: _hp(f, 1500.0))
        )
    pops = [
        _burst(rng, sr, rng.uniform(0.004, 0.012), 0.06, lambda f: _bp(f, 800.0, 1.2))
        for _ in range(4)
    ]
    density = ctx.vary(18.0 * (2.0 if big else 1.0), 0.2)
    count = int(rng.poisson(density * ctx.seconds))
    # Crackles come in clusters: a few burst starts, each followed by a short train of clicks.
    seeds = rng.uniform(0.0, ctx.seconds, max(count // 4, 1))
    starts = np.concatenate([s + rng.exponential(0.05, 4) for s in seeds])
    starts = (starts * sr).astype(np.int64)
    gains = rng.lognormal(0.0, 0.7, len(starts))
    crack = _scatter(n, starts, crackles, rng.integers(0, 16, len(starts)), gains)
    pop_count = int(rng.poisson(1.0 * ctx.seconds))
    pop = _scatter(
        n,
        rng.integers(0, n, pop_count),
        pops,
        rng.integers(0, 4, pop_count),
        rng.uniform(0.5, 1.0, pop_count),
    )
    return (0.9 if big else 0.55) * roar + hiss + 0.9 * _unit(crack) + 0.5 * _unit(pop + 1e-9)


def _engine_voice(ctx: _Context, rpm: FloatArray, cylinders: int, rough: float) -> FloatArray:
    """Firing pulses at the engine's firing rate: narrow pulses give the harmonic buzz."""
    sr, rng = ctx.sr, ctx.rng
    fire = rpm / 60.0 * cylinders / 2.0
    phase = np.cumsum(fire) / sr
    cycle = np.floor(phase).astype(np.int64)
    jitter = rng.normal(1.0, 0.12 + 0.1 * rough, int(cycle[-1]) + 2)
    cosine = 0.5 + 0.5 * np.cos(_TWO_PI * phase)
    pulse = cosine**16 * jitter[cycle]
    sub = (0.5 + 0.5 * np.cos(np.pi * phase)) ** 8
    combustion = rng.standard_normal(len(phase)) * cosine**4
    x = pulse + 0.2 * sub + (0.5 + rough) * combustion
    x -= float(np.mean(x))
    cutoff = float(np.mean(fire)) * 30.0 + 600.0
    # The exhaust's resonance gives the rasp that separates an engine from a low hum.
    exhaust = lambda f: _lp(f, cutoff, 2) * _hp(f, 25.0, 2) * (1.0 + 2.0 * _bp(f, 450.0, 1.5))  # noqa: E731
    return _filter(x, sr, exhaust)


def _engine(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    t = ctx.times()
    cylinders, rough, idle = 4, 0.0, 850.0
    if ctx.has(r"motorcycle|motorbike|dirt bike|scooter"):
        cylinders, rough, idle = 2, 0.4, 1200.0
    elif ctx.has(r"truck|bus|diesel|tractor|lorry"):
        cylinders, rough, idle = 6, 0.6, 650.0
    idle = ctx.vary(idle, 0.1)
    wobble = _random_curve(rng, t, 1.0)
    if ctx.has(r"traffic|highway|freeway|city street"):
        out = 0.4 * _unit(_filter(_noise(rng, ctx.n, sr, "brown"), sr, lambda f: _lp(f, 400.0)))
        when = rng.uniform(0.0, 1.5)
        while when < ctx.seconds + 2.0:
            # Each car is rendered only over the few seconds it is audible.
            lo = max(int((when - 4.0) * sr), 0)
            hi = min(int((when + 4.0) * sr), ctx.n)
            if hi - lo > sr // 10:
                car = _passing(ctx, t[lo:hi], when, rng.uniform(1800.0, 3000.0), 4, 0.1)
                out[lo:hi] += 0.8 * _unit(car)
            when += rng.uniform(1.5, 4.0) / ctx.mods.speed
        return out
    if ctx.has(r"pass|drive by|drives by|driving by|driving past|zoom|speed"):
        return _passing(ctx, t, ctx.seconds / 2.0, 2800.0, cylinders, rough)
    if ctx.has(r"rev"):
        rpm = idle * (1.0 + 0.03 * wobble)
        when = 0.3
        while when < ctx.seconds:
            peak = rng.uniform(3.0, 5.0) * idle
            rise, fall = 0.35 / ctx.mods.speed, 1.2 / ctx.mods.speed
            shape = np.where(
                t < when,
                0.0,
                np.where(
                    t < when + rise, (t - when) / rise, np.exp(-(t - when - rise) / (fall / 3.0))
                ),
            )
            rpm = rpm + (peak - idle) * shape
            when += rng.uniform(1.8, 3.0) / ctx.mods.speed
        return _engine_voice(ctx, rpm, cylinders, rough)
    running = 1.0 if ctx.has(r"idl") else 1.8
    rpm = idle * running * (1.0 + 0.04 * wobble)
    voice = _engine_voice(ctx, rpm, cylinders, rough)
    if ctx.has(r"start"):
        crank_len = min(1.0, ctx.seconds * 0.3)
        crank = (t < crank_len).astype(np.float64)
        whir = (np.sin(_TWO_PI * 9.0 * t) > 0.3) * _filter(
            rng.standard_normal(ctx.n), sr, lambda f: _bp(f, 350.0, 2.0)
        )
        catch = np.clip((t - crank_len) / 0.15, 0.0, 1.0)
        voice = 0.5 * _unit(whir) * crank + _unit(voice) * catch
    return voice


def _passing(
    ctx: _Context, t: FloatArray, when: float, rpm_value: float, cylinders: int, rough: float
) -> FloatArray:
    """A vehicle driving past: Doppler pitch drop and a level swell at the closest point."""
    speed_ms, distance, sound_speed = 22.0 * ctx.mods.speed, 8.0, 343.0
    radius = np.sqrt((speed_ms * (t - when)) ** 2 + distance**2)
    emitted = t - radius / sound_speed
    # The sound heard first left the car before the clip starts: render from that moment.
    lead = int(np.ceil((t[0] - emitted.min()) * ctx.sr)) + 2
    source_t = t[0] + (np.arange(len(t) + lead) - lead) / ctx.sr
    rpm = np.full(len(source_t), rpm_value) * (1.0 + 0.02 * _random_curve(ctx.rng, source_t, 1.0))
    source = _engine_voice(ctx, rpm, cylinders, rough)
    return np.interp(emitted, source_t, source) * (distance / radius)


def _birdsong(ctx: _Context, out: FloatArray, base: float) -> None:
    sr, rng, speed = ctx.sr, ctx.rng, ctx.mods.speed
    style = int(rng.integers(0, 3))
    when = rng.uniform(0.05, 1.0)
    while when < ctx.seconds:
        notes = int(rng.integers(3, 9))
        for _ in range(notes):
            if style == 0:  # trill: quick repeated up-sweeps
                dur, gap, lo, hi = 0.035, 0.055, base * 0.9, base * 1.25
            elif style == 1:  # whistle: slower rise and fall
                dur, gap = rng.uniform(0.15, 0.3), 0.08
                lo, hi = base * 0.7, base * rng.uniform(1.1, 1.4)
            else:  # chirp: short falling notes
                dur, gap, lo, hi = rng.uniform(0.04, 0.08), 0.06, base * 1.3, base * 0.8
            length = int(dur * sr)
            u = np.linspace(0.0, 1.0, length)
            track = lo + (hi - lo) * (np.sin(np.pi * u) if style == 1 else u)
            note = _chirp(sr, track) + 0.15 * _chirp(sr, 2.0 * track)
            note *= np.sin(np.pi * u) ** 2
            _add(out, int(when * sr), note, rng.uniform(0.5, 1.0))
            when += (dur + gap) / speed
        when += rng.uniform(1.0, 3.0) / speed


def _call(ctx: _Context, out: FloatArray, kind: str) -> None:
    """Owl hoots, crow caws and gull cries: harmonic calls rather than songs."""
    sr, rng = ctx.sr, ctx.rng
    when = 0.1
    while when < ctx.seconds:
        calls = {"owl": 3, "crow": 3, "gull": 5}[kind]
        for k in range(calls):
            dur = {"owl": 0.4, "crow": 0.3, "gull": 0.45 * (0.85**k)}[kind]
            u = np.linspace(0.0, 1.0, int(dur * sr))
            if kind == "owl":
                track = 380.0 * (1.0 - 0.06 * u) + 4.0 * np.sin(_TWO_PI * 6.0 * u * dur)
                harmonics: tuple[float, ...] = (1.0, 0.15)
            elif kind == "crow":
                track = 620.0 * (1.0 + 0.1 * np.sin(np.pi * u))
                harmonics = (0.5, 0.7, 1.0, 0.8, 0.5, 0.3, 0.2)
            else:
                track = 1900.0 - 700.0 * u
                harmonics = (1.0, 0.5, 0.3)
            phase = np.cumsum(track) / sr
            voice = sum(a * np.sin(_TWO_PI * (h + 1) * phase) for h, a in enumerate(harmonics))
            note = np.asarray(voice, dtype=np.float64) * np.sin(np.pi * u) ** 1.5
            if kind == "crow":
                note += 0.3 * rng.standard_normal(len(u)) * np.sin(np.pi * u)
            _add(out, int(when * sr), note, rng.uniform(0.7, 1.0))
            when += dur + (0.25 if kind == "owl" else 0.12)
        when += rng.uniform(2.0, 4.0) / ctx.mods.speed


def _birds(ctx: _Context) -> FloatArray:
    rng = ctx.rng
    out = np.zeros(ctx.n)
    if ctx.has(r"owl"):
        _call(ctx, out, "owl")
    elif ctx.has(r"crow|raven"):
        _call(ctx, out, "crow")
    elif ctx.has(r"gull|seagull"):
        _call(ctx, out, "gull")
    else:
        count = 2
        if ctx.mods.weight > 0 or ctx.has(r"many|flock|chorus|forest|jungle|morning|dawn"):
            count = 4
        elif ctx.mods.weight < 0 or ctx.has(r"a bird|single|one bird|lone"):
            count = 1
        for _ in range(count):
            _birdsong(ctx, out, ctx.vary(rng.uniform(2500.0, 5000.0), 0.1))
    air = _filter(_noise(rng, ctx.n, ctx.sr, "pink"), ctx.sr, lambda f: _lp(f, 1500.0))
    return _peak_norm(out) + 0.02 * _unit(air)


def _clap_templates(ctx: _Context, count: int) -> list[FloatArray]:
    sr, rng = ctx.sr, ctx.rng
    claps = []
    for _ in range(count):
        centre = rng.uniform(900.0, 2600.0)
        clap = _burst(rng, sr, rng.uniform(0.004, 0.01), 0.05, _bandpass(centre, 1.2))
        claps.append(_unit(clap))
    return claps


def _applause(ctx: _Context, *, people: int | None = None) -> FloatArray:
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    templates = _clap_templates(ctx, 32)
    if people is None:
        people = 60
        if w > 0 or ctx.has(r"stadium|arena|huge|roaring|standing ovation|thunderous"):
            people = 150
        elif w < 0 or ctx.has(r"few|small|polite|scattered"):
            people = 6
    if ctx.has(r"single clap|one clap|a clap|hand clap|clap once"):
        out = np.zeros(ctx.n)
        _add(out, int(0.05 * sr), templates[0])
        return out
    starts: list[int] = []
    for _ in range(people):
        rate = rng.uniform(3.0, 5.5) * ctx.mods.speed
        when = rng.uniform(0.0, 1.0 / rate)
        while when < ctx.seconds:
            starts.append(int(when * sr))
            when += (1.0 / rate) * rng.uniform(0.9, 1.1)
    starts_arr = np.asarray(starts, dtype=np.int64)
    count = len(starts_arr)
    out = _scatter(
        ctx.n, starts_arr, templates, rng.integers(0, 32, count), rng.lognormal(0.0, 0.4, count)
    )
    t = ctx.times()
    swell = np.minimum(1.0, t / min(0.6, ctx.seconds / 4))
    fade = np.clip((ctx.seconds - t) / (0.3 * ctx.seconds), 0.3, 1.0)
    return _reverb(out * swell * fade, sr, rng, rt60=0.9, wet=0.3)


_VOWELS = (
    (730.0, 1090.0, 2440.0),
    (270.0, 2290.0, 3010.0),
    (300.0, 870.0, 2240.0),
    (530.0, 1840.0, 2480.0),
    (570.0, 840.0, 2410.0),
)


def _crowd(ctx: _Context) -> FloatArray:
    n, sr, rng, w = ctx.n, ctx.sr, ctx.rng, ctx.mods.weight
    # Voices carry little above 4 kHz, so they are synthesized at a quarter of the rate and
    # brought up to full rate in the frequency domain, where they are filtered anyway.
    down = 4
    lo_sr = sr / down
    lo_n = -(-n // down)
    t = np.arange(lo_n) / lo_sr
    coarse = t[::16]

    def slow(rate: float) -> FloatArray:
        return _random_curve(rng, coarse, rate)

    def fine(curve: FloatArray) -> FloatArray:
        return np.repeat(curve, 16)[:lo_n]

    cheer = ctx.has(r"cheer|woo|celebrat|stadium|goal")
    voices = 10
    if w > 0 or ctx.has(r"stadium|arena|huge|packed|busy"):
        voices = 16
    elif w < 0 or ctx.has(r"few|small|quiet|two people|couple"):
        voices = 4
    # Voices are routed into one bank per vowel with weights that change every syllable, so
    # five filters shape the whole crowd instead of one moving filter per voice.
    banks = np.zeros((len(_VOWELS), lo_n))
    for _ in range(voices):
        pitch = rng.uniform(250.0, 500.0) if cheer else rng.uniform(95.0, 240.0)
        contour = pitch * (1.0 + (0.35 if cheer else 0.25) * (fine(slow(3.0)) - 0.5))
        cosine = 0.5 + 0.5 * np.cos(_TWO_PI * np.cumsum(contour) / lo_sr)
        glottal = cosine * cosine
        glottal = glottal * glottal * glottal
        glottal -= float(np.mean(glottal))
        syllables = np.clip((slow(4.5) - 0.3) * 3.0, 0.0, 1.0)
        turns = 1.0 if cheer else np.clip((slow(0.3) - 0.25) * 4.0, 0.0, 1.0)
        level = syllables * turns * rng.lognormal(0.0, 0.4)
        weights = np.stack([slow(4.5) for _ in _VOWELS])
        weights = weights * weights * weights
        weights *= level / (weights.sum(axis=0) + 1e-9)
        for k in range(len(_VOWELS)):
            banks[k] += glottal * fine(weights[k])
    lo_fft = _fast_len(lo_n + min(lo_n, 2048))
    lo_freqs = _freqs(lo_fft, lo_sr)
    spectrum = np.zeros(lo_fft * down // 2 + 1, dtype=np.complex128)
    for bank, (f1, f2, f3) in zip(banks, _VOWELS, strict=True):
        shape = (
            (_bp(lo_freqs, f1, 3.0) + 0.7 * _bp(lo_freqs, f2, 4.0) + 0.3 * _bp(lo_freqs, f3, 5.0))
            * _hp(lo_freqs, 100.0)
            * _lp(lo_freqs, 4500.0, 4)
        )
        spectrum[: len(lo_freqs)] += np.fft.rfft(bank, lo_fft) * shape
    speech = np.fft.irfft(spectrum, lo_fft * down)[:n]
    breath = _filter(
        rng.standard_normal(n),
        sr,
        lambda f: (np.maximum(f, 20.0) / 20.0) ** -0.5 * _bp(f, 1500.0, 0.6) * _hp(f, 150.0),
    )
    out = _unit(speech) + 0.35 * _unit(breath)
    if cheer:
        out = out * (0.7 + 0.6 * np.repeat(fine(slow(0.8)), down)[:n])
    return _reverb(out, sr, rng, rt60=0.8, wet=0.25)


def _shot(ctx: _Context, heavy: float, suppressed: bool) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    n = int(1.6 * sr)
    t = np.arange(n) / sr
    crack = rng.standard_normal(n) * np.exp(-t / 0.0025)
    blast = _unit(_filter(_noise(rng, n, sr, "pink"), sr, lambda f: _lp(f, 1000.0)))
    blast *= (1.0 - np.exp(-t / 0.0005)) * np.exp(-t / (0.05 * (1.0 + 0.5 * heavy)))
    boom = np.sin(_TWO_PI * 70.0 * t) * np.exp(-t / (0.12 * (1.0 + 0.5 * heavy)))
    shot = 1.4 * crack + 1.2 * blast + (0.6 + 0.4 * heavy) * boom
    if suppressed:
        return _filter(shot, sr, lambda f: _lp(f, 1200.0)) * 0.6
    dry = shot.copy()
    for k in range(1, 4):
        delay = int(rng.uniform(0.12, 0.7) * sr)
        _add(shot, delay, _filter(dry, sr, lambda f: _lp(f, 2500.0)), 0.25 / k)
    return _reverb(shot, sr, rng, rt60=1.2, wet=0.2)


def _gunshot(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    heavy = 1.0 if ctx.has(r"rifle|shotgun|cannon|sniper") else max(ctx.mods.weight, 0.0)
    suppressed = ctx.has(r"silenc|suppress")
    shots = [_shot(ctx, heavy, suppressed) for _ in range(3)]
    out = np.zeros(ctx.n)
    if ctx.has(r"machine gun|automatic|rapid fire|burst|assault"):
        burst_start = 0.05
        while burst_start < ctx.seconds - 0.1:
            for k in range(int(rng.integers(6, 12))):
                when = burst_start + k * 0.09 / ctx.mods.speed
                _add(out, int(when * sr), shots[k % 3], rng.uniform(0.8, 1.0))
            burst_start += rng.uniform(1.6, 2.6)
    elif ctx.has(r"gunfire|shots|shooting|shootout|gunfight"):
        when = 0.05
        while when < ctx.seconds - 0.1:
            _add(out, int(when * sr), shots[int(rng.integers(0, 3))], rng.uniform(0.6, 1.0))
            when += rng.uniform(0.25, 1.1) / ctx.mods.speed
    else:
        _add(out, int(0.05 * sr), shots[0])
    return out


def _whoosh(ctx: _Context) -> FloatArray:
    rng, w = ctx.rng, ctx.mods.weight
    length = min(ctx.vary(0.9 * (1.0 + 0.35 * w) / ctx.mods.speed, 0.1), ctx.seconds * 0.9)
    centres = [0.05 + length * 0.55]
    while centres[-1] + max(2.0 * length, 2.5) < ctx.seconds - length / 2:
        centres.append(centres[-1] + max(2.0 * length, 2.5) * rng.uniform(0.9, 1.2))
    base = 250.0 if w > 0 else (700.0 if w < 0 else 400.0)
    spread = 5.0 if w < 0 else 4.0

    def shape(t: FloatArray, f: FloatArray) -> FloatArray:
        mag = np.zeros((len(t), len(f)))
        for c in centres:
            u = (t - c) / length
            sigma = np.where(u < 0, 0.28, 0.18)
            amp = np.exp(-0.5 * (u / sigma) ** 2)
            fc = base * (1.0 + spread * amp)
            mag += amp[:, None] * _bp(f[None, :], fc[:, None], 1.6)
            if w > 0:
                mag += 0.4 * (amp**2)[:, None] * _lp(f[None, :], 180.0)
        return mag

    return _spectral_noise(rng, ctx.n, ctx.sr, shape, frame=1024)


def _click(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    switch = ctx.has(r"switch|button|snap")

    def one() -> FloatArray:
        tick = _burst(rng, sr, 0.0007, 0.03, lambda f: _bp(f, 4500.0, 1.0))
        body = _modes(sr, (2200.0 if not switch else 900.0,), (0.005,), (0.6,), 0.03)
        return _peak_norm(tick) + _peak_norm(body) * (0.8 if switch else 0.5)

    out = np.zeros(ctx.n)
    repeated = ctx.has(r"clicks|clicking|clicky|tapping|taps") or ctx.seconds > 2.0
    when = 0.03
    while when < ctx.seconds - 0.05:
        _add(out, int(when * sr), one())
        _add(out, int((when + 0.08) * sr), one(), 0.6)  # release follows the press
        if not repeated:
            break
        when += rng.uniform(0.25, 0.45) / ctx.mods.speed
    return out


def _heartbeat(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    bpm = 130.0 if ctx.has(r"racing|pounding|panic") else 72.0
    bpm = ctx.vary(bpm * ctx.mods.speed, 0.05)
    period = 60.0 / bpm
    n = int(0.3 * sr)
    t = np.arange(n) / sr

    def thump(freq: float, tau: float) -> FloatArray:
        tone = np.sin(_TWO_PI * freq * t) + 0.5 * np.sin(_TWO_PI * freq * 1.9 * t)
        thud = _unit(_filter(rng.standard_normal(n), sr, lambda f: _lp(f, 120.0)))
        return (tone + 0.3 * thud) * (1.0 - np.exp(-t / 0.008)) * np.exp(-t / tau)

    lub, dub = thump(52.0, 0.05), thump(68.0, 0.04)
    out = np.zeros(ctx.n)
    when = 0.1
    while when < ctx.seconds:
        _add(out, int(when * sr), lub)
        _add(out, int((when + 0.32 * period**0.5) * sr), dub, 0.7)
        when += period * (1.0 + rng.normal() * 0.01)
    return out


_CHURCH_BELL = (
    (0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011, 4.166, 5.433),
    (0.6, 0.8, 0.5, 0.3, 1.0, 0.45, 0.35, 0.3, 0.2, 0.12),
    (6.0, 3.5, 3.0, 2.5, 2.2, 1.5, 1.3, 1.1, 0.7, 0.5),
)
_TUBE = ((1.0, 2.76, 5.40, 8.93), (1.0, 0.5, 0.25, 0.1), (2.5, 1.2, 0.6, 0.3))


def _strike(
    sr: int, prime: float, partials: tuple[tuple[float, ...], ...], decay: float, seconds: float
) -> FloatArray:
    ratios, amps, taus = partials
    # Each partial is a slightly detuned pair: the slow beating is what makes a bell shimmer.
    freqs = [prime * r * d for r in ratios for d in (1.0, 1.0015)]
    return _modes(
        sr,
        freqs,
        [tau * decay for tau in taus for _ in (0, 1)],
        [a for a in amps for _ in (0, 1)],
        seconds,
    )


def _bell(ctx: _Context) -> FloatArray:
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    out = np.zeros(ctx.n)
    if ctx.has(r"doorbell|door bell|ding[- ]dong"):
        for k, prime in enumerate((659.3, 523.3)):
            _add(out, int((0.05 + k * 0.55) * sr), _strike(sr, prime, _TUBE, 0.8, 2.5))
        return out
    if ctx.has(r"chime|wind chime"):
        tubes = [
            _strike(sr, note, _TUBE, 0.7, 2.0)
            for note in (1046.5, 1174.7, 1318.5, 1568.0, 1760.0, 2093.0)
        ]
        when = 0.05
        while when < ctx.seconds:
            tube = tubes[int(rng.integers(0, len(tubes)))]
            _add(out, int(when * sr), tube, rng.uniform(0.3, 1.0))
            when += rng.exponential(0.35) / ctx.mods.speed + 0.05
        return out
    if ctx.has(r"gong"):
        ratios = (1.0, 1.52, 2.1, 2.77, 3.4, 4.1, 5.2, 6.3)
        gong = _modes(
            sr,
            [110.0 * r for r in ratios],
            [4.0, 3.5, 3.0, 2.5, 2.0, 1.6, 1.2, 1.0],
            [1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
            min(ctx.seconds, 8.0),
        )
        _add(out, int(0.05 * sr), gong)
        return out
    if ctx.has(r"bicycle|bike"):
        for k in range(2):
            _add(out, int((0.05 + k * 0.18) * sr), _strike(sr, 2200.0, _TUBE, 0.3, 1.2))
        return out
    prime = 440.0
    if w > 0 or ctx.has(r"church|cathedral|tower|toll|big ben"):
        prime = 196.0
    elif w < 0 or ctx.has(r"hand ?bell|service bell|reception|sleigh"):
        prime = 880.0
    prime = ctx.vary(prime, 0.05)
    decay = 1.0 + 0.5 * max(w, 0.0)
    tolling = ctx.has(r"toll|peal|ringing|rings") or ctx.seconds > 8.0
    strike = _strike(sr, prime, _CHURCH_BELL, decay, min(8.0, ctx.seconds))
    when = 0.05
    while when < ctx.seconds:
        _add(out, int(when * sr), strike)
        if not tolling:
            break
        when += ctx.vary(2.5, 0.1) / ctx.mods.speed
    return out


def _ocean(ctx: _Context) -> FloatArray:
    rng, w = ctx.rng, ctx.mods.weight
    period = ctx.vary(8.0 * (1.0 + 0.2 * w) / ctx.mods.speed, 0.1)
    first = rng.uniform(1.5, 3.0)
    crashes = [first - period]
    while crashes[-1] < ctx.seconds + period:
        crashes.append(crashes[-1] + period * rng.uniform(0.85, 1.15))

    def shape(t: FloatArray, f: FloatArray) -> FloatArray:
        power = (0.25 * _lp(f, 500.0))[None, :] ** 2 * np.ones((len(t), 1))
        for c in crashes:
            dt = (t - c)[:, None]
            after = np.maximum(dt, 0.0)
            build = 0.6 * np.where(dt < 0, np.exp(np.minimum(dt, 0.0) / 1.0), np.exp(-after / 0.4))
            attack = np.where(dt < 0, 0.0, 1.0 - np.exp(-after / 0.3))
            wash = attack * np.exp(-after / (2.3 * (1.0 + 0.3 * w)))
            burst = attack * np.exp(-after / 0.5)
            amp = build + wash + 0.6 * burst
            fc = 300.0 + 1500.0 * build + 5000.0 * burst + 900.0 * wash
            fizz = 0.3 * wash * _hp(f[None, :], 3500.0)
            power = power + (amp * _lp(f[None, :], fc, 1)) ** 2 + fizz**2
        return np.sqrt(power)

    return _spectral_noise(rng, ctx.n, ctx.sr, shape)


def _typing(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    typewriter = ctx.has(r"typewriter")
    rate = ctx.vary((5.0 if typewriter else 7.5) * ctx.mods.speed, 0.1)

    def key(space: bool) -> FloatArray:
        if typewriter:
            strike = _impact(ctx, "metal", 3.0, 0.12)
            thud = _burst(rng, sr, 0.004, 0.12, lambda f: _lp(f, 800.0))
            return _peak_norm(strike) + 0.8 * _peak_norm(thud)
        click = _peak_norm(_burst(rng, sr, 0.0008, 0.06, lambda f: _bp(f, 3500.0, 0.8)))
        thock_f = rng.uniform(700.0, 1300.0) * (0.7 if space else 1.0)
        thock = _peak_norm(_modes(sr, (thock_f, thock_f * 2.3), (0.008, 0.004), (1.0, 0.4), 0.06))
        body = click + 0.7 * thock
        _add(body, int(0.012 * sr), _peak_norm(_burst(rng, sr, 0.002, 0.02)), 0.3)
        return body * (1.3 if space else 1.0)

    keys = [key(False) for _ in range(8)]
    spaces = [key(True) for _ in range(2)]
    out = np.zeros(ctx.n)
    when, typed = 0.05, 0
    while when < ctx.seconds:
        for _ in range(int(rng.integers(3, 9))):
            _add(out, int(when * sr), keys[int(rng.integers(0, 8))], rng.uniform(0.6, 1.0))
            when += (1.0 / rate) * rng.uniform(0.6, 1.4)
            typed += 1
        _add(out, int(when * sr), spaces[int(rng.integers(0, 2))])
        when += 1.0 / rate
        if typewriter and typed > 35:
            _add(out, int(when * sr), _strike(sr, 2100.0, _TUBE, 0.4, 1.0), 0.7)
            when += 0.6
            typed = 0
        if rng.uniform() < 0.15:
            when += rng.uniform(0.3, 0.9)
    return out


def _clock(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    big = ctx.has(r"grandfather|pendulum|tower|large clock|old clock")
    rate = ctx.vary((0.8 if big else 1.0) * ctx.mods.speed, 0.03)
    if ctx.has(r"stopwatch|timer|metronome fast"):
        rate *= 2.0
    base = 1400.0 if big else 2600.0
    tick = _modes(
        sr, (base, base * 1.45, base * 1.95), (0.012, 0.008, 0.005), (1.0, 0.6, 0.4), 0.08
    )
    tock = _modes(
        sr, (base * 0.82, base * 1.2, base * 1.7), (0.014, 0.009, 0.005), (1.0, 0.6, 0.4), 0.08
    )
    tick = _peak_norm(tick) + 0.3 * _peak_norm(
        _burst(rng, sr, 0.0005, 0.08, lambda f: _hp(f, 2000.0))
    )
    tock = _peak_norm(tock) + 0.3 * _peak_norm(
        _burst(rng, sr, 0.0005, 0.08, lambda f: _hp(f, 1500.0))
    )
    out = np.zeros(ctx.n)
    when, k = 0.05, 0
    while when < ctx.seconds:
        _add(out, int(when * sr), tick if k % 2 == 0 else tock, 1.0 if k % 2 == 0 else 1.1)
        when += 1.0 / rate
        k += 1
    if big:
        out = _reverb(out, sr, rng, rt60=0.8, wet=0.3)
    return out


def _siren(ctx: _Context) -> FloatArray:
    sr = ctx.sr
    t = ctx.times()
    speed = ctx.mods.speed
    if ctx.has(r"ambulance|hi[- ]lo|european|two[- ]tone"):
        freq = np.where(np.floor(t * 1.6 * speed) % 2 == 0, 960.0, 770.0)
    elif ctx.has(r"air raid|tornado|civil defen[cs]e|warning siren"):
        freq = 300.0 + 300.0 * (0.5 - 0.5 * np.cos(_TWO_PI * t / (8.0 / speed)))
    elif ctx.has(r"yelp"):
        freq = 700.0 + 700.0 * (0.5 - 0.5 * np.cos(_TWO_PI * t / (0.35 / speed)))
    else:  # police "wail"
        freq = 650.0 + 650.0 * (0.5 - 0.5 * np.cos(_TWO_PI * t / (4.0 / speed)))
    phase = np.cumsum(freq) / sr
    return (
        np.sin(_TWO_PI * phase)
        + 0.4 * np.sin(2 * _TWO_PI * phase)
        + 0.25 * np.sin(3 * _TWO_PI * phase)
    )


def _laser(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    out = np.zeros(ctx.n)
    length = ctx.vary(0.2 * (1.0 + 0.3 * ctx.mods.weight), 0.1)
    u = np.arange(int(length * sr)) / sr
    track = 300.0 + 2300.0 * np.exp(-u / (length / 3.0))
    track *= 1.0 + 0.05 * np.sin(_TWO_PI * 30.0 * u)
    phase = np.cumsum(track) / sr
    pew = (np.sin(_TWO_PI * phase) + 0.3 * np.sign(np.sin(_TWO_PI * phase))) * np.exp(-u / length)
    pew *= _edges(len(pew), int(0.002 * sr))
    when = 0.05
    repeated = ctx.has(r"lasers|blasts|fire|shots|battle") or ctx.seconds > 2.0
    while when < ctx.seconds - length:
        _add(out, int(when * sr), pew, rng.uniform(0.7, 1.0))
        if not repeated:
            break
        when += rng.uniform(0.25, 0.6) / ctx.mods.speed
    return out


def _hum(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    t = ctx.times()
    mains = 50.0 if ctx.has(r"50 ?hz|european|uk") else 60.0
    buzz = ctx.has(r"buzz|fluorescent|neon|transformer")
    x = np.zeros(ctx.n)
    for k in range(1, 12):
        amp = (1.0 / k) * (1.0 if k % 2 == 1 else (0.8 if buzz else 0.3))
        x += amp * np.sin(_TWO_PI * mains * k * t + rng.uniform(0, _TWO_PI))
    if buzz:
        x += 0.25 * np.clip(3.0 * np.sin(_TWO_PI * 2 * mains * t), -1.0, 1.0)
        x += 0.08 * _unit(_filter(rng.standard_normal(ctx.n), sr, lambda f: _hp(f, 2000.0)))
    return x * (1.0 + 0.05 * _random_curve(rng, t, 0.5))


def _insect(ctx: _Context) -> FloatArray:
    sr, rng = ctx.sr, ctx.rng
    t = ctx.times()
    if ctx.has(r"cricket|cicada"):
        out = np.zeros(ctx.n)
        chirp_f = 4500.0 if ctx.has("cricket") else 6500.0
        for _ in range(3 if ctx.has(r"crickets|cicadas|night") else 1):
            when = rng.uniform(0.0, 0.5)
            while when < ctx.seconds:
                for k in range(3):
                    pulse = _tone(sr, chirp_f * rng.uniform(0.97, 1.03), 0.025)
                    _add(out, int((when + k * 0.04) * sr), pulse, rng.uniform(0.5, 1.0))
                when += rng.uniform(0.35, 0.6)
        return out
    pitch = 600.0 if ctx.has(r"mosquito") else (190.0 if ctx.has(r"fly|flies") else 230.0)
    track = pitch * (1.0 + 0.08 * (_random_curve(rng, t, 1.5) - 0.5))
    phase = np.cumsum(track) / sr
    saw = 2.0 * (phase - np.floor(phase)) - 1.0
    wander = 0.3 + 0.7 * _random_curve(rng, t, 0.4)  # flying towards and away from the listener
    return _filter(saw, sr, lambda f: _lp(f, 4000.0) * _hp(f, 120.0)) * wander


def _static(ctx: _Context) -> FloatArray:
    n, sr, rng = ctx.n, ctx.sr, ctx.rng
    vinyl = ctx.has(r"vinyl|record")
    hiss = _unit(_filter(rng.standard_normal(n), sr, lambda f: _hp(f, 200.0) * _lp(f, 9000.0)))
    count = int(rng.poisson((3.0 if vinyl else 40.0) * ctx.seconds))
    pops = [_burst(rng, sr, 0.0005, 0.006) for _ in range(8)]
    crackle = _scatter(
        n,
        rng.integers(0, n, count),
        pops,
        rng.integers(0, 8, count),
        rng.lognormal(0.0, 0.8, count),
    )
    return (0.15 if vinyl else 1.0) * hiss + 0.8 * _unit(crackle + 1e-12)


def _horn(ctx: _Context) -> FloatArray:
    sr = ctx.sr
    if ctx.has(r"fog ?horn|ship|boat"):
        pair, length = (90.0, 135.0), 2.5
    elif ctx.has(r"truck|air ?horn|train"):
        pair, length = (220.0, 277.0), 1.2
    else:
        pair, length = (420.0, 525.0), 0.45
    if ctx.has(r"long|held|blar"):
        length *= 2.5
    harmonics = (1.0, 0.5, 0.35, 0.25, 0.18, 0.12)
    blast = sum(_tone(sr, f, length, harmonics) for f in pair)
    blast = np.asarray(blast, dtype=np.float64)
    out = np.zeros(ctx.n)
    when = 0.05
    repeats = 1 if length > 1.0 else 2
    for _ in range(repeats):
        _add(out, int(when * sr), blast)
        when += length + 0.15
    return _filter(out, sr, lambda f: _lp(f, 3500.0))


def _dog(ctx: _Context) -> FloatArray:
    sr, rng, w = ctx.sr, ctx.rng, ctx.mods.weight
    f0 = 250.0 if w > 0 else (650.0 if w < 0 or ctx.has(r"puppy|small|chihuahua") else 420.0)
    out = np.zeros(ctx.n)
    when = 0.05
    while when < ctx.seconds - 0.1:
        for _ in range(int(rng.integers(1, 4))):
            dur = rng.uniform(0.12, 0.2)
            u = np.linspace(0.0, 1.0, int(dur * sr))
            track = ctx.vary(f0, 0.05) * (1.15 - 0.35 * u)
            phase = np.cumsum(track) / sr
            voice = np.zeros_like(u)
            for k in range(1, 14):
                formant = math.exp(-((((k * f0) - 1100.0) / 700.0) ** 2))
                voice += (0.2 + formant) / k**0.5 * np.sin(_TWO_PI * k * phase)
            voice += 0.4 * rng.standard_normal(len(u))
            voice *= (1.0 - np.exp(-u * dur / 0.006)) * np.exp(-u * dur / 0.07)
            _add(out, int(when * sr), _filter(voice, sr, lambda f: _lp(f, 5000.0)))
            when += dur + rng.uniform(0.1, 0.2)
        when += rng.uniform(0.8, 2.2) / ctx.mods.speed
    return out


def _texture(ctx: _Context) -> FloatArray:
    """Fallback for prompts with no known sound: a texture whose character hashes from the text."""
    n, sr, rng = ctx.n, ctx.sr, ctx.rng
    t = ctx.times()
    h = hashlib.sha256(ctx.text.encode("utf-8")).digest()
    centre = 150.0 * 2.0 ** (h[0] / 255 * 5.0)
    q = 0.5 + h[1] / 255 * 4.0
    mod_rate = 0.1 * 2.0 ** (h[2] / 255 * 6.0)
    grain_rate = h[3] / 255 * 30.0
    pitch = 70.0 * 2.0 ** (h[4] / 255 * 4.0)
    ratios = [1.0] + [1.0 + h[5 + k] / 255 * (k + 1.5) for k in range(3)]
    bed = _unit(_filter(_noise(rng, n, sr, "pink"), sr, lambda f: _bp(f, centre, q)))
    bed *= 0.6 + 0.4 * np.sin(_TWO_PI * mod_rate * t + h[8] / 255 * _TWO_PI)
    drone = np.zeros(n)
    for k, r in enumerate(ratios):
        drone += np.sin(_TWO_PI * pitch * r * t * (1.0 + 0.002 * k)) / (k + 1)
    drone *= 0.6 + 0.4 * _random_curve(rng, t, mod_rate / 2.0)
    out = bed + (h[9] / 255) * _unit(drone)
    if grain_rate > 1.0:
        grains = [
            _burst(rng, sr, 0.002, 0.02, lambda f: _bp(f, centre * 2.0, 1.0)) for _ in range(6)
        ]
        count = int(rng.poisson(grain_rate * ctx.seconds))
        out += 0.7 * _unit(
            _scatter(
                n,
                rng.integers(0, n, count),
                grains,
                rng.integers(0, 6, count),
                rng.lognormal(0.0, 0.5, count),
            )
            + 1e-12
        )
    return out


# --------------------------------------------------------------------------------------------
# Category registry
# --------------------------------------------------------------------------------------------


def _beep_length(text: str, _mods: _Modifiers) -> float:
    return 3.0 if re.search(r"beeps|beeping|repeat|countdown|monitor|revers", text) else 1.0


def _speed_scaled(seconds: float) -> Callable[[str, _Modifiers], float]:
    return lambda _text, mods: seconds / max(mods.speed, 0.5)


_CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "rain",
        _terms(
            "rain",
            "rainfall",
            "raindrop",
            "drizzle",
            "downpour",
            "re:rain(?:y|ing|ed|s)?",
            "pitter patter",
        ),
        _const(10.0),
        _rain,
        True,
    ),
    _Category(
        "wind",
        _terms("wind", "windy", "breeze", "gust", "gale", "blizzard", "draught"),
        _const(10.0),
        _wind,
        True,
    ),
    _Category(
        "thunder",
        _terms("thunder", "thunderclap", "thunderbolt", "lightning", "re:rumbl(?:e|es|ing)"),
        _const(7.0),
        _thunder,
    ),
    _Category(
        "explosion",
        _terms(
            "explosion",
            "re:explod(?:e|es|ed|ing)",
            "blast",
            "re:booms?",
            "bomb",
            "re:detonat\\w*",
            "kaboom",
            "grenade",
            "dynamite",
            "re:blow(?:s|ing)?\\s+up",
            "re:blew\\s+up",
            "re:blown\\s+up",
        ),
        _const(5.0),
        _explosion,
    ),
    _Category(
        "door",
        _terms(
            "door",
            "re:knock(?:s|ing|ed)?",
            "re:slam(?:s|med|ming)?",
            "re:creak(?:s|ing|y|ed)?",
            "gate",
            "hinge",
        ),
        _const(2.5),
        _door,
    ),
    _Category(
        "footsteps",
        _terms(
            "re:foot\\s*steps?",
            "footfall",
            "re:steps?",
            "re:walk(?:s|ing|ed)?",
            "re:jog(?:s|ging|ger)?",
            "sprint",
            "re:running",
            "re:runs?",
            "re:stomp(?:s|ing|ed)?",
            "march",
            "re:tiptoe(?:s|ing)?",
            "re:sneak(?:s|ing)?",
            "re:pacing",
        ),
        _const(5.0),
        _footsteps,
    ),
    _Category("beep", _terms("beep", "bleep", "re:blips?", "microwave"), _beep_length, _beep),
    _Category(
        "alarm",
        _terms("alarm", "klaxon", "buzzer", "re:warning\\s+(?:sound|tone)s?"),
        _const(4.0),
        _alarm,
    ),
    _Category(
        "notification",
        _terms(
            "re:notification\\w*",
            "re:alerts?",
            "re:pings?",
            "re:(?:new|text|incoming)\\s+message\\w*",
            "re:message\\s+(?:tone|sound)",
            "re:(?:ui|success|error)\\s+sound",
        ),
        _const(1.2),
        _notification,
    ),
    _Category(
        "phone", _terms("re:(?:tele|cell\\s*|smart)?phones?", "ringtone"), _const(6.0), _phone
    ),
    _Category(
        "glass",
        _terms("glass", "re:shatter(?:s|ing|ed)?", "re:smash(?:es|ing|ed)?"),
        _const(2.5),
        _glass,
    ),
    _Category(
        "water",
        _terms(
            "water",
            "stream",
            "river",
            "brook",
            "creek",
            "re:bubbl\\w*",
            "faucet",
            "re:drip(?:s|ping|ped)?",
            "re:splash(?:es|ing|ed)?",
            "re:pour(?:s|ing|ed)?",
            "waterfall",
            "fountain",
            "re:gurgl\\w*",
            "re:trickl\\w*",
            "rapids",
        ),
        _const(10.0),
        _water,
        True,
    ),
    _Category(
        "fire",
        _terms(
            "re:fires?",
            "re:flames?",
            "campfire",
            "fireplace",
            "bonfire",
            "re:crackl(?:e|es|ing|ed)",
            "re:burning",
            "blaze",
            "inferno",
            "wildfire",
            "torch",
        ),
        _const(10.0),
        _fire,
        True,
    ),
    _Category(
        "engine",
        _terms(
            "engine",
            "motor",
            "re:cars?",
            "truck",
            "re:bus(?:es)?",
            "vehicle",
            "motorcycle",
            "motorbike",
            "traffic",
            "re:rev(?:s|ving|ved)?",
            "re:idl(?:e|es|ing)",
            "tractor",
            "lorry",
            "scooter",
        ),
        _const(6.0),
        _engine,
        True,
    ),
    _Category(
        "birds",
        _terms(
            "re:birds?",
            "birdsong",
            "re:chirp\\w*",
            "re:tweet\\w*",
            "songbird",
            "sparrow",
            "robin",
            "owl",
            "crow",
            "raven",
            "seagull",
            "gull",
            "re:warbl\\w*",
            "forest",
            "jungle",
        ),
        _const(8.0),
        _birds,
    ),
    _Category(
        "applause",
        _terms("applause", "re:applau\\w*", "re:clap(?:s|ping|ped)?", "ovation", "handclap"),
        _const(6.0),
        _applause,
        True,
    ),
    _Category(
        "crowd",
        _terms(
            "crowd",
            "audience",
            "re:murmur\\w*",
            "re:chatter\\w*",
            "re:babbl\\w*",
            "re:people",
            "re:talking",
            "conversation",
            "restaurant",
            "cafe",
            "party",
            "stadium",
            "marketplace",
            "re:cheer(?:s|ing|ed)?",
        ),
        _const(10.0),
        _crowd,
        True,
    ),
    _Category(
        "gunshot",
        _terms(
            "gun",
            "gunshot",
            "gunfire",
            "re:shots?",
            "re:shooting",
            "pistol",
            "rifle",
            "shotgun",
            "revolver",
            "gunfight",
            "shootout",
        ),
        _const(2.0),
        _gunshot,
    ),
    _Category(
        "whoosh",
        _terms(
            "whoosh",
            "swoosh",
            "woosh",
            "swish",
            "re:swipes?",
            "swoop",
            "re:(?:fly|flies|flying|zoom(?:s|ing)?|rush(?:es|ing)?)\\s+(?:by|past)",
            "transition",
            "re:sword\\s+swing\\w*",
        ),
        _speed_scaled(1.5),
        _whoosh,
    ),
    _Category(
        "click",
        _terms(
            "click",
            "re:click(?:s|ing|ed|y)?",
            "re:switch(?:es)?",
            "re:shutter",
            "re:snap(?:s|ping)?",
            "re:tap(?:s|ping)?",
            "re:button\\s+press\\w*",
        ),
        _const(0.5),
        _click,
    ),
    _Category(
        "heartbeat",
        _terms("heartbeat", "re:heart\\s*beats?", "re:hearts?", "pulse"),
        _const(4.0),
        _heartbeat,
    ),
    _Category(
        "bell",
        _terms(
            "re:bells?",
            "re:chimes?",
            "re:dings?",
            "gong",
            "doorbell",
            "re:toll(?:s|ing)?",
            "re:ding[- ]dong",
        ),
        _const(4.0),
        _bell,
    ),
    _Category(
        "ocean",
        _terms(
            "ocean",
            "re:seas?",
            "re:waves?",
            "surf",
            "re:shore(?:line)?",
            "beach",
            "seaside",
            "tide",
        ),
        _const(12.0),
        _ocean,
        True,
    ),
    _Category(
        "typing",
        _terms("re:typ(?:e|es|ing)", "keyboard", "typewriter", "re:keystrokes?"),
        _const(5.0),
        _typing,
    ),
    _Category(
        "clock",
        _terms("clock", "re:tick(?:s|ing|ed)?", "re:tock", "metronome", "stopwatch"),
        _const(5.0),
        _clock,
    ),
    _Category(
        "siren",
        _terms("re:sirens?", "ambulance", "police", "re:emergency\\s+vehicle"),
        _const(6.0),
        _siren,
        True,
    ),
    _Category(
        "laser",
        _terms("re:lasers?", "blaster", "re:zap(?:s|ping|ped)?", "re:pew", "phaser"),
        _const(0.8),
        _laser,
    ),
    _Category(
        "hum",
        _terms(
            "re:hum(?:s|ming)?",
            "re:buzz(?:es|ing)?",
            "electric",
            "electrical",
            "transformer",
            "fluorescent",
            "re:power\\s+lines?",
        ),
        _const(5.0),
        _hum,
        True,
    ),
    _Category(
        "insect",
        _terms(
            "re:bees?",
            "bumblebee",
            "wasp",
            "hornet",
            "mosquito",
            "insect",
            "re:flies",
            "housefly",
            "cricket",
            "cicada",
        ),
        _const(5.0),
        _insect,
        True,
    ),
    _Category(
        "static",
        _terms(
            "static",
            "re:(?:white|pink|brown)\\s+noise",
            "hiss",
            "re:hiss(?:es|ing)?",
            "vinyl",
            "interference",
        ),
        _const(5.0),
        _static,
        True,
    ),
    _Category(
        "horn", _terms("re:horns?", "re:honk\\w*", "foghorn", "re:air\\s*horn"), _const(1.5), _horn
    ),
    _Category(
        "dog", _terms("re:dogs?", "re:bark(?:s|ing|ed)?", "puppy", "re:woofs?"), _const(4.0), _dog
    ),
)
_BY_NAME = {c.name: c for c in _CATEGORIES}
_TEXTURE = _Category("texture", re.compile(r"(?!)"), _const(5.0), _texture, True)

# Phrases whose words would otherwise be read as other categories ("fire alarm" is not a fire).
_COMPOUNDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(r"\b(?:" + p + r")\b"), cats)
    for p, cats in (
        (r"thunder\s*storms?", ("rain", "thunder")),
        (r"rain\s*storms?|hail\s*storms?|hail", ("rain", "wind")),
        (r"(?:snow|sand|dust)\s*storms?|hurricanes?|tornado(?:es)?|typhoons?", ("wind",)),
        (r"storms?|stormy", ("rain", "thunder", "wind")),
        (r"wind\s*chimes?", ("bell",)),
        (r"(?:fire|smoke|burglar|car|security)\s+alarms?|alarm\s+clocks?", ("alarm",)),
        (r"car\s+horns?", ("horn",)),
        (r"car\s+doors?", ("door",)),
        (r"door\s*bells?", ("bell",)),
        (r"fire\s+(?:trucks?|engines?)|police\s+cars?", ("siren",)),
        (r"heart\s+(?:rate\s+)?monitors?", ("beep",)),
        (r"(?:truck|vehicle|forklift)s?\s+(?:reversing|backing up)", ("beep",)),
        (r"machine\s+guns?", ("gunshot",)),
        (r"fireworks?|firecrackers?", ("explosion",)),
        (r"running\s+water|water\s+running|running\s+(?:taps?|faucets?|streams?)", ("water",)),
        (r"babbling\s+(?:brooks?|streams?|water)", ("water",)),
        (r"(?:engines?|motors?|cars?)\s+(?:is\s+|are\s+)?running", ("engine",)),
        (r"(?:rain|water)\s*drops?", ("rain",)),
        (r"sea\s*gulls?", ("birds",)),
        (r"grandfather\s+clocks?", ("clock",)),
        (r"(?:window|glass)\s+(?:breaking|break|smash\w*|shatter\w*)", ("glass",)),
        (
            r"(?:bees?|bumblebees?|wasps?|hornets?|flies|insects?)\s+buzz\w*"
            r"|buzz\w*\s+(?:of\s+)?(?:bees?|flies|insects?)",
            ("insect",),
        ),
        (r"radio\s+(?:static|crackl\w*)|tv\s+static", ("static",)),
        (r"cheer(?:s|ing|ed)?", ("crowd", "applause")),
        (r"laser\s+(?:gun|blast|shot)s?|ray\s+guns?", ("laser",)),
        (r"sonic\s+booms?", ("explosion",)),
    )
)
_CLAUSE_SPLIT = re.compile(
    r"[,;.!?]|&|\b(?:and|with|while|then|plus|over|under|as|followed by|after|before|"
    r"mixed with|against)\b"
)
_NEGATION = re.compile(r"\b(?:no|without|not|minus)\s+(?:\w+\s+)?$")


def _normalise(prompt: str) -> str:
    return re.sub(r"\s+", " ", prompt.lower()).strip()


def _read_modifiers(clause: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for pattern, values in _MODIFIER_PATTERNS:
        if pattern.search(clause):
            for key, value in values.items():
                if key == "level_db" and key in found:
                    found[key] = min(float(found[key]), float(value))  # type: ignore[arg-type]
                elif key not in found:
                    found[key] = value
    return found


def _analyse(prompt: str) -> list[tuple[str, _Modifiers]]:
    """Categories in order of first mention, each with the modifiers that apply to it.

    Modifiers scope to their clause ("heavy rain with distant thunder": the rain is heavy, the
    thunder distant); a clause naming no sound lends its modifiers to every sound.
    """
    text = _normalise(prompt)
    clauses = [c for c in _CLAUSE_SPLIT.split(text) if c.strip()]
    hits: list[tuple[int, str, int]] = []  # (position, category, clause index)
    clause_mods: list[dict[str, object]] = []
    offset = 0
    for index, clause in enumerate(clauses):
        clause_mods.append(_read_modifiers(clause))
        position = text.find(clause, offset)
        offset = max(position, offset)
        remaining = clause
        for pattern, cats in _COMPOUNDS:
            for match in pattern.finditer(remaining):
                if not _NEGATION.search(remaining[: match.start()]):
                    hits.extend((position + match.start(), c, index) for c in cats)
            remaining = pattern.sub(lambda m: " " * len(m.group(0)), remaining)
        for category in _CATEGORIES:
            for match in category.pattern.finditer(remaining):
                if not _NEGATION.search(remaining[: match.start()]):
                    hits.append((position + match.start(), category.name, index))
                    break
    hits.sort(key=lambda h: h[0])
    ordered: dict[str, list[int]] = {}
    for _, name, index in hits:
        ordered.setdefault(name, [])
        if index not in ordered[name]:
            ordered[name].append(index)
    mentioned = {i for indices in ordered.values() for i in indices}
    shared: dict[str, object] = {}
    for index, mods in enumerate(clause_mods):
        if index not in mentioned:
            shared.update({k: v for k, v in mods.items() if k not in shared})
    result = []
    for name, indices in ordered.items():
        merged = dict(shared)
        for index in indices:
            merged.update(clause_mods[index])
        result.append((name, _Modifiers(**merged)))  # type: ignore[arg-type]
    return result


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def describe(prompt: str) -> list[str]:
    """Names of the sound categories recognised in ``prompt``, in order of first mention.

    An empty list means no known sound was named; :func:`generate` then renders a texture
    derived from the prompt's hash.

    Example:
        >>> describe("footsteps on gravel, a door slams in the distance")
        ['footsteps', 'door']
    """
    return [name for name, _ in _analyse(prompt)]


def natural_duration(prompt: str) -> float:
    """The length in seconds :func:`generate` picks when ``duration_seconds`` is None.

    The longest natural length of the recognised sounds, clamped to 0.5-30 s.

    Example:
        >>> natural_duration("a single gunshot")
        2.0
    """
    text = _normalise(prompt)
    analysed = _analyse(prompt)
    if not analysed:
        seconds = _TEXTURE.natural(text, _Modifiers())
    else:
        seconds = max(_BY_NAME[name].natural(text, mods) for name, mods in analysed)
    return float(min(max(seconds, MIN_DURATION_SECONDS), MAX_DURATION_SECONDS))


def _seed_from(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(_normalise(prompt).encode("utf-8")).digest()[:8], "big")


def _place_in_space(layer: FloatArray, ctx: _Context) -> FloatArray:
    """Apply distance, muffling, room and drive: how the sound reaches the listener."""
    mods, sr = ctx.mods, ctx.sr
    if mods.muffled:
        layer = _filter(layer, sr, lambda f: _lp(f, 650.0, 3))
    elif mods.distance > 0:
        layer = _filter(layer, sr, lambda f: _lp(f, 2000.0, 2) * _hp(f, 50.0, 1))
    wet = max(mods.space * 0.5, 0.4 if mods.distance > 0 else 0.0)
    if wet > 0:
        rt60 = 0.5 + 2.0 * max(mods.space, 0.6 if mods.distance > 0 else 0.0)
        layer = _reverb(layer, sr, ctx.rng, rt60=rt60, wet=wet)
    if mods.drive and mods.distance <= 0:
        layer = np.tanh(2.5 * _peak_norm(layer)) / math.tanh(2.5)
    return layer


def _check_inputs(
    prompt: str, duration_seconds: float | None, prompt_influence: float, sample_rate: int
) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("text must be a non-empty description of the sound effect")
    if duration_seconds is not None and not (
        MIN_DURATION_SECONDS <= float(duration_seconds) <= MAX_DURATION_SECONDS
    ):
        raise ValueError(
            f"duration_seconds must be between {MIN_DURATION_SECONDS} and "
            f"{MAX_DURATION_SECONDS} seconds (or null to let the engine pick), "
            f"got {duration_seconds}"
        )
    if not 0.0 <= float(prompt_influence) <= 1.0:
        raise ValueError(f"prompt_influence must be between 0 and 1, got {prompt_influence}")
    if not 8000 <= int(sample_rate) <= 192000:
        raise ValueError(f"sample_rate must be between 8000 and 192000 Hz, got {sample_rate}")


def generate(
    prompt: str,
    *,
    duration_seconds: float | None = None,
    loop: bool = False,
    prompt_influence: float | None = DEFAULT_PROMPT_INFLUENCE,
    seed: int | None = None,
    sample_rate: int = 44100,
) -> NDArray[np.float32]:
    """Synthesize the sound effect a prompt describes, as float32 mono samples in [-1, 1].

    Args:
        prompt: What to hear, e.g. ``"heavy rain on a tin roof with distant thunder"``.
        duration_seconds: Exact length (0.5-30 s); None picks the sound's natural length.
        loop: Make the clip loop seamlessly (its tail is crossfaded into its head).
        prompt_influence: 0-1; higher follows the recipe strictly, lower adds more seeded
            variation to rates, pitches and timbres. None means the API default, 0.3.
        seed: Variation seed; None derives one from the prompt, so output is deterministic.
        sample_rate: Output sample rate in Hz.

    Raises:
        ValueError: empty prompt, or a duration, influence or sample rate out of range.

    The result is peak-normalised to about -1 dBFS (lower for "distant", "muffled" or
    "quiet" sounds), has short fades unless ``loop`` is set, and never clips.

    Example:
        >>> audio = generate("footsteps on gravel", duration_seconds=3.0, seed=7)
        >>> len(audio) == 3 * 44100
        True
    """
    influence = DEFAULT_PROMPT_INFLUENCE if prompt_influence is None else prompt_influence
    _check_inputs(prompt, duration_seconds, influence, sample_rate)
    sr = int(sample_rate)
    seconds = natural_duration(prompt) if duration_seconds is None else float(duration_seconds)
    n = max(round(seconds * sr), 1)
    crossfade = min(int(0.5 * sr), n // 4) if loop else 0
    text = _normalise(prompt)
    base_seed = (_seed_from(prompt) if seed is None else int(seed)) % (2**63)
    analysed = _analyse(prompt) or [(_TEXTURE.name, _Modifiers())]

    layers: list[tuple[FloatArray, float]] = []
    for name, mods in analysed:
        category = _BY_NAME.get(name, _TEXTURE)
        index = _CATEGORIES.index(category) if category in _CATEGORIES else len(_CATEGORIES)
        ctx = _Context(
            text,
            sr,
            n + crossfade,
            np.random.default_rng([base_seed, index]),
            mods,
            float(influence),
        )
        layer = category.render(ctx)
        if category.bed:
            layer = _limit_crest(layer, 6.0)
        layer = _place_in_space(layer, ctx)
        layer = _peak_norm(layer) * (_BED_WEIGHT if category.bed and len(analysed) > 1 else 1.0)
        layers.append((layer, mods.level_db))
    loudest = max(level for _, level in layers)
    mix = np.zeros(n + crossfade)
    for layer, level in layers:
        mix += layer * 10.0 ** ((level - loudest) / 20.0)
    mix -= float(np.mean(mix))

    if loop and crossfade > 0:
        # Equal-power crossfade of the overhang into the head: the last sample then flows into
        # the first exactly as consecutive samples of the original render did.
        theta = np.linspace(0.0, np.pi / 2, crossfade, endpoint=False)
        head = mix[:crossfade] * np.sin(theta) + mix[n:] * np.cos(theta)
        mix = mix[:n].copy()
        mix[:crossfade] = head
    else:
        mix = mix[:n]
        fade_in, fade_out = min(int(0.01 * sr), n // 4), min(int(0.05 * sr), n // 4)
        if fade_in:
            mix[:fade_in] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(fade_in) / fade_in)
        if fade_out:
            mix[n - fade_out :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, fade_out + 1) / fade_out)

    target = 10.0 ** ((_PEAK_DBFS + min(loudest, 0.0)) / 20.0)
    mix = _peak_norm(mix, target)
    if not np.any(mix):
        raise RuntimeError(f"sound-effect synthesis produced silence for prompt {prompt!r}")
    return np.clip(mix, -1.0, 1.0).astype(np.float32)
