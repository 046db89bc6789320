"""Forced alignment: ``POST /v1/forced-alignment`` (multipart ``file`` + ``text``).

Whisper transcribes the audio with word timings; the caller's words are then lined up with
the recognised ones by sequence alignment over normalised words (case, accents and
punctuation ignored). A word that matches takes the recognised word's times; a run of words
that does not (misrecognised, or numbers written differently) shares the time of the
recognised words it replaced, in proportion to its length; words nobody heard share the gap
around them. Every character of the text gets an even share of its word's time, and the
characters between words span the pause between them.

``loss`` says how sure the alignment is (lower is better): a matched word's loss is minus
Whisper's log probability for it; a word placed by interpolation adds minus the log of how
similar its run is to what was recognised there (3.0 when nothing was); the overall ``loss``
is the mean over words. Whisper ``base`` does the recognition (its word boundaries are
tighter than ``tiny.en``'s; expect word starts within about 0.1-0.25 s). ASCII text is first
read as English, and the language is detected instead when fewer than half its words match.
Nothing is billed; requests are counted in ``/local/stats``.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request

from ..state import EngineState
from ..wire import RequestContext, api_error, authenticate
from ._common import GenerationResponse, admit, engine_state, run_blocking
from .stt import TranscriptOptions, decode_upload, read_form, saved_upload, transcribe_samples

__all__ = ["AlignedWord", "align_words", "normalise_word", "router"]

router = APIRouter(tags=["forced-alignment"])

_MAX_TEXT_CHARS = 675_000
_MISSING_LOSS = 3.0
_MIN_SIMILARITY = 0.05
_RETRY_BELOW = 0.5
_TOKEN = re.compile(r"\S+")


@dataclass
class AlignedWord:
    """One word of the caller's text, placed in the audio."""

    text: str
    start: float
    end: float
    loss: float
    offset: int
    """Index of the word's first character in the text."""


def normalise_word(text: str) -> str:
    """Lower-case letters and digits only, accents removed (``"Café,"`` -> ``"cafe"``)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def _spread(
    count: int, weights: Sequence[int], start: float, end: float
) -> list[tuple[float, float]]:
    total = float(sum(weights)) or float(count)
    spans = []
    cursor = start
    for weight in weights:
        share = (end - start) * (weight or 1) / total
        spans.append((cursor, cursor + share))
        cursor += share
    return spans


def align_words(text: str, heard: Sequence[Any], duration: float) -> list[AlignedWord]:
    """Place every whitespace-separated word of ``text`` using recognised ``heard`` words.

    ``heard`` items need ``text``, ``start``, ``end`` and ``logprob``; ``duration`` bounds
    the words nobody heard at the end.

    Example::

        words = align_words("Hello world", transcription.words, transcription.duration)
        [(w.text, w.start, w.end) for w in words]
    """
    tokens = [(match.group(), match.start()) for match in _TOKEN.finditer(text)]
    keys = [normalise_word(token) for token, _ in tokens]
    heard_keys = [normalise_word(word.text) for word in heard]
    placed: list[AlignedWord | None] = [None] * len(tokens)
    matcher = difflib.SequenceMatcher(None, keys, heard_keys, autojunk=False)
    cursor = 0.0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                word = heard[j]
                placed[i] = AlignedWord(tokens[i][0], float(word.start), float(word.end),
                                        max(0.0, -float(word.logprob)), tokens[i][1])  # fmt: skip
            cursor = float(heard[j2 - 1].end) if j2 > j1 else cursor
            continue
        if tag == "insert":
            cursor = float(heard[j2 - 1].end)
            continue
        if j2 > j1:
            start, end = max(cursor, float(heard[j1].start)), float(heard[j2 - 1].end)
            similarity = difflib.SequenceMatcher(
                None, "".join(keys[i1:i2]), "".join(heard_keys[j1:j2])
            ).ratio()
            mean = float(np.mean([-float(w.logprob) for w in heard[j1:j2]]))
            loss = mean - math.log(max(similarity, _MIN_SIMILARITY))
        else:
            start = cursor
            end = float(heard[j1].start) if j1 < len(heard) else duration
            loss = _MISSING_LOSS
        end = max(end, start)
        weights = [len(keys[i]) for i in range(i1, i2)]
        for i, (a, b) in zip(range(i1, i2), _spread(i2 - i1, weights, start, end), strict=True):
            placed[i] = AlignedWord(tokens[i][0], a, b, loss, tokens[i][1])
        cursor = end
    words = [word for word in placed if word is not None]
    previous = 0.0
    for word in words:
        word.start = round(min(max(word.start, previous), duration), 3)
        word.end = round(min(max(word.end, word.start), duration), 3)
        previous = word.end
    return words


def _characters(text: str, words: Sequence[AlignedWord], duration: float) -> list[dict[str, Any]]:
    times: list[tuple[float, float]] = [(0.0, 0.0)] * len(text)
    previous_end, position = 0.0, 0
    for index, word in enumerate(words):
        # Characters between words (spaces, stray punctuation) span the pause before the word.
        gap = word.offset - position
        for k, span in enumerate(_spread(gap, [1] * gap, previous_end, word.start)):
            times[position + k] = span
        size = len(word.text)
        for k, span in enumerate(_spread(size, [1] * size, word.start, word.end)):
            times[word.offset + k] = span
        position, previous_end = word.offset + size, word.end
        if index == len(words) - 1:
            tail = len(text) - position
            for k in range(tail):
                times[position + k] = (previous_end, previous_end)
    return [
        {"text": char, "start": round(a, 3), "end": round(b, 3)}
        for char, (a, b) in zip(text, times, strict=True)
    ]


def _match_share(text: str, heard: Sequence[Any]) -> float:
    keys = [normalise_word(token) for token in text.split()]
    keys = [key for key in keys if key]
    if not keys:
        return 1.0
    heard_keys = [normalise_word(word.text) for word in heard]
    matcher = difflib.SequenceMatcher(None, keys, heard_keys, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(keys)


def _align(state: EngineState, upload: Any, text: str) -> dict[str, Any]:
    """Blocking: decode, transcribe, align; the response body."""
    with saved_upload(state, upload, param="file") as path:
        samples = decode_upload(path, param="file")
    duration = len(samples) / 16000.0
    # The multilingual model places word boundaries better than tiny.en, so it does the
    # timing even for English; ASCII text skips language detection unless it matches badly.
    result = None
    if text.isascii():
        result = transcribe_samples(samples, TranscriptOptions(language="en", model="base"))
        if _match_share(text, result.words) < _RETRY_BELOW:
            result = None
    if result is None:
        result = transcribe_samples(samples, TranscriptOptions(model="base"))
    words = align_words(text, result.words, duration)
    loss = float(np.mean([word.loss for word in words])) if words else _MISSING_LOSS
    return {
        "characters": _characters(text, words, duration),
        "words": [
            {"text": w.text, "start": w.start, "end": w.end, "loss": round(w.loss, 4)}
            for w in words
        ],
        "loss": round(loss, 4),
    }


@router.post("/v1/forced-alignment", summary="Align a known text to audio")
async def forced_alignment(
    request: Request, context: Annotated[RequestContext, Depends(authenticate)]
) -> GenerationResponse:
    """``{"characters": [...], "words": [...], "loss"}`` with times in seconds."""
    import json

    state = engine_state(request)
    async with read_form(request) as form:
        upload = form.upload("file")
        if upload is None:
            raise api_error(400, "invalid_parameters",
                            "file is required: upload the audio to align the text to.",
                            param="file")  # fmt: skip
        text = form.text("text", required=True, strip=False)
        assert text is not None
        if not normalise_word(text):
            raise api_error(400, "invalid_parameters",
                            "text has no words to align: send the transcript of the audio.",
                            param="text")  # fmt: skip
        if len(text) > _MAX_TEXT_CHARS:
            raise api_error(400, "invalid_parameters",
                            f"text is longer than {_MAX_TEXT_CHARS} characters.",
                            param="text")  # fmt: skip
        generation = await admit(request, context, characters=0)
        try:
            body = await run_blocking(_align, state, upload, text)
        except BaseException:
            await generation.finish(success=False)
            raise
    return GenerationResponse(
        json.dumps(body, ensure_ascii=False).encode(),
        generation=generation,
        media_type="application/json",
        headers={"request-id": context.request_id, **generation.headers},
    )
