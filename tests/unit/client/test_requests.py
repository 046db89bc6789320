"""Wire encoding of every endpoint: method, path, query, JSON fields and multipart parts."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import pytest

from prefect_elevenlabs.client import (
    AdditionalFormatRequest,
    CompositionPlan,
    ElevenLabsClient,
    RequestValidationError,
    VoiceSettings,
)
from prefect_elevenlabs.errors import ConfigurationError, InvalidRequestError, ServerError

from . import (
    API_KEY,
    MockApi,
    audio_response,
    form,
    json_body,
    json_response,
    make_client,
    parse_multipart,
)

VOICE = "21m00Tcm4TlvDq8ikWAM"
SRT = "1\n00:00:00,000 --> 00:00:01,000\nHola\n"
AUDIO = b"\xff\xfb\x90\x00" + bytes(range(256)) * 8


def route(request: httpx.Request, attempt: int) -> httpx.Response:
    """A tiny fake of the API: enough shape for every endpoint to parse its answer."""
    path = request.url.path
    method = request.method
    if path.endswith("/with-timestamps") and "/stream/" in path:
        line = json.dumps({"audio_base64": base64.b64encode(b"abc").decode(), "alignment": None})
        return httpx.Response(200, content=(line + "\n\n" + line + "\n").encode())
    if path.endswith("/with-timestamps"):
        return json_response(
            200,
            {
                "audio_base64": base64.b64encode(AUDIO).decode(),
                "alignment": {
                    "characters": ["H", "i"],
                    "character_start_times_seconds": [0.0, 0.1],
                    "character_end_times_seconds": [0.1, 0.2],
                },
                "normalized_alignment": None,
            },
        )
    audio_prefixes = (
        "/v1/text-to-speech/", "/v1/sound-generation", "/v1/speech-to-speech/",
        "/v1/audio-isolation", "/v1/music",
    )
    is_audio = path.endswith(("/audio", "/stream")) or path.startswith(audio_prefixes)
    is_dubbing_json = path.startswith("/v1/dubbing") and "/audio/" not in path
    if "/audio/" in path or (is_audio and path != "/v1/music/plan" and not is_dubbing_json):
        return audio_response(AUDIO, **{"song-id": "song_1", "request-id": "req_a"})
    if path == "/v1/speech-to-text":
        return json_response(200, {"text": "hello", "language_code": "eng", "words": []})
    if path.startswith("/v1/speech-to-text/transcripts/"):
        return json_response(200, {"text": "stored", "transcription_id": path.rsplit("/", 1)[1]})
    if path == "/v1/dubbing" and method == "POST":
        return json_response(200, {"dubbing_id": "dub_1", "expected_duration_sec": 12.5})
    if path == "/v1/dubbing":
        return json_response(200, {"dubs": [], "next_cursor": None, "has_more": False})
    if "/transcript/" in path:
        return json_response(200, "1\n00:00:00,000 --> 00:00:01,000\nHola\n")
    if path.startswith("/v1/dubbing/") and method == "GET":
        return json_response(
            200, {"dubbing_id": "dub_1", "status": "dubbed", "target_languages": ["es"]}
        )
    if method == "DELETE" or path.endswith("/edit"):
        return json_response(200, {"status": "ok"})
    if path == "/v1/music/plan":
        return json_response(200, {"positive_global_styles": ["lofi"], "negative_global_styles": [],
                                   "sections": []})
    if path.startswith("/v1/text-to-voice/") or path == "/v1/text-to-voice":
        if path == "/v1/text-to-voice":
            return json_response(200, {"voice_id": "new_voice", "name": "Narrator"})
        preview = {
            "audio_base_64": base64.b64encode(b"mp3").decode(),
            "generated_voice_id": "gen/1",
            "media_type": "audio/mpeg",
            "duration_secs": 1.5,
        }
        return json_response(200, {"previews": [preview], "text": "sample"})
    if path == "/v2/voices":
        return json_response(200, {"voices": [{"voice_id": VOICE}], "has_more": False})
    if path == "/v1/voices":
        return json_response(200, {"voices": [{"voice_id": VOICE}]})
    if path == "/v1/voices/add":
        return json_response(200, {"voice_id": "cloned", "requires_verification": False})
    if path.endswith("/settings") or path.endswith("/settings/default"):
        return json_response(200, {"stability": 0.5, "similarity_boost": 0.75, "speed": 1.0})
    if path.startswith("/v1/voices/"):
        return json_response(200, {"voice_id": path.rsplit("/", 1)[1], "name": "Rachel"})
    if path == "/v1/models":
        return json_response(200, [{"model_id": "eleven_flash_v2_5",
                                    "maximum_text_length_per_request": 40000}])
    if path == "/v1/user":
        return json_response(200, {"user_id": "u1", "subscription": {"tier": "free"}})
    if path == "/v1/user/subscription":
        return json_response(
            200, {"tier": "creator", "character_count": 10, "character_limit": 100}
        )
    if path == "/v1/history":
        return json_response(200, {"history": [], "last_history_item_id": None, "has_more": False})
    if path.startswith("/v1/history/"):
        return json_response(200, {"history_item_id": path.rsplit("/", 1)[1], "date_unix": 1})
    if path == "/v1/forced-alignment":
        return json_response(200, {"characters": [], "words": [{"text": "hi", "start": 0,
                                                                "end": 0.5, "loss": 0.1}],
                                   "loss": 0.1})
    if path == "/v1/convai/conversations":
        return json_response(200, {"conversations": [], "next_cursor": None, "has_more": False})
    if path.startswith("/v1/convai/conversations/"):
        return json_response(200, {"conversation_id": "c1", "transcript": []})
    return json_response(404, {"detail": {"status": "not_found", "message": f"no route {path}"}})


@pytest.fixture
def api() -> tuple[ElevenLabsClient, MockApi]:
    client, mock, _ = make_client(route)
    return client, mock


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    path.write_bytes(b"RIFF" + bytes(range(256)) * 64)
    return path


def query(request: httpx.Request) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, value in request.url.params.multi_items():
        result.setdefault(key, []).append(value)
    return result


def assert_key_only_in_header(request: httpx.Request) -> None:
    assert request.headers["xi-api-key"] == API_KEY
    assert API_KEY not in str(request.url)
    assert API_KEY.encode() not in request.content
    others = [v for k, v in request.headers.items() if k != "xi-api-key"]
    assert all(API_KEY not in v for v in others)


# ---------------------------------------------------------------------------------------------
# Text to speech


async def test_tts_convert_encodes_query_and_json_body(api, tmp_path):
    client, mock = api
    result = await client.text_to_speech.convert(
        VOICE,
        text="Hello there.",
        dest=tmp_path / "out.mp3",
        model_id="eleven_flash_v2_5",
        voice_settings=VoiceSettings(stability=0.3, similarity_boost=0.8, speed=1.1),
        seed=7,
        previous_request_ids=["r1", "r2"],
        next_text="And more.",
        apply_text_normalization="off",
        pronunciation_dictionary_locators=[{"pronunciation_dictionary_id": "pd1"}],
        output_format="pcm_16000",
        enable_logging=False,
        optimize_streaming_latency=2,
    )
    request = mock.last
    assert request.method == "POST"
    assert request.url.path == f"/v1/text-to-speech/{VOICE}"
    assert query(request) == {
        "output_format": ["pcm_16000"],
        "enable_logging": ["false"],
        "optimize_streaming_latency": ["2"],
    }
    assert json_body(request) == {
        "text": "Hello there.",
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.3, "similarity_boost": 0.8, "speed": 1.1},
        "seed": 7,
        "previous_request_ids": ["r1", "r2"],
        "next_text": "And more.",
        "apply_text_normalization": "off",
        "pronunciation_dictionary_locators": [{"pronunciation_dictionary_id": "pd1"}],
    }
    assert_key_only_in_header(request)
    assert (tmp_path / "out.mp3").read_bytes() == AUDIO
    assert result.bytes_written == len(AUDIO)
    assert result.request_id == "req_a"


async def test_tts_unset_fields_are_absent(api, tmp_path):
    client, mock = api
    await client.text_to_speech.convert(VOICE, text="Hi", dest=tmp_path / "a.mp3")
    assert json_body(mock.last) == {"text": "Hi"}
    assert mock.last.url.query == b""


async def test_tts_stream_paths_and_bytes(api):
    client, mock = api
    stream = client.text_to_speech.stream(VOICE, text="Hi", output_format="mp3_22050_32")
    async with stream as audio:
        assert audio.meta is not None and audio.meta.request_id == "req_a"
        received = b"".join([chunk async for chunk in audio.iter_bytes()])
    assert received == AUDIO
    assert mock.last.url.path == f"/v1/text-to-speech/{VOICE}/stream"
    assert query(mock.last) == {"output_format": ["mp3_22050_32"]}

    short_form = b"".join([c async for c in client.text_to_speech.iter_convert(VOICE, text="Hi")])
    assert short_form == AUDIO
    assert mock.last.url.path == f"/v1/text-to-speech/{VOICE}"


async def test_tts_with_timestamps_parses_and_saves(api, tmp_path):
    client, mock = api
    result = await client.text_to_speech.convert_with_timestamps(VOICE, text="Hi")
    assert mock.last.url.path == f"/v1/text-to-speech/{VOICE}/with-timestamps"
    assert result.alignment is not None and result.alignment.characters == ["H", "i"]
    assert result.alignment.character_end_times_seconds == [0.1, 0.2]
    assert result.meta is not None and result.meta.endpoint.endswith("/with-timestamps")
    saved = result.save_audio(tmp_path / "sub" / "speech.mp3")
    assert saved.read_bytes() == AUDIO
    assert "meta" not in result.model_dump()


async def test_tts_stream_with_timestamps_skips_blank_lines(api):
    client, mock = api
    chunks = [c async for c in client.text_to_speech.stream_with_timestamps(VOICE, text="Hi")]
    assert mock.last.url.path == f"/v1/text-to-speech/{VOICE}/stream/with-timestamps"
    assert [c.audio_bytes() for c in chunks] == [b"abc", b"abc"]


async def test_tts_stream_with_timestamps_refuses_a_line_that_is_not_json():
    body = b'{"audio_base64": "YWJj"}\nnot json at all\n{"audio_base64": "YWJj"}\n'
    client, _, _ = make_client(lambda r, n: httpx.Response(200, content=body))
    seen = []
    with pytest.raises(ServerError, match="not JSON"):
        async for chunk in client.text_to_speech.stream_with_timestamps(VOICE, text="Hi"):
            seen.append(chunk)
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("method", "fmt"),
    [("stream", "wav_44100"), ("convert", "mp3_48000_192"), ("convert", "auto")],
)
async def test_output_format_is_checked_before_any_request(api, tmp_path, method, fmt):
    client, mock = api
    with pytest.raises(InvalidRequestError) as info:
        if method == "stream":
            client.text_to_speech.stream(VOICE, text="Hi", output_format=fmt)
        else:
            await client.text_to_speech.convert(
                VOICE, text="Hi", dest=tmp_path / "a", output_format=fmt
            )
    assert info.value.param == "output_format"
    assert "mp3_44100_128" in str(info.value)  # names the accepted values
    assert mock.attempts == 0


async def test_voice_settings_ranges_and_unknown_fields_are_refused(api, tmp_path):
    client, mock = api
    with pytest.raises(RequestValidationError, match="speed"):
        await client.text_to_speech.convert(
            VOICE, text="Hi", dest=tmp_path / "a", voice_settings={"speed": 2.0}
        )
    with pytest.raises(RequestValidationError, match="stabilty"):
        await client.text_to_speech.convert(VOICE, text="Hi", dest=tmp_path / "a", stabilty=0.5)
    with pytest.raises(ValueError):
        VoiceSettings(stability=1.5)
    with pytest.raises(RequestValidationError, match="previous_request_ids"):
        await client.text_to_speech.convert(
            VOICE, text="Hi", dest=tmp_path / "a", previous_request_ids=["1", "2", "3", "4"]
        )
    assert mock.attempts == 0


async def test_ids_are_escaped_into_one_path_segment(api, tmp_path):
    client, mock = api
    await client.text_to_speech.convert("../v1/user?x=1", text="Hi", dest=tmp_path / "a.mp3")
    assert mock.last.url.raw_path.startswith(b"/v1/text-to-speech/..%2Fv1%2Fuser%3Fx%3D1")
    with pytest.raises(RequestValidationError, match="voice_id"):
        await client.voices.get("")


# ---------------------------------------------------------------------------------------------
# Speech to text


async def test_stt_multipart_fields_files_and_json_parts(api, wav_file):
    client, mock = api
    result = await client.speech_to_text.convert(
        wav_file,
        model_id="scribe_v2",
        language_code="en",
        diarize=True,
        num_speakers=2,
        timestamps_granularity="character",
        tag_audio_events=False,
        keyterms=["Prefect", "ElevenLabs"],
        additional_formats=[AdditionalFormatRequest(format="srt"), {"format": "txt"}],
        enable_logging=False,
    )
    assert result.text == "hello"
    request = mock.last
    assert (request.method, request.url.path) == ("POST", "/v1/speech-to-text")
    assert query(request) == {"enable_logging": ["false"]}
    fields = form(request)
    assert fields["model_id"] == ["scribe_v2"]
    assert fields["language_code"] == ["en"]
    assert fields["diarize"] == ["true"]
    assert fields["tag_audio_events"] == ["false"]
    assert fields["num_speakers"] == ["2"]
    assert fields["timestamps_granularity"] == ["character"]
    assert fields["keyterms"] == ["Prefect", "ElevenLabs"]
    # Always sent, as JSON text, the literal null when unset.
    assert fields["webhook_metadata"] == ["null"]
    assert fields["entity_detection"] == ["null"]
    assert fields["entity_redaction"] == ["null"]
    for absent in ("source_url", "cloud_storage_url", "seed", "webhook", "temperature"):
        assert absent not in fields
    parts = {p.name: p for p in parse_multipart(request)}
    assert parts["file"].filename == "speech.wav"
    assert parts["file"].data == wav_file.read_bytes()
    formats = parts["additional_formats"]
    assert formats.content_type == "application/json"
    assert json.loads(formats.data) == [{"format": "srt"}, {"format": "txt"}]
    assert_key_only_in_header(request)


async def test_stt_source_url_and_json_valued_fields(api):
    client, mock = api
    await client.speech_to_text.convert(
        source_url="https://example.com/a.mp3",
        webhook_metadata={"job": 7},
        entity_detection="all",
        entity_redaction=["pii", "phi"],
    )
    fields = form(mock.last)
    assert fields["source_url"] == ["https://example.com/a.mp3"]
    assert fields["model_id"] == ["scribe_v1"]
    assert json.loads(fields["webhook_metadata"][0]) == {"job": 7}
    assert json.loads(fields["entity_detection"][0]) == "all"
    assert json.loads(fields["entity_redaction"][0]) == ["pii", "phi"]
    assert all(p.filename is None for p in parse_multipart(mock.last))


@pytest.mark.parametrize(
    "sources",
    [
        {},
        {"file": b"abc", "source_url": "https://x"},
        {"source_url": "a", "cloud_storage_url": "b"},
    ],
)
async def test_stt_needs_exactly_one_source(api, sources):
    client, mock = api
    with pytest.raises(ValueError, match="exactly one of file, source_url, cloud_storage_url"):
        await client.speech_to_text.convert(**sources)
    assert mock.attempts == 0


async def test_stt_bytes_upload_and_range_checks(api):
    client, mock = api
    await client.speech_to_text.convert(b"raw-bytes", file_format="pcm_s16le_16")
    parts = {p.name: p for p in parse_multipart(mock.last)}
    assert parts["file"].data == b"raw-bytes"
    assert form(mock.last)["file_format"] == ["pcm_s16le_16"]
    with pytest.raises(RequestValidationError, match="num_speakers"):
        await client.speech_to_text.convert(b"x", num_speakers=33)
    with pytest.raises(FileNotFoundError):
        await client.speech_to_text.convert("/nonexistent/file.wav")


async def test_stt_multichannel_and_stored_transcripts(api):
    client, mock = api
    stored = await client.speech_to_text.get_transcript("tr_1")
    assert (mock.last.method, mock.last.url.path) == ("GET", "/v1/speech-to-text/transcripts/tr_1")
    assert stored.transcription_id == "tr_1"


# ---------------------------------------------------------------------------------------------
# Dubbing


async def test_dubbing_create_fields(api, wav_file):
    client, mock = api
    created = await client.dubbing.create(
        wav_file,
        target_lang="es",
        source_lang="en",
        num_speakers=0,
        watermark=True,
        start_time=1,
        end_time=9,
        drop_background_audio=True,
        name="talk",
    )
    assert created.dubbing_id == "dub_1" and created.expected_duration_sec == 12.5
    request = mock.last
    assert (request.method, request.url.path) == ("POST", "/v1/dubbing")
    assert form(request) == {
        "name": ["talk"],
        "source_lang": ["en"],
        "target_lang": ["es"],
        "num_speakers": ["0"],
        "watermark": ["true"],
        "start_time": ["1"],
        "end_time": ["9"],
        "drop_background_audio": ["true"],
    }
    files = [p for p in parse_multipart(request) if p.filename]
    assert [(p.name, p.data) for p in files] == [("file", wav_file.read_bytes())]
    with pytest.raises(ValueError, match="exactly one of file, source_url"):
        await client.dubbing.create(target_lang="es")


async def test_dubbing_get_list_delete_audio(api, tmp_path):
    client, mock = api
    meta = await client.dubbing.get("dub_1")
    assert meta.is_done and mock.last.url.path == "/v1/dubbing/dub_1"
    await client.dubbing.list(
        page_size=5, dubbing_status="dubbed", target_language_codes=["es", "de"]
    )
    assert query(mock.last) == {
        "page_size": ["5"],
        "dubbing_status": ["dubbed"],
        "target_language_codes": ["es", "de"],
    }
    await client.dubbing.delete("dub_1")
    assert (mock.last.method, mock.last.url.path) == ("DELETE", "/v1/dubbing/dub_1")
    download = await client.dubbing.get_audio("dub_1", "es", tmp_path / "es.mp4")
    assert mock.last.url.path == "/v1/dubbing/dub_1/audio/es"
    assert download.path is not None and download.path.read_bytes() == AUDIO


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (json.dumps(SRT), SRT),
        ("WEBVTT\n\n00:00.000 --> 00:01.000\nHola\n", "WEBVTT\n\n00:00.000 --> 00:01.000\nHola\n"),
        ('{"utterances": []}', '{"utterances": []}'),
    ],
)
async def test_dubbing_transcript_json_string_or_raw_text(body, expected):
    client, mock, _ = make_client(lambda r, n: httpx.Response(200, text=body))
    text = await client.dubbing.get_transcript("dub_1", "es", format_type="webvtt")
    assert text == expected
    assert mock.last.url.path == "/v1/dubbing/dub_1/transcript/es"
    assert query(mock.last) == {"format_type": ["webvtt"]}


# ---------------------------------------------------------------------------------------------
# Sound effects and music


async def test_sound_effect_body_and_limits(api, tmp_path):
    client, mock = api
    await client.text_to_sound_effects.convert(
        "door slam", dest=tmp_path / "sfx.mp3", duration_seconds=2.5, prompt_influence=0.7,
        loop=True, output_format="wav_44100",
    )
    assert mock.last.url.path == "/v1/sound-generation"
    assert query(mock.last) == {"output_format": ["wav_44100"]}
    assert json_body(mock.last) == {
        "text": "door slam", "duration_seconds": 2.5, "prompt_influence": 0.7, "loop": True,
    }
    with pytest.raises(RequestValidationError, match="duration_seconds"):
        await client.text_to_sound_effects.convert("x", dest=tmp_path / "a", duration_seconds=31)


async def test_music_compose_stream_and_plan(api, tmp_path):
    client, mock = api
    song = await client.music.compose(
        prompt="calm piano", music_length_ms=30000, dest=tmp_path / "m.mp3", output_format="auto"
    )
    assert song.song_id == "song_1"
    assert mock.last.url.path == "/v1/music"
    assert query(mock.last) == {"output_format": ["auto"]}
    assert json_body(mock.last) == {"prompt": "calm piano", "music_length_ms": 30000}

    plan = CompositionPlan(
        positive_global_styles=["jazz"], negative_global_styles=[],
        sections=[{"section_name": "Intro", "duration_ms": 5000, "lines": []}],
    )
    received = b"".join([c async for c in client.music.stream(composition_plan=plan, seed=3)])
    assert received == AUDIO
    assert mock.last.url.path == "/v1/music/stream"
    sent = json_body(mock.last)
    assert sent["seed"] == 3
    assert sent["composition_plan"]["sections"][0]["section_name"] == "Intro"
    assert "meta" not in sent["composition_plan"]

    drafted = await client.music.create_plan("lofi beat", music_length_ms=10000)
    assert mock.last.url.path == "/v1/music/plan"
    assert json_body(mock.last) == {"prompt": "lofi beat", "music_length_ms": 10000}
    assert drafted.positive_global_styles == ["lofi"]

    with pytest.raises(ValueError, match="exactly one of prompt, composition_plan"):
        await client.music.compose(dest=tmp_path / "x.mp3")


def mixed_body(boundary: str, audio: bytes, *, newline: bytes, closing: bool) -> bytes:
    info = {
        "composition_plan": {"positive_global_styles": ["pop"], "negative_global_styles": [],
                             "sections": []},
        "song_metadata": {"title": "Sunrise", "genres": ["pop"], "languages": ["en"],
                          "is_explicit": False},
        "words_timestamps": [{"word": "la", "start_ms": 0, "end_ms": 200}],
    }
    n = newline
    b = boundary.encode()
    body = (
        b"--" + b + n + b"Content-Type: application/json" + n + n + json.dumps(info).encode() + n
        + b"--" + b + n + b'Content-Type: audio/mpeg' + n
        + b'Content-Disposition: attachment; filename="sunrise.mp3"' + n + n + audio
    )
    if closing:
        body += n + b"--" + b + b"--" + n
    return body


@pytest.mark.parametrize(
    ("newline", "closing", "header_boundary"),
    [(b"\r\n", True, True), (b"\n", False, False), (b"\r\n", False, False)],
)
async def test_music_compose_detailed_parses_multipart_mixed(
    tmp_path, newline, closing, header_boundary
):
    # Audio containing CR/LF bytes and dashes must come through unchanged.
    audio = (b"\r\n--not-the-boundary\r\n" + bytes(range(256))) * 300 + b"\r"
    body = mixed_body("b0undary42", audio, newline=newline, closing=closing)
    content_type = "multipart/mixed" + ('; boundary="b0undary42"' if header_boundary else "")

    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self):
            for i in range(0, len(body), 777):  # boundaries straddle chunk edges
                yield body[i : i + 777]

    client, mock, _ = make_client(
        lambda r, n: httpx.Response(
            200, stream=Trickle(), headers={"content-type": content_type, "song-id": "s9"}
        )
    )
    result = await client.music.compose_detailed(
        prompt="sunrise pop", with_timestamps=True, dest=tmp_path / "song.mp3"
    )
    assert json_body(mock.last) == {"prompt": "sunrise pop", "with_timestamps": True}
    assert mock.last.url.path == "/v1/music/detailed"
    assert (tmp_path / "song.mp3").read_bytes() == audio
    assert result.audio.bytes_written == len(audio)
    assert result.song_metadata is not None and result.song_metadata.title == "Sunrise"
    assert result.composition_plan is not None
    assert result.composition_plan.positive_global_styles == ["pop"]
    assert result.words_timestamps is not None and result.words_timestamps[0].word == "la"
    assert result.filename == "sunrise.mp3"
    assert result.song_id == "s9"


# ---------------------------------------------------------------------------------------------
# Voice design and voices


async def test_voice_design_and_create(api, tmp_path):
    client, mock = api
    design = await client.text_to_voice.design(
        "A deep, calm narrator with a gentle British accent.",
        auto_generate_text=True, loudness=0.5, guidance_scale=5, output_format="mp3_44100_192",
    )
    assert mock.last.url.path == "/v1/text-to-voice/design"
    assert query(mock.last) == {"output_format": ["mp3_44100_192"]}
    assert json_body(mock.last) == {
        "voice_description": "A deep, calm narrator with a gentle British accent.",
        "auto_generate_text": True, "loudness": 0.5, "guidance_scale": 5.0,
    }
    paths = design.save_previews(tmp_path / "previews")
    assert [p.name for p in paths] == ["gen_1.mp3"]
    assert paths[0].read_bytes() == b"mp3"

    await client.text_to_voice.create_previews("A bright, young voice for adverts.", text="x" * 100)
    assert mock.last.url.path == "/v1/text-to-voice/create-previews"

    voice = await client.text_to_voice.create(
        voice_name="Narrator", voice_description="Deep calm narrator", generated_voice_id="gen1",
        labels={"accent": "british"},
    )
    assert voice.voice_id == "new_voice"
    assert json_body(mock.last) == {
        "voice_name": "Narrator", "voice_description": "Deep calm narrator",
        "generated_voice_id": "gen1", "labels": {"accent": "british"},
    }
    preview = b"".join([c async for c in client.text_to_voice.stream("gen1")])
    assert preview == AUDIO
    assert (mock.last.method, mock.last.url.path) == ("GET", "/v1/text-to-voice/gen1/stream")


async def test_voices_search_sends_every_query_param(api):
    client, mock = api
    await client.voices.search(
        next_page_token="tok", page_size=50, search="calm", sort="name", sort_direction="asc",
        voice_type="default", category="premade", fine_tuning_state="fine_tuned",
        collection_id="col", gender="female", age="young", language=["en", "es"], accent="irish",
        use_cases="narration", min_notice_period_days=3, include_custom_rates=True,
        include_live_moderated=False, high_quality=True, include_total_count=False,
        voice_ids=["a", "b"],
    )
    assert mock.last.url.path == "/v2/voices"
    assert query(mock.last) == {
        "next_page_token": ["tok"], "page_size": ["50"], "search": ["calm"], "sort": ["name"],
        "sort_direction": ["asc"], "voice_type": ["default"], "category": ["premade"],
        "fine_tuning_state": ["fine_tuned"], "collection_id": ["col"], "gender": ["female"],
        "age": ["young"], "language": ["en", "es"], "accent": ["irish"],
        "use_cases": ["narration"], "min_notice_period_days": ["3"],
        "include_custom_rates": ["true"], "include_live_moderated": ["false"],
        "high_quality": ["true"], "include_total_count": ["false"], "voice_ids": ["a", "b"],
    }


async def test_voices_iter_all_follows_next_page_token():
    pages = {
        None: {"voices": [{"voice_id": "v1"}, {"voice_id": "v2"}], "has_more": True,
               "next_page_token": "p2"},
        "p2": {"voices": [{"voice_id": "v3"}], "has_more": True, "next_page_token": "p3"},
        "p3": {"voices": [{"voice_id": "v4"}], "has_more": False, "next_page_token": None},
    }
    client, mock, _ = make_client(
        lambda r, n: json_response(200, pages[r.url.params.get("next_page_token")])
    )
    ids = [v.voice_id async for v in client.voices.iter_all(category="cloned", page_size=2)]
    assert ids == ["v1", "v2", "v3", "v4"]
    assert [r.url.params.get("next_page_token") for r in mock.requests] == [None, "p2", "p3"]
    assert all(r.url.params["category"] == "cloned" for r in mock.requests)


async def test_voice_clone_edit_settings(api, wav_file, tmp_path):
    client, mock = api
    second = tmp_path / "two.mp3"
    second.write_bytes(b"ID3second")
    created = await client.voices.add(
        "My clone", [wav_file, second], description="me", labels={"accent": "irish"},
        remove_background_noise=True,
    )
    assert created.voice_id == "cloned"
    request = mock.last
    assert request.url.path == "/v1/voices/add"
    assert form(request) == {
        "name": ["My clone"], "description": ["me"], "remove_background_noise": ["true"],
        "labels": ['{"accent": "irish"}'],
    }
    files = [(p.name, p.filename, p.data) for p in parse_multipart(request) if p.filename]
    assert files == [
        ("files", "speech.wav", wav_file.read_bytes()),
        ("files", "two.mp3", b"ID3second"),
    ]
    await client.voices.add("Bare", [b"sample"])
    assert form(mock.last)["labels"] == ["null"]

    await client.voices.edit(VOICE, name="Renamed")
    assert mock.last.url.path == f"/v1/voices/{VOICE}/edit"
    assert form(mock.last) == {"name": ["Renamed"]}

    settings = await client.voices.get_settings(VOICE)
    assert settings.stability == 0.5 and mock.last.url.path == f"/v1/voices/{VOICE}/settings"
    await client.voices.get_default_settings()
    assert mock.last.url.path == "/v1/voices/settings/default"
    await client.voices.edit_settings(VOICE, {"stability": 0.2, "use_speaker_boost": False})
    assert mock.last.url.path == f"/v1/voices/{VOICE}/settings/edit"
    assert json_body(mock.last) == {"stability": 0.2, "use_speaker_boost": False}

    voice = await client.voices.get(VOICE)
    assert voice.name == "Rachel" and mock.last.url.path == f"/v1/voices/{VOICE}"
    await client.voices.delete(VOICE)
    assert mock.last.method == "DELETE"
    listed = await client.voices.list(show_legacy=True)
    assert listed.voices[0].voice_id == VOICE
    assert (mock.last.url.path, query(mock.last)) == ("/v1/voices", {"show_legacy": ["true"]})


def test_returned_settings_outside_todays_ranges_are_kept():
    from prefect_elevenlabs.client import Voice

    voice = Voice.model_validate({"voice_id": "v", "settings": {"speed": 1.5, "new_knob": 1}})
    assert voice.settings is not None and voice.settings.speed == 1.5


# ---------------------------------------------------------------------------------------------
# Account, history, voice changer, isolation, alignment, conversations


async def test_models_user_subscription(api):
    client, mock = api
    models = await client.models.list()
    assert models[0].maximum_text_length_per_request == 40000
    assert mock.last.url.path == "/v1/models"
    user = await client.user.get()
    assert user.subscription is not None and user.subscription.tier == "free"
    sub = await client.user.get_subscription()
    assert sub.characters_remaining == 90
    assert mock.last.url.path == "/v1/user/subscription"


async def test_history_endpoints_and_paging(tmp_path):
    pages = [
        {"history": [{"history_item_id": "h1"}, {"history_item_id": "h2"}],
         "last_history_item_id": "h2", "has_more": True},
        {"history": [{"history_item_id": "h3"}], "last_history_item_id": "h3", "has_more": False},
    ]

    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if request.url.path == "/v1/history":
            return json_response(200, pages[0 if "start_after_history_item_id" not in
                                            request.url.params else 1])
        return route(request, n)

    client, mock, _ = make_client(respond)
    ids = [i.history_item_id async for i in client.history.iter_all(voice_id=VOICE, page_size=2)]
    assert ids == ["h1", "h2", "h3"]
    assert query(mock.requests[1]) == {
        "page_size": ["2"], "start_after_history_item_id": ["h2"], "voice_id": [VOICE],
    }
    item = await client.history.get("h1")
    assert item.history_item_id == "h1"
    await client.history.get_audio("h1", tmp_path / "h1.mp3")
    assert mock.last.url.path == "/v1/history/h1/audio"
    assert (tmp_path / "h1.mp3").read_bytes() == AUDIO
    await client.history.delete("h1")
    assert (mock.last.method, mock.last.url.path) == ("DELETE", "/v1/history/h1")


async def test_speech_to_speech_and_isolation(api, wav_file, tmp_path):
    client, mock = api
    await client.speech_to_speech.convert(
        VOICE, audio=wav_file, dest=tmp_path / "sts.mp3", model_id="eleven_multilingual_sts_v2",
        voice_settings={"stability": 0.4}, remove_background_noise=True, seed=5,
        output_format="mp3_44100_64",
    )
    request = mock.last
    assert request.url.path == f"/v1/speech-to-speech/{VOICE}"
    assert query(request) == {"output_format": ["mp3_44100_64"]}
    fields = form(request)
    assert json.loads(fields["voice_settings"][0]) == {"stability": 0.4}
    assert fields["model_id"] == ["eleven_multilingual_sts_v2"]
    assert fields["remove_background_noise"] == ["true"]
    assert fields["seed"] == ["5"]
    audio_part = next(p for p in parse_multipart(request) if p.name == "audio")
    assert audio_part.data == wav_file.read_bytes()

    streamed = b"".join([c async for c in client.speech_to_speech.stream(VOICE, audio=b"pcm")])
    assert streamed == AUDIO and mock.last.url.path == f"/v1/speech-to-speech/{VOICE}/stream"

    await client.audio_isolation.convert(audio=wav_file, dest=tmp_path / "iso.mp3")
    assert mock.last.url.path == "/v1/audio-isolation"
    assert [p.name for p in parse_multipart(mock.last)] == ["audio"]
    async with client.audio_isolation.stream(audio=wav_file, file_format="other") as stream:
        assert b"".join([c async for c in stream.iter_bytes()]) == AUDIO
    assert mock.last.url.path == "/v1/audio-isolation/stream"
    assert form(mock.last) == {"file_format": ["other"]}


async def test_forced_alignment(api, wav_file):
    client, mock = api
    aligned = await client.forced_alignment.create(wav_file, "hi there")
    assert aligned.words[0].text == "hi" and aligned.loss == 0.1
    assert mock.last.url.path == "/v1/forced-alignment"
    assert form(mock.last) == {"text": ["hi there"]}
    assert [(p.name, p.filename) for p in parse_multipart(mock.last) if p.filename] == [
        ("file", "speech.wav")
    ]


async def test_conversations_paging_detail_audio(tmp_path):
    def respond(request: httpx.Request, n: int) -> httpx.Response:
        if request.url.path == "/v1/convai/conversations":
            if request.url.params.get("cursor") == "c2":
                return json_response(200, {"conversations": [{"conversation_id": "b"}],
                                           "next_cursor": None, "has_more": False})
            return json_response(200, {"conversations": [{"conversation_id": "a"}],
                                       "next_cursor": "c2", "has_more": True})
        if request.url.path.endswith("/audio"):
            return audio_response(AUDIO)
        return json_response(200, {
            "conversation_id": "a",
            "transcript": [
                {"role": "agent", "message": "Second", "time_in_call_secs": 5},
                {"role": "agent", "message": None, "time_in_call_secs": 3, "tool_calls": [{}]},
                {"role": "user", "message": "First", "time_in_call_secs": 1},
            ],
        })

    client, mock, _ = make_client(respond)
    listing = client.conversations.iter_all(agent_id="ag", page_size=10)
    ids = [c.conversation_id async for c in listing]
    assert ids == ["a", "b"]
    assert query(mock.requests[1]) == {"cursor": ["c2"], "page_size": ["10"], "agent_id": ["ag"]}
    conversation = await client.conversations.get("a")
    assert [t.message for t in conversation.messages()] == ["First", "Second"]
    assert mock.last.url.path == "/v1/convai/conversations/a"
    await client.conversations.get_audio("a", tmp_path / "a.mp3")
    assert mock.last.url.path == "/v1/convai/conversations/a/audio"


# ---------------------------------------------------------------------------------------------
# Client construction


async def test_base_url_forms_and_file_object_destinations():
    for base in ("http://127.0.0.1:8011/", "https://proxy.example/el"):
        api = MockApi(lambda r, n: audio_response(AUDIO))
        client = ElevenLabsClient("k", base_url=base, http_transport=httpx.MockTransport(api))
        async with client:
            sink = io.BytesIO()
            result = await client.text_to_speech.convert(VOICE, text="Hi", dest=sink)
        assert sink.getvalue() == AUDIO and result.path is None
        expected = base.rstrip("/") + f"/v1/text-to-speech/{VOICE}"
        assert str(api.last.url) == expected


@pytest.mark.parametrize("bad", ["https://api.elevenlabs.io/v1", "ftp://x", "nohost"])
def test_bad_base_url_is_refused_with_the_fix(bad):
    with pytest.raises(ConfigurationError, match="origin"):
        ElevenLabsClient("k", base_url=bad)

