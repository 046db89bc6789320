"""The offline music engine: prompt reading, composition plans, and real fluidsynth renders."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from prefect_elevenlabs.local.engines import music

SR = 44100


# ----------------------------------------------------------------------------- helpers


def styles(plan: dict) -> list[str]:
    return plan["positive_global_styles"]


def bpm(plan: dict) -> float:
    found = [re.fullmatch(r"(\d+(?:\.\d+)?) bpm", s) for s in styles(plan)]
    values = [float(m.group(1)) for m in found if m]
    assert len(values) == 1, styles(plan)
    return values[0]


def mono(audio: np.ndarray) -> np.ndarray:
    return audio.astype(np.float64).mean(axis=1)


def spectral_flux_onset_rate(x: np.ndarray) -> float:
    """Note onsets per second, from peaks of the positive spectral flux (10 ms hop)."""
    frame, hop = 2048, 441
    count = (len(x) - frame) // hop + 1
    frames = np.stack([x[i * hop : i * hop + frame] for i in range(count)]) * np.hanning(frame)
    mag = np.log1p(100.0 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1)
    threshold = np.array([np.median(flux[max(0, i - 25) : i + 25]) for i in range(len(flux))])
    threshold += 0.3 * flux.std()
    peaks, last = 0, -100
    for i in range(1, len(flux) - 1):
        is_peak = flux[i] > threshold[i] and flux[i] >= max(flux[i - 1], flux[i + 1])
        if is_peak and i - last >= 5:
            peaks += 1
            last = i
    return peaks / (len(x) / SR)


def centroid(x: np.ndarray) -> float:
    frame = 4096
    count = max((len(x) - frame) // frame, 1)
    frames = np.stack([x[i * frame : (i + 1) * frame] for i in range(count)]) * np.hanning(frame)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(frame, 1.0 / SR)
    return float((freqs * power).sum() / power.sum())


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


@pytest.fixture(scope="module")
def renders() -> dict[str, tuple[np.ndarray, dict]]:
    """Real fluidsynth renders shared by the audio tests (10 s each keeps the suite quick)."""
    prompts = {
        "sad piano": "a slow sad piano piece in D minor at 70 bpm",
        "fast rock": "energetic rock at 160 bpm",
        "slow rock": "rock at 70 bpm",
        "flute": "a calm solo flute melody",
        "tuba": "a calm solo tuba melody",
    }
    return {name: music.compose(prompt, length_ms=10_000, seed=5)
            for name, prompt in prompts.items()}


# ----------------------------------------------------------------------------- plans


def test_plan_reads_tempo_key_and_instrument_from_the_prompt() -> None:
    plan = music.plan_from_prompt("a slow sad piano piece in D minor at 70 bpm")
    assert bpm(plan) == 70
    assert "D minor" in styles(plan)
    assert "piano" in styles(plan)
    assert "sad" in styles(plan)
    assert "drums" not in styles(plan)  # nothing but the piano was asked for
    assert sum(s["duration_ms"] for s in plan["sections"]) == 30_000  # the default length


def test_plan_has_the_v1_shape() -> None:
    plan = music.plan_from_prompt("upbeat pop song", length_ms=40_000)
    assert set(plan) == {"positive_global_styles", "negative_global_styles", "sections"}
    assert "vocals" in plan["negative_global_styles"]
    for section in plan["sections"]:
        assert set(section) == {"section_name", "positive_local_styles", "negative_local_styles",
                                "duration_ms", "lines"}
        assert 1 <= len(section["section_name"]) <= 100
        assert section["lines"] == []
    names = [s["section_name"] for s in plan["sections"]]
    assert names[0] == "Intro" and names[-1] == "Outro"
    assert any("Chorus" in n for n in names)


@pytest.mark.parametrize(
    ("prompt", "low", "high"),
    [
        ("very slow ambient drone", 40, 60),
        ("slow piano", 60, 75),
        ("upbeat funk", 115, 135),
        ("fast punk", 140, 180),
        ("drum and bass", 165, 180),
        ("jazz at 96 bpm", 96, 96),
    ],
)
def test_tempo_words_and_genres_set_the_tempo(prompt: str, low: float, high: float) -> None:
    assert low <= bpm(music.plan_from_prompt(prompt, length_ms=10_000)) <= high


@pytest.mark.parametrize(
    ("prompt", "key"),
    [
        ("a piece in F# major", "F# major"),
        ("ballad in Bb minor", "Bb minor"),
        ("in the key of e minor, with strings", "E minor"),
        ("Dm groove", "D minor"),
    ],
)
def test_explicit_keys_are_read(prompt: str, key: str) -> None:
    assert key in styles(music.plan_from_prompt(prompt, length_ms=10_000))


def test_mood_picks_the_mode() -> None:
    for prompt in ("a sad song", "a dark mysterious theme", "melancholic strings"):
        assert any(s.endswith(" minor") for s in styles(music.plan_from_prompt(prompt))), prompt
    for prompt in ("a happy tune", "bright cheerful ukulele"):
        assert any(s.endswith(" major") for s in styles(music.plan_from_prompt(prompt))), prompt


def test_genre_brings_its_band_and_named_instruments_join_it() -> None:
    plan = music.plan_from_prompt("upbeat jazz with trumpet", length_ms=10_000)
    assert "jazz" in styles(plan)
    assert {"trumpet", "piano", "double bass", "drums"} <= set(styles(plan))
    plan = music.plan_from_prompt("rock song without drums", length_ms=10_000)
    assert "drums" not in styles(plan)
    assert "drums" in plan["negative_global_styles"]
    plan = music.plan_from_prompt("just guitar and bass, country", length_ms=10_000)
    assert {"guitar", "bass"} <= set(styles(plan))
    assert "banjo" not in styles(plan)


@pytest.mark.parametrize("length_ms", [3_000, 3_001, 9_999, 10_000, 45_678, 120_001, 600_000])
def test_sections_sum_exactly_to_the_length(length_ms: int) -> None:
    plan = music.plan_from_prompt("cinematic orchestral theme", length_ms=length_ms)
    durations = [s["duration_ms"] for s in plan["sections"]]
    assert sum(durations) == length_ms
    assert all(3_000 <= d <= 120_000 for d in durations)


def test_plans_are_deterministic() -> None:
    assert music.plan_from_prompt("lofi beat") == music.plan_from_prompt("lofi beat")


def test_lyrics_become_lines_unless_instrumental() -> None:
    prompt = 'a pop song with lyrics: "we ride the waves / under golden skies"'
    plan = music.plan_from_prompt(prompt, length_ms=20_000)
    lines = [line for s in plan["sections"] for line in s["lines"]]
    assert lines == ["we ride the waves", "under golden skies"]
    assert music.song_metadata(plan)["languages"] == ["en"]
    instrumental = music.plan_from_prompt("calm piano", length_ms=20_000)
    assert music.song_metadata(instrumental)["languages"] == []


def test_song_metadata_shape() -> None:
    plan = music.plan_from_prompt("happy jazz", length_ms=10_000)
    meta = music.song_metadata(plan)
    assert set(meta) == {"title", "description", "genres", "languages", "is_explicit"}
    assert meta["title"] and meta["genres"] == ["jazz"]
    assert "jazz" in meta["description"] and "bpm" in meta["description"]
    assert meta["is_explicit"] is False
    assert music.song_metadata(plan) == meta


# ----------------------------------------------------------------------------- validation


def test_exactly_one_of_prompt_and_plan() -> None:
    with pytest.raises(ValueError, match="exactly one of prompt or composition_plan"):
        music.compose()
    plan = music.plan_from_prompt("piano", length_ms=5_000)
    with pytest.raises(ValueError, match="exactly one of prompt or composition_plan"):
        music.compose("piano", composition_plan=plan)


@pytest.mark.parametrize("length_ms", [2_999, 600_001, 0, -5])
def test_length_out_of_range_is_rejected(length_ms: int) -> None:
    with pytest.raises(ValueError, match="music_length_ms"):
        music.compose("piano", length_ms=length_ms)


def test_length_with_a_plan_is_rejected() -> None:
    plan = music.plan_from_prompt("piano", length_ms=5_000)
    with pytest.raises(ValueError, match="music_length_ms"):
        music.compose(composition_plan=plan, length_ms=5_000)


@pytest.mark.parametrize("duration_ms", [2_999, 120_001])
def test_section_duration_out_of_range_is_rejected(duration_ms: int) -> None:
    plan = music.plan_from_prompt("piano", length_ms=10_000)
    plan["sections"][-1]["duration_ms"] = duration_ms
    last = len(plan["sections"]) - 1
    with pytest.raises(ValueError, match=rf"sections\[{last}\]\.duration_ms"):
        music.render(plan)


def test_malformed_plans_name_the_field() -> None:
    with pytest.raises(ValueError, match="sections"):
        music.render({"positive_global_styles": ["pop"], "sections": []})
    with pytest.raises(ValueError, match=r"sections\[0\]\.section_name"):
        music.render({"sections": [{"section_name": "", "duration_ms": 5000}]})
    with pytest.raises(ValueError, match=r"chunks\[0\].*song_id"):
        music.render({"chunks": [{"song_id": "abc", "range": {"start_ms": 0, "end_ms": 5000}}]})


# ----------------------------------------------------------------------------- rendering


@pytest.mark.engine
def test_render_is_non_silent_stereo_of_the_plans_length(
    renders: dict[str, tuple[np.ndarray, dict]],
) -> None:
    for name, (audio, plan) in renders.items():
        assert audio.dtype == np.float32, name
        assert audio.ndim == 2 and audio.shape[1] == 2, name
        assert abs(len(audio) - 441_000) <= 441, name  # 10 000 ms within 10 ms
        assert sum(s["duration_ms"] for s in plan["sections"]) == 10_000
        assert rms(audio) > 0.01, name
        assert float(np.max(np.abs(audio))) <= 0.9, name
        assert not np.allclose(audio[:, 0], audio[:, 1]), name  # instruments are panned


@pytest.mark.engine
def test_fast_tempo_gives_more_onsets(renders: dict[str, tuple[np.ndarray, dict]]) -> None:
    fast = spectral_flux_onset_rate(mono(renders["fast rock"][0]))
    slow = spectral_flux_onset_rate(mono(renders["slow rock"][0]))
    assert bpm(renders["fast rock"][1]) == 160 and bpm(renders["slow rock"][1]) == 70
    assert fast > 1.5 * slow


@pytest.mark.engine
def test_instruments_change_the_spectrum(renders: dict[str, tuple[np.ndarray, dict]]) -> None:
    flute = centroid(mono(renders["flute"][0]))
    tuba = centroid(mono(renders["tuba"][0]))
    assert flute > 2.0 * tuba
    assert "flute" in styles(renders["flute"][1]) and "tuba" in styles(renders["tuba"][1])


@pytest.mark.engine
def test_section_boundaries_fall_where_the_plan_puts_them() -> None:
    plan = {
        "positive_global_styles": ["rock", "120 bpm", "E minor"],
        "negative_global_styles": [],
        "sections": [
            {"section_name": "Intro", "positive_local_styles": ["soft", "sparse"],
             "negative_local_styles": ["drums", "electric guitar"], "duration_ms": 4_500,
             "lines": []},
            {"section_name": "Chorus", "positive_local_styles": ["loud", "full"],
             "negative_local_styles": [], "duration_ms": 4_000, "lines": []},
        ],
    }
    audio = mono(music.render(plan, seed=1))
    assert len(audio) == round(8.5 * SR)
    before = rms(audio[int(4.0 * SR) : int(4.45 * SR)])
    after = rms(audio[int(4.55 * SR) : int(5.0 * SR)])
    assert after > 2.0 * before  # the full band enters at 4.5 s, not earlier or later


@pytest.mark.engine
def test_v2_chunks_render_with_their_durations() -> None:
    plan = {"chunks": [
        {"text": "[Verse]\nla la la", "duration_ms": 3_500, "positive_styles": ["piano", "calm"]},
        {"text": "[Chorus] {strings swell}", "duration_ms": 4_000,
         "positive_styles": ["piano", "calm", "strings"]},
    ]}
    audio, converted = music.compose(composition_plan=plan, seed=3)
    assert abs(len(audio) - round(7.5 * SR)) <= 441
    assert [s["section_name"] for s in converted["sections"]] == ["Verse", "Chorus"]
    assert [s["duration_ms"] for s in converted["sections"]] == [3_500, 4_000]
    assert converted["sections"][0]["lines"] == ["la la la"]
    assert "strings swell" in converted["sections"][1]["positive_local_styles"]
    assert set(converted["positive_global_styles"]) == {"piano", "calm"}
    assert rms(audio) > 0.01


@pytest.mark.engine
def test_same_plan_and_seed_render_identically() -> None:
    plan = music.plan_from_prompt("lofi hip hop", length_ms=4_000)
    first = music.render(plan, seed=9)
    second = music.render(plan, seed=9)
    assert np.array_equal(first, second)


@pytest.mark.engine
def test_force_instrumental_drops_lines() -> None:
    prompt = 'a song with lyrics: "hello there / general tune"'
    audio, plan = music.compose(prompt, length_ms=6_000, force_instrumental=True)
    assert all(s["lines"] == [] for s in plan["sections"])
    assert "instrumental" in styles(plan)
    assert music.song_metadata(plan)["languages"] == []
    assert rms(audio) > 0.01


# ----------------------------------------------------------------------------- installation


def test_soundfont_is_found() -> None:
    path = music.find_soundfont()
    assert path.is_file() and path.suffix == ".sf2"


def test_missing_soundfont_names_the_debian_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(music.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(music, "SOUNDFONT_DIR", tmp_path)
    with pytest.raises(music.MusicEngineUnavailableError, match="fluidsynth fluid-soundfont-gm"):
        music.find_soundfont()


def test_missing_fluidsynth_names_the_debian_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    plan = music.plan_from_prompt("piano", length_ms=3_000)
    with pytest.raises(music.MusicEngineUnavailableError, match="fluidsynth fluid-soundfont-gm"):
        music.render(plan)


def test_soundfont_override_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(music.SOUNDFONT_ENV, "/nonexistent/font.sf2")
    with pytest.raises(music.MusicEngineUnavailableError, match=music.SOUNDFONT_ENV):
        music.find_soundfont()
