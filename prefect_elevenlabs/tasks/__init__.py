"""Prefect tasks for every ElevenLabs capability, plus media tasks and artifact helpers.

Every task takes an :class:`~prefect_elevenlabs.ElevenLabsCredentials` block, works from sync
and async flows, writes files where ``output_dir`` points (a folder or any fsspec URL) and
returns a small result model. Generation tasks are cached on their inputs (never the
credentials), so re-running a flow spends no credits; retries skip errors that cannot succeed.

Example:
    ```python
    from prefect import flow
    from prefect_elevenlabs import ElevenLabsCredentials
    from prefect_elevenlabs.tasks import publish_transcript, speech_to_text, text_to_speech

    @flow
    def round_trip():
        credentials = ElevenLabsCredentials(base_url="local")
        speech = text_to_speech("Prefect runs this offline.", credentials)
        publish_transcript(speech_to_text(speech.uri, credentials), key="round trip")
    ```
"""

from ._dubbing_errors import DubbingFailedError, DubbingTimeoutError
from .account import check_budget, export_conversations, get_subscription
from .artifacts import (
    Progress,
    apublish_outputs,
    apublish_transcript,
    apublish_usage,
    artifact_key,
    publish_outputs,
    publish_transcript,
    publish_usage,
)
from .dubbing import create_dubbing, download_dubbing, wait_for_dubbing
from .media import (
    concat_audio,
    convert_audio,
    extract_audio,
    fit_to_duration,
    measure_loudness,
    mix_over,
    mux_into_video,
    normalize_loudness,
    probe_media,
    split_on_silence,
)
from .sound import compose_music, create_composition_plan, generate_sound_effect
from .speech_to_text import realtime_speech_to_text, speech_to_text
from .text_to_speech import stream_text_to_speech, text_to_speech, text_to_speech_with_timestamps
from .voices import (
    clone_voice,
    create_voice_from_preview,
    delete_voice,
    design_voice,
    list_voices,
)

__all__ = [
    "DubbingFailedError",
    "DubbingTimeoutError",
    "Progress",
    "apublish_outputs",
    "apublish_transcript",
    "apublish_usage",
    "artifact_key",
    "check_budget",
    "clone_voice",
    "compose_music",
    "concat_audio",
    "convert_audio",
    "create_composition_plan",
    "create_dubbing",
    "create_voice_from_preview",
    "delete_voice",
    "design_voice",
    "download_dubbing",
    "export_conversations",
    "extract_audio",
    "fit_to_duration",
    "generate_sound_effect",
    "get_subscription",
    "list_voices",
    "measure_loudness",
    "mix_over",
    "mux_into_video",
    "normalize_loudness",
    "probe_media",
    "publish_outputs",
    "publish_transcript",
    "publish_usage",
    "realtime_speech_to_text",
    "speech_to_text",
    "split_on_silence",
    "stream_text_to_speech",
    "text_to_speech",
    "text_to_speech_with_timestamps",
    "wait_for_dubbing",
]
