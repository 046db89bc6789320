"""The model catalogue the engine serves, and which local engine stands in for each model id.

``GET /v1/models`` returns :func:`catalogue` (text-to-speech and voice-conversion models, as the
real API does). :data:`MODEL_ENGINES` documents every ElevenLabs model id the engine accepts and
the open-source engine that does the work:

- every TTS id (``eleven_*_v*``): piper en_US-joe-medium (English), espeak-ng (other languages);
- ``eleven_*_sts_*``: a Whisper transcript re-voiced by piper / espeak-ng;
- ``eleven_*ttv*``: voice design, piper / espeak-ng profiles derived from the prompt;
- ``scribe_*`` (batch): faster-whisper tiny.en (English) / base (other languages);
- ``scribe_v2_realtime``, ``scribe_v3_live``: faster-whisper over the WebSocket session;
- ``eleven_text_to_sound_*``: a procedural numpy synthesizer;
- ``music_*``: a pretty-midi arrangement rendered by fluidsynth;
- ``dubbing_*``: whisper + apertium + piper / espeak-ng + ffmpeg.

Example::

    model = require_tts_model("eleven_flash_v2_5")
    model.maximum_text_length_per_request   # 40000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .wire import api_error

__all__ = [
    "DEFAULT_TTS_MODEL",
    "LANGUAGE_NAMES",
    "MODEL_ENGINES",
    "TTS_MODELS",
    "ModelInfo",
    "catalogue",
    "require_tts_model",
]

DEFAULT_TTS_MODEL = "eleven_multilingual_v2"

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "de": "German",
    "hi": "Hindi",
    "fr": "French",
    "ko": "Korean",
    "pt": "Portuguese",
    "it": "Italian",
    "es": "Spanish",
    "id": "Indonesian",
    "nl": "Dutch",
    "tr": "Turkish",
    "fil": "Filipino",
    "pl": "Polish",
    "sv": "Swedish",
    "bg": "Bulgarian",
    "ro": "Romanian",
    "ar": "Arabic",
    "cs": "Czech",
    "el": "Greek",
    "fi": "Finnish",
    "hr": "Croatian",
    "ms": "Malay",
    "sk": "Slovak",
    "da": "Danish",
    "ta": "Tamil",
    "uk": "Ukrainian",
    "ru": "Russian",
    "hu": "Hungarian",
    "no": "Norwegian",
    "vi": "Vietnamese",
    "ca": "Catalan",
    "cy": "Welsh",
    "et": "Estonian",
    "he": "Hebrew",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "sl": "Slovenian",
    "sr": "Serbian",
}

_ENGLISH = ("en",)
_MULTILINGUAL_V2 = tuple(list(LANGUAGE_NAMES)[:29])
_MULTILINGUAL_V2_5 = tuple(list(LANGUAGE_NAMES)[:32])
_V3 = tuple(LANGUAGE_NAMES)
_TTS_ENGINE = "piper en_US-joe-medium (English) / espeak-ng (other languages)"


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model catalogue (the fields of the API's ``Model`` object)."""

    model_id: str
    name: str
    description: str
    maximum_text_length_per_request: int
    languages: tuple[str, ...]
    can_do_text_to_speech: bool = True
    can_do_voice_conversion: bool = False
    can_use_style: bool = True
    can_use_speaker_boost: bool = True
    can_be_finetuned: bool = True
    serves_pro_voices: bool = False
    concurrency_group: str = "standard"

    def supports_language(self, language_code: str) -> bool:
        """Whether ``language_code`` (ISO 639-1) is one of this model's languages."""
        return language_code.lower() in self.languages

    def to_api(self) -> dict[str, Any]:
        """The JSON object ``GET /v1/models`` returns for this model."""
        return {
            "model_id": self.model_id,
            "name": self.name,
            "can_be_finetuned": self.can_be_finetuned,
            "can_do_text_to_speech": self.can_do_text_to_speech,
            "can_do_voice_conversion": self.can_do_voice_conversion,
            "can_use_style": self.can_use_style,
            "can_use_speaker_boost": self.can_use_speaker_boost,
            "serves_pro_voices": self.serves_pro_voices,
            "token_cost_factor": 1.0,
            "description": self.description,
            "requires_alpha_access": False,
            "max_characters_request_free_user": self.maximum_text_length_per_request,
            "max_characters_request_subscribed_user": self.maximum_text_length_per_request,
            "maximum_text_length_per_request": self.maximum_text_length_per_request,
            "languages": [
                {"language_id": code, "name": LANGUAGE_NAMES[code]} for code in self.languages
            ],
            "model_rates": {"character_cost_multiplier": 1.0, "cost_discount_multiplier": 1.0},
            "concurrency_group": self.concurrency_group,
        }


def _tts(
    model_id: str,
    name: str,
    limit: int,
    languages: tuple[str, ...],
    *,
    group: str = "standard",
    style: bool = True,
) -> ModelInfo:
    return ModelInfo(
        model_id=model_id,
        name=name,
        description=f"{name}, served offline by {_TTS_ENGINE}.",
        maximum_text_length_per_request=limit,
        languages=languages,
        can_use_style=style,
        concurrency_group=group,
    )


TTS_MODELS: dict[str, ModelInfo] = {
    model.model_id: model
    for model in (
        _tts("eleven_multilingual_v2", "Eleven Multilingual v2", 10_000, _MULTILINGUAL_V2),
        _tts("eleven_v3", "Eleven v3", 3_000, _V3),
        _tts(
            "eleven_flash_v2_5",
            "Eleven Flash v2.5",
            40_000,
            _MULTILINGUAL_V2_5,
            group="turbo",
            style=False,
        ),
        _tts("eleven_flash_v2", "Eleven Flash v2", 30_000, _ENGLISH, group="turbo", style=False),
        _tts(
            "eleven_turbo_v2_5",
            "Eleven Turbo v2.5",
            40_000,
            _MULTILINGUAL_V2_5,
            group="turbo",
            style=False,
        ),
        _tts("eleven_turbo_v2", "Eleven Turbo v2", 30_000, _ENGLISH, group="turbo", style=False),
        _tts("eleven_multilingual_v1", "Eleven Multilingual v1", 10_000, _MULTILINGUAL_V2),
        _tts("eleven_monolingual_v1", "Eleven English v1", 10_000, _ENGLISH),
    )
}

_STS_ENGINE = "Whisper transcript re-voiced by piper (English) / espeak-ng (other languages)"

_STS_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        model_id="eleven_english_sts_v2",
        name="Eleven English v2 (speech to speech)",
        description=f"Voice changer, served offline by {_STS_ENGINE}.",
        maximum_text_length_per_request=10_000,
        languages=_ENGLISH,
        can_do_text_to_speech=False,
        can_do_voice_conversion=True,
    ),
    ModelInfo(
        model_id="eleven_multilingual_sts_v2",
        name="Eleven Multilingual v2 (speech to speech)",
        description=f"Voice changer, served offline by {_STS_ENGINE}.",
        maximum_text_length_per_request=10_000,
        languages=_MULTILINGUAL_V2,
        can_do_text_to_speech=False,
        can_do_voice_conversion=True,
    ),
)

_WHISPER = "faster-whisper tiny.en (English) / base (other languages and detection)"

MODEL_ENGINES: dict[str, str] = {
    **dict.fromkeys(TTS_MODELS, _TTS_ENGINE),
    **{model.model_id: _STS_ENGINE for model in _STS_MODELS},
    "eleven_english_sts_v1": _STS_ENGINE,
    "eleven_multilingual_ttv_v2": f"voice design over {_TTS_ENGINE}",
    "eleven_ttv_v3": f"voice design over {_TTS_ENGINE}",
    "scribe_v1": _WHISPER,
    "scribe_v1_experimental": _WHISPER,
    "scribe_v2": _WHISPER,
    "scribe_v2_medical": _WHISPER,
    "scribe_v3": _WHISPER,
    "scribe_v2_realtime": f"{_WHISPER}, streamed over a WebSocket",
    "scribe_v3_live": f"{_WHISPER}, streamed over a WebSocket",
    "eleven_text_to_sound_v2": "procedural numpy sound-effect synthesizer",
    "eleven_text_to_sound_v3": "procedural numpy sound-effect synthesizer",
    "music_v1": "pretty-midi arrangement rendered by fluidsynth (FluidR3 GM)",
    "music_v2": "pretty-midi arrangement rendered by fluidsynth (FluidR3 GM)",
    "music_v2_5": "pretty-midi arrangement rendered by fluidsynth (FluidR3 GM)",
    "dubbing_v1": "whisper + apertium + piper/espeak-ng + ffmpeg",
    "dubbing_v2": "whisper + apertium + piper/espeak-ng + ffmpeg",
}
"""Every ElevenLabs model id the engine knows -> the local engine that implements it."""


def catalogue() -> list[dict[str, Any]]:
    """The bare JSON list served at ``GET /v1/models``."""
    return [model.to_api() for model in (*TTS_MODELS.values(), *_STS_MODELS)]


def require_tts_model(model_id: str | None) -> ModelInfo:
    """The text-to-speech model for ``model_id`` (default when None).

    Raises the API's 400 ``model_not_found`` error, naming ``model_id``, for anything else.
    """
    if model_id is None:
        return TTS_MODELS[DEFAULT_TTS_MODEL]
    model = TTS_MODELS.get(model_id)
    if model is None:
        raise api_error(
            400,
            "model_not_found",
            f"The model_id {model_id!r} is not a text-to-speech model. "
            f"Use one of: {', '.join(TTS_MODELS)} (see GET /v1/models).",
            param="model_id",
        )
    return model
