"""Reading narration scripts: lists, folders of .txt/.md, CSV and JSONL files.

Every problem is a :class:`ScriptError` that says where it is (file, line, byte offset, id) and
what to change, so a batch never starts half-valid.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InvalidRequestError

__all__ = [
    "Chapter",
    "ScriptError",
    "ScriptItem",
    "load_scripts",
    "markdown_chapters",
    "markdown_to_speech",
    "validate_id",
]

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SCRIPT_SUFFIXES = (".txt", ".md", ".markdown")


class ScriptError(InvalidRequestError):
    """A narration script cannot be used as given (the message says where and why)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("status", "invalid_script")
        kwargs.setdefault("param", "scripts")
        super().__init__(message, **kwargs)


class ScriptItem(BaseModel):
    """One thing to narrate: an id (which names the output file), the text, and a voice."""

    id: str = Field(
        description="Names the output file: letters, digits, '.', '_' or '-', e.g. 'chapter-01'."
    )
    text: str = Field(description="What to say (any length; long text is split and stitched).")
    voice_id: str | None = Field(
        default=None, description="A voice for this item; the flow's voice_id when empty."
    )
    markdown: bool = Field(
        default=False,
        description="The text is Markdown: headings can become chapters, markup is not read out.",
    )


class Chapter(BaseModel):
    """A part of a Markdown script under one heading."""

    title: str
    text: str


def validate_id(item_id: Any, where: str) -> str:
    """Returns ``item_id`` when it can name a file on every platform, else raises."""
    if not isinstance(item_id, str) or not item_id.strip():
        raise ScriptError(f"{where}: the id is missing or empty; give every script an id")
    if not _SAFE_ID.match(item_id) or ".." in item_id:
        raise ScriptError(
            f"{where}: id {item_id!r} cannot name a file: use 1-100 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (no spaces, slashes or '..')"
        )
    return item_id


def _decode(data: bytes, path: Path) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(
            f"{path} is not UTF-8: byte {exc.start} (0x{data[exc.start]:02x}) cannot be decoded; "
            "save the file as UTF-8"
        ) from exc
    return text.removeprefix("\ufeff")


def _read_text(path: Path) -> str:
    try:
        return _decode(path.read_bytes(), path)
    except OSError as exc:
        raise ScriptError(f"{path} cannot be read: {exc.strerror or exc}") from exc


def _check_items(items: Sequence[ScriptItem]) -> list[ScriptItem]:
    if not items:
        raise ScriptError("there is nothing to narrate: the scripts are empty")
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        validate_id(item.id, f"script {index + 1}")
        if item.id in seen:
            raise ScriptError(
                f"duplicate id {item.id!r} (scripts {seen[item.id] + 1} and {index + 1}): "
                "ids name the output files, so each must be unique"
            )
        seen[item.id] = index
        if not item.text.strip():
            raise ScriptError(f"script {item.id!r} has no text: give it words or remove it")
    return list(items)


def _from_mapping(row: Mapping[str, Any], where: str) -> ScriptItem:
    item_id = row.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    item_id = validate_id(item_id, where)
    text = row.get("text")
    if not isinstance(text, str):
        raise ScriptError(f"{where}: script {item_id!r} has no 'text' string")
    voice_id = row.get("voice_id") or None
    if voice_id is not None and not isinstance(voice_id, str):
        raise ScriptError(f"{where}: script {item_id!r} has a voice_id that is not a string")
    return ScriptItem(id=item_id, text=text, voice_id=voice_id)


def _from_jsonl(path: Path) -> list[ScriptItem]:
    items: list[ScriptItem] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ScriptError(f"{path} line {number} is not valid JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise ScriptError(
                f'{path} line {number} must be an object like {{"id": "intro", "text": "..."}}'
            )
        missing = [key for key in ("id", "text") if key not in row]
        if missing:
            raise ScriptError(f"{path} line {number} lacks {' and '.join(map(repr, missing))}")
        items.append(_from_mapping(row, f"{path} line {number}"))
    return items


def _from_csv(path: Path) -> list[ScriptItem]:
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in ("id", "text") if c not in columns]
    if missing:
        raise ScriptError(
            f"{path} lacks the column(s) {', '.join(missing)}: the header row must name 'id' and "
            f"'text' (and optionally 'voice_id'); found {columns or 'no header'}"
        )
    items = []
    for row in reader:
        clean = {
            (k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()
        }
        items.append(_from_mapping(clean, f"{path} line {reader.line_num}"))
    return items


def _from_text_file(path: Path) -> ScriptItem:
    item_id = validate_id(path.stem, f"{path}")
    markdown = path.suffix.lower() in (".md", ".markdown")
    return ScriptItem(id=item_id, text=_read_text(path), markdown=markdown)


def _from_folder(path: Path) -> list[ScriptItem]:
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SCRIPT_SUFFIXES)
    if not files:
        raise ScriptError(f"{path} holds no .txt or .md files to narrate")
    return [_from_text_file(p) for p in files]


def load_scripts(source: str | os.PathLike[str] | Iterable[Any]) -> list[ScriptItem]:
    """Reads scripts from a list, a folder of .txt/.md files, or a CSV/JSONL/.txt/.md file.

    Raises:
        ScriptError: a missing file or column, an empty text, a duplicate or unsafe id, a file
            that is not UTF-8 (with the byte offset), or a bad JSON line (with its number).

    Example:
        ```python
        load_scripts([{"id": "intro", "text": "Welcome."}])
        load_scripts("scripts/")        # intro.txt, chapter-1.md ...
        load_scripts("episodes.jsonl")  # {"id": ..., "text": ..., "voice_id": ...} per line
        ```
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise ScriptError(f"{path} does not exist: give a folder, a .csv, .jsonl, .txt or .md")
        if path.is_dir():
            items = _from_folder(path)
        elif path.suffix.lower() == ".jsonl":
            items = _from_jsonl(path)
        elif path.suffix.lower() == ".csv":
            items = _from_csv(path)
        elif path.suffix.lower() in SCRIPT_SUFFIXES:
            items = [_from_text_file(path)]
        else:
            raise ScriptError(
                f"{path} has an unknown type: use a folder of .txt/.md files, or a .csv, .jsonl, "
                ".txt or .md file"
            )
        return _check_items(items)
    items = []
    for index, entry in enumerate(source):
        if isinstance(entry, ScriptItem):
            items.append(entry)
        elif isinstance(entry, Mapping):
            item = _from_mapping(entry, f"script {index + 1}")
            items.append(item.model_copy(update={"markdown": bool(entry.get("markdown"))}))
        else:
            raise ScriptError(
                f"script {index + 1} must be an object with 'id' and 'text', "
                f"got {type(entry).__name__}"
            )
    return _check_items(items)


# --------------------------------------------------------------------------------------------
# Markdown

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~|`)(?=\S)(.+?)(?<=\S)\1")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_QUOTE_MARK = re.compile(r"^\s*>\s?")
_HTML_TAG = re.compile(r"<[^>]+>")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?:;…" else text + "."


def _inline(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    for _ in range(3):  # nested emphasis such as ***bold italic***
        text = _EMPHASIS.sub(r"\2", text)
    return text


def _spoken_lines(lines: Iterable[str]) -> list[str]:
    spoken: list[str] = []
    in_code = False
    for raw in lines:
        if _FENCE.match(raw):
            in_code = not in_code
            continue
        if in_code or _RULE.match(raw):
            continue
        heading = _HEADING.match(raw)
        if heading:
            spoken.append(_sentence(_inline(heading.group(2))))
            spoken.append("")
            continue
        line = _QUOTE_MARK.sub("", raw)
        is_item = bool(_LIST_MARK.match(line))
        line = _inline(_LIST_MARK.sub("", line)).strip()
        # A list item is a sentence of its own, so it is read with a pause after it.
        spoken.append(_sentence(line) if is_item else line)
    return spoken


def _join(lines: list[str]) -> str:
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def markdown_to_speech(markdown: str) -> str:
    """The words of a Markdown document as they should be read aloud.

    Headings and list items become sentences; emphasis, links, images, HTML tags, rules and
    code blocks are not read out.

    >>> markdown_to_speech("# Intro\\n\\nHello **world**, see [docs](http://x).")
    'Intro.\\n\\nHello world, see docs.'
    """
    return _join(_spoken_lines(markdown.splitlines()))


def markdown_chapters(markdown: str) -> list[Chapter]:
    """Splits a Markdown document at its headings: one chapter per heading, with its body.

    Text before the first heading becomes an untitled opening chapter ("Opening"). A heading
    with no text under it is still a chapter: its title is spoken.
    """
    chapters: list[Chapter] = []
    title: str | None = None
    body: list[str] = []
    in_code = False

    def close() -> None:
        text = _join(_spoken_lines(body))
        if title is None and not text.strip():
            return
        heading = title or "Opening"
        spoken = _sentence(heading) + ("\n\n" + text if text.strip() else "")
        chapters.append(Chapter(title=heading, text=spoken if title else text))

    for raw in markdown.splitlines():
        if _FENCE.match(raw):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(raw)
        if heading:
            close()
            title = _inline(heading.group(2)).strip()
            body = []
        else:
            body.append(raw)
    close()
    return chapters
