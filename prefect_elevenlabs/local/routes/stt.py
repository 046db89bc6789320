"""Batch speech to text: ``POST /v1/speech-to-text`` and the stored transcripts.

Whisper (faster-whisper) does the recognition: ``tiny.en`` when the request says the audio is
English, ``base`` otherwise (which also detects the language). Words carry Whisper's timings
and log probabilities; ``diarize`` labels them with speakers through
:func:`~prefect_elevenlabs.local.engines.diarize.assign_speakers`. The response has the API's
shape: ``language_code`` in ISO 639-3 (``"eng"``), words interleaved with ``spacing`` items,
``additional_formats`` rendered by :mod:`prefect_elevenlabs.subtitles` (srt, txt,
segmented_json), a ``transcription_id`` under which the transcript can be fetched again, and
``audio_duration_secs``.

What the local engine does not do is refused with a 400 that says so, rather than answered
with something that only looks right: webhooks, entity detection and redaction, speaker roles,
transcript editing, and the docx/html/pdf exports. ``tag_audio_events`` is accepted, but Whisper
reports no audio events, so none appear.

``source_url`` (and the deprecated ``cloud_storage_url``) work without a network only for
``file://`` URLs under the directories listed in ``ELEVENLABS_LOCAL_SOURCE_URL_ROOTS``
(comma-separated); every other URL is refused with a 400 explaining why.

This module also holds the multipart helpers the other upload routes share (:class:`UploadForm`,
:func:`read_form`, :func:`saved_upload`, :func:`resolve_source_url`, :func:`decode_upload`).
Transcription bills no characters (the API bills minutes); each request is counted in
``/local/stats``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import FormData, UploadFile

from ..state import EngineState, new_id, validate_id
from ..wire import RequestContext, api_error, authenticate
from ._common import GenerationResponse, admit, engine_config, engine_state, run_blocking

__all__ = [
    "BATCH_MODELS",
    "SOURCE_URL_ROOTS_ENV",
    "STT_SAMPLE_RATE",
    "TranscriptOptions",
    "UploadForm",
    "api_words",
    "decode_upload",
    "invalid_field",
    "language_code_or_400",
    "read_form",
    "resolve_source_url",
    "router",
    "saved_upload",
    "transcribe_samples",
]

router = APIRouter(tags=["speech-to-text"])

BATCH_MODELS = (
    "scribe_v1",
    "scribe_v1_experimental",
    "scribe_v2",
    "scribe_v2_medical",
    "scribe_v3",
)
"""Model ids ``POST /v1/speech-to-text`` accepts."""

SOURCE_URL_ROOTS_ENV = "ELEVENLABS_LOCAL_SOURCE_URL_ROOTS"
"""Environment variable listing the directories ``file://`` source URLs may point into."""

STT_SAMPLE_RATE = 16000
"""Rate uploads are decoded at for recognition (Whisper's own rate)."""

_MAX_CHANNELS = 5
_MAX_KEYTERMS = 1000
_MAX_KEYTERM_CHARS = 50
_KEYTERM_FORBIDDEN = set("<>{}[]\\")
_COPY_CHUNK = 1 << 20
_FILLERS = frozenset({"um", "uh", "erm", "er", "hmm", "mm", "ah", "eh", "uhm", "mhm"})
_EXPORTS: dict[str, tuple[str, str]] = {
    "srt": ("srt", "application/x-subrip"),
    "txt": ("txt", "text/plain"),
    "segmented_json": ("json", "application/json"),
}
_UNSUPPORTED_EXPORTS = ("docx", "html", "pdf")


# -- multipart helpers shared by the upload routes --------------------------------------------


def invalid_field(name: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's list shape, pointing at body field ``name``."""
    return RequestValidationError(
        [{"loc": ("body", name), "msg": message, "type": "value_error", "input": value}]
    )


class UploadForm:
    """Typed access to a multipart form, with the API's conventions.

    Text fields equal to the literal ``null`` (the SDK sends it for unset JSON fields) or empty
    count as absent. Bad values raise 422 naming the field.

    Example::

        async with read_form(request) as form:
            model_id = form.text("model_id", required=True)
            diarize = form.boolean("diarize", False)
    """

    def __init__(self, form: FormData) -> None:
        self._form = form

    def _values(self, name: str) -> list[str | UploadFile]:
        return [value for value in self._form.getlist(name) if value is not None]

    def _part_text(self, value: str | UploadFile) -> str:
        if isinstance(value, UploadFile):
            value.file.seek(0)
            return value.file.read().decode("utf-8", "replace")
        return value

    def text(self, name: str, *, required: bool = False, strip: bool = True) -> str | None:
        """The last value of a text field, or None when absent, blank or ``null``.

        ``strip=False`` keeps surrounding whitespace of a non-blank value.
        """
        values = self._values(name)
        raw = self._part_text(values[-1]) if values else ""
        text = raw.strip()
        if not text or text == "null":
            if required:
                raise RequestValidationError(
                    [{"loc": ("body", name), "msg": "Field required", "type": "missing"}]
                )
            return None
        return text if strip else raw

    def texts(self, name: str) -> list[str]:
        """Every value of a repeated field (``keyterms=a&keyterms=b``), blanks dropped."""
        texts = [self._part_text(value).strip() for value in self._values(name)]
        return [text for text in texts if text and text != "null"]

    def boolean(self, name: str, default: bool) -> bool:
        """A ``true``/``false`` field (``1``/``0`` too)."""
        text = self.text(name)
        if text is None:
            return default
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise invalid_field(name, "Input should be a valid boolean, 'true' or 'false'", text)

    def integer(self, name: str, *, ge: int | None = None, le: int | None = None) -> int | None:
        """An integer field within ``[ge, le]``, or None."""
        text = self.text(name)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise invalid_field(name, "Input should be a valid integer", text) from None
        _check_range(name, value, ge, le)
        return value

    def number(
        self, name: str, *, ge: float | None = None, le: float | None = None
    ) -> float | None:
        """A float field within ``[ge, le]``, or None."""
        text = self.text(name)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise invalid_field(name, "Input should be a valid number", text) from None
        if not math.isfinite(value):
            raise invalid_field(name, "Input should be a finite number", text)
        _check_range(name, value, ge, le)
        return value

    def choice(self, name: str, options: Sequence[str], default: str | None = None) -> str | None:
        """A field that must be one of ``options``."""
        text = self.text(name)
        if text is None:
            return default
        if text not in options:
            allowed = ", ".join(f"'{option}'" for option in options)
            raise invalid_field(name, f"Input should be {allowed}", text)
        return text

    def json(self, name: str) -> Any:
        """A JSON-encoded field (a plain part or one typed ``application/json``), or None."""
        text = self.text(name)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid_field(name, f"Input should be valid JSON: {exc.msg}", text) from None

    def upload(self, name: str) -> UploadFile | None:
        """The file part ``name`` (None when absent or empty of both name and bytes)."""
        for value in reversed(self._values(name)):
            if isinstance(value, UploadFile):
                if value.filename or value.size:
                    return value
            elif value.strip() and value.strip() != "null":
                raise api_error(
                    400,
                    "invalid_parameters",
                    f"'{name}' must be a file part (multipart with a filename), not a text field.",
                    param=name,
                )
        return None


def _check_range(name: str, value: float, ge: float | None, le: float | None) -> None:
    if ge is not None and value < ge:
        raise invalid_field(name, f"Input should be greater than or equal to {ge}", value)
    if le is not None and value > le:
        raise invalid_field(name, f"Input should be less than or equal to {le}", value)


@asynccontextmanager
async def read_form(request: Request) -> AsyncIterator[UploadForm]:
    """Parse the request's multipart body; uploaded files are closed on exit.

    A body that is not ``multipart/form-data`` (or form-urlencoded) is a 400 saying so.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise api_error(
            400,
            "invalid_content_type",
            f"This endpoint takes multipart/form-data, not {content_type or 'an empty body'}: "
            "send the file and fields as a multipart form.",
        )
    async with request.form(max_files=16, max_fields=2000) as form:
        yield UploadForm(form)


@contextmanager
def saved_upload(state: EngineState, upload: UploadFile, *, param: str) -> Iterator[Path]:
    """Blocking: copy an upload to a temporary file under the data dir; removed on exit.

    An empty upload is a 400 naming ``param``.
    """
    scratch = state.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    suffix = Path(upload.filename or "").suffix[:10]
    handle, name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=scratch)
    path = Path(name)
    try:
        size = 0
        upload.file.seek(0)
        with os.fdopen(handle, "wb") as out:
            while block := upload.file.read(_COPY_CHUNK):
                out.write(block)
                size += len(block)
        if size == 0:
            raise api_error(
                400,
                "invalid_parameters",
                f"The uploaded {param} {upload.filename or ''!r} is empty: send the audio bytes.",
                param=param,
            )
        yield path
    finally:
        path.unlink(missing_ok=True)


def _source_roots() -> list[Path]:
    raw = os.environ.get(SOURCE_URL_ROOTS_ENV, "")
    return [Path(part).expanduser().resolve() for part in raw.split(",") if part.strip()]


def resolve_source_url(request: Request, url: str, *, param: str = "source_url") -> Path:
    """The local file a ``source_url`` names, or a 400 saying why it cannot be fetched.

    Only ``file://`` URLs are served (the engine has no network), and only for files under the
    allowed roots: ``source_url_roots`` in the engine config when it has one, else
    ``ELEVENLABS_LOCAL_SOURCE_URL_ROOTS``.
    """
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise api_error(
            400,
            "invalid_parameters",
            f"{param} {url!r} cannot be fetched: the local engine works offline and reads no "
            "network URLs. Upload the media as 'file' instead, or use a file:// URL under an "
            f"allowed directory ({SOURCE_URL_ROOTS_ENV}).",
            param=param,
        )
    configured = getattr(engine_config(request), "source_url_roots", None)
    roots = [Path(root).expanduser().resolve() for root in configured] if configured else []
    roots = roots or _source_roots()
    if not roots:
        raise api_error(
            400,
            "invalid_parameters",
            f"{param} file:// URLs are disabled: no directory is allowed. Set "
            f"{SOURCE_URL_ROOTS_ENV} to a comma-separated list of directories, or upload the "
            "media as 'file'.",
            param=param,
        )
    if parsed.netloc not in ("", "localhost"):
        raise api_error(
            400, "invalid_parameters", f"{param} must name a local file (file:///path).",
            param=param,
        )  # fmt: skip
    path = Path(unquote(parsed.path)).resolve()
    if not any(path.is_relative_to(root) for root in roots):
        raise api_error(
            400,
            "invalid_parameters",
            f"{param} {url!r} is outside the allowed directories "
            f"({', '.join(str(root) for root in roots)}).",
            param=param,
        )
    if not path.is_file():
        raise api_error(
            400, "invalid_parameters", f"{param} {url!r} is not an existing file.", param=param
        )
    return path


@contextmanager
def media_source(
    request: Request,
    state: EngineState,
    upload: UploadFile | None,
    url: str | None,
    *,
    file_param: str = "file",
    url_param: str = "source_url",
) -> Iterator[Path]:
    """Blocking: the path of exactly one of an upload or a ``file://`` URL.

    Uploads are copied to a temporary file that is removed on exit; URLs are read in place.
    """
    if (upload is None) == (url is None):
        raise api_error(
            400,
            "invalid_parameters",
            f"Send exactly one of '{file_param}' (an uploaded file) or '{url_param}'.",
            param=file_param,
        )
    if url is not None:
        yield resolve_source_url(request, url, param=url_param)
        return
    assert upload is not None
    with saved_upload(state, upload, param=file_param) as path:
        yield path


def decode_upload(
    path: Path,
    *,
    param: str,
    file_format: str | None = None,
    sample_rate: int = STT_SAMPLE_RATE,
    mono: bool = True,
) -> np.ndarray:
    """Blocking: decode an uploaded file into float32 samples; 400 when it is not audio.

    ``file_format="pcm_s16le_16"`` reads headerless 16-bit little-endian mono at 16 kHz.
    """
    from ..audio import AudioDecodeError, decode, resample

    if file_format == "pcm_s16le_16":
        raw = path.read_bytes()
        if len(raw) < 2:
            raise api_error(400, "invalid_parameters", f"The {param} holds no samples.",
                            param=param)  # fmt: skip
        pcm = np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2")
        samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        if sample_rate != 16000:
            samples = resample(samples, 16000, sample_rate)
        return samples if mono else samples[:, None]
    try:
        return decode(path, sample_rate=sample_rate, mono=mono)
    except AudioDecodeError as exc:
        # The scratch path means nothing to the caller; name the field instead.
        reason = str(exc).replace(f"{path}: ", "").replace(str(path), param)
        raise api_error(
            400,
            "invalid_audio",
            f"The uploaded {param} is not audio or video the engine can decode: {reason}",
            param=param,
        ) from exc


def language_code_or_400(code: str | None, *, param: str = "language_code") -> str | None:
    """ISO 639-1 for an ISO 639-1/639-3 code (None passes through); 400 for unknown codes."""
    if code is None:
        return None
    from ..engines.stt import UnsupportedLanguageError, to_iso639_1

    try:
        return to_iso639_1(code)
    except UnsupportedLanguageError as exc:
        raise api_error(400, "invalid_language_code", str(exc), param=param) from exc


# -- transcription ----------------------------------------------------------------------------


@dataclass
class TranscriptOptions:
    """The recognition settings of one request."""

    language: str | None = None
    keyterms: list[str] = field(default_factory=list)
    temperature: float = 0.0
    diarize: bool = False
    num_speakers: int | None = None
    diarization_threshold: float | None = None
    no_verbatim: bool = False
    model: str | None = None
    """Whisper model (``"tiny.en"``, ``"base"``); None lets the language decide."""


def transcribe_samples(samples: np.ndarray, options: TranscriptOptions) -> Any:
    """Blocking: Whisper over 16 kHz mono samples, with speakers when ``options.diarize``.

    Returns the engine's ``Transcription`` (ISO 639-1 ``language``).
    """
    from ..engines.diarize import assign_speakers
    from ..engines.stt import UnsupportedLanguageError, transcribe

    try:
        result = transcribe(
            samples,
            sample_rate=STT_SAMPLE_RATE,
            language=options.language,
            model=options.model,
            keyterms=options.keyterms or None,
            temperature=options.temperature,
        )
    except UnsupportedLanguageError as exc:
        raise api_error(400, "invalid_language_code", str(exc), param="language_code") from exc
    if options.no_verbatim:
        result.words = [w for w in result.words if _plain(w.text) not in _FILLERS]
        result.text = " ".join(w.text for w in result.words) if result.words else result.text
    if options.diarize and result.words:
        result.words = assign_speakers(
            samples,
            STT_SAMPLE_RATE,
            result.words,
            num_speakers=options.num_speakers,
            threshold=options.diarization_threshold if options.num_speakers is None else None,
        )
    return result


def _plain(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalnum())


def _characters(text: str, start: float, end: float) -> list[dict[str, Any]]:
    if not text:
        return []
    step = (end - start) / len(text)
    return [
        {"text": char, "start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3)}
        for i, char in enumerate(text)
    ]


def api_words(
    words: Sequence[Any],
    *,
    granularity: Literal["none", "word", "character"] = "word",
    channel_index: int | None = None,
) -> list[dict[str, Any]]:
    """Engine words as the API's ``words``: each word followed by a ``spacing`` item.

    ``granularity="none"`` leaves times out (null); ``"character"`` adds ``characters``.
    """
    items: list[dict[str, Any]] = []
    timed = granularity != "none"
    for index, word in enumerate(words):
        if index:
            previous = words[index - 1]
            spacing: dict[str, Any] = {
                "text": " ",
                "start": previous.end if timed else None,
                "end": word.start if timed else None,
                "type": "spacing",
                "speaker_id": word.speaker_id,
                "logprob": 0.0,
            }
            if granularity == "character":
                spacing["characters"] = _characters(" ", previous.end, word.start)
            if channel_index is not None:
                spacing["channel_index"] = channel_index
            items.append(spacing)
        item: dict[str, Any] = {
            "text": word.text,
            "start": word.start if timed else None,
            "end": word.end if timed else None,
            "type": "word",
            "speaker_id": word.speaker_id,
            "logprob": round(min(float(word.logprob), 0.0), 4),
        }
        if granularity == "character":
            item["characters"] = _characters(word.text, word.start, word.end)
        if channel_index is not None:
            item["channel_index"] = channel_index
        items.append(item)
    return items


# -- additional formats -----------------------------------------------------------------------


def _export_request(item: Any, index: int) -> dict[str, Any]:
    if not isinstance(item, Mapping) or not isinstance(item.get("format"), str):
        raise invalid_field(
            "additional_formats",
            f"item {index} must be an object with a 'format' such as "
            '{"format": "srt"} (srt, txt, segmented_json)',
            item,
        )
    fmt = item["format"]
    if fmt in _UNSUPPORTED_EXPORTS:
        raise api_error(
            400,
            "not_supported_locally",
            f"additional_formats: the local engine does not produce {fmt} exports; ask for "
            "srt, txt or segmented_json instead.",
            param="additional_formats",
        )
    if fmt not in _EXPORTS:
        raise invalid_field(
            "additional_formats",
            f"item {index}: format should be one of docx, html, pdf, segmented_json, srt, txt",
            fmt,
        )
    for key in ("segment_on_silence_longer_than_s", "max_segment_duration_s"):
        value = item.get(key)
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise invalid_field(
                "additional_formats", f"item {index}: {key} must be positive", value
            )
    for key in ("max_segment_chars", "max_characters_per_line"):
        value = item.get(key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise invalid_field(
                "additional_formats", f"item {index}: {key} must be a positive integer", value
            )
    return dict(item)


def parse_additional_formats(raw: Any) -> list[dict[str, Any]]:
    """Validate the ``additional_formats`` JSON (a list, or one object)."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [_export_request(item, i) for i, item in enumerate(items)]


def render_exports(words: Sequence[Any], requests: Sequence[dict[str, Any]]) -> list[Any]:
    """The API's ``additional_formats`` entries for timed engine words."""
    from ...subtitles import Cue, build_cues, segments, to_srt, to_txt

    exports = []
    for request in requests:
        fmt = request["format"]
        speakers = request.get("include_speakers", True) is not False
        timestamps = request.get("include_timestamps", True) is not False
        silence = request.get("segment_on_silence_longer_than_s")
        max_duration = request.get("max_segment_duration_s")
        max_chars = request.get("max_segment_chars")
        line = request.get("max_characters_per_line")
        if fmt == "srt":
            cues = build_cues(
                words,
                max_chars_per_line=line or 42,
                max_duration=max_duration or 7.0,
                min_gap_split=silence or 0.8,
                speaker_labels=speakers,
            )
            content = to_srt(cues)
        else:
            segs = segments(
                words,
                segment_on_silence_longer_than_s=silence or 0.8,
                max_segment_duration_s=max_duration or 20.0,
                max_segment_chars=max_chars,
                include_speakers=speakers,
            )
            if fmt == "txt":
                cues = [
                    Cue(start=s["start_time"], end=s["end_time"], lines=[s["text"]],
                        speaker=s["speaker"])
                    for s in segs
                ]  # fmt: skip
                content = to_txt(
                    cues,
                    include_speakers=speakers,
                    include_timestamps=timestamps,
                    max_characters_per_line=line,
                )
            else:
                content = json.dumps({"segments": segs}, ensure_ascii=False)
        extension, content_type = _EXPORTS[fmt]
        exports.append(
            {
                "requested_format": fmt,
                "file_extension": extension,
                "content_type": content_type,
                "is_base64_encoded": False,
                "content": content,
            }
        )
    return exports


# -- the route --------------------------------------------------------------------------------


@dataclass
class _SttRequest:
    model_id: str
    options: TranscriptOptions
    granularity: Literal["none", "word", "character"]
    exports: list[dict[str, Any]]
    file_format: str | None
    multichannel: bool
    combined: bool
    upload: UploadFile | None
    url: str | None
    url_param: str


def _refuse(name: str, what: str) -> None:
    raise api_error(
        400,
        "not_supported_locally",
        f"{name}: the local engine does not offer {what}. Leave the field unset.",
        param=name,
    )


def _parse_request(form: UploadForm) -> _SttRequest:
    model_id = form.text("model_id", required=True)
    assert model_id is not None
    if model_id not in BATCH_MODELS:
        raise api_error(
            400,
            "model_not_found",
            f"The model_id {model_id!r} is not a batch speech-to-text model. Use one of: "
            f"{', '.join(BATCH_MODELS)}.",
            param="model_id",
        )
    if form.boolean("webhook", False):
        _refuse("webhook", "webhooks (it cannot call out); transcribe synchronously")
    for name, what in (
        ("entity_detection", "entity detection"),
        ("entity_redaction", "entity redaction"),
        ("transcript_edit", "transcript editing"),
    ):
        if form.text(name) is not None:
            _refuse(name, what)
    if form.boolean("detect_speaker_roles", False):
        _refuse("detect_speaker_roles", "speaker role detection")
    num_speakers = form.integer("num_speakers", ge=1, le=32)
    threshold = form.number("diarization_threshold", ge=0.1, le=0.4)
    diarize = form.boolean("diarize", False)
    if threshold is not None and (not diarize or num_speakers is not None):
        raise api_error(
            400,
            "invalid_parameters",
            "diarization_threshold applies only with diarize=true and no num_speakers.",
            param="diarization_threshold",
        )
    keyterms = form.texts("keyterms")
    if len(keyterms) > _MAX_KEYTERMS:
        raise invalid_field("keyterms", f"at most {_MAX_KEYTERMS} keyterms are allowed")
    for term in keyterms:
        if len(term) > _MAX_KEYTERM_CHARS or len(term.split()) > 5:
            raise invalid_field(
                "keyterms", f"each keyterm must be at most {_MAX_KEYTERM_CHARS} characters and "
                "5 words", term,
            )  # fmt: skip
        if _KEYTERM_FORBIDDEN & set(term):
            raise invalid_field("keyterms", "keyterms must not contain any of < > { } [ ] \\",
                                term)  # fmt: skip
    upload = form.upload("file")
    url_param = "source_url"
    url = form.text("source_url")
    cloud = form.text("cloud_storage_url")
    if cloud is not None:
        if url is not None:
            raise api_error(400, "invalid_parameters",
                            "Send only one of source_url and cloud_storage_url.",
                            param="cloud_storage_url")  # fmt: skip
        url, url_param = cloud, "cloud_storage_url"
    granularity = form.choice("timestamps_granularity", ("none", "word", "character"), "word")
    style = form.choice("multichannel_output_style", ("separate", "combined"), "separate")
    form.boolean("tag_audio_events", True)
    form.integer("seed", ge=0, le=2_147_483_647)
    form.choice("numbers_format", ("digits", "words"))
    return _SttRequest(
        model_id=model_id,
        options=TranscriptOptions(
            language=language_code_or_400(form.text("language_code")),
            keyterms=keyterms,
            temperature=form.number("temperature", ge=0.0, le=2.0) or 0.0,
            diarize=diarize,
            num_speakers=num_speakers,
            diarization_threshold=threshold,
            no_verbatim=form.boolean("no_verbatim", False),
        ),
        granularity=granularity or "word",  # type: ignore[arg-type]
        exports=parse_additional_formats(form.json("additional_formats")),
        file_format=form.choice("file_format", ("pcm_s16le_16", "other"), "other"),
        multichannel=form.boolean("use_multi_channel", False),
        combined=style == "combined",
        upload=upload,
        url=url,
        url_param=url_param,
    )


def _single(result: Any, job: _SttRequest, channel: int | None = None) -> dict[str, Any]:
    from ..engines.stt import to_iso639_3

    return {
        "language_code": to_iso639_3(result.language),
        "language_probability": round(float(result.language_probability), 4),
        "text": result.text,
        "words": api_words(result.words, granularity=job.granularity, channel_index=channel),
        "channel_index": channel,
        "additional_formats": render_exports(result.words, job.exports) if job.exports else None,
        "entities": None,
    }


def _run(request: Request, state: EngineState, job: _SttRequest) -> dict[str, Any]:
    """Blocking: fetch, decode and transcribe; the response body without its id."""
    with media_source(request, state, job.upload, job.url, url_param=job.url_param) as path:
        if not job.multichannel:
            samples = decode_upload(path, param="file", file_format=job.file_format)
            result = transcribe_samples(samples, job.options)
            body = _single(result, job)
            body["audio_duration_secs"] = round(result.duration, 3)
            return body
        channels = decode_upload(path, param="file", file_format=job.file_format, mono=False)
    if channels.shape[1] > _MAX_CHANNELS:
        raise api_error(
            400,
            "invalid_parameters",
            f"use_multi_channel accepts at most {_MAX_CHANNELS} channels; the file has "
            f"{channels.shape[1]}.",
            param="file",
        )
    duration = round(channels.shape[0] / STT_SAMPLE_RATE, 3)
    results = [
        transcribe_samples(np.ascontiguousarray(channels[:, i]), job.options)
        for i in range(channels.shape[1])
    ]
    if job.combined:
        merged = sorted(
            ((word, i) for i, result in enumerate(results) for word in result.words),
            key=lambda pair: pair[0].start,
        )
        words = [word for word, _ in merged]
        for word, i in merged:
            word.speaker_id = word.speaker_id or f"speaker_{i}"
        first = results[0]
        first.words = words
        first.text = " ".join(word.text for word in words)
        body = _single(first, job)
        body["audio_duration_secs"] = duration
        return body
    transcripts = [_single(result, job, channel=i) for i, result in enumerate(results)]
    return {"transcripts": transcripts, "audio_duration_secs": duration}


def _stored(state: EngineState, transcription_id: str) -> dict[str, Any]:
    validate_id(transcription_id, what="transcription_id")
    raw = state.read_file("transcripts", transcription_id)
    if raw is None:
        raise api_error(
            404,
            "transcript_not_found",
            f"No transcript with the transcription_id {transcription_id} exists.",
            param="transcription_id",
        )
    body: dict[str, Any] = json.loads(raw)
    return body


@router.post("/v1/speech-to-text", summary="Transcribe audio or video")
async def convert(
    request: Request,
    context: Annotated[RequestContext, Depends(authenticate)],
    enable_logging: bool = True,
) -> GenerationResponse:
    """Multipart upload (``file`` or ``source_url``) -> the transcript JSON."""
    state = engine_state(request)
    async with read_form(request) as form:
        job = _parse_request(form)
        generation = await admit(request, context, characters=0)
        try:
            body = await run_blocking(_run, request, state, job)
            body["transcription_id"] = new_id()
            if enable_logging:
                payload = json.dumps(body, ensure_ascii=False).encode()
                await run_blocking(state.write_file, "transcripts", body["transcription_id"],
                                   payload)  # fmt: skip
        except BaseException:
            await generation.finish(success=False)
            raise
    return GenerationResponse(
        json.dumps(body, ensure_ascii=False).encode(),
        generation=generation,
        media_type="application/json",
        headers={"request-id": context.request_id, **generation.headers},
    )


@router.get(
    "/v1/speech-to-text/transcripts/{transcription_id}", summary="Fetch a stored transcript"
)
async def get_transcript(request: Request, transcription_id: str) -> dict[str, Any]:
    """A transcript made earlier with ``enable_logging`` on (the default)."""
    return await run_blocking(_stored, engine_state(request), transcription_id)


@router.delete(
    "/v1/speech-to-text/transcripts/{transcription_id}", summary="Delete a stored transcript"
)
async def delete_transcript(request: Request, transcription_id: str) -> dict[str, str]:
    """Forget a stored transcript: ``{"status": "ok"}``."""
    state = engine_state(request)
    await run_blocking(_stored, state, transcription_id)
    await run_blocking(state.delete_file, "transcripts", transcription_id)
    return {"status": "ok"}
