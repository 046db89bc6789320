"""The dub flow against the local engine: Spanish video and subtitles, edits, both strategies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from prefect_elevenlabs.flows import ItemsFailedError, SegmentEdit, dub
from prefect_elevenlabs.subtitles import parse_srt, parse_vtt

from .conftest import (
    SAMPLE_CLIP,
    characters_spent,
    duration_of,
    speak,
    streams_of,
    transcribe_with_engine,
)

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.engine]

SOURCE_SECONDS = 8.08
SPANISH_VOICE = "plainEspeakF3"


@pytest.fixture(scope="module")
def spanish_voice(engine) -> str:
    """A stored voice spoken by espeak-ng's own Spanish, with no pitch shift on top.

    Whisper recognises this voice's Spanish reliably; the premade voices' pitch-shifted
    Spanish is often taken for French or Latin by the small multilingual model.
    """
    from prefect_elevenlabs.local.state import StoredVoice

    engine.app.state.engine_state.add_voice(
        StoredVoice(
            voice_id=SPANISH_VOICE,
            name="Plain espeak voice",
            category="cloned",
            profile={"engine": "espeak", "espeak_voice": "en-us", "variant": "f3"},
            description="espeak-ng with the f3 variant and no pitch shift",
            labels={"use_case": "tests"},
        )
    )
    return SPANISH_VOICE


class Recording:
    """A translator that records its calls and answers with fixed Spanish sentences."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None, str]] = []
        # Translations are cached on this identity: a new one per test keeps runs independent.
        self.identity = f"recording-translator-{uuid.uuid4().hex}"

    def cache_identity(self) -> str:
        return self.identity

    async def translate(self, texts: Sequence[str], source: str | None, target: str) -> list[str]:
        self.calls.append((list(texts), source, target))
        return [f"Frase número {n} en español." for n in range(1, len(texts) + 1)]


def test_compose_makes_a_spanish_video_and_an_unknown_pair_fails_alone(
    engine, credentials, spanish_voice: str, tmp_path: Path
) -> None:
    out = tmp_path / "dub"
    with pytest.raises(ItemsFailedError) as caught:
        dub(
            str(SAMPLE_CLIP),
            ["es", "xh"],
            output_dir=str(out),
            num_speakers=1,
            voice_map={"speaker_0": spanish_voice},
            credentials=credentials,
        )
    error = caught.value
    assert error.failed == ["xh"]
    assert "xh" in str(error)
    spanish = error.summary.items[0]
    assert spanish.status == "completed"

    video = out / "sample_clip.es.mp4"
    streams = streams_of(video)
    assert set(streams) == {"video", "audio", "subtitle"}
    assert streams["audio"]["tags"]["language"] == "spa"
    assert streams["subtitle"]["tags"]["language"] == "spa"
    assert duration_of(video) == pytest.approx(SOURCE_SECONDS, abs=0.5)

    heard = transcribe_with_engine(engine, video)
    assert heard["language_code"] in ("es", "spa")

    cues = parse_srt((out / "sample_clip.es.srt").read_text(encoding="utf-8"))
    text = " ".join(c.text for c in cues).lower()
    assert "gracias" in text and "estudio" in text
    assert all(0 <= c.start < c.end <= SOURCE_SECONDS + 0.5 for c in cues)
    assert len(parse_vtt((out / "sample_clip.es.vtt").read_text(encoding="utf-8"))) == len(cues)

    plan = json.loads((out / "sample_clip.es.segments.json").read_text(encoding="utf-8"))
    segments = plan["segments"]
    assert len(segments) == 3
    assert segments[0]["source_text"].startswith("Hello and welcome")
    assert {s["speaker"] for s in segments} == {"speaker_0"}
    assert {s["voice_id"] for s in segments} == {spanish_voice}
    source = json.loads((out / "sample_clip.transcript.json").read_text(encoding="utf-8"))
    assert "small studio" in source["text"]


def test_editing_one_segment_respeaks_only_that_segment(
    engine, credentials, tmp_path: Path
) -> None:
    out = tmp_path / "dub"
    translator = Recording()
    first = dub(
        str(SAMPLE_CLIP),
        ["es"],
        output_dir=str(out),
        num_speakers=1,
        translator=translator,
        credentials=credentials,
    )
    spent = characters_spent(engine, credentials)
    edit = "Este vídeo se hizo sin internet."
    second = dub(
        str(SAMPLE_CLIP),
        ["es"],
        output_dir=str(out),
        num_speakers=1,
        translator=translator,
        segment_edits=[SegmentEdit(language="es", index=1, text=edit)],
        credentials=credentials,
    )

    assert first.items[0].details["respoken"] == 3
    assert second.items[0].details["respoken"] == 1
    assert characters_spent(engine, credentials) - spent == len(edit)
    # Translation is cached too: the translator was asked once for both runs.
    assert len(translator.calls) == 1
    texts, source, target = translator.calls[0]
    assert len(texts) == 3 and source in ("en", "eng") and target == "es"
    plan = json.loads((out / "sample_clip.es.segments.json").read_text(encoding="utf-8"))
    assert [s["edited"] for s in plan["segments"]] == [False, True, False]
    assert plan["segments"][1]["text"] == edit
    cues = parse_srt((out / "sample_clip.es.srt").read_text(encoding="utf-8"))
    assert "internet" in " ".join(c.text for c in cues)


def test_audio_input_gives_an_mp3_dub(engine, credentials, tmp_path: Path) -> None:
    source = speak(engine, "Thank you very much. See you tomorrow.", tmp_path / "thanks.wav")
    summary = dub(
        str(source),
        ["es"],
        output_dir=str(tmp_path / "out"),
        num_speakers=1,
        voice_map={"*": "pNInz6obpgDQGcFmaJgB"},
        subtitle_formats=["vtt"],
        credentials=credentials,
    )
    names = [Path(p).name for p in summary.items[0].outputs]
    assert names[:2] == ["thanks.es.mp3", "thanks.es.vtt"]
    assert set(streams_of(tmp_path / "out" / "thanks.es.mp3")) == {"audio"}
    assert duration_of(tmp_path / "out" / "thanks.es.mp3") == pytest.approx(
        duration_of(source), abs=0.3
    )
    plan = json.loads((tmp_path / "out" / "thanks.es.segments.json").read_text())
    assert {s["voice_id"] for s in plan["segments"]} == {"pNInz6obpgDQGcFmaJgB"}


def test_clone_speakers_clones_each_voice_once(engine, credentials, tmp_path: Path) -> None:
    import httpx

    source = speak(engine, "Good morning. The library opens at nine.", tmp_path / "hello.wav")
    runs = [
        dub(
            str(source),
            ["es"],
            output_dir=str(tmp_path / "out"),
            num_speakers=1,
            clone_speakers=True,
            credentials=credentials,
        )
        for _ in range(2)
    ]
    plans = [json.loads((tmp_path / "out" / "hello.es.segments.json").read_text()) for _ in runs]
    voices = {s["voice_id"] for s in plans[-1]["segments"]}
    assert len(voices) == 1
    voice_id = voices.pop()
    response = httpx.get(f"{engine.base_url}/v1/voices/{voice_id}", headers={"xi-api-key": "x"})
    assert response.status_code == 200
    assert response.json()["category"] == "cloned"
    assert response.json()["name"] == "hello speaker_0"
    listed = httpx.get(f"{engine.base_url}/v1/voices", headers={"xi-api-key": "x"}).json()
    # The second run reused the clone instead of making another.
    assert sum(v["name"] == "hello speaker_0" for v in listed["voices"]) == 1


def test_dubbing_api_strategy_downloads_video_and_subtitles(
    engine, credentials, tmp_path: Path
) -> None:
    out = tmp_path / "api"
    summary = dub(
        str(SAMPLE_CLIP),
        ["es"],
        output_dir=str(out),
        strategy="dubbing_api",
        num_speakers=1,
        dubbing_api={"poll_interval_s": 0.5, "timeout_s": 600},
        credentials=credentials,
    )
    item = summary.items[0]
    assert item.status == "completed" and item.details["dubbing_id"]
    names = sorted(Path(p).name for p in item.outputs)
    assert names == ["sample_clip.es.mp4", "sample_clip.es.srt", "sample_clip.es.vtt"]
    assert {"video", "audio"} <= set(streams_of(out / "sample_clip.es.mp4"))
    assert parse_srt((out / "sample_clip.es.srt").read_text(encoding="utf-8"))
    assert parse_vtt((out / "sample_clip.es.vtt").read_text(encoding="utf-8"))


def test_bad_requests_fail_before_any_work(credentials, tmp_path: Path) -> None:
    from prefect_elevenlabs.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="not a language code"):
        dub(str(SAMPLE_CLIP), ["spanish!"], output_dir=str(tmp_path), credentials=credentials)
    with pytest.raises(InvalidRequestError, match="not in target_languages"):
        dub(
            str(SAMPLE_CLIP),
            ["es"],
            output_dir=str(tmp_path),
            segment_edits=[SegmentEdit(language="fr", index=0, text="Bonjour.")],
            credentials=credentials,
        )
