"""Typed request and response shapes of the ElevenLabs API.

Request models forbid unknown fields, so a misspelt argument fails before anything is sent, and
carry the documented ranges as constraints. Response models accept fields they do not know (the
API adds fields often) and carry the call's :class:`ResponseMeta` in ``meta``, which is left out
of dumps so results stay comparable and cacheable.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from ._transport import ResponseMeta

# --------------------------------------------------------------------------------------------
# Bases


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused, names are the API's own."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ApiModel(BaseModel):
    """Base of nested response objects: unknown fields are kept, not refused."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class ResponseModel(ApiModel):
    """Base of top-level responses: adds the response headers as ``meta`` (never dumped)."""

    meta: ResponseMeta | None = Field(default=None, exclude=True, repr=False)


class StatusResponse(ResponseModel):
    """The ``{"status": "ok"}`` answer of deletes and edits."""

    status: str | None = None


# --------------------------------------------------------------------------------------------
# Voice settings and text to speech


class VoiceSettings(BaseModel):
    """Per-request voice settings; every field optional, ranges as the API documents them.

    Example:
        ``VoiceSettings(stability=0.4, similarity_boost=0.8, speed=1.1)``
    """

    model_config = ConfigDict(extra="allow")

    stability: float | None = Field(default=None, ge=0.0, le=1.0)
    similarity_boost: float | None = Field(default=None, ge=0.0, le=1.0)
    style: float | None = Field(default=None, ge=0.0, le=1.0)
    use_speaker_boost: bool | None = None
    speed: float | None = Field(default=None, ge=0.7, le=1.2)
    clone_strength: float | None = Field(default=None, ge=0.0, le=1.0)

    @classmethod
    def from_api(cls, data: Any) -> VoiceSettings:
        """Reads settings the server returned, keeping values outside today's documented ranges."""
        try:
            return cls.model_validate(data)
        except ValidationError:
            if isinstance(data, Mapping):
                return cls.model_construct(**dict(data))
            raise


def _lenient_settings(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        if isinstance(value, Mapping):
            return VoiceSettings.model_construct(**dict(value))
        raise


# Settings inside server responses: the ranges guard requests, not what the server reports.
ReturnedVoiceSettings = Annotated[VoiceSettings | None, WrapValidator(_lenient_settings)]


class PronunciationDictionaryLocator(RequestModel):
    """A pronunciation dictionary to apply; ``version_id=None`` means its latest version."""

    pronunciation_dictionary_id: str
    version_id: str | None = None


class AudioEffects(RequestModel):
    """Post-processing effects for text to speech (ids from ``/v1/audio-effects/catalog``)."""

    model_config = ConfigDict(extra="allow")

    filter_preset_id: str | None = None
    distance: float | None = Field(default=None, ge=0.0, le=1.0)
    environment_id: str | None = None
    background_noise_id: str | None = None
    send_level: float | None = Field(default=None, ge=0.0, le=1.0)
    pan: float | None = Field(default=None, ge=-1.0, le=1.0)


class TextToSpeechRequest(RequestModel):
    """The JSON body shared by the four text-to-speech HTTP endpoints."""

    text: str = Field(min_length=1)
    model_id: str | None = None
    language_code: str | None = None
    voice_settings: VoiceSettings | None = None
    pronunciation_dictionary_locators: list[PronunciationDictionaryLocator] | None = Field(
        default=None, max_length=3
    )
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    previous_text: str | None = None
    next_text: str | None = None
    previous_request_ids: list[str] | None = Field(default=None, max_length=3)
    next_request_ids: list[str] | None = Field(default=None, max_length=3)
    use_pvc_as_ivc: bool | None = None
    apply_text_normalization: Literal["auto", "on", "off"] | None = None
    apply_language_text_normalization: bool | None = None
    audio_effects: AudioEffects | None = None


class Alignment(ApiModel):
    """Per-character timings, in seconds from the start of the audio."""

    characters: list[str] = Field(default_factory=list)
    character_start_times_seconds: list[float] = Field(default_factory=list)
    character_end_times_seconds: list[float] = Field(default_factory=list)


def _write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


class AudioWithTimestamps(ResponseModel):
    """Speech as base64 audio plus character alignment of the original and normalised text."""

    audio_base64: str = ""
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None

    def audio_bytes(self) -> bytes:
        """The decoded audio."""
        return base64.b64decode(self.audio_base64)

    def save_audio(self, path: str | os.PathLike[str]) -> Path:
        """Writes the decoded audio to ``path`` (atomically) and returns the path."""
        return _write_bytes(path, self.audio_bytes())


class TimestampChunk(ApiModel):
    """One line of the streamed-with-timestamps response: a piece of audio and its alignment."""

    audio_base64: str | None = None
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None

    def audio_bytes(self) -> bytes:
        """The decoded audio of this chunk (empty when the chunk carries none)."""
        return base64.b64decode(self.audio_base64) if self.audio_base64 else b""


class AudioDownload(BaseModel):
    """Audio streamed to a destination: where it went, how big it is and what the API said."""

    path: Path | None = Field(default=None, description="The file written; None for a file object.")
    bytes_written: int
    content_type: str | None = None
    meta: ResponseMeta | None = Field(default=None, exclude=True, repr=False)

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` header (usable in ``previous_request_ids``)."""
        return self.meta.request_id if self.meta else None

    @property
    def character_cost(self) -> int | None:
        """Characters (credits) billed, from the ``character-cost`` header."""
        return self.meta.character_cost if self.meta else None

    @property
    def song_id(self) -> str | None:
        """The ``song-id`` header of music responses."""
        return self.meta.extra.get("song-id") if self.meta else None


# --------------------------------------------------------------------------------------------
# Speech to text


class AdditionalFormatRequest(RequestModel):
    """An extra export format for a transcript (``additional_formats`` item)."""

    format: Literal["docx", "html", "pdf", "segmented_json", "srt", "txt"]
    include_speakers: bool | None = None
    include_timestamps: bool | None = None
    segment_on_silence_longer_than_s: float | None = None
    max_segment_duration_s: float | None = None
    max_segment_chars: int | None = None
    max_characters_per_line: int | None = None


class SpeechToTextRequest(RequestModel):
    """The checked non-file fields of a batch transcription (sent as multipart form fields)."""

    model_id: str = Field(min_length=1)
    language_code: str | None = None
    tag_audio_events: bool | None = None
    num_speakers: int | None = Field(default=None, ge=1, le=32)
    diarize: bool | None = None
    diarization_threshold: float | None = Field(default=None, ge=0.1, le=0.4)
    detect_speaker_roles: bool | None = None
    use_speaker_library: bool | None = None
    timestamps_granularity: Literal["none", "word", "character"] | None = None
    file_format: Literal["pcm_s16le_16", "other"] | None = None
    webhook: bool | None = None
    webhook_id: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    use_multi_channel: bool | None = None
    multichannel_output_style: Literal["separate", "combined"] | None = None
    entity_redaction_mode: Literal["redacted", "entity_type", "enumerated_entity_type"] | None = (
        None
    )
    keyterms: list[str] | None = Field(default=None, max_length=1000)
    secondary_language_codes: list[str] | None = None
    numbers_format: Literal["digits", "words"] | None = None
    no_verbatim: bool | None = None
    transcript_edit: str | None = Field(default=None, max_length=2000)
    additional_formats: list[AdditionalFormatRequest] | None = None


class TranscriptCharacter(ApiModel):
    """A character with its timing (character granularity)."""

    text: str = ""
    start: float | None = None
    end: float | None = None


class TranscriptWord(ApiModel):
    """A word, spacing or audio event of a transcript, with timing and speaker."""

    text: str = ""
    start: float | None = None
    end: float | None = None
    type: str | None = None
    speaker_id: str | None = None
    logprob: float | None = None
    characters: list[TranscriptCharacter] | None = None
    channel_index: int | None = None


class AdditionalFormat(ApiModel):
    """A transcript export the server rendered (srt, txt, docx, ...)."""

    requested_format: str | None = None
    file_extension: str | None = None
    content_type: str | None = None
    is_base64_encoded: bool = False
    content: str = ""

    def content_bytes(self) -> bytes:
        """The export's bytes, decoded from base64 when the server encoded it."""
        return base64.b64decode(self.content) if self.is_base64_encoded else self.content.encode()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the export to ``path``."""
        return _write_bytes(path, self.content_bytes())


class TranscriptEntity(ApiModel):
    """A detected entity (PII and the like) with its character span in ``text``."""

    text: str = ""
    entity_type: str | None = None
    start_char: int | None = None
    end_char: int | None = None


class SpeechToTextResult(ResponseModel):
    """A batch transcription.

    The API answers in one of three shapes, all read into this model: one transcript (``text``,
    ``words``...), one per channel (``transcripts``), or a webhook acknowledgement (``message``).
    """

    text: str = ""
    language_code: str | None = None
    language_probability: float | None = None
    words: list[TranscriptWord] = Field(default_factory=list)
    channel_index: int | None = None
    additional_formats: list[AdditionalFormat | None] | None = None
    transcription_id: str | None = None
    entities: list[TranscriptEntity] | None = None
    audio_duration_secs: float | None = None
    edited_transcript: Any = None
    transcripts: list[SpeechToTextResult] | None = None
    message: str | None = None
    request_id: str | None = None


# --------------------------------------------------------------------------------------------
# Dubbing


class DubbingCreated(ResponseModel):
    """A dubbing job was accepted."""

    dubbing_id: str
    expected_duration_sec: float | None = None


class DubbingMediaMetadata(ApiModel):
    """The dubbed media's type and duration in seconds."""

    content_type: str | None = None
    duration: float | None = None


class DubbingMetadata(ResponseModel):
    """The state of a dubbing job; ``status`` is ``dubbing``, ``dubbed`` or ``failed``."""

    dubbing_id: str
    name: str | None = None
    status: str | None = None
    source_language: str | None = None
    target_languages: list[str] = Field(default_factory=list)
    editable: bool | None = None
    created_at: str | None = None
    media_metadata: DubbingMediaMetadata | None = None
    error: str | None = None

    @property
    def is_done(self) -> bool:
        """The dub finished and its media can be downloaded."""
        return self.status == "dubbed"

    @property
    def is_failed(self) -> bool:
        """The dub failed; ``error`` says why."""
        return self.status == "failed"


class DubbingPage(ResponseModel):
    """One page of dubbing jobs."""

    dubs: list[DubbingMetadata] = Field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False


# --------------------------------------------------------------------------------------------
# Voices and voice design


class VoiceSample(ApiModel):
    """An audio sample a voice was made from."""

    sample_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    hash: str | None = None
    duration_secs: float | None = None


class Voice(ResponseModel):
    """A voice: premade, cloned, designed or professional."""

    voice_id: str
    name: str | None = None
    category: str | None = None
    description: str | None = None
    labels: dict[str, str | None] = Field(default_factory=dict)
    preview_url: str | None = None
    samples: list[VoiceSample] | None = None
    settings: ReturnedVoiceSettings = None
    fine_tuning: dict[str, Any] | None = None
    available_for_tiers: list[str] | None = None
    high_quality_base_model_ids: list[str] | None = None
    verified_languages: list[Any] | None = None
    is_owner: bool | None = None
    is_legacy: bool | None = None
    created_at_unix: int | None = None


class VoicesPage(ResponseModel):
    """A page of voices (``/v2/voices``) or the whole list (``/v1/voices``)."""

    voices: list[Voice] = Field(default_factory=list)
    has_more: bool = False
    total_count: int | None = None
    next_page_token: str | None = None


class VoiceCreated(ResponseModel):
    """An instant voice clone was created."""

    voice_id: str
    requires_verification: bool = False


_MEDIA_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/pcm": "pcm",
    "audio/basic": "ulaw",
    "audio/flac": "flac",
}


def extension_for(media_type: str | None, default: str = "mp3") -> str:
    """A file extension for an audio media type."""
    if not media_type:
        return default
    return _MEDIA_EXTENSIONS.get(media_type.split(";")[0].strip().lower(), default)


class VoicePreview(ApiModel):
    """A generated voice preview; note the API's key is ``audio_base_64`` here."""

    generated_voice_id: str
    audio_base_64: str | None = None
    media_type: str | None = None
    duration_secs: float | None = None
    language: str | None = None

    def audio_bytes(self) -> bytes:
        """The decoded preview audio (empty when previews were requested as streams)."""
        return base64.b64decode(self.audio_base_64) if self.audio_base_64 else b""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the decoded preview audio to ``path``."""
        if not self.audio_base_64:
            raise ValueError(
                f"preview {self.generated_voice_id} has no inline audio (stream_previews=true): "
                "fetch it with client.text_to_voice.stream(generated_voice_id)"
            )
        return _write_bytes(path, self.audio_bytes())


class VoiceDesignResult(ResponseModel):
    """Voice previews generated from a description, and the text they speak."""

    previews: list[VoicePreview] = Field(default_factory=list)
    text: str | None = None

    def save_previews(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Writes each preview to ``directory/<generated_voice_id>.<ext>``; returns the paths."""
        folder = Path(directory)
        paths = []
        for preview in self.previews:
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", preview.generated_voice_id).lstrip(".")
            stem = stem or "preview"
            paths.append(preview.save(folder / f"{stem}.{extension_for(preview.media_type)}"))
        return paths


class VoiceDesignRequest(RequestModel):
    """The JSON body of ``/v1/text-to-voice/design`` and its legacy ``create-previews`` form."""

    voice_description: str = Field(min_length=1)
    model_id: str | None = None
    text: str | None = None
    auto_generate_text: bool | None = None
    loudness: float | None = Field(default=None, ge=-1.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=100.0)
    quality: float | None = Field(default=None, ge=-1.0, le=1.0)
    stream_previews: bool | None = None
    should_enhance: bool | None = None
    remixing_session_id: str | None = None
    remixing_session_iteration_id: str | None = None
    reference_audio_base64: str | None = None
    prompt_strength: float | None = Field(default=None, ge=0.0, le=1.0)


class CreateVoiceRequest(RequestModel):
    """The JSON body of ``/v1/text-to-voice``: keep a generated preview as a voice."""

    voice_name: str = Field(min_length=1)
    voice_description: str = Field(min_length=1)
    generated_voice_id: str = Field(min_length=1)
    labels: dict[str, str | None] | None = None
    played_not_selected_voice_ids: list[str] | None = None


# --------------------------------------------------------------------------------------------
# Models, user, subscription


class ModelLanguage(ApiModel):
    """A language a model speaks."""

    language_id: str | None = None
    name: str | None = None


class Model(ResponseModel):
    """A model and what it can do (``/v1/models``)."""

    model_id: str
    name: str | None = None
    description: str | None = None
    can_do_text_to_speech: bool | None = None
    can_do_voice_conversion: bool | None = None
    can_use_style: bool | None = None
    can_use_speaker_boost: bool | None = None
    can_be_finetuned: bool | None = None
    token_cost_factor: float | None = None
    maximum_text_length_per_request: int | None = None
    languages: list[ModelLanguage] = Field(default_factory=list)
    concurrency_group: str | None = None


class Subscription(ResponseModel):
    """The plan and this period's credit usage (credits are reported in ``character_*``)."""

    tier: str | None = None
    status: str | None = None
    character_count: int = 0
    character_limit: int = 0
    next_character_count_reset_unix: int | None = None
    can_extend_character_limit: bool | None = None
    max_credit_limit_extension: int | str | None = None
    voice_slots_used: int | None = None
    voice_limit: int | None = None
    professional_voice_limit: int | None = None
    can_use_instant_voice_cloning: bool | None = None
    can_use_professional_voice_cloning: bool | None = None
    currency: str | None = None
    billing_period: str | None = None

    @property
    def characters_remaining(self) -> int:
        """Credits left this period (never negative)."""
        return max(0, self.character_limit - self.character_count)


class User(ResponseModel):
    """The account behind the API key."""

    user_id: str | None = None
    workspace_id: str | None = None
    subscription: Subscription | None = None
    first_name: str | None = None
    is_new_user: bool | None = None
    created_at: int | None = None
    seat_type: str | None = None


# --------------------------------------------------------------------------------------------
# History


class HistoryItem(ResponseModel):
    """A past generation kept in the account's history."""

    history_item_id: str
    request_id: str | None = None
    voice_id: str | None = None
    voice_name: str | None = None
    voice_category: str | None = None
    model_id: str | None = None
    text: str | None = None
    date_unix: int | None = None
    character_count_change_from: int | None = None
    character_count_change_to: int | None = None
    content_type: str | None = None
    state: str | None = None
    settings: dict[str, Any] | None = None
    source: str | None = None
    output_format: str | None = None


class HistoryPage(ResponseModel):
    """A page of history items; pass ``last_history_item_id`` as the next page's cursor."""

    history: list[HistoryItem] = Field(default_factory=list)
    last_history_item_id: str | None = None
    has_more: bool = False
    scanned_until: int | None = None


# --------------------------------------------------------------------------------------------
# Forced alignment


class AlignedCharacter(ApiModel):
    """A character of the aligned text with its start and end, in seconds."""

    text: str = ""
    start: float = 0.0
    end: float = 0.0


class AlignedWord(ApiModel):
    """A word of the aligned text with its timing and alignment loss."""

    text: str = ""
    start: float = 0.0
    end: float = 0.0
    loss: float | None = None


class ForcedAlignment(ResponseModel):
    """Known text aligned to audio; ``loss`` is the alignment error (lower is better)."""

    characters: list[AlignedCharacter] = Field(default_factory=list)
    words: list[AlignedWord] = Field(default_factory=list)
    loss: float | None = None


# --------------------------------------------------------------------------------------------
# Conversational AI


class ConversationSummary(ApiModel):
    """One conversation in a listing."""

    conversation_id: str
    agent_id: str | None = None
    agent_name: str | None = None
    start_time_unix_secs: int | None = None
    call_duration_secs: float | None = None
    message_count: int | None = None
    status: str | None = None
    call_successful: str | None = None
    transcript_summary: str | None = None
    call_summary_title: str | None = None
    main_language: str | None = None
    direction: str | None = None


class ConversationsPage(ResponseModel):
    """A page of conversations; pass ``next_cursor`` as the next page's ``cursor``."""

    conversations: list[ConversationSummary] = Field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False


class ConversationTurn(ApiModel):
    """One turn of a conversation transcript; ``message`` is None for tool-only turns."""

    role: str
    message: str | None = None
    time_in_call_secs: float = 0.0
    tool_calls: list[Any] | None = None
    tool_results: list[Any] | None = None
    interrupted: bool | None = None
    source_medium: str | None = None


class Conversation(ResponseModel):
    """A conversation with its transcript, metadata and analysis."""

    conversation_id: str
    agent_id: str | None = None
    status: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    has_audio: bool | None = None
    has_user_audio: bool | None = None
    has_response_audio: bool | None = None
    transcript: list[ConversationTurn] = Field(default_factory=list)

    def messages(self) -> list[ConversationTurn]:
        """The spoken turns (with a message), in the order they happened."""
        spoken = [turn for turn in self.transcript if turn.message is not None]
        return sorted(spoken, key=lambda turn: turn.time_in_call_secs)


# --------------------------------------------------------------------------------------------
# Sound effects and music


class SoundEffectRequest(RequestModel):
    """The JSON body of ``/v1/sound-generation``."""

    text: str = Field(min_length=1)
    duration_seconds: float | None = Field(default=None, ge=0.5, le=30.0)
    prompt_influence: float | None = Field(default=None, ge=0.0, le=1.0)
    loop: bool | None = None
    model_id: str | None = None


class MusicSection(ApiModel):
    """A section of a ``music_v1`` composition plan."""

    section_name: str
    positive_local_styles: list[str] = Field(default_factory=list)
    negative_local_styles: list[str] = Field(default_factory=list)
    duration_ms: int = Field(ge=3000, le=120000)
    lines: list[str] = Field(default_factory=list)
    source_from: dict[str, Any] | None = None


class CompositionPlan(ResponseModel):
    """A song's structure: global styles and sections (music_v1) or chunks (music_v2 models)."""

    positive_global_styles: list[str] | None = None
    negative_global_styles: list[str] | None = None
    sections: list[MusicSection] | None = None
    chunks: list[dict[str, Any]] | None = None


class MusicRequest(RequestModel):
    """The JSON body of the music compose family (compose, stream, detailed)."""

    prompt: str | None = None
    composition_plan: CompositionPlan | None = None
    music_length_ms: int | None = Field(default=None, ge=3000, le=600000)
    model_id: str | None = None
    seed: int | None = None
    force_instrumental: bool | None = None
    respect_sections_durations: bool | None = None
    store_for_inpainting: bool | None = None
    finetune_id: str | None = None
    sign_with_c2pa: bool | None = None
    with_timestamps: bool | None = None
    with_waveform_visual: bool | None = None


class SongMetadata(ApiModel):
    """What the music model says about the song it made."""

    title: str | None = None
    description: str | None = None
    genres: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    is_explicit: bool | None = None


class WordTimestamp(ApiModel):
    """A sung word with its timing in milliseconds."""

    word: str = ""
    start_ms: float | None = None
    end_ms: float | None = None


class DetailedComposition(ResponseModel):
    """A composed song written to disk, with its plan, metadata and optional timings."""

    audio: AudioDownload
    composition_plan: CompositionPlan | None = None
    song_metadata: SongMetadata | None = None
    words_timestamps: list[WordTimestamp] | None = None
    waveform_visual: list[int] | None = None
    filename: str | None = None
    song_id: str | None = None
