"""Parameter models shared by the flows; the Prefect UI renders each as a form.

Every field carries a description (shown under the input) and its limits (``ge``/``le``
become validated number inputs, ``Literal`` becomes a dropdown).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._scripts import ScriptError, ScriptItem, validate_id

__all__ = [
    "DubbingApiOptions",
    "MixOptions",
    "MusicBrief",
    "ScriptItem",
    "SegmentEdit",
    "SoundEffectBrief",
    "TranscriptFormat",
    "TranscriptionOptions",
    "VoiceSettingsInput",
]

TranscriptFormat = Literal["json", "srt", "vtt", "txt"]
"""Files the transcribe flow can write per input."""


def _checked_id(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return validate_id(value, what)
    except ScriptError as exc:  # pydantic reports ValueErrors as validation errors
        raise ValueError(exc.message) from None


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VoiceSettingsInput(_Form):
    """How a voice delivers the text; empty fields keep the voice's own settings."""

    stability: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Lower is more expressive, higher steadier."
    )
    similarity_boost: float | None = Field(
        default=None, ge=0.0, le=1.0, description="How closely to keep to the original voice."
    )
    style: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Style exaggeration (costs latency)."
    )
    use_speaker_boost: bool | None = Field(default=None, description="Boost similarity.")
    speed: float | None = Field(default=None, ge=0.7, le=1.2, description="Speaking rate.")


class TranscriptionOptions(_Form):
    """How speech is recognised."""

    model_id: str = Field(default="scribe_v1", description="The speech-to-text model.")
    language_code: str | None = Field(
        default=None,
        description="ISO 639-1 or 639-3 code of the spoken language; empty detects it.",
    )
    diarize: bool = Field(default=False, description="Tell speakers apart (speaker_0, ...).")
    num_speakers: int | None = Field(
        default=None, ge=1, le=32, description="Most speakers expected, when diarizing."
    )
    keyterms: list[str] = Field(
        default_factory=list,
        description="Words and names to favour (product names, jargon); up to 100.",
        max_length=100,
    )
    tag_audio_events: bool = Field(
        default=False, description="Mark laughter, applause and the like in the transcript."
    )


class SegmentEdit(_Form):
    """A hand-corrected translation of one segment: only that segment is spoken again."""

    language: str = Field(description="The target language the edit is for, e.g. 'es'.")
    index: int = Field(ge=0, description="The segment's position in <stem>.<lang>.segments.json.")
    text: str = Field(min_length=1, description="The text to speak instead of the translation.")


class MixOptions(_Form):
    """How the translated speech is fitted and laid over the original (compose strategy)."""

    model_id: str = Field(
        default="eleven_multilingual_v2", description="TTS model for the translated speech."
    )
    duck_db: float = Field(
        default=-18.0, ge=-60.0, le=0.0, description="Gain of the original while anyone speaks."
    )
    background_gain_db: float = Field(
        default=0.0, ge=-60.0, le=12.0, description="Gain of the original throughout."
    )
    min_tempo: float = Field(
        default=0.9, ge=0.5, le=1.0, description="Slowest a segment may be stretched."
    )
    max_tempo: float = Field(
        default=1.6, ge=1.0, le=4.0, description="Fastest a segment may be sped up to fit."
    )
    segment_silence_s: float = Field(
        default=0.6,
        gt=0.0,
        le=5.0,
        description="A pause at least this long starts a new segment.",
    )
    max_segment_s: float = Field(
        default=12.0, gt=1.0, le=60.0, description="Longest segment spoken in one request."
    )


class DubbingApiOptions(_Form):
    """Settings of ElevenLabs' dubbing service (dubbing_api strategy)."""

    num_speakers: int = Field(
        default=0, ge=0, le=32, description="Speakers in the media; 0 detects them."
    )
    watermark: bool = Field(default=False, description="Add a watermark to video output.")
    drop_background_audio: bool = Field(
        default=False, description="Leave out the original's background sound."
    )
    highest_resolution: bool = Field(default=False, description="Keep the input's resolution.")
    poll_interval_s: float = Field(
        default=5.0, ge=0.1, le=300.0, description="Seconds between status checks."
    )
    timeout_s: float = Field(
        default=3600.0, gt=0.0, description="Give up on a job that takes longer than this."
    )


class SoundEffectBrief(_Form):
    """One sound effect to generate."""

    id: str | None = Field(
        default=None, description="Names the output file; derived from the text when empty."
    )
    text: str = Field(min_length=1, description="What it should sound like.")
    duration_seconds: float | None = Field(
        default=None, ge=0.5, le=30.0, description="Length; empty lets the model choose."
    )
    loop: bool = Field(default=False, description="Make it loop seamlessly.")
    prompt_influence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="How literally to follow the text."
    )

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        return _checked_id(value, "sound effect")


class MusicBrief(_Form):
    """One piece of music to compose."""

    id: str | None = Field(
        default=None, description="Names the output file; derived from the prompt when empty."
    )
    prompt: str = Field(min_length=1, description="Genre, mood, instruments, tempo...")
    music_length_ms: int | None = Field(
        default=None, ge=3000, le=300_000, description="Length in milliseconds."
    )

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        return _checked_id(value, "music brief")
