"""Small, serialisable results that tasks return instead of raw audio bytes.

Audio lives where the caller pointed (a local directory or an fsspec URL); these models carry
the reference plus what the API said about the call, so they are cheap to pass between tasks,
persist for caching and show in the Prefect UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import subtitles


class Usage(BaseModel):
    """What one API call cost and how it went."""

    model_config = ConfigDict(frozen=True)

    endpoint: str
    characters: int = 0
    request_id: str | None = None
    attempts: int = 1
    latency_s: float = 0.0


class AudioAsset(BaseModel):
    """An audio file written by a task, with the facts about how it was made."""

    uri: str = Field(description="Where the audio is: a local path or an fsspec URL.")
    format: str = Field(description="The ElevenLabs output_format, e.g. mp3_44100_128.")
    sample_rate: int | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    characters: int = Field(default=0, description="Characters (credits) billed for it.")
    request_id: str | None = None
    request_ids: list[str] = Field(default_factory=list, description="Every request behind it.")
    history_item_id: str | None = None
    voice_id: str | None = None
    model_id: str | None = None
    text: str | None = Field(default=None, description="The text spoken, for speech.")
    first_byte_s: float | None = Field(
        default=None, description="Seconds until the first audio byte arrived, for streams."
    )
    usage: list[Usage] = Field(default_factory=list)

    @property
    def path(self) -> str:
        """The local path, for assets written to the local filesystem."""
        return self.uri.removeprefix("file://")


class TimedWord(BaseModel):
    """A word with its timing, and the speaker when diarized."""

    text: str
    start: float
    end: float
    speaker_id: str | None = None
    logprob: float | None = None


class Transcript(BaseModel):
    """A transcript with word timings that renders itself as subtitles."""

    text: str
    language: str | None = None
    language_probability: float | None = None
    words: list[TimedWord] = Field(default_factory=list)
    duration_s: float | None = None
    source: str | None = Field(default=None, description="The media it was made from.")
    transcription_id: str | None = None
    request_id: str | None = None

    def cues(self, **options: Any) -> list[subtitles.Cue]:
        return subtitles.build_cues([w.model_dump() for w in self.words], **options)

    def to_srt(self, **options: Any) -> str:
        """SubRip subtitles: at most 42 characters a line, 2 lines and 7 seconds a cue."""
        return subtitles.to_srt(self.cues(**options))

    def to_vtt(self, **options: Any) -> str:
        """WebVTT subtitles with the same cue rules as :meth:`to_srt`."""
        return subtitles.to_vtt(self.cues(**options))

    def to_txt(self) -> str:
        return self.text.strip() + "\n"

    @property
    def speakers(self) -> list[str]:
        seen: dict[str, None] = {}
        for word in self.words:
            if word.speaker_id:
                seen.setdefault(word.speaker_id, None)
        return list(seen)

    def shifted(self, offset_s: float) -> Transcript:
        """The same transcript with every timing moved by ``offset_s`` seconds."""
        words = [
            w.model_copy(update={"start": w.start + offset_s, "end": w.end + offset_s})
            for w in self.words
        ]
        return self.model_copy(update={"words": words})

    @classmethod
    def join(
        cls, parts: Sequence[tuple[float, Transcript]], *, source: str | None = None
    ) -> Transcript:
        """Stitches transcripts of consecutive chunks, each given with its start offset."""
        words: list[TimedWord] = []
        texts: list[str] = []
        languages: list[str] = []
        duration = 0.0
        for offset, part in parts:
            shifted = part.shifted(offset)
            words.extend(shifted.words)
            if part.text.strip():
                texts.append(part.text.strip())
            if part.language:
                languages.append(part.language)
            duration = max(duration, offset + (part.duration_s or 0.0))
        language = max(set(languages), key=languages.count) if languages else None
        return cls(
            text=" ".join(texts),
            language=language,
            words=words,
            duration_s=duration or None,
            source=source,
        )


class SpeechWithTimestamps(BaseModel):
    """Speech audio plus its character-level alignment and derived word timings."""

    audio: AudioAsset
    characters: list[str] = Field(default_factory=list)
    character_start_times_seconds: list[float] = Field(default_factory=list)
    character_end_times_seconds: list[float] = Field(default_factory=list)

    @property
    def transcript(self) -> Transcript:
        words = subtitles.words_from_alignment(
            self.characters, self.character_start_times_seconds, self.character_end_times_seconds
        )
        return Transcript(
            text="".join(self.characters),
            words=[TimedWord(**w) for w in words],
            duration_s=self.audio.duration_s,
        )

    def to_srt(self) -> str:
        return self.transcript.to_srt()

    def to_vtt(self) -> str:
        return self.transcript.to_vtt()


class VoiceInfo(BaseModel):
    """A voice as the API describes it, reduced to what pipelines use."""

    voice_id: str
    name: str | None = None
    category: str | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    preview_url: str | None = None


class VoicePreviewAsset(BaseModel):
    """One voice-design preview written to a file."""

    generated_voice_id: str
    audio: AudioAsset
    language: str | None = None


class DubbingJob(BaseModel):
    """A dubbing job and where it stands."""

    dubbing_id: str
    name: str | None = None
    status: str = "dubbing"
    source_language: str | None = None
    target_languages: list[str] = Field(default_factory=list)
    expected_duration_s: float | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("dubbed", "failed")


class DubbedMedia(BaseModel):
    """A dubbed file in one language, with its subtitles when fetched."""

    dubbing_id: str
    language: str
    media: AudioAsset
    subtitles_uri: str | None = None
