"""Subtitles from word timings: cue building, SRT/WebVTT/TXT writers and readers.

Used by the Prefect tasks (``Transcript.to_srt()``), the flows, and the local engine, which
renders ElevenLabs' ``additional_formats`` and dubbing transcripts with it. Pure Python.

Words can be any objects or dicts with ``text``, ``start`` and ``end`` (seconds) and optionally
``speaker_id`` and ``type``; ElevenLabs' ``spacing`` and ``audio_event`` items are skipped.

Speaker labels:

- WebVTT uses voice spans: ``<v Speaker 1>`` for ``speaker_0``, ``<v Speaker 2>`` for
  ``speaker_1``; other ids (``agent``) are written as they are.
- SRT has no markup for voices, so the first line of a cue starts with the speaker id in
  brackets: ``[speaker_0] Hello there.`` The prefix is not counted in the line length. Reading
  SRT recognises ElevenLabs-style ids (``speaker_N``, ``agent``, ``customer``) only, so sound
  descriptions such as ``[music]`` are not mistaken for speakers.

Both readers turn these back into ``Cue.speaker`` ids, so a cue list survives a round trip.

Example::

    cues = build_cues(transcript["words"])
    open("talk.srt", "w").write(to_srt(cues))
    assert parse_srt(to_srt(cues)) == cues  # to the millisecond
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Cue",
    "WordLike",
    "build_cues",
    "parse_srt",
    "parse_vtt",
    "segments",
    "to_srt",
    "to_txt",
    "to_vtt",
    "words_from_alignment",
]

_SKIPPED_TYPES = frozenset({"spacing", "audio_event"})
# Characters a line may run longer to end after punctuation instead of mid-phrase.
_BREAK_BONUS = 6.0
# Latin, CJK full-width, Arabic and Devanagari sentence and clause marks.
_SENTENCE_END = frozenset(".!?\u2026\u3002\uff01\uff1f\u061f\u0964")
_CLAUSE_END = frozenset(",;:\u2014\u2013\u3001\uff0c\uff1b\uff1a")
_CLOSERS = "\"')]}\u201d\u2019\u00bb"
_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[,.](\d{1,3})")
_TIMING_LINE = re.compile(rf"^\s*({_TIME.pattern})\s*-->\s*({_TIME.pattern})")
# Only ElevenLabs-style ids are read back, so "[music] ..." or "[laughs] ..." stay cue text.
_SRT_SPEAKER = re.compile(r"^\[(speaker_\d+|agent|customer)\]\s+(.*)$")
_VTT_VOICE = re.compile(r"^<v(?:\.[^\s>]*)?\s+([^>]+)>")
_VTT_TAG = re.compile(r"<[^>]*>")
_SPEAKER_NUMBER = re.compile(r"^speaker_(\d+)$")
_DISPLAY_NUMBER = re.compile(r"^Speaker (\d+)$")


@runtime_checkable
class WordLike(Protocol):
    """Anything with a word's text and times in seconds, like ``stt.Word`` or the SDK's words."""

    @property
    def text(self) -> str: ...

    @property
    def start(self) -> float | None: ...

    @property
    def end(self) -> float | None: ...


@dataclass
class Cue:
    """One subtitle: a time span and the (already wrapped) lines shown during it."""

    start: float
    end: float
    lines: list[str] = field(default_factory=list)
    speaker: str | None = None

    @property
    def text(self) -> str:
        """The lines joined with spaces."""
        return " ".join(line for line in self.lines if line)


@dataclass
class _Token:
    text: str
    start: float
    end: float
    speaker: str | None
    source: Any


def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _tokens(words: Iterable[Any]) -> list[_Token]:
    tokens: list[_Token] = []
    for index, item in enumerate(words):
        kind = _field(item, "type")
        if kind is not None and str(getattr(kind, "value", kind)) in _SKIPPED_TYPES:
            continue
        text = _field(item, "text")
        if text is None:
            raise ValueError(f"word {index} has no 'text': pass words with text, start and end")
        text = str(text).strip()
        if not text:
            continue
        start, end = _field(item, "start"), _field(item, "end")
        if start is None or end is None:
            raise ValueError(
                f"word {index} ({text!r}) has no start/end time: subtitles need word timestamps "
                f"(request timestamps_granularity='word')"
            )
        start, end = float(start), float(end)
        if end < start:
            raise ValueError(f"word {index} ({text!r}) ends ({end}) before it starts ({start})")
        speaker = _field(item, "speaker_id")
        if speaker is None:
            speaker = _field(item, "speaker")
        tokens.append(_Token(text, start, end, None if speaker is None else str(speaker), item))
    return tokens


def _ends_with(text: str, marks: frozenset[str]) -> bool:
    stripped = text.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in marks


def _ends_sentence(text: str) -> bool:
    return _ends_with(text, _SENTENCE_END)


def _ends_clause(text: str) -> bool:
    return _ends_with(text, _CLAUSE_END) or _ends_sentence(text)


def _joined_length(tokens: Sequence[_Token]) -> int:
    return sum(len(t.text) for t in tokens) + max(len(tokens) - 1, 0)


def _line_count(texts: Sequence[str], max_chars: int) -> int:
    """Lines needed when filling greedily, which is the fewest possible; a word never splits."""
    lines, width = 0, 0
    for text in texts:
        if width and width + 1 + len(text) <= max_chars:
            width += 1 + len(text)
        else:
            lines, width = lines + 1, len(text)
    return lines


def _wrap(texts: Sequence[str], max_chars: int) -> list[str]:
    """Wraps words into the fewest lines, as even in length as possible.

    Among layouts with that many lines, the one with the shortest longest line wins, with a
    bonus for breaking after punctuation so a line does not end mid-phrase.
    """
    joined = " ".join(texts)
    if len(joined) <= max_chars:
        return [joined] if joined else []
    count = _line_count(texts, max_chars)
    n = len(texts)
    ends = [0]
    for text in texts:
        ends.append(ends[-1] + len(text))

    def width(i: int, j: int) -> int:  # words i..j-1 on one line
        return ends[j] - ends[i] + (j - i - 1)

    # best[(j, lines)] = (longest line, punctuation bonus, sum of squares, break positions) for
    # the best layout of the first j words on that many lines.
    best: dict[tuple[int, int], tuple[int, float, int, tuple[int, ...]]] = {(0, 0): (0, 0.0, 0, ())}

    def rank(state: tuple[int, float, int, tuple[int, ...]]) -> tuple[float, int]:
        return state[0] - state[1], state[2]

    for lines in range(1, count + 1):
        for j in range(lines, n + 1):
            candidates = []
            for i in range(lines - 1, j):
                previous = best.get((i, lines - 1))
                if previous is None:
                    continue
                w = width(i, j)
                if w > max_chars and j - i > 1:
                    continue
                bonus = _BREAK_BONUS if j < n and _ends_clause(texts[j - 1]) else 0.0
                candidates.append(
                    (
                        max(previous[0], w),
                        previous[1] + bonus,
                        previous[2] + w * w,
                        (*previous[3], j),
                    )
                )
            if candidates:
                best[(j, lines)] = min(candidates, key=rank)
    breaks = best[(n, count)][3]
    result, start = [], 0
    for stop in breaks:
        result.append(" ".join(texts[start:stop]))
        start = stop
    return result


def _group(
    tokens: Sequence[_Token],
    *,
    fits: Callable[[Sequence[_Token]], bool],
    max_duration: float | None,
    min_gap: float | None,
) -> list[list[_Token]]:
    """Splits words into runs at speaker changes, pauses, sentence ends and size limits."""

    def within(run: Sequence[_Token]) -> bool:
        if max_duration is not None and run[-1].end - run[0].start > max_duration:
            return False
        return fits(run)

    groups: list[list[_Token]] = []
    current: list[_Token] = []
    for token in tokens:
        if current:
            previous = current[-1]
            if (
                token.speaker != previous.speaker
                or (min_gap is not None and token.start - previous.end >= min_gap)
                or _ends_sentence(previous.text)
            ):
                groups.append(current)
                current = []
            elif not within([*current, token]):
                cut = _soft_break(current)
                groups.append(current[:cut])
                current = current[cut:]
                if current and not within([*current, token]):
                    groups.append(current)
                    current = []
        current.append(token)
    if current:
        groups.append(current)
    return groups


def _soft_break(run: Sequence[_Token]) -> int:
    """Where to end a full run: after a comma or pause in its last two thirds, else at its end."""
    total = _joined_length(run)
    best, best_score = len(run), 0.0
    for i in range(1, len(run)):
        if _joined_length(run[:i]) < total / 3:
            continue
        score = 0.0
        if _ends_clause(run[i - 1].text):
            score += 2.0
        if run[i].start - run[i - 1].end >= 0.25:
            score += 1.0
        if score and score >= best_score:
            best, best_score = i, score
    return best


def _check_positive(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def build_cues(
    words: Sequence[WordLike | Mapping[str, Any]],
    *,
    max_chars_per_line: int = 42,
    max_lines: int = 2,
    max_duration: float = 7.0,
    min_gap_split: float = 0.8,
    speaker_labels: bool = True,
) -> list[Cue]:
    """Groups timed words into subtitle cues.

    A new cue starts after a sentence end, at a pause of ``min_gap_split`` seconds or more, when
    the speaker changes, and when the next word would break a limit (then preferably after a
    comma or short pause in the cue's last two thirds). Words are never split, dropped, duplicated
    or reordered; lines are wrapped evenly. A single word longer than a line stays whole.

    Args:
        words: ``stt.Word`` objects, SDK word models or ElevenLabs word dicts.
        max_chars_per_line: Longest line, in characters.
        max_lines: Most lines in one cue.
        max_duration: Longest cue, in seconds (unless a single word lasts longer).
        min_gap_split: A silence at least this long always starts a new cue.
        speaker_labels: Put each cue's speaker id in ``Cue.speaker`` (shown by the writers).

    Raises:
        ValueError: a word lacks text or times, ends before it starts, or a limit is not positive.

    Example::

        cues = build_cues([{"text": "Hello.", "start": 0.0, "end": 0.4}])
        cues[0].lines  # ["Hello."]
    """
    _check_positive(
        max_chars_per_line=max_chars_per_line,
        max_lines=max_lines,
        max_duration=max_duration,
        min_gap_split=min_gap_split,
    )
    tokens = _tokens(words)

    def fits(run: Sequence[_Token]) -> bool:
        return _line_count([t.text for t in run], max_chars_per_line) <= max_lines

    cues = []
    for run in _group(tokens, fits=fits, max_duration=max_duration, min_gap=min_gap_split):
        cues.append(
            Cue(
                start=run[0].start,
                end=run[-1].end,
                lines=_wrap([t.text for t in run], max_chars_per_line),
                speaker=run[0].speaker if speaker_labels else None,
            )
        )
    return cues


def _word_dict(token: _Token) -> dict[str, Any]:
    word: dict[str, Any] = {
        "text": token.text,
        "start": token.start,
        "end": token.end,
        "type": "word",
        "speaker_id": token.speaker,
    }
    logprob = _field(token.source, "logprob")
    if logprob is not None:
        word["logprob"] = float(logprob)
    return word


def segments(
    words: Sequence[WordLike | Mapping[str, Any]],
    *,
    segment_on_silence_longer_than_s: float | None = 0.8,
    max_segment_duration_s: float | None = 20.0,
    max_segment_chars: int | None = None,
    include_speakers: bool = True,
) -> list[dict[str, Any]]:
    """Groups words into utterance segments, the body of ElevenLabs' ``segmented_json`` format.

    Segments end at sentence ends, speaker changes, silences longer than
    ``segment_on_silence_longer_than_s`` and at the optional duration and length limits.

    Returns:
        ``[{"text", "start_time", "end_time", "speaker", "words": [{"text", "start", "end",
        "type", "speaker_id", "logprob"?}]}]``; ``speaker`` is ``None`` without speakers or when
        ``include_speakers`` is false.

    Example::

        segments(words)[0]["text"]  # "Hello there."
    """
    _check_positive(
        segment_on_silence_longer_than_s=segment_on_silence_longer_than_s,
        max_segment_duration_s=max_segment_duration_s,
        max_segment_chars=max_segment_chars,
    )

    def fits(run: Sequence[_Token]) -> bool:
        return max_segment_chars is None or _joined_length(run) <= max_segment_chars

    result = []
    for run in _group(
        _tokens(words),
        fits=fits,
        max_duration=max_segment_duration_s,
        min_gap=segment_on_silence_longer_than_s,
    ):
        result.append(
            {
                "text": " ".join(t.text for t in run),
                "start_time": run[0].start,
                "end_time": run[-1].end,
                "speaker": run[0].speaker if include_speakers else None,
                "words": [_word_dict(t) for t in run],
            }
        )
    return result


def _timestamp(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _visible_lines(cue: Cue) -> list[str]:
    # A blank line would end the cue early in both formats.
    return [" ".join(line.split()) for line in cue.lines if line.strip()]


def to_srt(cues: Iterable[Cue]) -> str:
    """Writes cues as SubRip (``00:00:01,000`` times; speakers as a ``[speaker_0]`` prefix).

    Cues without text are left out; the rest are numbered from 1.
    """
    blocks: list[str] = []
    for cue in cues:
        lines = _visible_lines(cue)
        if not lines:
            continue
        if cue.speaker:
            lines[0] = f"[{cue.speaker}] {lines[0]}"
        timing = f"{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}"
        blocks.append(f"{len(blocks) + 1}\n{timing}\n" + "\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _speaker_display(speaker: str) -> str:
    match = _SPEAKER_NUMBER.match(speaker)
    return f"Speaker {int(match.group(1)) + 1}" if match else speaker


def _speaker_id(display: str) -> str:
    match = _DISPLAY_NUMBER.match(display.strip())
    return f"speaker_{int(match.group(1)) - 1}" if match else display.strip()


def to_vtt(cues: Iterable[Cue]) -> str:
    """Writes cues as WebVTT (``00:00:01.000`` times; speakers as ``<v Speaker 1>`` voice spans).

    Text is escaped (``&``, ``<``, ``>``); cues without text are left out.
    """
    parts = ["WEBVTT\n"]
    for cue in cues:
        lines = [html.escape(line, quote=False) for line in _visible_lines(cue)]
        if not lines:
            continue
        if cue.speaker:
            name = html.escape(_speaker_display(cue.speaker), quote=False)
            lines[0] = f"<v {name}>{lines[0]}"
        timing = f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}"
        parts.append(f"{len(parts)}\n{timing}\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)


def to_txt(
    words_or_cues: Sequence[Cue] | Sequence[WordLike | Mapping[str, Any]],
    *,
    include_speakers: bool = True,
    include_timestamps: bool = False,
    max_characters_per_line: int | None = None,
) -> str:
    """Writes a plain-text transcript: one line per cue, or per utterance segment for words.

    Args:
        words_or_cues: Cues from :func:`build_cues`, or words.
        include_speakers: Start each entry with ``speaker_0:`` when its speaker is known.
        include_timestamps: Start each entry with ``[00:00:01.000 --> 00:00:04.000]``.
        max_characters_per_line: Wrap long entries at this width (never inside a word).

    Example::

        to_txt(words)  # "speaker_0: Hello there.\\nspeaker_1: Hi!\\n"
    """
    _check_positive(max_characters_per_line=max_characters_per_line)
    items = list(words_or_cues)
    cues = [item for item in items if isinstance(item, Cue)]
    entries: list[tuple[float, float, str | None, str]]
    if items and len(cues) == len(items):
        entries = [(c.start, c.end, c.speaker, c.text) for c in cues if c.text]
    else:
        entries = [
            (s["start_time"], s["end_time"], s["speaker"], s["text"]) for s in segments(items)
        ]
    lines = []
    for start, end, speaker, text in entries:
        prefix = ""
        if include_timestamps:
            prefix += f"[{_timestamp(start, '.')} --> {_timestamp(end, '.')}] "
        if include_speakers and speaker:
            prefix += f"{speaker}: "
        body = prefix + text
        if max_characters_per_line:
            lines.extend(_wrap(body.split(), max_characters_per_line))
        else:
            lines.append(body)
    return "\n".join(lines) + "\n" if lines else ""


def words_from_alignment(
    characters: Sequence[str] | Mapping[str, Any],
    starts: Sequence[float] | None = None,
    ends: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """Turns per-character timings (TTS ``with-timestamps`` alignment) into word timings.

    Words are the runs of non-whitespace characters; each spans from its first character's start
    to its last character's end. The alignment object itself may be passed as ``characters``
    (its ``character_start_times_seconds``/``character_end_times_seconds`` are used).

    Returns:
        ``[{"text", "start", "end", "type": "word"}]``, ready for :func:`build_cues`.

    Raises:
        ValueError: the three sequences differ in length or a time is missing.

    Example::

        words_from_alignment(list("Hi all"), [0, .1, .2, .3, .4, .5], [.1, .2, .3, .4, .5, .6])
        # [{"text": "Hi", "start": 0, "end": 0.2, ...}, {"text": "all", "start": 0.3, ...}]
    """
    if isinstance(characters, Mapping):
        alignment = characters
        characters = alignment.get("characters") or []
        starts = alignment.get("character_start_times_seconds")
        ends = alignment.get("character_end_times_seconds")
    if starts is None or ends is None:
        raise ValueError("character start and end times are required alongside the characters")
    chars, start_list, end_list = list(characters), list(starts), list(ends)
    if not len(chars) == len(start_list) == len(end_list):
        raise ValueError(
            f"alignment lengths differ: {len(chars)} characters, {len(start_list)} start times, "
            f"{len(end_list)} end times"
        )
    words: list[dict[str, Any]] = []
    text: list[str] = []
    word_start = word_end = 0.0
    for char, start, end in zip(chars, start_list, end_list, strict=True):
        if not char or char.isspace():
            if text:
                words.append(
                    {"text": "".join(text), "start": word_start, "end": word_end, "type": "word"}
                )
                text = []
            continue
        if not text:
            word_start = float(start)
        text.append(char)
        word_end = max(float(end), word_start)
    if text:
        words.append({"text": "".join(text), "start": word_start, "end": word_end, "type": "word"})
    return words


def _seconds(match: re.Match[str]) -> float:
    hours, minutes, secs, fraction = match.groups()
    millis = int(fraction.ljust(3, "0"))
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + millis / 1000.0


def _blocks(text: str) -> list[list[str]]:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return [
        block.split("\n") for block in re.split(r"\n[ \t]*\n", text.strip("\n")) if block.strip()
    ]


def _unwrap_json_string(text: str) -> str:
    # The dubbing transcript endpoint returns the subtitles as a JSON string.
    stripped = text.strip()
    if stripped.startswith('"'):
        try:
            decoded = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(decoded, str):
            return decoded
    return text


def _timing(lines: list[str]) -> tuple[int, float, float] | None:
    for index, line in enumerate(lines[:3]):
        match = _TIMING_LINE.match(line)
        if match:
            start = _TIME.fullmatch(match.group(1))
            end = _TIME.fullmatch(match.group(6))
            if start and end:
                return index, _seconds(start), _seconds(end)
    return None


def parse_srt(text: str) -> list[Cue]:
    """Reads SubRip text (also a JSON-encoded string of it) into cues.

    A leading ``[speaker_0]`` (or ``[agent]``/``[customer]``) on a cue's first line becomes
    ``Cue.speaker``; other bracketed text such as ``[music]`` stays in the line. Blocks without a
    timing line are skipped.

    Example::

        parse_srt("1\\n00:00:00,000 --> 00:00:01,500\\n[speaker_0] Hello.\\n")
        # [Cue(start=0.0, end=1.5, lines=["Hello."], speaker="speaker_0")]
    """
    cues = []
    for lines in _blocks(_unwrap_json_string(text)):
        found = _timing(lines)
        if found is None:
            continue
        index, start, end = found
        body = [line.strip() for line in lines[index + 1 :] if line.strip()]
        speaker = None
        if body:
            match = _SRT_SPEAKER.match(body[0])
            if match:
                speaker, body[0] = match.group(1), match.group(2)
        cues.append(Cue(start=start, end=end, lines=body, speaker=speaker))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    """Reads WebVTT text (also a JSON-encoded string of it) into cues.

    ``<v Speaker 1>`` becomes speaker ``speaker_0`` (other names are kept as they are); other
    tags are removed, entities decoded, and NOTE/STYLE/REGION blocks skipped.

    Raises:
        ValueError: the text does not start with the ``WEBVTT`` header.
    """
    blocks = _blocks(_unwrap_json_string(text))
    if not blocks or not blocks[0][0].startswith("WEBVTT"):
        raise ValueError("not a WebVTT document: it must start with a 'WEBVTT' line")
    cues = []
    for lines in blocks[1:]:
        if lines[0].split(" ", 1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        found = _timing(lines)
        if found is None:
            continue
        index, start, end = found
        speaker = None
        body: list[str] = []
        for line in lines[index + 1 :]:
            if not body and speaker is None:
                match = _VTT_VOICE.match(line.strip())
                if match:
                    speaker = _speaker_id(html.unescape(match.group(1)))
            cleaned = html.unescape(_VTT_TAG.sub("", line)).strip()
            if cleaned:
                body.append(cleaned)
        cues.append(Cue(start=start, end=end, lines=body, speaker=speaker))
    return cues
