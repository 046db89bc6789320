"""The procedural sound-effect synthesizer: lengths, determinism, and sounds that differ audibly.

"Audibly" is measured with plain numpy features: spectral centroid and flatness, the spectrum's
peak-to-mean ratio (tonality), zero-crossing rate, onset density and envelope periodicity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from prefect_elevenlabs.local.engines import sfx

SR = 44100

# One prompt per category, each rendered for 2 s in the silence/clipping sweep.
CATEGORY_PROMPTS = {
    "rain": "rain on the pavement",
    "wind": "howling wind",
    "thunder": "thunder",
    "explosion": "an explosion",
    "door": "a door slams",
    "footsteps": "footsteps in a corridor",
    "beep": "a beep",
    "alarm": "an alarm",
    "notification": "a notification sound",
    "phone": "a telephone",
    "glass": "glass shattering",
    "water": "a babbling stream",
    "fire": "a crackling campfire",
    "engine": "a car engine",
    "birds": "birds chirping",
    "applause": "applause",
    "crowd": "crowd murmur in a restaurant",
    "gunshot": "a gunshot",
    "whoosh": "a whoosh",
    "click": "a mouse click",
    "heartbeat": "a heartbeat",
    "bell": "a church bell",
    "ocean": "ocean waves",
    "typing": "typing on a keyboard",
    "clock": "a clock ticking",
    "siren": "a police siren",
    "laser": "a laser blaster",
    "hum": "electrical hum",
    "insect": "bees buzzing",
    "static": "radio static",
    "horn": "a car horn",
    "dog": "a dog barking",
}


# ----------------------------------------------------------------------------- features


def power_spectrum(x: np.ndarray, frame: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Welch-style average power spectrum."""
    x = np.asarray(x, dtype=np.float64)
    hop = frame // 2
    count = max((len(x) - frame) // hop + 1, 1)
    frames = np.stack([x[i * hop : i * hop + frame] for i in range(count)]) * np.hanning(frame)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    return np.fft.rfftfreq(frame, 1.0 / SR), power


def centroid(x: np.ndarray) -> float:
    f, p = power_spectrum(x)
    return float((f * p).sum() / p.sum())


def bandwidth(x: np.ndarray) -> float:
    f, p = power_spectrum(x)
    c = (f * p).sum() / p.sum()
    return float(np.sqrt(((f - c) ** 2 * p).sum() / p.sum()))


def flatness(x: np.ndarray) -> float:
    f, p = power_spectrum(x)
    band = p[(f > 100) & (f < 10000)] + 1e-20
    return float(np.exp(np.log(band).mean()) / band.mean())


def peak_to_mean(x: np.ndarray) -> float:
    f, p = power_spectrum(x)
    band = p[(f > 50) & (f < 12000)]
    return float(band.max() / band.mean())


def peak_frequency(x: np.ndarray) -> float:
    f, p = power_spectrum(x)
    return float(f[np.argmax(p)])


def zero_crossing_rate(x: np.ndarray) -> float:
    return float(np.mean(np.diff(np.signbit(x).astype(np.int8)) != 0))


def envelope(x: np.ndarray, hop_s: float) -> np.ndarray:
    hop = int(hop_s * SR)
    n = len(x) // hop
    blocks = np.asarray(x[: n * hop], dtype=np.float64).reshape(n, hop)
    return np.sqrt((blocks**2).mean(axis=1) + 1e-12)


def onset_rate(x: np.ndarray) -> float:
    """Transients per second: the 5 ms envelope jumping >= 9 dB above its last 30 ms minimum."""
    hop_s, lag = 0.005, 6
    level = 20 * np.log10(envelope(x, hop_s))
    floor = np.array([level[max(0, i - lag) : i + 1].min() for i in range(len(level))])
    active = np.flatnonzero((level - floor > 9.0) & (level > level.max() - 40.0))
    onsets, last = 0, -1_000_000
    for i in active.tolist():
        if (i - last) * hop_s >= 0.06:
            onsets += 1
        last = i
    return onsets / (len(x) / SR)


def envelope_period(x: np.ndarray, lo: float = 0.2, hi: float = 2.0) -> tuple[float, float]:
    """Strongest repetition period of the loudness envelope, and its autocorrelation."""
    hop_s = 0.01
    env = envelope(x, hop_s)
    env = env - env.mean()
    ac = np.correlate(env, env, "full")[len(env) - 1 :]
    ac /= ac[0]
    a, b = int(lo / hop_s), int(hi / hop_s)
    k = a + int(np.argmax(ac[a:b]))
    return k * hop_s, float(ac[k])


def attack_and_decay(x: np.ndarray) -> tuple[float, float]:
    """Seconds from onset to half the peak level, and from the peak to the last -20 dB point."""
    env = envelope(x, 0.005)
    top = env.max()
    onset = int(np.argmax(env > 0.1 * top))
    half = int(np.argmax(env >= 0.5 * top))
    above = np.flatnonzero(env > 0.1 * top)
    return (half - onset) * 0.005, (above[-1] - int(np.argmax(env))) * 0.005


def features(x: np.ndarray) -> np.ndarray:
    """A small descriptor used to check that categories are told apart by ear-like measures."""
    _period, strength = envelope_period(x)
    return np.array([
        np.log(centroid(x)),
        np.log(bandwidth(x)),
        4.0 * flatness(x),
        np.log10(peak_to_mean(x)),
        10.0 * zero_crossing_rate(x),
        np.log1p(onset_rate(x)),
        2.0 * max(strength, 0.0),
    ])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    """Renders shared by the feature tests (fixed durations keep the comparisons fair)."""
    spec = {
        "rain": ("rain", 6.0),
        "heavy rain": ("heavy rain", 6.0),
        "light rain": ("light rain", 6.0),
        "beep": ("a beep", 1.0),
        "explosion": ("an explosion", 5.0),
        "walking": ("footsteps", 6.0),
        "running": ("running footsteps", 6.0),
        "slow steps": ("slow footsteps", 6.0),
        "wind": ("wind", 6.0),
        "typing": ("typing on a keyboard", 6.0),
        "gunshot": ("a gunshot", 2.0),
        "distant gunshot": ("a distant gunshot", 2.0),
        "muffled gunshot": ("a muffled gunshot through a wall", 2.0),
        "wood knock": ("knock on a wooden door", 2.5),
        "metal knock": ("knock on a metal door", 2.5),
    }
    return {
        name: sfx.generate(prompt, duration_seconds=seconds).astype(np.float64)
        for name, (prompt, seconds) in spec.items()
    }


# ----------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("seconds", [0.5, 1.234, 7.0, 30.0])
def test_requested_duration_is_exact(seconds: float) -> None:
    audio = sfx.generate("rain", duration_seconds=seconds)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) == round(seconds * SR)


def test_duration_follows_the_sample_rate() -> None:
    audio = sfx.generate("a beep", duration_seconds=2.0, sample_rate=22050)
    assert len(audio) == 44100


def test_unspecified_duration_is_the_sounds_natural_length() -> None:
    click = sfx.generate("a mouse click")
    ocean = sfx.generate("ocean waves")
    assert len(click) == round(sfx.natural_duration("a mouse click") * SR)
    assert len(ocean) == round(sfx.natural_duration("ocean waves") * SR)
    assert len(click) < len(ocean)
    for prompt in CATEGORY_PROMPTS.values():
        assert sfx.MIN_DURATION_SECONDS <= sfx.natural_duration(prompt) <= 30.0


@pytest.mark.parametrize("seconds", [0.0, 0.49, 30.01, -3.0, float("nan")])
def test_duration_out_of_range_is_rejected(seconds: float) -> None:
    with pytest.raises(ValueError, match="duration_seconds"):
        sfx.generate("rain", duration_seconds=seconds)


def test_bad_prompt_influence_and_empty_prompt_are_rejected() -> None:
    with pytest.raises(ValueError, match="prompt_influence"):
        sfx.generate("rain", prompt_influence=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        sfx.generate("   ")


# ----------------------------------------------------------------------------- determinism


def test_same_inputs_give_identical_samples() -> None:
    kwargs: dict[str, Any] = {"duration_seconds": 3.0, "loop": False, "prompt_influence": 0.4,
                              "seed": 11}
    first = sfx.generate("footsteps on gravel and distant thunder", **kwargs)
    second = sfx.generate("footsteps on gravel and distant thunder", **kwargs)
    assert np.array_equal(first, second)


def test_no_seed_is_derived_from_the_prompt() -> None:
    assert np.array_equal(sfx.generate("wind", duration_seconds=2.0),
                          sfx.generate("wind", duration_seconds=2.0))
    assert not np.array_equal(sfx.generate("wind", duration_seconds=2.0, seed=1),
                              sfx.generate("wind", duration_seconds=2.0, seed=2))


def test_prompt_influence_controls_seeded_variation() -> None:
    def step_periods(influence: float) -> set[float]:
        return {
            envelope_period(sfx.generate("footsteps", duration_seconds=6.0, seed=seed,
                                         prompt_influence=influence).astype(np.float64))[0]
            for seed in range(5)
        }

    strict, loose = step_periods(1.0), step_periods(0.0)
    assert len(strict) == 1  # the walking pace is exactly the recipe's
    assert len(loose) > 1  # the pace wanders with the seed
    assert all(0.45 <= p <= 0.65 for p in strict | loose)


# ----------------------------------------------------------------------------- prompts


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("heavy rain with distant thunder", ["rain", "thunder"]),
        ("footsteps on gravel, a door slams in the distance", ["footsteps", "door"]),
        ("a fire alarm", ["alarm"]),
        ("wind chimes", ["bell"]),
        ("running water", ["water"]),
        ("thunderstorm", ["rain", "thunder"]),
        ("no rain, just wind", ["wind"]),
        ("crowd cheering in a stadium", ["crowd", "applause"]),
        ("a zorblaxian quantum flibber", []),
    ],
)
def test_describe_recognises_categories(prompt: str, expected: list[str]) -> None:
    assert sfx.describe(prompt) == expected


def test_every_category_prompt_is_recognised() -> None:
    for category, prompt in CATEGORY_PROMPTS.items():
        assert category in sfx.describe(prompt), prompt


@pytest.mark.parametrize("prompt", [*CATEGORY_PROMPTS.values(), "a zorblaxian quantum flibber"])
def test_never_silent_never_clipping(prompt: str) -> None:
    audio = sfx.generate(prompt, duration_seconds=2.0)
    assert np.all(np.isfinite(audio))
    peak = float(np.max(np.abs(audio)))
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    assert 0.85 <= peak <= 0.9  # about -1 dBFS, never touching full scale
    assert rms > 0.003  # louder than -50 dBFS on average: audible, not a stray click


def test_unknown_prompts_get_distinct_textures() -> None:
    a = sfx.generate("a zorblaxian quantum flibber", duration_seconds=2.0).astype(np.float64)
    b = sfx.generate("the colour of forgotten tuesdays", duration_seconds=2.0).astype(np.float64)
    assert sfx.describe("the colour of forgotten tuesdays") == []
    assert abs(np.log(centroid(a) / centroid(b))) > 0.1


# ----------------------------------------------------------------------------- timbres


def test_rain_is_noisier_and_broader_than_a_beep(clips: dict[str, np.ndarray]) -> None:
    rain, beep = clips["rain"], clips["beep"]
    assert flatness(rain) > 100 * flatness(beep)
    assert bandwidth(rain) > 3 * bandwidth(beep)
    assert zero_crossing_rate(rain) > 3 * zero_crossing_rate(beep)


def test_a_beep_is_a_pure_tone(clips: dict[str, np.ndarray]) -> None:
    beep = clips["beep"]
    assert peak_to_mean(beep) > 50
    assert peak_to_mean(clips["rain"]) < 20
    assert 900 <= peak_frequency(beep) <= 1100


def test_explosion_has_sharp_attack_long_decay_and_low_centroid(
    clips: dict[str, np.ndarray],
) -> None:
    attack, decay = attack_and_decay(clips["explosion"])
    assert attack <= 0.02
    assert decay >= 1.0
    assert centroid(clips["explosion"]) < 400
    assert centroid(clips["explosion"]) < centroid(clips["rain"]) / 5


def test_footsteps_repeat_at_walking_and_running_pace(clips: dict[str, np.ndarray]) -> None:
    walk_period, walk_strength = envelope_period(clips["walking"])
    run_period, run_strength = envelope_period(clips["running"])
    slow_period, _ = envelope_period(clips["slow steps"])
    assert 0.45 <= walk_period <= 0.65  # about 1.6-2.2 steps per second
    assert 0.28 <= run_period <= 0.42
    assert slow_period > walk_period * 1.3
    assert walk_strength > 0.4 and run_strength > 0.4


def test_wind_has_few_transients_unlike_rain_and_typing(clips: dict[str, np.ndarray]) -> None:
    assert onset_rate(clips["wind"]) < 0.5
    assert onset_rate(clips["typing"]) > 3.0
    assert onset_rate(clips["rain"]) > 2.0


def test_distance_and_muffling_darken_and_lower_the_sound(clips: dict[str, np.ndarray]) -> None:
    close, distant, muffled = (clips["gunshot"], clips["distant gunshot"],
                               clips["muffled gunshot"])
    assert centroid(distant) < 0.6 * centroid(close)
    assert centroid(muffled) < 0.5 * centroid(distant)
    assert np.max(np.abs(distant)) < 0.5 * np.max(np.abs(close))
    assert np.max(np.abs(muffled)) < 0.8 * np.max(np.abs(close))


def test_heavy_rain_is_denser_and_darker_than_light_rain(clips: dict[str, np.ndarray]) -> None:
    heavy, light = clips["heavy rain"], clips["light rain"]
    assert centroid(heavy) < 0.8 * centroid(light)
    assert np.sqrt(np.mean(heavy**2)) > np.sqrt(np.mean(light**2))


def test_metal_rings_longer_and_brighter_than_wood(clips: dict[str, np.ndarray]) -> None:
    wood, metal = clips["wood knock"], clips["metal knock"]
    assert centroid(metal) > 2 * centroid(wood)

    def ring_time(x: np.ndarray) -> float:
        env = envelope(x, 0.005)
        first = int(np.argmax(env > 0.5 * env.max()))
        window = env[first : first + 30]  # the first knock, before the next one lands
        return float(np.argmax(window < 0.05 * window[0]) or len(window)) * 0.005

    assert ring_time(metal) > ring_time(wood)


def test_categories_are_recognisably_different() -> None:
    """A second render (other seed) of each sound is nearest to its own category's first."""
    names = ["rain", "wind", "explosion", "footsteps", "beep", "alarm", "glass", "fire",
             "engine", "birds", "applause", "typing", "clock", "siren", "ocean", "heartbeat"]
    reference, probe = [], []
    for name in names:
        prompt = CATEGORY_PROMPTS[name]
        reference.append(features(sfx.generate(prompt, duration_seconds=4.0, seed=1)
                                  .astype(np.float64)))
        probe.append(features(sfx.generate(prompt, duration_seconds=4.0, seed=2)
                              .astype(np.float64)))
    ref, prb = np.array(reference), np.array(probe)
    scale = ref.std(axis=0) + 1e-9
    distances = np.linalg.norm((prb[:, None, :] - ref[None, :, :]) / scale, axis=2)
    nearest = [names[i] for i in distances.argmin(axis=1)]
    assert nearest == names


def test_mixed_prompt_contains_both_sounds() -> None:
    rain = sfx.generate("light rain", duration_seconds=8.0).astype(np.float64)
    storm = sfx.generate("light rain and thunder", duration_seconds=8.0).astype(np.float64)
    f, p_rain = power_spectrum(rain)
    _, p_storm = power_spectrum(storm)
    low = f < 200
    assert p_storm[low].sum() / p_storm.sum() > 5 * p_rain[low].sum() / p_rain.sum()
    assert flatness(storm) > 0.05  # the rain's broadband hiss is still there


# ----------------------------------------------------------------------------- loops


@pytest.mark.parametrize("prompt", ["wind", "an alarm", "electrical hum", "a car engine idling",
                                    "rain"])
def test_loop_boundary_is_seamless(prompt: str) -> None:
    # An odd length, so steady tones do not wrap in phase by coincidence.
    audio = sfx.generate(prompt, duration_seconds=2.7183, loop=True).astype(np.float64)
    steps = np.abs(np.diff(audio))
    wrap = abs(audio[0] - audio[-1])
    assert wrap <= np.percentile(steps, 99.9)
    # No fades: the loop must be at full level where it wraps.
    edge = int(0.02 * SR)
    level = np.sqrt(np.mean(audio**2))
    assert np.sqrt(np.mean(audio[:edge] ** 2)) > 0.3 * level
    assert np.sqrt(np.mean(audio[-edge:] ** 2)) > 0.3 * level


def test_one_shots_fade_in_and_out() -> None:
    audio = sfx.generate("rain", duration_seconds=3.0)
    assert abs(float(audio[0])) < 1e-3
    assert abs(float(audio[-1])) < 1e-3
