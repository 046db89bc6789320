"""Result models of the media tasks: files that are not plain audio, chunks and time-fits.

Like the models in :mod:`prefect_elevenlabs.results`, they carry a reference (a path or fsspec
URL) and facts about the file, never the bytes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .results import AudioAsset

__all__ = ["AudioChunk", "FittedAudio", "MediaFile"]


class MediaFile(BaseModel):
    """A media file written by a task, typically a video with new audio or subtitles."""

    uri: str = Field(description="Where the file is: a local path or an fsspec URL.")
    container: str = Field(description="The container format, from the file suffix (mp4, mkv...).")
    duration_s: float | None = None
    size_bytes: int | None = None
    has_video: bool = False
    has_audio: bool = False
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None

    @property
    def path(self) -> str:
        """The local path, for files written to the local filesystem."""
        return self.uri.removeprefix("file://")


class AudioChunk(BaseModel):
    """One piece of a longer recording, with where it sits in the original."""

    audio: AudioAsset
    start_s: float = Field(description="Start of the piece in the original, in seconds.")
    end_s: float = Field(description="End of the piece in the original, in seconds.")

    @property
    def duration_s(self) -> float:
        """Length of the piece in seconds."""
        return self.end_s - self.start_s


class FittedAudio(BaseModel):
    """Audio whose tempo was changed to fill a given duration."""

    audio: AudioAsset
    tempo: float = Field(description="Speed factor applied; above 1 is faster (shorter).")
    required_tempo: float = Field(description="The factor that would have fitted exactly.")
    clamped: bool = Field(
        default=False,
        description="The needed tempo was out of bounds, so the audio was padded or cut.",
    )
