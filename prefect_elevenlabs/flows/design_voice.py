"""The ``design_voice_flow``: a description in, three voice previews out, optionally one saved."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError
from ..results import VoiceInfo, VoicePreviewAsset
from ..tasks._policy import run_logger
from ..tasks.artifacts import artifact_key, publish_usage
from ..tasks.voices import (
    DEFAULT_DESIGN_MODEL,
    DEFAULT_PREVIEW_FORMAT,
    create_voice_from_preview,
    design_voice,
)
from ._runtime import resolve_credentials, result_of, task_runner

__all__ = ["VoiceDesignResult", "design_voice_flow"]


class VoiceDesignResult(BaseModel):
    """The previews of a design, and the voice kept from one of them when asked."""

    description: str
    previews: list[VoicePreviewAsset] = Field(default_factory=list)
    voice: VoiceInfo | None = Field(default=None, description="The saved voice, with save_as.")
    chosen_preview: int | None = None


def _table(previews: list[VoicePreviewAsset], chosen: int | None) -> list[dict[str, object]]:
    return [
        {
            "preview": index,
            "file": preview.audio.uri,
            "duration_s": round(preview.audio.duration_s or 0.0, 2),
            "generated_voice_id": preview.generated_voice_id,
            "language": preview.language or "",
            "saved": "yes" if index == chosen else "",
        }
        for index, preview in enumerate(previews)
    ]


@flow(name="Design a voice", task_runner=task_runner())
def design_voice_flow(
    description: str,
    output_dir: str = "voice-previews",
    text: str | None = None,
    seed: int | None = None,
    model_id: str = DEFAULT_DESIGN_MODEL,
    output_format: str = DEFAULT_PREVIEW_FORMAT,
    save_as: str | None = None,
    chosen_preview: int = 0,
    credentials: ElevenLabsCredentials | None = None,
) -> VoiceDesignResult:
    """Designs a voice from a description and writes its previews; can keep one as a voice.

    The previews (usually three) are written to ``output_dir`` and listed in a table artifact
    with their ``generated_voice_id``. Listen, then run again with ``save_as="Name"`` and
    ``chosen_preview`` set to the one you like: the design is cached, so the previews are the
    same ones and cost nothing the second time.

    Args:
        description: What the voice should sound like (20-1000 characters).
        output_dir: A folder or fsspec URL for the preview files.
        text: What the previews say (100-1000 characters); generated when empty.
        seed: Best-effort determinism.
        model_id: The voice design model.
        output_format: Format of the preview files.
        save_as: Create a voice with this name from the chosen preview.
        chosen_preview: Index of the preview to save (0 = the first).
        credentials: ElevenLabs credentials; empty loads the block named by
            ELEVENLABS_CREDENTIALS_BLOCK, else reads ELEVENLABS_API_KEY/ELEVENLABS_BASE_URL.

    Example:
        ```python
        from prefect_elevenlabs import ElevenLabsCredentials
        from prefect_elevenlabs.flows import design_voice_flow

        result = design_voice_flow(
            "A warm, slow narrator in his sixties with a soft Scottish accent.",
            output_dir="previews",
            save_as="Narrator",
            credentials=ElevenLabsCredentials(base_url="local"),
        )
        print(result.voice.voice_id)
        ```
    """
    logger = run_logger()
    credentials = resolve_credentials(credentials)
    if save_as is not None and not save_as.strip():
        raise InvalidRequestError("save_as must be a voice name, not empty", param="save_as")
    previews: list[VoicePreviewAsset] = result_of(
        design_voice.submit(
            description,
            credentials,
            text=text,
            seed=seed,
            output_dir=output_dir,
            model_id=model_id,
            output_format=output_format,
        )
    )
    for index, preview in enumerate(previews):
        logger.info(
            "preview %d: %s (%.1f s, %s)",
            index,
            preview.audio.uri,
            preview.audio.duration_s or 0.0,
            preview.generated_voice_id,
        )
    result = VoiceDesignResult(description=description, previews=previews)
    if save_as is not None:
        if not 0 <= chosen_preview < len(previews):
            raise InvalidRequestError(
                f"chosen_preview {chosen_preview} does not exist: the design has previews 0 to "
                f"{len(previews) - 1}",
                param="chosen_preview",
            )
        voice: VoiceInfo = result_of(
            create_voice_from_preview.submit(
                previews[chosen_preview].generated_voice_id,
                save_as.strip(),
                description,
                credentials,
            )
        )
        logger.info("saved preview %d as voice %r: %s", chosen_preview, voice.name, voice.voice_id)
        result.voice = voice
        result.chosen_preview = chosen_preview
    _publish_table(result)
    publish_usage(previews, key="voice-design-usage")
    return result


def _publish_table(result: VoiceDesignResult) -> None:
    from prefect.artifacts import create_table_artifact

    description = f"Previews for: _{result.description}_"
    if result.voice is not None:
        description += f" — saved as **{result.voice.name}** (`{result.voice.voice_id}`)"
    try:
        create_table_artifact(
            table=_table(result.previews, result.chosen_preview),
            key=artifact_key("voice design previews"),
            description=description,
            _sync=True,  # type: ignore[call-arg]
        )
    except Exception as exc:
        run_logger().warning("could not publish the voice design table: %s", exc)
