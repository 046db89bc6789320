"""Offline music engine behind the ``/v1/music`` routes.

A prompt is read for tempo, key, mode, mood, genre and instruments and turned into an
ElevenLabs composition plan (the ``music_v1`` ``MusicPrompt`` shape). A plan - ours or the
caller's - is rendered by writing chord progressions, a bass line, a melody and a drum pattern
into a General MIDI file (pretty_midi) and synthesizing it with the ``fluidsynth`` command-line
renderer and a GM soundfont. Each section lasts exactly its ``duration_ms``.

Example:
    >>> from prefect_elevenlabs.local.engines import music
    >>> plan = music.plan_from_prompt("a slow sad piano piece in D minor at 70 bpm",
    ...                               length_ms=10_000)
    >>> plan["positive_global_styles"]
    ['sad', 'slow', 'piano', 'D minor', '70 bpm', 'instrumental']
    >>> audio, plan = music.compose(composition_plan=plan)   # doctest: +SKIP
    >>> audio.shape                                           # doctest: +SKIP
    (441000, 2)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pretty_midi

__all__ = [
    "MAX_LENGTH_MS",
    "MAX_SECTION_MS",
    "MIN_LENGTH_MS",
    "MIN_SECTION_MS",
    "MusicEngineUnavailableError",
    "compose",
    "find_soundfont",
    "plan_from_prompt",
    "render",
    "song_metadata",
]

MIN_LENGTH_MS = 3_000
MAX_LENGTH_MS = 600_000
MIN_SECTION_MS = 3_000
MAX_SECTION_MS = 120_000
DEFAULT_LENGTH_MS = 30_000
MAX_LINES = 30
MAX_LINE_CHARS = 200
SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")
SOUNDFONT_ENV = "PREFECT_ELEVENLABS_SOUNDFONT"
_DEBIAN_PACKAGES = "fluidsynth fluid-soundfont-gm"
_FADE_OUT_S = 0.3
_PEAK = 10.0 ** (-1.0 / 20.0)


class MusicEngineUnavailableError(RuntimeError):
    """The fluidsynth renderer or a General MIDI soundfont is not installed."""


# --------------------------------------------------------------------------------------------
# Vocabulary: what words in a prompt or a style string mean musically
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instrument:
    name: str
    pattern: str
    program: int
    role: str  # lead | comp | pad | bass | drums | arp | timpani
    low: int  # melodic register (MIDI note numbers)
    high: int


_INSTRUMENTS: tuple[_Instrument, ...] = (
    _Instrument(
        "electric piano", r"electric pianos?|e-?pianos?|rhodes|wurlitzer", 4, "comp", 60, 84
    ),
    _Instrument("church organ", r"church organs?|pipe organs?", 19, "pad", 48, 79),
    _Instrument("organ", r"organs?|hammond", 16, "pad", 48, 79),
    _Instrument("harpsichord", r"harpsichords?", 6, "comp", 55, 84),
    _Instrument("piano", r"pianos?|keyboards?|\bkeys\b", 0, "comp", 60, 86),
    _Instrument("pizzicato strings", r"pizzicato", 45, "comp", 55, 79),
    _Instrument(
        "strings", r"strings|string (?:section|ensemble|quartet|orchestra)", 48, "pad", 55, 84
    ),
    _Instrument("violin", r"violins?|fiddles?", 40, "lead", 62, 88),
    _Instrument("viola", r"violas?", 41, "lead", 55, 79),
    _Instrument("cello", r"cellos?|violoncellos?", 42, "lead", 43, 67),
    _Instrument(
        "double bass", r"double bass|upright bass|contrabass|acoustic bass", 32, "bass", 28, 50
    ),
    _Instrument("harp", r"harps?\b", 46, "comp", 48, 84),
    _Instrument("timpani", r"timpani|kettle ?drums?", 47, "timpani", 38, 55),
    _Instrument(
        "distorted guitar",
        r"(?:distorted|heavy|overdriven|crunchy) guitars?"
        r"|power chords?|guitar riffs?",
        30,
        "comp",
        40,
        67,
    ),
    _Instrument("electric guitar", r"electric guitars?", 27, "comp", 48, 76),
    _Instrument(
        "nylon guitar", r"(?:nylon|classical|spanish|flamenco) guitars?", 24, "comp", 48, 76
    ),
    _Instrument("acoustic guitar", r"acoustic guitars?|fingerpick\w*", 25, "comp", 48, 76),
    _Instrument("guitar", r"guitars?", 25, "comp", 48, 76),
    _Instrument("synth bass", r"synth ?bass|808 bass|sub ?bass|\b808s?\b", 38, "bass", 28, 50),
    _Instrument("bass", r"bass(?:es)?\b|bass ?guitars?|bass ?lines?", 33, "bass", 28, 52),
    _Instrument("piccolo", r"piccolos?", 72, "lead", 74, 98),
    _Instrument("pan flute", r"pan ?flutes?|pan ?pipes", 75, "lead", 67, 91),
    _Instrument("flute", r"flutes?", 73, "lead", 67, 93),
    _Instrument("clarinet", r"clarinets?", 71, "lead", 55, 84),
    _Instrument("oboe", r"oboes?", 68, "lead", 60, 86),
    _Instrument("bassoon", r"bassoons?", 70, "lead", 41, 65),
    _Instrument("saxophone", r"sax(?:ophone)?s?", 65, "lead", 55, 80),
    _Instrument("trumpet", r"trumpets?", 56, "lead", 58, 82),
    _Instrument("trombone", r"trombones?", 57, "lead", 45, 70),
    _Instrument("french horn", r"french horns?|horns?\b", 60, "lead", 50, 74),
    _Instrument("brass", r"brass(?: section)?", 61, "pad", 50, 77),
    _Instrument("tuba", r"tubas?", 58, "bass", 28, 50),
    _Instrument("synth pad", r"(?:synth |warm |ambient )?pads?\b", 89, "pad", 48, 79),
    _Instrument("synth lead", r"(?:synth|lead) leads?|lead synths?", 81, "lead", 60, 86),
    _Instrument("arpeggiator", r"arp(?:eggi\w*)?s?\b", 81, "arp", 55, 84),
    _Instrument("synth", r"synth(?:esizer)?s?\w*", 81, "lead", 60, 86),
    _Instrument("choir", r"choirs?|choral|chorus of voices|chant\w*", 52, "pad", 52, 76),
    _Instrument("vocals", r"vocals?|voices?|singing|singers?|humming|ooh\w*", 53, "lead", 57, 79),
    _Instrument("music box", r"music ?box(?:es)?", 10, "lead", 72, 96),
    _Instrument("celesta", r"celestas?", 8, "lead", 72, 96),
    _Instrument("glockenspiel", r"glockenspiels?|bells\b|chimes", 9, "lead", 72, 96),
    _Instrument("vibraphone", r"vibraphones?|vibes\b", 11, "comp", 53, 84),
    _Instrument("marimba", r"marimbas?", 12, "comp", 53, 84),
    _Instrument("xylophone", r"xylophones?", 13, "lead", 65, 96),
    _Instrument("kalimba", r"kalimbas?", 108, "lead", 60, 84),
    _Instrument("steel drums", r"steel (?:drums?|pans?)", 114, "lead", 60, 84),
    _Instrument("accordion", r"accordions?", 21, "comp", 53, 79),
    _Instrument("harmonica", r"harmonicas?", 22, "lead", 60, 84),
    _Instrument("banjo", r"banjos?", 105, "comp", 55, 79),
    _Instrument("ukulele", r"ukuleles?|ukes?\b", 24, "comp", 60, 79),
    _Instrument("sitar", r"sitars?", 104, "lead", 55, 79),
    _Instrument("koto", r"kotos?", 107, "lead", 55, 84),
    _Instrument("bagpipes", r"bagpipes?", 109, "lead", 60, 79),
    _Instrument("whistle", r"whistl\w*", 78, "lead", 72, 93),
    _Instrument("ocarina", r"ocarinas?", 79, "lead", 67, 88),
    _Instrument("recorder", r"recorders?", 74, "lead", 67, 88),
    _Instrument(
        "drums",
        r"drums?(?: kit| machine)?|percussion|beats?\b|grooves?\b|hi-?hats?"
        r"|snares?",
        0,
        "drums",
        35,
        81,
    ),
)
_INSTRUMENT_BY_NAME = {i.name: i for i in _INSTRUMENTS}
_INSTRUMENT_PATTERNS = tuple((i, re.compile(r"\b(?:" + i.pattern + r")")) for i in _INSTRUMENTS)

# Diatonic progressions as 0-based scale degrees: (verse, chorus, bridge).
Progressions = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
_POP_MAJOR: Progressions = ((0, 4, 5, 3), (5, 3, 0, 4), (3, 4, 2, 5))
_BALLAD_MAJOR: Progressions = ((0, 5, 3, 4), (3, 0, 4, 5), (5, 3, 0, 4))
_ROCK_MAJOR: Progressions = ((0, 3, 0, 4), (0, 4, 3, 3), (5, 3, 4, 4))
_JAZZ_MAJOR: Progressions = ((1, 4, 0, 5), (0, 5, 1, 4), (2, 5, 1, 4))
_AMBIENT_MAJOR: Progressions = ((0, 3, 5, 3), (3, 0, 4, 0), (5, 4, 3, 0))
_MINOR: Progressions = ((0, 5, 2, 6), (5, 6, 0, 0), (3, 0, 3, 4))
_SAD_MINOR: Progressions = ((0, 3, 0, 4), (5, 2, 6, 0), (3, 4, 0, 0))
_JAZZ_MINOR: Progressions = ((1, 4, 0, 0), (0, 3, 1, 4), (5, 1, 4, 0))


@dataclass(frozen=True)
class _Genre:
    name: str
    pattern: str
    tempo: int
    instruments: tuple[str, ...]
    drums: str | None
    bass: str
    comp: str
    mode: str | None = None
    swing: bool = False
    sevenths: bool = False
    major: Progressions = _POP_MAJOR
    minor: Progressions = _MINOR
    meter: int = 4


_GENRES: tuple[_Genre, ...] = (
    _Genre(
        "piano ballad",
        r"piano ballads?",
        66,
        ("piano", "strings"),
        None,
        "whole",
        "arpeggio",
        major=_BALLAD_MAJOR,
        minor=_SAD_MINOR,
    ),
    _Genre(
        "lo-fi hip hop",
        r"lo-?fi(?: hip[- ]?hop)?|chillhop",
        78,
        ("electric piano", "bass", "drums"),
        "lofi",
        "hiphop",
        "lofi",
        swing=True,
        sevenths=True,
        major=_JAZZ_MAJOR,
        minor=_JAZZ_MINOR,
    ),
    _Genre(
        "drum and bass",
        r"drum (?:and|&|n) bass|drum ?n ?bass|\bdnb\b|jungle",
        172,
        ("synth bass", "synth pad", "drums"),
        "dnb",
        "dnb",
        "pad",
        mode="minor",
    ),
    _Genre(
        "synthwave",
        r"synthwave|retrowave|outrun|80s synth",
        100,
        ("synth", "synth bass", "synth pad", "drums"),
        "rock",
        "rock8",
        "pad",
        mode="minor",
    ),
    _Genre(
        "hip hop",
        r"hip[- ]?hop|\brap\b|boom[- ]?bap",
        90,
        ("piano", "bass", "drums"),
        "hiphop",
        "hiphop",
        "block_half",
        swing=True,
    ),
    _Genre(
        "trap",
        r"\btrap\b",
        140,
        ("synth pad", "synth bass", "drums"),
        "trap",
        "hiphop",
        "pad",
        mode="minor",
    ),
    _Genre(
        "jazz",
        r"jazz\w*|swing|bebop|big band|bossa ?nova",
        132,
        ("piano", "double bass", "drums", "saxophone"),
        "jazz",
        "walking",
        "jazz",
        swing=True,
        sevenths=True,
        major=_JAZZ_MAJOR,
        minor=_JAZZ_MINOR,
    ),
    _Genre(
        "blues",
        r"blues\w*",
        84,
        ("electric guitar", "bass", "drums", "harmonica"),
        "rock",
        "walking",
        "block_quarters",
        swing=True,
        sevenths=True,
        major=((0, 3, 0, 4), (3, 3, 0, 0), (4, 3, 0, 4)),
    ),
    _Genre(
        "metal",
        r"\bmetal\b|heavy metal|thrash",
        160,
        ("distorted guitar", "bass", "drums"),
        "metal",
        "rock8",
        "power",
        mode="minor",
    ),
    _Genre(
        "punk",
        r"punk",
        176,
        ("distorted guitar", "bass", "drums"),
        "rock",
        "rock8",
        "power",
        major=_ROCK_MAJOR,
    ),
    _Genre(
        "rock",
        r"rock\b|grunge|garage",
        120,
        ("electric guitar", "bass", "drums"),
        "rock",
        "rock8",
        "power",
        major=_ROCK_MAJOR,
    ),
    _Genre(
        "funk",
        r"funk\w*|disco",
        108,
        ("electric guitar", "bass", "drums", "brass"),
        "funk",
        "funk",
        "stabs",
        sevenths=True,
    ),
    _Genre(
        "house",
        r"house\b|deep house",
        124,
        ("synth pad", "synth bass", "piano", "drums"),
        "four",
        "offbeat",
        "stabs",
        sevenths=True,
    ),
    _Genre(
        "techno",
        r"techno",
        130,
        ("synth bass", "arpeggiator", "drums"),
        "four",
        "offbeat",
        "pad",
        mode="minor",
    ),
    _Genre(
        "electronic",
        r"electronic|\bedm\b|electro\b|dance\b|club|synth-?pop|dubstep"
        r"|trance|future bass",
        124,
        ("synth", "synth bass", "synth pad", "drums"),
        "four",
        "offbeat",
        "pad",
    ),
    _Genre(
        "orchestral",
        r"orchestra\w*|symphon\w*|cinematic|film score|soundtrack|trailer"
        r"|\bepic\b",
        90,
        ("strings", "french horn", "double bass", "timpani"),
        None,
        "half",
        "pad",
        mode="minor",
    ),
    _Genre(
        "classical",
        r"classical|baroque|chamber|sonata|nocturne|etude|minuet",
        96,
        ("piano",),
        None,
        "whole",
        "arpeggio",
        major=_BALLAD_MAJOR,
    ),
    _Genre(
        "ballad",
        r"ballads?",
        68,
        ("piano", "strings", "bass"),
        None,
        "whole",
        "arpeggio",
        major=_BALLAD_MAJOR,
        minor=_SAD_MINOR,
    ),
    _Genre(
        "ambient",
        r"ambient|atmospheric|drone|soundscape|meditat\w*|new age",
        64,
        ("synth pad", "piano"),
        None,
        "whole",
        "pad",
        major=_AMBIENT_MAJOR,
    ),
    _Genre(
        "folk",
        r"folk|acoustic|singer-songwriter|campfire",
        100,
        ("acoustic guitar", "bass"),
        None,
        "half",
        "strum",
        major=_ROCK_MAJOR,
    ),
    _Genre(
        "country",
        r"country|bluegrass|western",
        112,
        ("acoustic guitar", "banjo", "bass", "drums"),
        "rock",
        "half",
        "strum",
        major=_ROCK_MAJOR,
    ),
    _Genre(
        "reggae",
        r"reggae|\bska\b|\bdub\b",
        80,
        ("electric guitar", "organ", "bass", "drums"),
        "reggae",
        "hiphop",
        "stabs",
    ),
    _Genre(
        "r&b",
        r"r&b|rnb|\bsoul\b|neo-soul",
        88,
        ("electric piano", "bass", "drums"),
        "hiphop",
        "hiphop",
        "lofi",
        sevenths=True,
        major=_JAZZ_MAJOR,
    ),
    _Genre(
        "latin",
        r"latin|samba|salsa|tango|reggaeton",
        110,
        ("nylon guitar", "piano", "bass", "drums"),
        "latin",
        "hiphop",
        "strum",
    ),
    _Genre(
        "waltz", r"waltz\w*", 150, ("piano", "strings", "bass"), None, "waltz", "waltz", meter=3
    ),
    _Genre(
        "chiptune",
        r"8-?bit|chiptune|video game|retro game",
        140,
        ("synth", "synth bass", "drums"),
        "rock",
        "rock8",
        "arpeggio16",
    ),
    _Genre(
        "pop",
        r"\bpop\b|k-?pop",
        112,
        ("piano", "electric guitar", "bass", "drums"),
        "pop",
        "pop",
        "block_quarters",
    ),
)
_GENRE_BY_NAME = {g.name: g for g in _GENRES}
_DEFAULT_GENRE = _Genre("", r"(?!)", 100, ("piano", "strings", "bass"), None, "half", "block_half")

# (mood, pattern, mode it implies, tempo it suggests)
_MOODS: tuple[tuple[str, str, str | None, int | None], ...] = (
    (
        "sad",
        r"sad\w*|melanchol\w*|sorrow\w*|somber|sombre|tragic|grie\w*|mournful"
        r"|heartbr\w*|lonely|longing|wistful|nostalgic|bittersweet",
        "minor",
        70,
    ),
    (
        "dark",
        r"dark\w*|ominous|sinister|menacing|eerie|creepy|horror|haunting|brooding|tense"
        r"|suspense\w*|mysterious|spooky",
        "minor",
        None,
    ),
    ("angry", r"angry|rage|furious|aggressive", "minor", 150),
    ("epic", r"epic|grand|majestic|powerful", None, None),
    ("triumphant", r"triumphant|heroic|victorious|anthemic", "major", None),
    (
        "happy",
        r"happy|joy\w*|cheerful|bright|sunny|playful|\bfun\b|uplifting|hopeful"
        r"|optimistic|feel-good|carefree|whimsical",
        "major",
        None,
    ),
    ("romantic", r"romantic|love|tender|sweet|warm", "major", None),
    (
        "calm",
        r"calm\w*|peaceful|relax\w*|serene|tranquil|gentle|soothing|chill\w*|mellow"
        r"|dreamy|soft|laid[- ]back|cozy",
        None,
        76,
    ),
    ("energetic", r"energetic|driving|intense|hype|pumping|exciting|high[- ]energy", None, 140),
)
_MOOD_MODE = {m: mode for m, _, mode, _ in _MOODS}

_TEMPO_WORDS: tuple[tuple[str, int], ...] = (
    (r"(?:very|extremely|super|really) slow(?:ly)?", 56),
    (r"(?:very|extremely|super|really) fast|frantic|presto|breakneck", 172),
    (r"slow(?:ly)?|largo|adagio|lento|downtempo", 68),
    (r"(?:mid|medium)[- ]?tempo|moderate(?:ly)?|moderato|andante", 100),
    (r"upbeat|lively|bouncy|allegro|groovy", 124),
    (r"fast|quick|rapid|uptempo|up-tempo", 145),
)
_TEMPO_RE = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute|beats/min)", re.I)
_NOTE_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTAL = r"(#|♯|b|♭|-sharp|\s+sharp|-flat|\s+flat)?"
# A lowercase letter only counts after "in"/"key of": "a minor" alone is usually an article.
_KEY_WITH_MODE = re.compile(
    r"(?:\b(?i:in|key of|key:)\s+(?i:the\s+key\s+of\s+)?([A-Ga-g])"
    + _ACCIDENTAL
    + r"|\b([A-G])"
    + _ACCIDENTAL
    + r")\s*(?i:(major|minor|maj|min))\b"
)
_KEY_SHORT = re.compile(r"\b([A-G])" + _ACCIDENTAL + r"(m)\b")
_KEY_NO_MODE = re.compile(r"\b(?:in|key of)\s+([A-G])(#|♯|b|♭)?(?=[\s,.;!?]|$)")
_PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_NEGATION = re.compile(r"\b(?:no|without|minus|not|zero|free of)\s+(?:\w+\s+)?$")
_SOLO = re.compile(r"\b(?:solo|only|just|unaccompanied|alone|by itself)\b")


@dataclass(frozen=True)
class _Style:
    """Everything read from a prompt or from a plan's style strings."""

    tempo: float | None = None
    tempo_words: tuple[str, ...] = ()
    tonic: int | None = None
    mode: str | None = None
    moods: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    solo: bool = False
    meter: int | None = None


def _blank(text: str, span: tuple[int, int]) -> str:
    return text[: span[0]] + " " * (span[1] - span[0]) + text[span[1] :]


def _read_style(text: str, negative_text: str = "") -> _Style:
    """Parse free text (a prompt, or style strings joined) into a :class:`_Style`."""
    lowered = text.lower()
    # Key letters are case-sensitive ("A minor" vs "a minor detail"), so keep the original
    # text for them - unless lowering changed its length and spans would no longer line up.
    original = text if len(lowered) == len(text) else lowered
    tempo: float | None = None
    match = _TEMPO_RE.search(lowered)
    if match:
        tempo = min(max(float(match.group(1)), 30.0), 300.0)
        lowered = _blank(lowered, match.span())
        original = _blank(original, match.span())

    tonic: int | None = None
    mode: str | None = None
    key_match = _KEY_WITH_MODE.search(original)
    if key_match:
        letter = key_match.group(1) or key_match.group(3)
        accidental = key_match.group(2) if key_match.group(1) else key_match.group(4)
        tonic = _pitch_class(letter, accidental)
        mode = "minor" if key_match.group(5).lower().startswith("min") else "major"
        lowered = _blank(lowered, key_match.span())
    else:
        short = _KEY_SHORT.search(original)
        bare = _KEY_NO_MODE.search(original)
        if short:
            tonic, mode = _pitch_class(short.group(1), short.group(2)), "minor"
            lowered = _blank(lowered, short.span())
        elif bare:
            tonic = _pitch_class(bare.group(1), bare.group(2))
            lowered = _blank(lowered, bare.span())
    if mode is None and re.search(r"\bminor\b", lowered):
        mode = "minor"
    elif mode is None and re.search(r"\bmajor\b", lowered):
        mode = "major"

    meter = 3 if re.search(r"\b(?:3/4|6/8|waltz\w*)", lowered) else None

    tempo_words = []
    for pattern, _bpm in _TEMPO_WORDS:
        found = re.search(r"\b(?:" + pattern + r")\b", lowered)
        if found:
            tempo_words.append(found.group(0))
            lowered = _blank(lowered, found.span())

    genres: list[tuple[int, str]] = []
    scan = lowered
    for genre in _GENRES:
        for found in re.finditer(r"\b(?:" + genre.pattern + r")", scan):
            if not _NEGATION.search(scan[: found.start()]):
                genres.append((found.start(), genre.name))
            scan = _blank(scan, found.span())
            break
    genres.sort()

    moods = [
        name for name, pattern, _m, _t in _MOODS if re.search(r"\b(?:" + pattern + r")", lowered)
    ]
    instruments: list[tuple[int, str]] = []
    excluded: list[str] = []
    scan = lowered
    for instrument, regex in _INSTRUMENT_PATTERNS:
        for found in regex.finditer(scan):
            if _NEGATION.search(scan[: found.start()]):
                excluded.append(instrument.name)
            else:
                instruments.append((found.start(), instrument.name))
            scan = _blank(scan, found.span())
    instruments.sort()
    if negative_text:
        negative = _read_style(negative_text)
        excluded.extend(negative.instruments)
    ordered = list(dict.fromkeys(name for _, name in instruments))
    return _Style(
        tempo=tempo,
        tempo_words=tuple(tempo_words),
        tonic=tonic,
        mode=mode,
        moods=tuple(moods),
        genres=tuple(dict.fromkeys(name for _, name in genres)),
        instruments=tuple(n for n in ordered if n not in excluded),
        excluded=tuple(dict.fromkeys(excluded)),
        solo=_SOLO.search(lowered) is not None,
        meter=meter,
    )


def _pitch_class(letter: str, accidental: str | None) -> int:
    pc = _NOTE_PC[letter.lower()]
    acc = (accidental or "").strip().lower()
    if acc in ("#", "♯", "-sharp", "sharp"):
        pc += 1
    elif acc in ("b", "♭", "-flat", "flat"):
        pc -= 1
    return pc % 12


# --------------------------------------------------------------------------------------------
# Resolved musical decisions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Music:
    """Concrete decisions for one section (or the whole song)."""

    tempo: float
    tonic: int
    mode: str
    meter: int
    genre: _Genre
    moods: tuple[str, ...]
    instruments: tuple[str, ...]
    tempo_words: tuple[str, ...] = ()
    genre_names: tuple[str, ...] = ()


def _tempo_for(style: _Style, genre: _Genre) -> float:
    if style.tempo is not None:
        return style.tempo
    for pattern, bpm in _TEMPO_WORDS:
        if any(re.fullmatch(pattern, word) for word in style.tempo_words):
            return float(bpm)
    for mood, _p, _m, mood_bpm in _MOODS:
        if mood_bpm is not None and mood in style.moods and not genre.name:
            return float(mood_bpm)
    tempo = float(genre.tempo)
    if "calm" in style.moods:
        tempo *= 0.85
    if "energetic" in style.moods:
        tempo *= 1.12
    return round(tempo)


def _mode_for(style: _Style, genre: _Genre) -> str:
    if style.mode:
        return style.mode
    for mood in style.moods:
        if _MOOD_MODE.get(mood):
            return str(_MOOD_MODE[mood])
    return genre.mode or "major"


def _default_tonic(mode: str, digest: bytes) -> int:
    common = (0, 7, 2, 5, 9, 10, 3, 4) if mode == "major" else (9, 4, 2, 11, 0, 7, 5)
    return common[digest[0] % len(common)]


def _instruments_for(style: _Style, genre: _Genre, exact: bool) -> tuple[str, ...]:
    """Named instruments, completed by the genre's band unless the text is specific.

    A prompt naming a genre and an instrument ("rock song with piano") gets the genre's band
    plus the piano. A plan's styles (``exact``) already list the full line-up.
    """
    named = list(style.instruments)
    if named and (exact or style.solo or not style.genres):
        chosen = named
    else:
        chosen = named + [i for i in genre.instruments if i not in named]
    chosen = [i for i in chosen if i not in style.excluded]
    return tuple(chosen) or tuple(i for i in ("piano",) if i not in style.excluded) or ("piano",)


def _resolve(style: _Style, digest: bytes, *, exact: bool = False) -> _Music:
    genre = _GENRE_BY_NAME.get(style.genres[0], _DEFAULT_GENRE) if style.genres else _DEFAULT_GENRE
    mode = _mode_for(style, genre)
    tonic = style.tonic if style.tonic is not None else _default_tonic(mode, digest)
    return _Music(
        tempo=_tempo_for(style, genre),
        tonic=tonic,
        mode=mode,
        meter=style.meter or genre.meter,
        genre=genre,
        moods=style.moods,
        instruments=_instruments_for(style, genre, exact),
        tempo_words=style.tempo_words,
        genre_names=style.genres,
    )


def _key_name(tonic: int, mode: str) -> str:
    names = (
        _PC_NAMES
        if mode == "minor"
        else ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    )
    return f"{names[tonic % 12]} {mode}"


# --------------------------------------------------------------------------------------------
# Prompt -> composition plan
# --------------------------------------------------------------------------------------------

_SECTION_LAYOUTS: dict[int, tuple[str, ...]] = {
    1: ("Verse",),
    2: ("Verse", "Chorus"),
    3: ("Intro", "Chorus", "Outro"),
    4: ("Intro", "Verse", "Chorus", "Outro"),
    5: ("Intro", "Verse", "Chorus", "Bridge", "Outro"),
    6: ("Intro", "Verse 1", "Chorus 1", "Verse 2", "Chorus 2", "Outro"),
    7: ("Intro", "Verse 1", "Chorus 1", "Verse 2", "Chorus 2", "Bridge", "Outro"),
    8: ("Intro", "Verse 1", "Chorus 1", "Verse 2", "Chorus 2", "Bridge", "Chorus 3", "Outro"),
}
_SECTION_STYLES: dict[str, tuple[list[str], list[str]]] = {
    "intro": (["sparse", "soft", "building"], ["drums"]),
    "verse": (["steady groove", "medium energy"], []),
    "chorus": (["full arrangement", "energetic", "memorable melody"], []),
    "bridge": (["contrasting", "new chord progression"], []),
    "outro": (["sparse", "fading"], []),
}


def _section_kind(name: str) -> str:
    lowered = name.lower()
    for kind in (
        "pre-chorus",
        "intro",
        "verse",
        "chorus",
        "hook",
        "bridge",
        "breakdown",
        "drop",
        "solo",
        "interlude",
        "outro",
        "ending",
        "coda",
    ):
        if kind in lowered:
            return {
                "hook": "chorus",
                "ending": "outro",
                "coda": "outro",
                "interlude": "bridge",
            }.get(kind, kind)
    return "verse"


def _layout_names(length_ms: int, bar_ms: float) -> tuple[str, ...]:
    units = length_ms / (4 * bar_ms)
    thresholds = ((1.5, 1), (2.5, 2), (3.5, 3), (5.0, 4), (6.0, 5), (7.5, 6), (9.0, 7))
    count = next((c for limit, c in thresholds if units < limit), 8)
    count = max(count, math.ceil(length_ms / MAX_SECTION_MS))
    count = max(1, min(count, length_ms // MIN_SECTION_MS))
    if count <= 8:
        return _SECTION_LAYOUTS[count]
    pairs = (count - 4) // 2
    names = ["Intro"]
    for k in range(1, pairs + 1):
        names += [f"Verse {k}", f"Chorus {k}"]
    names += ["Bridge", f"Chorus {pairs + 1}"]
    names += ["Outro"] * (count - len(names))
    return tuple(names[:count])


def _allocate(length_ms: int, names: Sequence[str], bar_ms: float) -> list[int]:
    """Section lengths summing exactly to ``length_ms``: whole bars where the limits allow."""
    weights = [0.5 if _section_kind(n) in ("intro", "outro") else 1.0 for n in names]
    if len(names) == 1:
        return [length_ms]
    total = sum(weights)

    def valid(durations: list[int]) -> bool:
        return all(MIN_SECTION_MS <= d <= MAX_SECTION_MS for d in durations)

    snapped = []
    for w in weights[:-1]:
        bars = max(1, round(length_ms * w / total / bar_ms))
        snapped.append(round(bars * bar_ms))
    snapped.append(length_ms - sum(snapped))
    if valid(snapped):
        return snapped
    proportional = [int(length_ms * w / total) for w in weights[:-1]]
    proportional.append(length_ms - sum(proportional))
    if valid(proportional):
        return proportional
    even = [length_ms // len(names)] * (len(names) - 1)
    return [*even, length_ms - sum(even)]


def _extract_lyrics(prompt: str) -> list[str]:
    quoted = re.findall(r"[\"“]([^\"”]{4,})[\"”]", prompt)
    after = re.search(r"lyrics?\s*:\s*(.+)$", prompt, flags=re.I | re.S)
    chunks = quoted or ([after.group(1)] if after else [])
    lines = []
    for chunk in chunks:
        for line in re.split(r"\s*(?:/|\n|\.\s+|;)\s*", chunk):
            line = line.strip(" .,")
            if line:
                lines.append(line[:MAX_LINE_CHARS])
    return lines


def _digest(value: object) -> bytes:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).digest()


def _style_strings(music: _Music, instrumental: bool) -> list[str]:
    strings: list[str] = list(music.genre_names)
    strings += [m for m in music.moods if m not in strings]
    strings += [w for w in music.tempo_words if w not in strings]
    strings += list(music.instruments)
    if music.meter == 3 and "waltz" not in strings:
        strings.append("3/4 time")
    strings.append(_key_name(music.tonic, music.mode))
    strings.append(f"{round(music.tempo)} bpm")
    if instrumental:
        strings.append("instrumental")
    return strings


def _negative_strings(music: _Music, style: _Style, instrumental: bool) -> list[str]:
    negative = list(style.excluded)
    opposite = {
        "sad": "happy",
        "happy": "sad",
        "calm": "aggressive",
        "energetic": "sleepy",
        "dark": "cheerful",
    }
    negative += [opposite[m] for m in music.moods if m in opposite and opposite[m] not in negative]
    if instrumental:
        negative.append("vocals")
    return negative


def plan_from_prompt(
    prompt: str, *, length_ms: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Turn a text prompt into an ElevenLabs ``music_v1`` composition plan.

    The global styles carry what was read from the prompt - genre, mood, tempo words,
    instruments, key and mode (e.g. ``"D minor"``) and tempo (e.g. ``"70 bpm"``) - so the plan
    alone is enough to render the piece. Sections (intro/verse/chorus/bridge/outro as the length
    allows) sum exactly to ``length_ms`` (30 s when None).

    Example:
        >>> plan = plan_from_prompt("upbeat jazz with trumpet at 140 bpm", length_ms=20_000)
        >>> "140 bpm" in plan["positive_global_styles"]
        True
        >>> sum(s["duration_ms"] for s in plan["sections"])
        20000
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty description of the music")
    total = DEFAULT_LENGTH_MS if length_ms is None else _check_length(length_ms)
    style = _read_style(prompt)
    lines = _extract_lyrics(prompt)
    if re.search(r"\binstrumental\b", prompt, re.I):
        lines = []
    digest = _digest([prompt, seed])
    music = _resolve(style, digest)
    # Wordless vocals (a hummed or "ooh" lead) are still vocals: only a piece with neither
    # lyrics nor a voice is labelled instrumental.
    instrumental = not lines and not {"vocals", "choir"} & set(music.instruments)
    bar_ms = 60_000.0 / music.tempo * music.meter
    names = _layout_names(total, bar_ms)
    durations = _allocate(total, names, bar_ms)
    lyrical = [i for i, n in enumerate(names) if _section_kind(n) in ("verse", "chorus")]
    sections = []
    for index, (name, duration) in enumerate(zip(names, durations, strict=True)):
        positive, negative = _SECTION_STYLES.get(_section_kind(name), ([], []))
        negative = [n for n in negative if n in music.instruments]
        section_lines: list[str] = []
        if lines and index in lyrical:
            share = math.ceil(len(lines) / len(lyrical))
            start = lyrical.index(index) * share
            section_lines = lines[start : start + share][:MAX_LINES]
        sections.append(
            {
                "section_name": name,
                "positive_local_styles": list(positive),
                "negative_local_styles": list(negative),
                "duration_ms": int(duration),
                "lines": section_lines,
            }
        )
    return {
        "positive_global_styles": _style_strings(music, instrumental),
        "negative_global_styles": _negative_strings(music, style, instrumental),
        "sections": sections,
    }


# --------------------------------------------------------------------------------------------
# Plan validation (v1 and v2 shapes)
# --------------------------------------------------------------------------------------------


def _check_length(length_ms: object) -> int:
    if isinstance(length_ms, bool) or not isinstance(length_ms, int | float):
        raise ValueError(
            f"music_length_ms must be an integer number of milliseconds, got {length_ms!r}"
        )
    if not MIN_LENGTH_MS <= length_ms <= MAX_LENGTH_MS:
        raise ValueError(
            f"music_length_ms must be between {MIN_LENGTH_MS} and {MAX_LENGTH_MS} "
            f"ms, got {length_ms}"
        )
    return int(length_ms)


def _as_mapping(value: object, where: str) -> Mapping[str, Any]:
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{where} must be a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must contain only strings")
    return list(value)


def _duration(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{where} must be an integer number of milliseconds, got {value!r}")
    if not MIN_SECTION_MS <= value <= MAX_SECTION_MS:
        raise ValueError(
            f"{where} must be between {MIN_SECTION_MS} and {MAX_SECTION_MS} ms, got {value}"
        )
    return int(value)


def _from_chunks(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a ``music_v2`` plan (``chunks``) into the v1 shape rendered here."""
    chunks = plan.get("chunks")
    if not isinstance(chunks, Sequence) or isinstance(chunks, str) or not chunks:
        raise ValueError("composition_plan.chunks must be a non-empty list")
    converted: list[dict[str, Any]] = []
    for i, raw in enumerate(chunks):
        where = f"composition_plan.chunks[{i}]"
        chunk = _as_mapping(raw, where)
        if "song_id" in chunk:
            raise ValueError(
                f"{where}: audio-reference chunks (song_id) need a stored song, "
                "which the local engine does not keep; use a generation chunk"
            )
        text = chunk.get("text") or ""
        if not isinstance(text, str):
            raise ValueError(f"{where}.text must be a string")
        header = re.match(r"\s*\[([^\]]{1,100})\]\s*", text)
        name = header.group(1).strip() if header else f"Part {i + 1}"
        body = text[header.end() :] if header else text
        directions = [d.strip() for d in re.findall(r"\{([^}]*)\}", body) if d.strip()]
        body = re.sub(r"\{[^}]*\}", " ", body)
        lines = [ln.strip()[:MAX_LINE_CHARS] for ln in body.splitlines() if ln.strip()]
        converted.append(
            {
                "section_name": name[:100],
                "positive_local_styles": _strings(
                    chunk.get("positive_styles"), f"{where}.positive_styles"
                )
                + directions,
                "negative_local_styles": _strings(
                    chunk.get("negative_styles"), f"{where}.negative_styles"
                ),
                "duration_ms": _duration(chunk.get("duration_ms"), f"{where}.duration_ms"),
                "lines": lines[:MAX_LINES],
            }
        )
    # Styles every chunk shares read as global ones, the rest stay with their section.
    shared = set(converted[0]["positive_local_styles"])
    for section in converted[1:]:
        shared &= set(section["positive_local_styles"])
    global_styles = [s for s in converted[0]["positive_local_styles"] if s in shared]
    for section in converted:
        section["positive_local_styles"] = [
            s for s in section["positive_local_styles"] if s not in shared
        ]
    return {
        "positive_global_styles": global_styles,
        "negative_global_styles": [],
        "sections": converted,
    }


def _normalise_plan(plan: object) -> dict[str, Any]:
    """Validate a v1 or v2 composition plan and return it as a clean v1 dict."""
    data = _as_mapping(plan, "composition_plan")
    if "chunks" in data and "sections" not in data:
        data = _from_chunks(data)
    sections = data.get("sections")
    if not isinstance(sections, Sequence) or isinstance(sections, str) or not sections:
        raise ValueError("composition_plan.sections must be a non-empty list of sections")
    clean_sections: list[dict[str, Any]] = []
    for i, raw in enumerate(sections):
        where = f"composition_plan.sections[{i}]"
        section = _as_mapping(raw, where)
        if section.get("source_from"):
            raise ValueError(
                f"{where}.source_from (inpainting from an existing song) is not "
                "supported by the local engine"
            )
        name = section.get("section_name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ValueError(f"{where}.section_name must be a string of 1-100 characters")
        lines = _strings(section.get("lines"), f"{where}.lines")
        if len(lines) > MAX_LINES:
            raise ValueError(f"{where}.lines may hold at most {MAX_LINES} lines, got {len(lines)}")
        for k, line in enumerate(lines):
            if len(line) > MAX_LINE_CHARS:
                raise ValueError(
                    f"{where}.lines[{k}] must be at most {MAX_LINE_CHARS} "
                    f"characters, got {len(line)}"
                )
        clean_sections.append(
            {
                "section_name": name,
                "positive_local_styles": _strings(
                    section.get("positive_local_styles"), f"{where}.positive_local_styles"
                ),
                "negative_local_styles": _strings(
                    section.get("negative_local_styles"), f"{where}.negative_local_styles"
                ),
                "duration_ms": _duration(section.get("duration_ms"), f"{where}.duration_ms"),
                "lines": lines,
            }
        )
    total = sum(s["duration_ms"] for s in clean_sections)
    if total > MAX_LENGTH_MS:
        raise ValueError(
            f"composition_plan sections add up to {total} ms; the total "
            f"duration_ms must be at most {MAX_LENGTH_MS} ms"
        )
    return {
        "positive_global_styles": _strings(
            data.get("positive_global_styles"), "composition_plan.positive_global_styles"
        ),
        "negative_global_styles": _strings(
            data.get("negative_global_styles"), "composition_plan.negative_global_styles"
        ),
        "sections": clean_sections,
    }


# --------------------------------------------------------------------------------------------
# Arrangement: plan -> notes
# --------------------------------------------------------------------------------------------

_KIT = {
    "kick": 36,
    "snare": 38,
    "rim": 37,
    "clap": 39,
    "hat": 42,
    "pedal": 44,
    "open": 46,
    "crash": 49,
    "ride": 51,
    "tom_lo": 45,
    "tom_mid": 47,
    "tom_hi": 50,
    "shaker": 70,
    "tamb": 54,
}
# Drum patterns: voice -> steps (16th notes in a 4/4 bar; 12 steps in 3/4).
_DRUMS: dict[str, dict[str, tuple[int, ...]]] = {
    "rock": {"kick": (0, 8, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "pop": {"kick": (0, 6, 8), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "four": {
        "kick": (0, 4, 8, 12),
        "clap": (4, 12),
        "open": (2, 6, 10, 14),
        "hat": (0, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15),
    },
    "lofi": {"kick": (0, 7, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "hiphop": {"kick": (0, 3, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "trap": {"kick": (0, 7, 11), "clap": (8,), "hat": tuple(range(16))},
    "jazz": {"ride": (0, 4, 7, 8, 12, 15), "pedal": (4, 12), "kick": (0,)},
    "funk": {"kick": (0, 3, 10), "snare": (4, 12), "hat": tuple(range(16))},
    "metal": {"kick": tuple(range(16)), "snare": (4, 12), "crash": (0, 4, 8, 12)},
    "dnb": {"kick": (0, 10), "snare": (4, 12), "hat": (0, 2, 4, 6, 8, 10, 12, 14)},
    "reggae": {"kick": (8,), "rim": (8,), "hat": (2, 6, 10, 14)},
    "latin": {"kick": (0, 6, 8, 14), "rim": (0, 6, 12), "shaker": tuple(range(0, 16, 2))},
    "waltz": {"kick": (0,), "snare": (4, 8), "hat": (0, 4, 8)},
}
_ACCENT = {
    "kick": 1.0,
    "snare": 0.95,
    "clap": 0.9,
    "rim": 0.7,
    "hat": 0.6,
    "open": 0.65,
    "ride": 0.7,
    "pedal": 0.5,
    "crash": 0.85,
    "shaker": 0.5,
}
# Melody rhythms per bar, in 16th steps, from sparse to dense.
_RHYTHMS_4 = (
    ((8, 8), (12, 4), (4, 4, 8), (16,), (6, 2, 8)),
    ((4, 4, 4, 4), (6, 2, 4, 4), (4, 2, 2, 8), (8, 4, 4), (3, 3, 2, 8)),
    ((2, 2, 2, 2, 4, 4), (2, 2, 4, 2, 2, 4), (4, 2, 2, 4, 2, 2), (3, 3, 2, 2, 2, 4)),
)
_RHYTHMS_3 = (
    ((12,), (8, 4), (6, 6)),
    ((4, 4, 4), (6, 2, 4), (4, 2, 2, 4)),
    ((2, 2, 4, 4), (2, 2, 2, 2, 4), (4, 2, 2, 2, 2)),
)
_ENERGY = {
    "intro": 0.35,
    "verse": 0.6,
    "pre-chorus": 0.7,
    "chorus": 0.9,
    "bridge": 0.55,
    "breakdown": 0.4,
    "drop": 1.0,
    "solo": 0.8,
    "outro": 0.4,
}


@dataclass
class _Note:
    pitch: int
    start: float
    end: float
    velocity: int


@dataclass
class _Track:
    instrument: _Instrument
    notes: list[_Note] = field(default_factory=list)


@dataclass(frozen=True)
class _SectionPlan:
    name: str
    kind: str
    start: float
    seconds: float
    music: _Music
    energy: float
    ramp: float  # energy change across the section (building > 0, fading < 0)
    drums: bool
    melody: bool
    lead_voice: bool
    progression: tuple[int, ...]
    last: bool


def _scale_pitches(tonic: int, mode: str, low: int, high: int) -> list[int]:
    steps = _SCALES[mode]
    return [p for p in range(low, high + 1) if (p - tonic) % 12 in steps]


def _chord(tonic: int, mode: str, degree: int, sevenths: bool, raised_v: bool) -> list[int]:
    """Pitch classes of the diatonic chord on ``degree`` (a triad, or a seventh chord)."""
    scale = _SCALES[mode]
    size = 4 if sevenths else 3
    pcs = []
    for k in range(size):
        step = degree + 2 * k
        pc = tonic + scale[step % 7]
        if raised_v and mode == "minor" and step % 7 == 6:
            pc += 1  # harmonic minor: the dominant gets its leading tone
        pcs.append(pc % 12)
    return pcs


def _voice(pcs: Sequence[int], low: int, centre: int) -> list[int]:
    """Place chord tones near ``centre`` without going below ``low``."""
    notes = []
    for pc in pcs:
        candidates = [p for p in range(low, low + 24) if p % 12 == pc]
        notes.append(min(candidates, key=lambda p: abs(p - centre)))
    return sorted(set(notes))


class _Arranger:
    """Writes the notes of every section into one track per instrument."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.tracks: dict[str, _Track] = {}

    def track(self, name: str) -> _Track:
        if name not in self.tracks:
            self.tracks[name] = _Track(_INSTRUMENT_BY_NAME[name])
        return self.tracks[name]

    def add(
        self,
        name: str,
        pitch: int,
        start: float,
        end: float,
        velocity: float,
        section: _SectionPlan,
    ) -> None:
        section_end = section.start + section.seconds
        if start >= section_end - 0.03:
            return
        jitter = float(self.rng.normal(0.0, 0.006)) if name != "drums" else 0.0
        start = max(section.start, start + jitter)
        end = min(end, section_end)
        if end - start < 0.02:
            return
        vel = int(np.clip(velocity + self.rng.normal(0.0, 5.0), 20, 125))
        self.track(name).notes.append(_Note(int(pitch), start, end, vel))

    # -- per-section parts ---------------------------------------------------------------

    def section(self, sec: _SectionPlan) -> None:
        music = sec.music
        beat = 60.0 / music.tempo
        step = beat / 4.0
        steps_per_bar = music.meter * 4
        bar = beat * music.meter
        bars = max(1, math.ceil(sec.seconds / bar - 1e-6))
        roles = {name: _INSTRUMENT_BY_NAME[name].role for name in music.instruments}
        harmonic = [n for n, r in roles.items() if r in ("comp", "pad", "arp")]
        leads = [n for n, r in roles.items() if r == "lead"]
        if sec.lead_voice and "vocals" not in leads:
            leads = ["vocals", *leads]
        melody_players = (
            leads[:1] or harmonic[:1] or [n for n, r in roles.items() if r == "bass"][:1]
        )
        extra_leads = leads[1:]
        for b in range(bars):
            t0 = sec.start + b * bar
            progress = b / max(bars - 1, 1)
            energy = float(np.clip(sec.energy + sec.ramp * (progress - 0.5), 0.1, 1.0))
            velocity = 60.0 + 45.0 * energy
            degree = sec.progression[b % len(sec.progression)]
            if sec.last and b == bars - 1:
                degree = 0
            raised = music.mode == "minor" and music.genre.name in (
                "orchestral",
                "classical",
                "jazz",
                "waltz",
                "piano ballad",
                "ballad",
            )
            pcs = _chord(music.tonic, music.mode, degree, music.genre.sevenths, raised)
            for name, role in roles.items():
                if role == "pad":
                    self._pad(name, pcs, t0, bar, velocity * 0.9, sec)
                elif role == "comp":
                    self._comp(name, pcs, t0, step, steps_per_bar, velocity, sec, energy)
                elif role == "arp":
                    self._arp(name, pcs, t0, step, steps_per_bar, velocity * 0.8, sec)
                elif role == "bass":
                    self._bass(name, pcs, degree, t0, step, steps_per_bar, velocity, sec)
                elif role == "timpani" and energy > 0.5:
                    self.add(name, _voice(pcs[:1], 38, 45)[0], t0, t0 + beat, velocity, sec)
            if sec.drums and "drums" in roles:
                fill = b == bars - 1 and not sec.last and bars > 1
                self._drums(t0, step, steps_per_bar, velocity, sec, energy, fill, b == 0)
        if sec.melody:
            for name in melody_players:
                self._melody(name, sec, bars, bar, step, steps_per_bar)
            for name in extra_leads:
                if sec.energy >= 0.8:  # second lead doubles the tune in full sections
                    self._melody(name, sec, bars, bar, step, steps_per_bar, answer=True)

    def _pad(
        self, name: str, pcs: list[int], t0: float, bar: float, velocity: float, sec: _SectionPlan
    ) -> None:
        inst = _INSTRUMENT_BY_NAME[name]
        for pitch in _voice(pcs, max(inst.low, 48), 62):
            self.add(name, pitch, t0, t0 + bar * 0.98, velocity, sec)

    def _comp(
        self,
        name: str,
        pcs: list[int],
        t0: float,
        step: float,
        steps: int,
        velocity: float,
        sec: _SectionPlan,
        energy: float,
    ) -> None:
        inst = _INSTRUMENT_BY_NAME[name]
        style = sec.music.genre.comp
        if inst.name == "harp" or (
            inst.name in ("nylon guitar", "acoustic guitar") and style in ("arpeggio", "pad")
        ):
            style = "arpeggio"
        elif "guitar" in inst.name and style in ("block_quarters", "block_half"):
            style = "strum"
        if style == "power" and "guitar" not in inst.name:
            style = "block_quarters"
        if style in ("pad", "arpeggio16") and inst.role == "comp":
            style = "arpeggio" if energy < 0.7 else "block_half"
        chord = _voice(pcs, max(inst.low, 52), 62)
        swing = sec.music.genre.swing

        def at(s: float) -> float:
            swung = step / 3.0 if swing and int(s) % 4 == 2 else 0.0
            return t0 + s * step + swung

        if style == "arpeggio":
            tones = chord + [p + 12 for p in chord]
            order = tones + tones[-2:0:-1]
            for k, s in enumerate(range(0, steps, 2)):
                pitch = order[k % len(order)]
                self.add(name, pitch, at(s), at(s) + step * 4, velocity * 0.8, sec)
        elif style == "strum":
            pattern = (0, 4, 6, 10, 12, 14) if steps == 16 else (0, 4, 6, 8, 10)
            for s in pattern:
                down = s % 4 == 0
                for k, pitch in enumerate(chord if down else chord[::-1]):
                    offset = 0.012 * k
                    self.add(
                        name,
                        pitch,
                        at(s) + offset,
                        at(s) + step * 2,
                        velocity * (0.9 if down else 0.7),
                        sec,
                    )
        elif style == "power":
            root = _voice(pcs[:1], inst.low, inst.low + 8)[0]
            eighths = range(0, steps, 2) if energy >= 0.5 else range(0, steps, 4)
            for s in eighths:
                for pitch in (root, root + 7, root + 12):
                    self.add(name, pitch, at(s), at(s) + step * 1.8, velocity, sec)
        elif style == "jazz":
            hits = [0, 6] + ([10] if self.rng.uniform() < 0.5 else [14])
            for s in hits:
                for pitch in chord:
                    self.add(name, pitch, at(s), at(s) + step * 2.5, velocity * 0.8, sec)
        elif style == "lofi":
            for s, length in ((0, 7), (8, 6)):
                for k, pitch in enumerate(chord):
                    delay = 0.02 + 0.015 * k  # lazily rolled chord
                    self.add(
                        name, pitch, at(s) + delay, at(s) + step * length, velocity * 0.75, sec
                    )
        elif style == "stabs":
            for s in range(2, steps, 4):
                for pitch in chord:
                    self.add(name, pitch, at(s), at(s) + step * 1.2, velocity * 0.85, sec)
        elif style == "waltz":
            bass_pitch = _voice(pcs[:1], 43, 48)[0]
            self.add(name, bass_pitch, at(0), at(0) + step * 3.5, velocity, sec)
            for s in (4, 8):
                for pitch in chord:
                    self.add(name, pitch, at(s), at(s) + step * 3, velocity * 0.7, sec)
        elif style == "block_half":
            for s in range(0, steps, 8):
                for pitch in chord:
                    self.add(name, pitch, at(s), at(s) + step * 7.5, velocity * 0.8, sec)
        else:  # block_quarters
            for s in range(0, steps, 4):
                for pitch in chord:
                    self.add(name, pitch, at(s), at(s) + step * 3.5, velocity * 0.8, sec)

    def _arp(
        self,
        name: str,
        pcs: list[int],
        t0: float,
        step: float,
        steps: int,
        velocity: float,
        sec: _SectionPlan,
    ) -> None:
        chord = _voice(pcs, 55, 64)
        tones = chord + [p + 12 for p in chord]
        for s in range(steps):
            pitch = tones[s % len(tones)]
            self.add(name, pitch, t0 + s * step, t0 + (s + 0.9) * step, velocity, sec)

    def _bass(
        self,
        name: str,
        pcs: list[int],
        degree: int,
        t0: float,
        step: float,
        steps: int,
        velocity: float,
        sec: _SectionPlan,
    ) -> None:
        inst = _INSTRUMENT_BY_NAME[name]
        root = _voice(pcs[:1], inst.low + 4, inst.low + 10)[0]
        fifth = root + 7
        style = sec.music.genre.bass
        if sec.energy < 0.45 and style not in ("whole", "waltz"):
            style = "half"
        swing = sec.music.genre.swing

        def at(s: float) -> float:
            swung = step / 3.0 if swing and int(s) % 4 == 2 else 0.0
            return t0 + s * step + swung

        notes: list[tuple[float, int, float]] = []  # (step, pitch, length in steps)
        if style == "whole":
            notes = [(0, root, steps - 0.5)]
        elif style == "half":
            notes = [(0, root, 7.5), (8, fifth if self.rng.uniform() < 0.4 else root, 7.5)]
            if steps == 12:
                notes = [(0, root, 11.5)]
        elif style == "waltz":
            notes = [(0, root, 3.5)]
        elif style == "rock8":
            notes = [(s, root, 1.8) for s in range(0, steps, 2)]
        elif style == "walking":
            scale = _scale_pitches(sec.music.tonic, sec.music.mode, root, root + 12)
            third = _voice(pcs[1:2], root, root + 4)[0]
            passing = scale[min(4, len(scale) - 1)] if scale else fifth
            notes = [
                (0, root, 3.6),
                (4, third, 3.6),
                (8, fifth, 3.6),
                (12, passing if self.rng.uniform() < 0.5 else root + 11, 3.6),
            ]
        elif style == "offbeat":
            notes = [(s, root if s % 8 else root + 12, 1.5) for s in range(2, steps, 4)]
        elif style == "hiphop":
            notes = [(0, root, 5.5), (7, root, 1.5), (10, fifth, 4)]
        elif style == "funk":
            notes = [
                (0, root, 1.5),
                (3, root + 12, 1),
                (6, root, 1.5),
                (8, root, 1),
                (10, fifth, 1.5),
                (11, root + 12, 1),
                (14, root + 10, 1.5),
            ]
        elif style == "dnb":
            notes = [(0, root, 9.5), (10, root, 5.5)]
        else:  # pop
            notes = [(0, root, 5.5), (6, root, 1.5), (8, root, 3.5), (12, fifth, 3.5)]
        for s, pitch, length in notes:
            if s < steps:
                self.add(name, pitch, at(s), at(s) + step * length, velocity, sec)

    def _drums(
        self,
        t0: float,
        step: float,
        steps: int,
        velocity: float,
        sec: _SectionPlan,
        energy: float,
        fill: bool,
        downbeat: bool,
    ) -> None:
        pattern_name = sec.music.genre.drums or ("waltz" if sec.music.meter == 3 else "pop")
        if sec.music.meter == 3:
            pattern_name = "waltz"
        pattern = dict(_DRUMS[pattern_name])
        if energy < 0.5 and "hat" in pattern:
            pattern["hat"] = tuple(s for s in pattern["hat"] if s % 4 == 0)
        swing = sec.music.genre.swing
        for voice, hits in pattern.items():
            for s in hits:
                if s >= steps or (fill and s >= steps - 4 and voice != "hat"):
                    continue
                accent = _ACCENT.get(voice, 0.8) * (1.0 if s % 4 == 0 else 0.85)
                swung = step / 3.0 if swing and s % 4 == 2 else 0.0
                when = t0 + s * step + swung
                self.add("drums", _KIT[voice], when, when + step, velocity * accent, sec)
        if downbeat and energy >= 0.6:
            self.add("drums", _KIT["crash"], t0, t0 + step * 4, velocity * 0.9, sec)
        if fill:
            for k, s in enumerate(range(steps - 4, steps)):
                voice = ("snare", "tom_hi", "tom_mid", "tom_lo")[k % 4]
                when = t0 + s * step
                self.add("drums", _KIT[voice], when, when + step, velocity * (0.7 + 0.08 * k), sec)

    def _melody(
        self,
        name: str,
        sec: _SectionPlan,
        bars: int,
        bar: float,
        step: float,
        steps: int,
        answer: bool = False,
    ) -> None:
        inst = _INSTRUMENT_BY_NAME[name]
        music = sec.music
        low, high = inst.low, inst.high
        if inst.role in ("comp", "pad", "bass"):
            low, high = max(low, 60 if inst.role != "bass" else low), min(high, 84)
        if sec.kind == "chorus" or sec.energy >= 0.85:
            low = min(low + 3, high - 12)
        if answer:
            low, high = low + 4, high
        scale = _scale_pitches(music.tonic, music.mode, low, high)
        if len(scale) < 5:
            scale = _scale_pitches(music.tonic, music.mode, inst.low, inst.high)
        density = 0 if sec.energy < 0.45 else (1 if sec.energy < 0.8 else 2)
        table = _RHYTHMS_4 if steps == 16 else _RHYTHMS_3
        motif = [table[density][int(self.rng.integers(0, len(table[density])))] for _ in range(2)]
        position = len(scale) // 2
        swing = music.genre.swing
        for b in range(bars):
            t0 = sec.start + b * bar
            energy = float(np.clip(sec.energy + sec.ramp * (b / max(bars - 1, 1) - 0.5), 0.1, 1))
            velocity = 64.0 + 42.0 * energy + (8 if inst.role == "lead" else 0)
            degree = sec.progression[b % len(sec.progression)]
            if sec.last and b == bars - 1:
                degree = 0
            chord = set(_chord(music.tonic, music.mode, degree, False, False))
            rhythm = motif[b % 2]
            phrase_end = b % 4 == 3 or b == bars - 1
            s = 0
            for k, length in enumerate(rhythm):
                strong = s % 8 == 0
                if strong:
                    tones = [i for i, p in enumerate(scale) if p % 12 in chord]
                    position = min(tones, key=lambda i: abs(i - position)) if tones else position
                else:
                    move = int(self.rng.choice((-2, -1, -1, 1, 1, 2, 0, 3, -3)))
                    position = int(np.clip(position + move, 0, len(scale) - 1))
                last_note = phrase_end and k == len(rhythm) - 1
                if last_note:
                    tones = [
                        i
                        for i, p in enumerate(scale)
                        if p % 12 == (music.tonic + _SCALES[music.mode][degree % 7]) % 12
                    ]
                    if tones:
                        position = min(tones, key=lambda i: abs(i - position))
                rest = not strong and self.rng.uniform() < 0.1
                if not rest:
                    swung = step / 3.0 if swing and s % 4 == 2 else 0.0
                    start = t0 + s * step + swung
                    self.add(
                        name,
                        scale[position],
                        start,
                        start + length * step * 0.92,
                        velocity * (0.8 if answer else 1.0),
                        sec,
                    )
                s += length


def _section_plans(plan: Mapping[str, Any], digest: bytes) -> list[_SectionPlan]:
    global_pos = " , ".join(plan["positive_global_styles"])
    global_neg = " , ".join(plan["negative_global_styles"])
    base_style = _read_style(global_pos, global_neg)
    if not base_style.instruments and not base_style.genres:
        # With no global styles (a converted v2 plan), every section's styles inform the song.
        joined = " , ".join(s for sec in plan["sections"] for s in sec["positive_local_styles"])
        base_style = replace(_read_style(joined, global_neg), instruments=())
    base = _resolve(base_style, digest, exact=True)
    sections: list[_SectionPlan] = []
    start = 0.0
    count = len(plan["sections"])
    for index, section in enumerate(plan["sections"]):
        local_pos = " , ".join(section["positive_local_styles"])
        local_neg = " , ".join(section["negative_local_styles"])
        local = _read_style(local_pos, local_neg)
        kind = _section_kind(section["section_name"])
        instruments = list(base.instruments)
        if local.instruments:
            instruments = (
                list(local.instruments)
                if local.solo
                else instruments + [i for i in local.instruments if i not in instruments]
            )
        instruments = [i for i in instruments if i not in local.excluded] or list(base.instruments)
        music = replace(
            base,
            tempo=local.tempo if local.tempo is not None else base.tempo,
            tonic=local.tonic if local.tonic is not None else base.tonic,
            mode=local.mode or base.mode,
            meter=local.meter or base.meter,
            instruments=tuple(instruments),
        )
        text = local_pos.lower()
        energy = _ENERGY.get(kind, 0.65)
        if count == 1:
            energy = max(energy, 0.6)
        if re.search(r"soft|quiet|gentle|sparse|calm|minimal|stripped|intimate", text):
            energy -= 0.2
        if re.search(r"energetic|powerful|loud|full|intense|big|climax|explosive", text):
            energy += 0.15
        if "calm" in base.moods:
            energy -= 0.1
        if "energetic" in base.moods:
            energy += 0.1
        ramp = 0.0
        if re.search(r"build|rising|crescendo|swell", text):
            ramp = 0.35
        elif re.search(r"fad|decrescendo|dying|ending", text) or kind == "outro":
            ramp = -0.35
        energy = float(np.clip(energy, 0.15, 1.0))
        local_drums = "drums" in local.instruments
        drums_only = set(music.instruments) == {"drums"}
        drums = "drums" in music.instruments and (energy >= 0.45 or local_drums or drums_only)
        only_leads = all(_INSTRUMENT_BY_NAME[i].role == "lead" for i in music.instruments)
        melody = only_leads or kind not in ("intro",) or bool(section["lines"])
        genre = music.genre
        progressions = genre.major if music.mode == "major" else genre.minor
        if "sad" in music.moods and music.mode == "minor":
            progressions = _SAD_MINOR
        if kind in ("chorus", "drop"):
            progression = progressions[1]
        elif kind in ("bridge", "breakdown", "solo"):
            progression = progressions[2]
        else:
            progression = progressions[0]
        seconds = section["duration_ms"] / 1000.0
        sections.append(
            _SectionPlan(
                name=section["section_name"],
                kind=kind,
                start=start,
                seconds=seconds,
                music=music,
                energy=energy,
                ramp=ramp,
                drums=drums,
                melody=melody,
                lead_voice=bool(section["lines"]),
                progression=progression,
                last=index == count - 1,
            )
        )
        start += seconds
    return sections


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def find_soundfont() -> Path:
    """Locate a General MIDI soundfont.

    Order: the ``PREFECT_ELEVENLABS_SOUNDFONT`` environment variable, FluidR3_GM, TimGM6mb,
    then any ``.sf2`` under ``/usr/share/sounds/sf2``.

    Raises:
        MusicEngineUnavailableError: no soundfont is installed.
    """
    override = os.environ.get(SOUNDFONT_ENV)
    if override:
        path = Path(override)
        if path.is_file():
            return path
        raise MusicEngineUnavailableError(
            f"{SOUNDFONT_ENV} points to {override}, which is not a file"
        )
    for candidate in (SOUNDFONT_DIR / "FluidR3_GM.sf2", SOUNDFONT_DIR / "TimGM6mb.sf2"):
        if candidate.is_file():
            return candidate
    others = sorted(SOUNDFONT_DIR.glob("*.sf2")) if SOUNDFONT_DIR.is_dir() else []
    for candidate in others:
        if candidate.is_file():
            return candidate
    raise MusicEngineUnavailableError(
        "No General MIDI soundfont found in /usr/share/sounds/sf2. Install the Debian packages "
        f"'{_DEBIAN_PACKAGES}' (apt-get install --no-install-recommends {_DEBIAN_PACKAGES}) or "
        f"set {SOUNDFONT_ENV} to an .sf2 file."
    )


def _fluidsynth_binary() -> str:
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise MusicEngineUnavailableError(
            "The 'fluidsynth' command was not found. Install the Debian packages "
            f"'{_DEBIAN_PACKAGES}' (apt-get install --no-install-recommends {_DEBIAN_PACKAGES})."
        )
    return binary


# How loud each patch plays at equal velocity relative to the median patch, measured on
# FluidR3_GM (a saw lead is ~16 dB hotter than a piano); channel volume evens them out.
_PATCH_LEVEL_DB = {
    "xylophone": -14.0,
    "timpani": -6.0,
    "kalimba": -5.5,
    "glockenspiel": -4.0,
    "piano": -4.0,
    "koto": -3.5,
    "accordion": -3.0,
    "vibraphone": -3.0,
    "viola": -3.0,
    "drums": -2.5,
    "ukulele": -2.5,
    "celesta": -2.0,
    "pizzicato strings": -2.0,
    "sitar": -1.5,
    "banjo": -1.5,
    "nylon guitar": -1.5,
    "synth pad": -1.5,
    "steel drums": -1.5,
    "church organ": -1.0,
    "bassoon": -1.0,
    "harp": -1.0,
    "brass": 1.0,
    "strings": 1.0,
    "distorted guitar": 1.5,
    "pan flute": 2.0,
    "tuba": 2.0,
    "oboe": 2.0,
    "electric guitar": 2.0,
    "clarinet": 2.0,
    "bass": 2.5,
    "bagpipes": 2.5,
    "vocals": 2.5,
    "organ": 3.0,
    "piccolo": 3.0,
    "double bass": 3.0,
    "ocarina": 3.5,
    "french horn": 3.5,
    "synth bass": 3.5,
    "flute": 4.0,
    "recorder": 4.0,
    "trombone": 4.0,
    "saxophone": 4.5,
    "electric piano": 6.0,
    "whistle": 6.5,
    "arpeggiator": 16.0,
    "synth lead": 16.0,
    "synth": 16.0,
}
_ROLE_LEVEL_DB = {
    "lead": 2.0,
    "comp": 0.0,
    "pad": -2.0,
    "bass": 0.0,
    "drums": -1.0,
    "arp": -4.0,
    "timpani": 0.0,
}


def _channel_volume(inst: _Instrument) -> int:
    """CC7 value putting a patch at its role's level (GM volume is 40*log10(cc/127) dB)."""
    gain_db = _ROLE_LEVEL_DB.get(inst.role, 0.0) - _PATCH_LEVEL_DB.get(inst.name, 0.0) - 4.0
    return int(np.clip(round(127 * 10 ** (gain_db / 40.0)), 1, 127))


_PAN = {"lead": 64, "comp": 44, "pad": 84, "bass": 64, "drums": 64, "arp": 92, "timpani": 54}


def _to_midi(arranger: _Arranger, tempo: float, reverb: int) -> pretty_midi.PrettyMIDI:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=float(tempo))
    for name, track in arranger.tracks.items():
        if not track.notes:
            continue
        inst = track.instrument
        is_drum = inst.role == "drums"
        part = pretty_midi.Instrument(program=inst.program, is_drum=is_drum, name=name)
        part.control_changes.extend(
            [
                pretty_midi.ControlChange(10, _PAN.get(inst.role, 64), 0.0),
                pretty_midi.ControlChange(91, reverb, 0.0),
                pretty_midi.ControlChange(7, _channel_volume(inst), 0.0),
            ]
        )
        part.notes.extend(
            pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end)
            for n in sorted(track.notes, key=lambda n: (n.start, n.pitch))
        )
        midi.instruments.append(part)
    return midi


def _synthesize(midi: pretty_midi.PrettyMIDI, sample_rate: int) -> NDArray[np.float32]:
    import soundfile

    binary = _fluidsynth_binary()
    soundfont = find_soundfont()
    with tempfile.TemporaryDirectory(prefix="music-render-") as tmp:
        mid_path = Path(tmp) / "song.mid"
        wav_path = Path(tmp) / "out.wav"
        midi.write(str(mid_path))
        command = [
            binary,
            "-ni",
            "-q",
            "-g",
            "0.5",
            "-r",
            str(sample_rate),
            "-O",
            "float",
            "-T",
            "wav",
            "-F",
            str(wav_path),
            str(soundfont),
            str(mid_path),
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=600, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError("fluidsynth did not finish rendering within 600 s") from exc
        if result.returncode != 0 or not wav_path.is_file():
            detail = (result.stderr or result.stdout).strip()[-500:]
            raise RuntimeError(f"fluidsynth failed (exit {result.returncode}): {detail}")
        audio, _sr = soundfile.read(str(wav_path), dtype="float32", always_2d=True)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio[:, :2])


def render(
    plan: Mapping[str, Any], *, seed: int | None = None, sample_rate: int = 44100
) -> NDArray[np.float32]:
    """Render a composition plan (v1 ``sections`` or v2 ``chunks``) to float32 stereo audio.

    Returns an array of shape ``(n, 2)`` whose length is the sum of the sections'
    ``duration_ms`` (to the nearest sample); each section starts exactly where the previous
    one ends. Tempo, key, genre, mood and instruments are read from the style strings.

    Raises:
        ValueError: the plan is malformed (the message names the offending field).
        MusicEngineUnavailableError: fluidsynth or a soundfont is missing.

    Example:
        >>> plan = plan_from_prompt("calm ambient pads", length_ms=8000)
        >>> render(plan).shape   # doctest: +SKIP
        (352800, 2)
    """
    if not 8000 <= int(sample_rate) <= 96000:
        raise ValueError(f"sample_rate must be between 8000 and 96000 Hz, got {sample_rate}")
    clean = _normalise_plan(plan)
    digest = _digest([clean, seed])
    sections = _section_plans(clean, digest)
    rng = np.random.default_rng(list(digest[:16]))
    arranger = _Arranger(rng)
    for section in sections:
        arranger.section(section)
    ambient = any(
        g in ("ambient", "orchestral", "piano ballad", "ballad", "classical")
        for g in sections[0].music.genre_names
    )
    midi = _to_midi(arranger, sections[0].music.tempo, reverb=90 if ambient else 50)
    audio = _synthesize(midi, int(sample_rate))

    total_ms = sum(s["duration_ms"] for s in clean["sections"])
    n = round(total_ms * int(sample_rate) / 1000)
    if len(audio) >= n:
        audio = audio[:n].copy()
    else:
        audio = np.concatenate([audio, np.zeros((n - len(audio), 2), dtype=np.float32)])
    fade = min(int(_FADE_OUT_S * sample_rate), n // 10)
    if fade > 0:
        audio[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    peak = float(np.max(np.abs(audio))) if n else 0.0
    if peak <= 1e-6:
        raise RuntimeError("fluidsynth rendered silence; is the soundfont a General MIDI set?")
    return (audio * (_PEAK / peak)).astype(np.float32)


def compose(
    prompt: str | None = None,
    *,
    composition_plan: Mapping[str, Any] | None = None,
    length_ms: int | None = None,
    seed: int | None = None,
    force_instrumental: bool = False,
    sample_rate: int = 44100,
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Compose music from a prompt or a composition plan; return ``(audio, plan)``.

    Exactly one of ``prompt`` and ``composition_plan`` must be given. ``length_ms``
    (``music_length_ms`` on the wire, 3000-600000) applies to prompts only; a plan's length
    is the sum of its sections. The returned plan is the v1 plan that was rendered.

    Raises:
        ValueError: both or neither input given, or a length or plan field out of range.
        MusicEngineUnavailableError: fluidsynth or a soundfont is missing.

    Example:
        >>> audio, plan = compose("upbeat lofi beat", length_ms=10_000)  # doctest: +SKIP
        >>> audio.shape                                                    # doctest: +SKIP
        (441000, 2)
    """
    if (prompt is None) == (composition_plan is None):
        raise ValueError("Provide exactly one of prompt or composition_plan")
    if composition_plan is not None:
        if length_ms is not None:
            raise ValueError(
                "music_length_ms can only be used with prompt; with "
                "composition_plan set each section's duration_ms instead"
            )
        plan = _normalise_plan(composition_plan)
    else:
        assert prompt is not None
        if length_ms is not None:
            _check_length(length_ms)
        plan = plan_from_prompt(prompt, length_ms=length_ms, seed=seed)
    if force_instrumental:
        plan = _instrumental(plan)
    audio = render(plan, seed=seed, sample_rate=sample_rate)
    return audio, plan


def _instrumental(plan: dict[str, Any]) -> dict[str, Any]:
    sections = [{**s, "lines": []} for s in plan["sections"]]
    positive = list(plan["positive_global_styles"])
    negative = list(plan["negative_global_styles"])
    if "instrumental" not in positive:
        positive.append("instrumental")
    if "vocals" not in negative:
        negative.append("vocals")
    return {
        "positive_global_styles": positive,
        "negative_global_styles": negative,
        "sections": sections,
    }


_TITLE_WORDS = {
    "sad": ("Fading", "Grey", "Distant", "Lonely"),
    "dark": ("Hollow", "Midnight", "Shadow", "Silent"),
    "happy": ("Golden", "Bright", "Sunlit", "Easy"),
    "calm": ("Still", "Quiet", "Slow", "Soft"),
    "energetic": ("Electric", "Wild", "Racing", "Burning"),
    "epic": ("Rising", "Endless", "Iron", "Great"),
    "triumphant": ("Victory", "Rising", "Crowned", "Glorious"),
    "romantic": ("Tender", "Velvet", "Late", "Warm"),
    "angry": ("Broken", "Red", "Raging", "Sharp"),
}
_TITLE_NOUNS = {
    "ambient": ("Horizons", "Drift", "Tides", "Aurora"),
    "lo-fi hip hop": ("Afternoon", "Window", "Notebook", "Rain"),
    "jazz": ("Avenue", "Nightcap", "Corner", "Blue Room"),
    "rock": ("Highway", "Engine", "Wildfire", "Road"),
    "orchestral": ("Kingdom", "Voyage", "Frontier", "Legacy"),
    "electronic": ("Pulse", "Neon", "Circuit", "Signal"),
    "piano ballad": ("Letters", "Memory", "Keepsake", "Snowfall"),
}
_DEFAULT_NOUNS = ("Morning", "Journey", "Reverie", "Lights")


def song_metadata(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Song metadata for a plan, in the shape of the API's ``song_metadata`` object.

    Example:
        >>> meta = song_metadata(plan_from_prompt("happy jazz", length_ms=10_000))
        >>> meta["genres"], meta["languages"], meta["is_explicit"]
        (['jazz'], [], False)
    """
    clean = _normalise_plan(plan)
    style = _read_style(
        " , ".join(clean["positive_global_styles"]), " , ".join(clean["negative_global_styles"])
    )
    digest = _digest(clean)
    music = _resolve(style, digest, exact=True)
    mood = music.moods[0] if music.moods else ""
    genre = music.genre_names[0] if music.genre_names else ""
    adjectives = _TITLE_WORDS.get(mood, ("Open", "Blue", "Paper", "Silver"))
    nouns = _TITLE_NOUNS.get(genre, _DEFAULT_NOUNS)
    title = f"{adjectives[digest[1] % len(adjectives)]} {nouns[digest[2] % len(nouns)]}"
    sung = any(section["lines"] for section in clean["sections"])
    names = ", ".join(s["section_name"] for s in clean["sections"])
    instruments = ", ".join(music.instruments)
    descriptor = " ".join(w for w in (mood, genre or ("vocal" if sung else "instrumental")) if w)
    article = "An" if descriptor[:1] in "aeiou" else "A"
    description = (
        f"{article} {descriptor} piece in {_key_name(music.tonic, music.mode)} at "
        f"{round(music.tempo)} bpm for {instruments}; sections: {names}."
    )
    genres = list(music.genre_names) or ["instrumental" if not sung else "pop"]
    return {
        "title": title,
        "description": description,
        "genres": genres,
        "languages": ["en"] if sung else [],
        "is_explicit": False,
    }
