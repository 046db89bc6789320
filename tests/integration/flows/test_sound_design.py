"""The sound_design and design_voice_flow flows against the local engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from prefect_elevenlabs.errors import InvalidRequestError
from prefect_elevenlabs.flows import (
    MusicBrief,
    ScriptError,
    SoundEffectBrief,
    design_voice_flow,
    load_sound_briefs,
    sound_design,
)

from .conftest import characters_spent, duration_of

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.engine]


def test_effects_and_music_with_an_index(engine, credentials, tmp_path: Path) -> None:
    summary = sound_design(
        effects=[
            SoundEffectBrief(id="knock", text="three knocks on a wooden door", duration_seconds=2),
            {"text": "gentle rain on a tin roof", "duration_seconds": 3, "loop": True},
        ],
        music=[MusicBrief(id="intro", prompt="calm piano intro", music_length_ms=5000)],
        output_dir=str(tmp_path),
        credentials=credentials,
    )

    assert [i.id for i in summary.items] == ["knock", "sfx-02", "intro"]
    assert duration_of(tmp_path / "knock.mp3") == pytest.approx(2.0, abs=0.2)
    assert duration_of(tmp_path / "sfx-02.mp3") == pytest.approx(3.0, abs=0.2)
    assert duration_of(tmp_path / "intro.mp3") == pytest.approx(5.0, abs=0.5)
    index = json.loads((tmp_path / "index.json").read_text())
    assert [(e["id"], e["kind"], e["file"], e["status"]) for e in index["items"]] == [
        ("knock", "sound effect", "knock.mp3", "completed"),
        ("sfx-02", "sound effect", "sfx-02.mp3", "completed"),
        ("intro", "music", "intro.mp3", "completed"),
    ]
    assert index["items"][1]["brief"]["loop"] is True
    assert summary.artifacts == [str(tmp_path / "index.json")]


def test_brief_files_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "briefs.jsonl"
    good.write_text('{"text": "a bell"}\n{"prompt": "jazz", "id": "jazz"}\n', encoding="utf-8")
    effects, music = load_sound_briefs(good)
    assert [e.text for e in effects] == ["a bell"] and [m.id for m in music] == ["jazz"]

    bad = tmp_path / "bad.json"
    bad.write_text('{"effects": [{"text": "x", "duration_seconds": 99}]}', encoding="utf-8")
    with pytest.raises(ScriptError, match="brief 1 is invalid: duration_seconds"):
        load_sound_briefs(bad)
    neither = tmp_path / "neither.json"
    neither.write_text('[{"title": "?"}]', encoding="utf-8")
    with pytest.raises(ScriptError, match="needs 'text'"):
        load_sound_briefs(neither)


def test_duplicate_ids_are_refused(credentials, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="duplicate id 'a'"):
        sound_design(
            effects=[{"id": "a", "text": "one"}, {"id": "a", "text": "two"}],
            output_dir=str(tmp_path),
            credentials=credentials,
        )


def test_voice_design_writes_previews_and_saves_the_chosen_one(
    engine, credentials, tmp_path: Path
) -> None:
    description = "A calm, deep male narrator with a slow and warm delivery."
    result = design_voice_flow(
        description, output_dir=str(tmp_path), save_as="Calm narrator", chosen_preview=1,
        credentials=credentials,
    )  # fmt: skip

    assert len(result.previews) == 3
    for preview in result.previews:
        assert duration_of(preview.audio.uri) > 1.0
    assert result.voice is not None and result.chosen_preview == 1
    response = httpx.get(
        f"{engine.base_url}/v1/voices/{result.voice.voice_id}", headers={"xi-api-key": "x"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Calm narrator"

    spent = characters_spent(engine, credentials)
    again = design_voice_flow(description, output_dir=str(tmp_path), credentials=credentials)
    assert [p.generated_voice_id for p in again.previews] == [
        p.generated_voice_id for p in result.previews
    ]
    assert characters_spent(engine, credentials) == spent


def test_a_batch_stops_starting_briefs_once_the_credits_run_out(make_engine, tmp_path: Path):
    from prefect_elevenlabs.errors import QuotaExceededError

    from .conftest import fresh_credentials

    prompts = [f"a short bell ring number {n}" for n in range(6)]  # 26 characters each
    poor = make_engine(character_quota=2 * len(prompts[0]) + 5)  # pays for two briefs
    effects = [
        {"id": f"bell-{n}", "text": text, "duration_seconds": 0.5} for n, text in enumerate(prompts)
    ]

    with pytest.raises(QuotaExceededError) as caught:
        sound_design(
            effects=effects,
            output_dir=str(tmp_path),
            max_concurrency=1,
            credentials=fresh_credentials(poor),
        )

    error = caught.value
    assert error.completed == ["bell-0", "bell-1"]
    assert error.missing == ["bell-2", "bell-3", "bell-4", "bell-5"]
    statuses = {item.id: item.status for item in error.summary.items}
    assert statuses == {
        "bell-0": "completed",
        "bell-1": "completed",
        "bell-2": "failed",
        "bell-3": "skipped",
        "bell-4": "skipped",
        "bell-5": "skipped",
    }
    assert sorted(p.name for p in tmp_path.glob("*.mp3")) == ["bell-0.mp3", "bell-1.mp3"]
    index = json.loads((tmp_path / "index.json").read_text())
    assert [entry["status"] for entry in index["items"]][-3:] == ["skipped"] * 3
    assert "2 of 6 briefs completed" in error.message
    # The progress artifact ends where the batch stopped: 3 of 6 briefs handled.
    progress = asyncio.run(_latest_artifact("sound-design-progress"))
    assert progress.data == 50.0 and progress.description == "3 of 6 done"


async def _latest_artifact(key: str):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        artifacts = await client.read_latest_artifacts()
    return next(a for a in artifacts if a.key == key)
