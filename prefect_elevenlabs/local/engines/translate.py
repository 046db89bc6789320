"""Machine translation with Apertium (rule-based, offline; Debian packages such as
``apertium-eng-spa``).

Apertium names its translation directions with three-letter codes (``eng-spa``); this module
speaks ISO 639-1 (``("en", "es")``) and accepts ISO 639-3 too.

A batch of texts is translated by one ``apertium`` process: the texts are joined with blank
lines, which Apertium treats as paragraph breaks (a sentence boundary its rules never reorder
across) and passes through, so the output splits back into the same segments.

Example::

    translate(["Good morning.", "Where is the station?"], "en", "es")
    # ["Buenos días.", "¿Dónde es la estación?"]
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

from prefect_elevenlabs.local.engines.stt import UnsupportedLanguageError, to_iso639_1

__all__ = [
    "TranslationError",
    "UnsupportedLanguagePairError",
    "supported_pairs",
    "translate",
]

_TIMEOUT_SECONDS = 600.0
_SEPARATOR = "\n\n"
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_NEWLINES = re.compile(r"\s*\n\s*")


class UnsupportedLanguagePairError(ValueError):
    """No installed Apertium pair translates between the requested languages."""


class TranslationError(RuntimeError):
    """Apertium is missing, failed, or produced output that does not line up with the input."""


def _apertium() -> str:
    path = shutil.which("apertium")
    if path is None:
        raise TranslationError(
            "the 'apertium' command is not installed: install the Debian packages 'apertium' and "
            "a language pair such as 'apertium-eng-spa'"
        )
    return path


@functools.cache
def _modes() -> dict[tuple[str, str], str]:
    """Maps (source, target) ISO 639-1 pairs to the Apertium mode that translates them."""
    if shutil.which("apertium") is None:
        return {}
    listing = subprocess.run(
        [_apertium(), "-l"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    modes: dict[tuple[str, str], str] = {}
    # Plain modes first, so "spa-eng" wins over a variant such as "spa-eng_US".
    for mode in sorted({line.strip() for line in listing.splitlines() if line.strip()}, key=len):
        parts = mode.split("-")
        if len(parts) != 2:
            continue  # debugging modes such as "eng-spa-tagger"
        try:
            source, target = (to_iso639_1(part.split("_")[0]) for part in parts)
        except UnsupportedLanguageError:
            continue
        modes.setdefault((source, target), mode)
    return modes


def supported_pairs() -> frozenset[tuple[str, str]]:
    """The installed translation directions as ISO 639-1 pairs, e.g. ``{("en", "es")}``.

    Empty when Apertium is not installed. Discovered once per process from ``apertium -l``.
    """
    return frozenset(_modes())


def _describe_pairs() -> str:
    pairs = sorted(_modes())
    if not pairs:
        return "none (install 'apertium' and a pair package such as 'apertium-eng-spa')"
    return ", ".join(f"{source}->{target}" for source, target in pairs)


def _resolve(source: str, target: str) -> tuple[str, str]:
    try:
        return to_iso639_1(source), to_iso639_1(target)
    except UnsupportedLanguageError as error:
        raise UnsupportedLanguagePairError(
            f"{error}; available translation pairs: {_describe_pairs()}"
        ) from None


def _clean(text: str) -> str:
    """One segment as Apertium will see it: no blank lines inside, single spaces."""
    return _SPACES.sub(" ", _NEWLINES.sub("\n", text.replace("\x00", " "))).strip()


def _match_initial_case(source: str, translated: str) -> str:
    # The paragraph break makes Apertium treat every segment as a sentence start and capitalise
    # it; a segment that began in lower case (a fragment of a longer sentence) should stay so.
    src = next((c for c in source if c.isalpha()), "")
    for i, char in enumerate(translated):
        if char.isalpha():
            if src.islower() and char.isupper():
                return translated[:i] + char.lower() + translated[i + 1 :]
            break
    return translated


def _run(mode: str, texts: list[str]) -> list[str]:
    completed = subprocess.run(
        [_apertium(), "-u", mode],
        input=_SEPARATOR.join(texts) + _SEPARATOR,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise TranslationError(
            f"apertium {mode} failed with exit code {completed.returncode}: "
            f"{completed.stderr.strip()[:500]}"
        )
    pieces = [piece.strip() for piece in _BLANK_LINES.split(completed.stdout.strip())]
    return [_SPACES.sub(" ", piece) for piece in pieces]


def translate(texts: list[str], source: str, target: str) -> list[str]:
    """Translates each text from ``source`` to ``target``, keeping order and count.

    All texts go through one Apertium process. Unknown words are passed through without
    Apertium's ``*`` marks. Blank lines inside one text are folded to single line breaks, since
    they are the separator between texts. Empty texts come back empty. When ``source`` and
    ``target`` are the same language, the texts are returned unchanged.

    Args:
        texts: The segments to translate.
        source: Source language, ISO 639-1 or 639-3 (``"en"`` or ``"eng"``).
        target: Target language, ISO 639-1 or 639-3.

    Raises:
        UnsupportedLanguagePairError: no installed pair translates ``source`` to ``target``;
            the message lists the pairs that are installed.
        TranslationError: Apertium is missing or failed.

    Example::

        translate(["Los niños jugaron en el parque."], "spa", "eng")
        # ["The boys played in the park."]
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings; wrap a single text in a list")
    items = list(texts)
    src, tgt = _resolve(source, target)
    if src == tgt:
        return items
    mode = _modes().get((src, tgt))
    if mode is None:
        raise UnsupportedLanguagePairError(
            f"cannot translate {source!r} to {target!r}: available translation pairs: "
            f"{_describe_pairs()}"
        )
    cleaned = [_clean(text) for text in items]
    todo = [i for i, text in enumerate(cleaned) if text]
    if not todo:
        return ["" for _ in items]
    outputs = _run(mode, [cleaned[i] for i in todo])
    if len(outputs) != len(todo):
        # Should not happen; if Apertium ever merges paragraphs, fall back to one call per text
        # rather than return misaligned segments.
        outputs = [_run(mode, [cleaned[i]])[0] for i in todo]
    result = ["" for _ in items]
    for index, translated in zip(todo, outputs, strict=True):
        result[index] = _match_initial_case(cleaned[index], translated)
    return result
