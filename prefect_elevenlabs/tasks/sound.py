"""Sound tasks: sound effects from a description, music from a prompt or a composition plan.

Both generation tasks write to a deterministic file name and are cached on their inputs (not
the credentials), so a re-run of a sound-design batch spends nothing and only regenerates files
that went missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import media as _media
from ..blocks import ElevenLabsCredentials
from ..errors import ConfigurationError, InvalidRequestError, MediaError
from ..results import AudioAsset, Usage
from . import _audio, _storage
from ._policy import RETRY_OPTIONS, api_call, generation_cache, run_logger
from ._task import task

__all__ = [
    "DEFAULT_MUSIC_MODEL",
    "DEFAULT_SOUND_FORMAT",
    "compose_music",
    "create_composition_plan",
    "generate_music",
    "generate_sound",
    "generate_sound_effect",
    "music_file_name",
    "sound_effect_file_name",
]

DEFAULT_SOUND_FORMAT = "mp3_44100_128"
DEFAULT_MUSIC_MODEL = "music_v1"


def _extension(output_format: str) -> str:
    # Music's "auto" picks an MP3 flavour server-side (44.1 kHz for music_v1, 48 kHz for v2).
    return "mp3" if output_format == "auto" else _audio.extension(output_format)


def _named(filename: str | None, ext: str, default_stem: str) -> str:
    if filename:
        _storage.safe_name(filename, what="filename")
        return filename if filename.endswith(f".{ext}") else f"{filename}.{ext}"
    return f"{default_stem}.{ext}"


def sound_effect_file_name(
    text: str,
    *,
    duration_seconds: float | None = None,
    loop: bool = False,
    prompt_influence: float | None = 0.3,
    output_format: str = DEFAULT_SOUND_FORMAT,
    model_id: str | None = None,
    filename: str | None = None,
) -> str:
    """The file a sound effect is written to: ``filename``, or one derived from the inputs."""
    digest = _storage.content_hash(
        "sfx", text, duration_seconds, loop, prompt_influence, output_format, model_id
    )
    return _named(filename, _extension(output_format), f"sfx-{_storage.slug(text)}-{digest}")


def music_file_name(
    *,
    prompt: str | None,
    composition_plan: dict[str, Any] | None,
    music_length_ms: int | None,
    force_instrumental: bool,
    seed: int | None,
    output_format: str,
    model_id: str,
    filename: str | None = None,
) -> str:
    """The file a composition is written to: ``filename``, or one derived from the inputs."""
    digest = _storage.content_hash(
        "music",
        prompt,
        composition_plan,
        music_length_ms,
        force_instrumental,
        seed,
        output_format,
        model_id,
    )
    label = _storage.slug(prompt) if prompt else "plan"
    return _named(filename, _extension(output_format), f"music-{label}-{digest}")


def _usage(download: Any) -> list[Usage]:
    meta = download.meta
    if meta is None:
        return []
    return [
        Usage(
            endpoint=meta.endpoint,
            characters=meta.character_cost or 0,
            request_id=meta.request_id,
            attempts=meta.attempts,
            latency_s=meta.latency_s,
        )
    ]


def _asset(
    uri: str,
    staged: Path,
    download: Any,
    output_format: str,
    model_id: str | None,
    text: str | None,
) -> AudioAsset:
    duration: float | None
    if output_format == "auto":
        try:
            info = _media.probe(staged)
            duration, rate = info.duration, info.sample_rate
        except MediaError:
            duration, rate = None, None
    else:
        duration, rate = _audio.audio_facts(staged, output_format)
    usage = _usage(download)
    request_id = download.meta.request_id if download.meta else None
    return AudioAsset(
        uri=uri,
        format=output_format,
        sample_rate=rate,
        duration_s=duration,
        size_bytes=staged.stat().st_size,
        characters=sum(u.characters for u in usage),
        request_id=request_id,
        request_ids=[request_id] if request_id else [],
        history_item_id=download.meta.history_item_id if download.meta else None,
        model_id=model_id,
        text=text,
        usage=usage,
    )


# --------------------------------------------------------------------------------------------
# Sound effects


async def generate_sound(
    text: str,
    credentials: ElevenLabsCredentials,
    *,
    duration_seconds: float | None = None,
    loop: bool = False,
    prompt_influence: float | None = 0.3,
    output_format: str = DEFAULT_SOUND_FORMAT,
    output_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    model_id: str | None = None,
) -> AudioAsset:
    """Generates one sound effect into a file; the engine behind :func:`generate_sound_effect`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError(
            "text is empty: describe the sound, e.g. 'heavy rain on a tin roof'",
            status="invalid_parameters",
            param="text",
        )
    name = sound_effect_file_name(
        text,
        duration_seconds=duration_seconds,
        loop=loop,
        prompt_influence=prompt_influence,
        output_format=output_format,
        model_id=model_id,
        filename=filename,
    )
    target = _storage.OutputDir(output_dir)
    async with api_call(credentials) as client:
        with target.staged(name) as staged:
            download = await client.text_to_sound_effects.convert(
                text,
                dest=staged,
                duration_seconds=duration_seconds,
                prompt_influence=prompt_influence,
                loop=loop or None,
                model_id=model_id,
                output_format=output_format,
            )
            asset = _asset(target.uri_of(name), staged, download, output_format, model_id, text)
    run_logger().info(
        "sound effect %r -> %s (%.2f s)", text[:60], asset.uri, asset.duration_s or float("nan")
    )
    return asset


def _sound_uri(inputs: dict[str, Any]) -> str:
    name = sound_effect_file_name(
        inputs["text"],
        duration_seconds=inputs.get("duration_seconds"),
        loop=inputs.get("loop", False),
        prompt_influence=inputs.get("prompt_influence", 0.3),
        output_format=inputs.get("output_format", DEFAULT_SOUND_FORMAT),
        model_id=inputs.get("model_id"),
        filename=inputs.get("filename"),
    )
    return _storage.OutputDir(inputs.get("output_dir")).uri_of(name)


@task(
    name="ElevenLabs generate sound effect",
    cache_policy=generation_cache(lambda inputs: [_sound_uri(inputs)]),
    **RETRY_OPTIONS,
)
async def generate_sound_effect(
    text: str,
    credentials: ElevenLabsCredentials,
    duration_seconds: float | None = None,
    loop: bool = False,
    prompt_influence: float | None = 0.3,
    output_format: str = DEFAULT_SOUND_FORMAT,
    output_dir: str | None = None,
    filename: str | None = None,
    model_id: str | None = None,
) -> AudioAsset:
    """Generates a sound effect from a description and writes it to ``output_dir``.

    Cached on the inputs while the file exists, so a re-run spends no credits.

    Args:
        text: The sound, e.g. "a door creaks open slowly, then slams".
        credentials: The ElevenLabs credentials block.
        duration_seconds: 0.5-30 seconds, or None to let the model choose.
        loop: Make it loop seamlessly (for ambiences).
        prompt_influence: 0-1; higher follows the text more literally.
        output_format: codec_samplerate[_kbps], e.g. mp3_44100_128 or wav_44100.
        output_dir: A folder or fsspec URL.
        filename: The file name; derived from the inputs when omitted.
        model_id: e.g. eleven_text_to_sound_v2; the API's default when None.

    Example:
        ```python
        rain = generate_sound_effect("rain on a tin roof", credentials, duration_seconds=5,
                                     loop=True, output_dir="sfx")
        ```
    """
    return await generate_sound(
        text,
        credentials,
        duration_seconds=duration_seconds,
        loop=loop,
        prompt_influence=prompt_influence,
        output_format=output_format,
        output_dir=output_dir,
        filename=filename,
        model_id=model_id,
    )


# --------------------------------------------------------------------------------------------
# Music


async def generate_music(
    credentials: ElevenLabsCredentials,
    *,
    prompt: str | None = None,
    composition_plan: dict[str, Any] | None = None,
    music_length_ms: int | None = None,
    force_instrumental: bool = False,
    seed: int | None = None,
    output_format: str = DEFAULT_SOUND_FORMAT,
    output_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    model_id: str = DEFAULT_MUSIC_MODEL,
) -> AudioAsset:
    """Composes one piece into a file; the engine behind :func:`compose_music`."""
    if (prompt is None) == (composition_plan is None):
        raise InvalidRequestError(
            "give exactly one of prompt (a description of the music) or composition_plan "
            "(from create_composition_plan)",
            status="invalid_parameters",
            param="prompt",
        )
    if composition_plan is not None and (music_length_ms is not None or force_instrumental):
        raise InvalidRequestError(
            "music_length_ms and force_instrumental apply to prompts only; a composition "
            "plan sets its own section durations",
            status="invalid_parameters",
            param="music_length_ms",
        )
    name = music_file_name(
        prompt=prompt,
        composition_plan=composition_plan,
        music_length_ms=music_length_ms,
        force_instrumental=force_instrumental,
        seed=seed,
        output_format=output_format,
        model_id=model_id,
        filename=filename,
    )
    target = _storage.OutputDir(output_dir)
    async with api_call(credentials) as client:
        with target.staged(name) as staged:
            download = await client.music.compose(
                dest=staged,
                prompt=prompt,
                composition_plan=composition_plan,
                music_length_ms=music_length_ms,
                force_instrumental=force_instrumental or None,
                seed=seed,
                model_id=model_id,
                output_format=output_format,
            )
            asset = _asset(target.uri_of(name), staged, download, output_format, model_id, prompt)
    song_id = download.song_id
    run_logger().info(
        "composed %s (%.1f s%s)",
        asset.uri,
        asset.duration_s or float("nan"),
        f", song_id={song_id}" if song_id else "",
    )
    return asset


def _music_uri(inputs: dict[str, Any]) -> str:
    name = music_file_name(
        prompt=inputs.get("prompt"),
        composition_plan=inputs.get("composition_plan"),
        music_length_ms=inputs.get("music_length_ms"),
        force_instrumental=inputs.get("force_instrumental", False),
        seed=inputs.get("seed"),
        output_format=inputs.get("output_format", DEFAULT_SOUND_FORMAT),
        model_id=inputs.get("model_id", DEFAULT_MUSIC_MODEL),
        filename=inputs.get("filename"),
    )
    return _storage.OutputDir(inputs.get("output_dir")).uri_of(name)


@task(
    name="ElevenLabs compose music",
    cache_policy=generation_cache(lambda inputs: [_music_uri(inputs)]),
    **RETRY_OPTIONS,
)
async def compose_music(
    prompt: str | None = None,
    credentials: ElevenLabsCredentials | None = None,
    composition_plan: dict[str, Any] | None = None,
    music_length_ms: int | None = None,
    force_instrumental: bool = False,
    seed: int | None = None,
    output_format: str = DEFAULT_SOUND_FORMAT,
    output_dir: str | None = None,
    filename: str | None = None,
    model_id: str = DEFAULT_MUSIC_MODEL,
) -> AudioAsset:
    """Composes music from a prompt or a composition plan and writes it to ``output_dir``.

    Cached on the inputs while the file exists, so a re-run spends no credits.

    Args:
        prompt: What to compose, e.g. "calm lo-fi piano with soft rain, 70 bpm".
        credentials: The ElevenLabs credentials block (required).
        composition_plan: A plan from :func:`create_composition_plan`, possibly edited,
            instead of a prompt.
        music_length_ms: Length for prompts (3000-600000 ms); the model decides when None.
        force_instrumental: No vocals (prompts only).
        seed: Best-effort determinism (composition plans).
        output_format: e.g. mp3_44100_128, or "auto".
        output_dir: A folder or fsspec URL.
        filename: The file name; derived from the inputs when omitted.
        model_id: music_v1 (default) or a newer music model.

    Example:
        ```python
        bed = compose_music("warm acoustic guitar intro", credentials=credentials,
                            music_length_ms=15000, force_instrumental=True)
        ```
    """
    if credentials is None:
        raise ConfigurationError(
            "compose_music needs credentials=ElevenLabsCredentials(...)",
            status="missing_credentials",
        )
    return await generate_music(
        credentials,
        prompt=prompt,
        composition_plan=composition_plan,
        music_length_ms=music_length_ms,
        force_instrumental=force_instrumental,
        seed=seed,
        output_format=output_format,
        output_dir=output_dir,
        filename=filename,
        model_id=model_id,
    )


@task(name="ElevenLabs create composition plan", **RETRY_OPTIONS)
async def create_composition_plan(
    prompt: str,
    credentials: ElevenLabsCredentials,
    music_length_ms: int | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Drafts a composition plan (styles and timed sections) from a prompt, free of credits.

    Edit the plan (section lengths, lyrics, styles), then pass it to :func:`compose_music`.

    Example:
        ```python
        plan = create_composition_plan("upbeat synth-pop jingle", credentials,
                                       music_length_ms=20000)
        plan["sections"][0]["duration_ms"] = 5000
        jingle = compose_music(composition_plan=plan, credentials=credentials)
        ```
    """
    async with api_call(credentials) as client:
        plan = await client.music.create_plan(
            prompt, music_length_ms=music_length_ms, model_id=model_id
        )
    result: dict[str, Any] = plan.model_dump(mode="json", exclude_none=True)
    sections = result.get("sections") or result.get("chunks") or []
    run_logger().info("composition plan with %d sections for %r", len(sections), prompt[:60])
    return result
