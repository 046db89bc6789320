"""Voice tasks: list the account's voices, clone one from samples, design one from a description.

Designing is a two-step affair, as in the API: :func:`design_voice` writes three previews
(cached, so re-running a flow does not pay for new ones), a person or a rule picks one, and
:func:`create_voice_from_preview` keeps it as a voice in the account.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from .. import media as _media
from ..blocks import ElevenLabsCredentials
from ..errors import InvalidRequestError, MediaError
from ..results import AudioAsset, Usage, VoiceInfo, VoicePreviewAsset
from . import _storage
from ._policy import RETRY_OPTIONS, api_call, generation_cache, run_logger
from ._task import task
from .media import media_input

__all__ = [
    "DEFAULT_DESIGN_MODEL",
    "DEFAULT_PREVIEW_FORMAT",
    "clone_voice",
    "create_voice_from_preview",
    "delete_voice",
    "design_voice",
    "generate_voice_previews",
    "list_voices",
    "preview_file_names",
]

DEFAULT_DESIGN_MODEL = "eleven_multilingual_ttv_v2"
DEFAULT_PREVIEW_FORMAT = "mp3_44100_192"
PREVIEWS_PER_DESIGN = 3
"""The API answers every design request with three previews."""


def voice_info(voice: Any) -> VoiceInfo:
    """The client's voice model reduced to :class:`VoiceInfo` (labels without empty values)."""
    return VoiceInfo(
        voice_id=voice.voice_id,
        name=voice.name,
        category=voice.category,
        description=voice.description,
        labels={k: str(v) for k, v in (voice.labels or {}).items() if v is not None},
        preview_url=voice.preview_url,
    )


# --------------------------------------------------------------------------------------------
# Listing and deleting


@task(name="ElevenLabs list voices", **RETRY_OPTIONS)
async def list_voices(
    credentials: ElevenLabsCredentials,
    search: str | None = None,
    category: str | None = None,
    page_size: int = 100,
) -> list[VoiceInfo]:
    """Lists every voice the account can use, following all pages.

    Args:
        credentials: The ElevenLabs credentials block.
        search: Text matched against name, description, labels and category.
        category: premade, cloned, generated or professional.
        page_size: Voices per request (1-100).

    Example:
        ```python
        british = [v for v in list_voices(credentials) if v.labels.get("accent") == "british"]
        ```
    """
    async with api_call(credentials) as client:
        voices = [
            voice_info(voice)
            async for voice in client.voices.iter_all(
                search=search, category=category, page_size=page_size
            )
        ]
    run_logger().info("found %d voices", len(voices))
    return voices


@task(name="ElevenLabs delete voice", **RETRY_OPTIONS)
async def delete_voice(voice_id: str, credentials: ElevenLabsCredentials) -> None:
    """Deletes a voice from the account (an unknown id raises ``NotFoundError``).

    Example:
        ```python
        delete_voice(clone.voice_id, credentials)
        ```
    """
    async with api_call(credentials) as client:
        await client.voices.delete(voice_id)
    run_logger().info("deleted voice %s", voice_id)


# --------------------------------------------------------------------------------------------
# Cloning


@task(name="ElevenLabs clone voice", **RETRY_OPTIONS)
async def clone_voice(
    name: str,
    samples: list[str],
    credentials: ElevenLabsCredentials,
    description: str | None = None,
    labels: dict[str, str] | None = None,
    remove_background_noise: bool = False,
) -> VoiceInfo:
    """Creates an instant voice clone from recordings of one speaker.

    Not cached: every run creates a new voice. Use the returned ``voice_id`` with the speech
    tasks, and :func:`delete_voice` when done.

    Args:
        name: The new voice's name.
        samples: Paths or fsspec URLs of clean recordings (a minute or more in total works best).
        credentials: The ElevenLabs credentials block.
        description: What the voice sounds like.
        labels: e.g. ``{"accent": "irish", "gender": "female", "age": "young"}``.
        remove_background_noise: Let the API clean the samples first.

    Example:
        ```python
        voice = clone_voice("Narrator", ["s3://bucket/sample1.mp3"], credentials)
        speech = text_to_speech("Hello.", credentials, voice_id=voice.voice_id)
        ```
    """
    if isinstance(samples, str) or not samples:
        raise InvalidRequestError(
            "samples must be a non-empty list of audio files",
            status="invalid_parameters",
            param="samples",
        )
    with contextlib.ExitStack() as stack:
        paths = [stack.enter_context(media_input(s, what="sample")) for s in samples]
        async with api_call(credentials) as client:
            created = await client.voices.add(
                name,
                paths,
                description=description,
                labels=labels,
                remove_background_noise=remove_background_noise,
            )
            try:
                voice = voice_info(await client.voices.get(created.voice_id))
            except Exception as exc:  # the clone exists; describe it from what we sent
                run_logger().warning(
                    "cloned %s but could not read it back: %s", created.voice_id, exc
                )
                voice = VoiceInfo(
                    voice_id=created.voice_id,
                    name=name,
                    category="cloned",
                    description=description,
                    labels=dict(labels or {}),
                )
    if created.requires_verification:
        run_logger().warning("voice %s needs verification before use", created.voice_id)
    run_logger().info("cloned voice %r as %s from %d samples", name, voice.voice_id, len(paths))
    return voice


# --------------------------------------------------------------------------------------------
# Designing


def preview_file_names(
    description: str,
    *,
    text: str | None,
    seed: int | None,
    model_id: str,
    output_format: str,
    count: int = PREVIEWS_PER_DESIGN,
) -> list[str]:
    """The file names the previews of one design get (``<slug>-<hash>-1.mp3`` ...)."""
    from . import _audio

    ext = _audio.extension(output_format)
    digest = _storage.content_hash("voice-design", description, text, seed, model_id, output_format)
    stem = f"voice-{_storage.slug(description, 24)}-{digest}"
    return [f"{stem}-{index}.{ext}" for index in range(1, count + 1)]


def _preview_uris(inputs: dict[str, Any]) -> list[str]:
    target = _storage.OutputDir(inputs.get("output_dir"))
    names = preview_file_names(
        inputs["description"],
        text=inputs.get("text"),
        seed=inputs.get("seed"),
        model_id=inputs.get("model_id", DEFAULT_DESIGN_MODEL),
        output_format=inputs.get("output_format", DEFAULT_PREVIEW_FORMAT),
    )
    return [target.uri_of(name) for name in names]


async def generate_voice_previews(
    description: str,
    credentials: ElevenLabsCredentials,
    *,
    text: str | None = None,
    seed: int | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    model_id: str = DEFAULT_DESIGN_MODEL,
    output_format: str = DEFAULT_PREVIEW_FORMAT,
) -> list[VoicePreviewAsset]:
    """Designs a voice and writes its previews; the engine behind :func:`design_voice`."""
    if not description or len(description.strip()) < 20:
        raise InvalidRequestError(
            "description must be at least 20 characters, e.g. 'A calm, deep male narrator "
            "with a slight British accent'",
            status="invalid_parameters",
            param="description",
        )
    target = _storage.OutputDir(output_dir)
    async with api_call(credentials) as client:
        design = await client.text_to_voice.design(
            description,
            model_id=model_id,
            text=text,
            auto_generate_text=True if text is None else None,
            seed=seed,
            output_format=output_format,
        )
    if not design.previews:
        raise InvalidRequestError(
            "the voice design returned no previews; try a more detailed description",
            status="no_previews",
        )
    meta = design.meta
    names = preview_file_names(
        description,
        text=text,
        seed=seed,
        model_id=model_id,
        output_format=output_format,
        count=max(len(design.previews), PREVIEWS_PER_DESIGN),
    )
    usage = (
        [
            Usage(
                endpoint=meta.endpoint,
                characters=meta.character_cost or 0,
                request_id=meta.request_id,
                attempts=meta.attempts,
                latency_s=meta.latency_s,
            )
        ]
        if meta is not None
        else []
    )
    assets: list[VoicePreviewAsset] = []
    for index, (preview, name) in enumerate(zip(design.previews, names, strict=False)):
        with target.staged(name) as staged:
            preview.save(staged)
            duration = preview.duration_secs
            sample_rate: int | None = None
            with contextlib.suppress(MediaError):
                info = _media.probe(staged)
                duration, sample_rate = info.duration, info.sample_rate
            audio = AudioAsset(
                uri=target.uri_of(name),
                format=output_format,
                sample_rate=sample_rate,
                duration_s=duration,
                size_bytes=staged.stat().st_size,
                characters=usage[0].characters if usage and index == 0 else 0,
                request_id=meta.request_id if meta else None,
                request_ids=[meta.request_id] if meta and meta.request_id else [],
                model_id=model_id,
                text=design.text or text,
                # The call is billed once; it is listed on the first preview only.
                usage=usage if index == 0 else [],
            )
        assets.append(
            VoicePreviewAsset(
                generated_voice_id=preview.generated_voice_id,
                audio=audio,
                language=preview.language,
            )
        )
    run_logger().info("designed %d previews for %r", len(assets), description[:60])
    return assets


@task(
    name="ElevenLabs design voice",
    cache_policy=generation_cache(_preview_uris),
    **RETRY_OPTIONS,
)
async def design_voice(
    description: str,
    credentials: ElevenLabsCredentials,
    text: str | None = None,
    seed: int | None = None,
    output_dir: str | None = None,
    model_id: str = DEFAULT_DESIGN_MODEL,
    output_format: str = DEFAULT_PREVIEW_FORMAT,
) -> list[VoicePreviewAsset]:
    """Designs a voice from a description and writes its three previews to ``output_dir``.

    Cached on the inputs while the preview files exist, so a re-run neither pays for nor
    changes the previews someone may be listening to. Keep a preview with
    :func:`create_voice_from_preview`.

    Args:
        description: What the voice should sound like (20-1000 characters).
        credentials: The ElevenLabs credentials block.
        text: What the previews say (100-1000 characters); generated when omitted.
        seed: Best-effort determinism.
        output_dir: A folder or fsspec URL for the preview files.
        model_id: eleven_multilingual_ttv_v2 or eleven_ttv_v3.
        output_format: Format of the preview files.

    Example:
        ```python
        previews = design_voice("A warm, slow narrator in his sixties, soft Scottish accent.",
                                credentials, output_dir="previews")
        voice = create_voice_from_preview(previews[0].generated_voice_id, "Narrator",
                                          "Warm Scottish narrator", credentials)
        ```
    """
    return await generate_voice_previews(
        description,
        credentials,
        text=text,
        seed=seed,
        output_dir=output_dir,
        model_id=model_id,
        output_format=output_format,
    )


@task(name="ElevenLabs create voice from preview", **RETRY_OPTIONS)
async def create_voice_from_preview(
    generated_voice_id: str,
    name: str,
    description: str,
    credentials: ElevenLabsCredentials,
    labels: dict[str, str] | None = None,
) -> VoiceInfo:
    """Keeps a designed preview as a voice in the account.

    Args:
        generated_voice_id: From one of :func:`design_voice`'s previews.
        name: The voice's name.
        description: Its description (20-1000 characters).
        credentials: The ElevenLabs credentials block.
        labels: e.g. ``{"accent": "scottish", "use_case": "narration"}``.

    Example:
        ```python
        voice = create_voice_from_preview(previews[1].generated_voice_id, "Host",
                                          "Bright, fast-talking podcast host", credentials)
        ```
    """
    async with api_call(credentials) as client:
        voice = await client.text_to_voice.create(
            voice_name=name,
            voice_description=description,
            generated_voice_id=generated_voice_id,
            labels=labels,
        )
    run_logger().info(
        "created voice %r (%s) from preview %s", name, voice.voice_id, generated_voice_id
    )
    return voice_info(voice)
