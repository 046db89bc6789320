"""The narrate flow against the local engine: files, loudness, chapters, cache, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from prefect_elevenlabs.errors import QuotaExceededError
from prefect_elevenlabs.flows import ItemsFailedError, ScriptError, narrate
from prefect_elevenlabs.media import measure_loudness

from .conftest import characters_spent, duration_of, engine_stats, ffprobe, fresh_credentials

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.engine]

FAST_VOICE = "fastEspeakTestVoice"


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_batch_is_normalised_and_a_rerun_spends_nothing(
    engine, credentials, tmp_path: Path
) -> None:
    scripts = write_jsonl(
        tmp_path / "scripts.jsonl",
        [
            {
                "id": "intro",
                "text": "Welcome to the show. Today: rivers, lakes and the people beside them.",
            },
            {
                "id": "outro",
                "text": "Thank you for listening. See you next week, same time, same place.",
                "voice_id": FAST_VOICE,
            },
        ],
    )
    out = tmp_path / "audio"

    first = narrate(str(scripts), output_dir=str(out), credentials=credentials)
    spent = characters_spent(engine, credentials)
    second = narrate(str(scripts), output_dir=str(out), credentials=credentials)

    lengths = [len(row["text"]) for row in map(json.loads, scripts.read_text().splitlines())]
    assert spent == sum(lengths)
    assert [i.characters for i in first.items] == lengths
    # The re-run is answered from the task cache: the engine bills nothing more.
    assert characters_spent(engine, credentials) == spent
    assert [i.characters for i in second.items] == [0, 0]
    assert [i.status for i in second.items] == ["completed", "completed"]
    assert first.items[1].details["voice_id"] == FAST_VOICE
    for name in ("intro.mp3", "outro.mp3"):
        assert duration_of(out / name) > 2.0
        assert measure_loudness(out / name).integrated_lufs == pytest.approx(-16.0, abs=1.5)


async def test_progress_artifact_reaches_100_percent(engine, credentials, tmp_path: Path) -> None:
    state = narrate(
        [{"id": f"line-{n}", "text": f"This is line number {n}."} for n in range(3)],
        output_dir=str(tmp_path),
        voice_id=FAST_VOICE,
        target_lufs=None,
        credentials=credentials,
        return_state=True,
    )
    assert state.is_completed()
    async with get_client() as client:
        artifacts = await client.read_latest_artifacts()
    progress = [a for a in artifacts if a.key == "narration-progress"]
    assert progress and progress[0].data == 100.0


def test_markdown_chapters_become_files_and_chapter_markers(
    engine, credentials, tmp_path: Path
) -> None:
    book = tmp_path / "scripts"
    book.mkdir()
    (book / "guide.md").write_text(
        "# Getting started\n\nInstall the **tool** and open a terminal.\n\n"
        "## Next steps\n\n- Read the [manual](https://example.com).\n- Ask a friend.\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"

    summary = narrate(
        str(book), output_dir=str(out), voice_id=FAST_VOICE, chapters=True, credentials=credentials
    )

    item = summary.items[0]
    assert [Path(p).name for p in item.outputs] == ["guide.mp3", "guide-01.mp3", "guide-02.mp3"]
    chapters = ffprobe(out / "guide.mp3")["chapters"]
    assert [c["tags"]["title"] for c in chapters] == ["Getting started", "Next steps"]
    first_part = duration_of(out / "guide-01.mp3")
    assert float(chapters[1]["start_time"]) == pytest.approx(first_part, abs=0.15)
    assert duration_of(out / "guide.mp3") == pytest.approx(
        first_part + duration_of(out / "guide-02.mp3"), abs=0.3
    )
    # Markup is not read out: the engine was asked for plain words only.
    assert "**" not in json.dumps(item.details["assets"])


def test_a_failing_script_does_not_stop_the_others(engine, credentials, tmp_path: Path) -> None:
    with pytest.raises(ItemsFailedError) as caught:
        narrate(
            [
                {"id": "good", "text": "This one works."},
                {"id": "bad-voice", "text": "This one cannot.", "voice_id": "noSuchVoice123"},
            ],
            output_dir=str(tmp_path),
            voice_id=FAST_VOICE,
            credentials=credentials,
        )
    error = caught.value
    assert error.failed == ["bad-voice"]
    assert "bad-voice" in str(error) and "noSuchVoice123" in str(error)
    assert (tmp_path / "good.mp3").exists()
    assert not (tmp_path / "bad-voice.mp3").exists()


def test_concurrency_is_bounded(make_engine, tmp_path: Path) -> None:
    handle = make_engine(latency_ms=150)
    credentials = fresh_credentials(handle, max_concurrency=8)
    narrate(
        [{"id": f"n{n}", "text": f"Sentence {n}."} for n in range(4)],
        output_dir=str(tmp_path),
        voice_id=FAST_VOICE,
        target_lufs=None,
        max_concurrency=1,
        credentials=credentials,
    )
    assert engine_stats(handle)["peak_concurrency"] == 1


def test_budget_is_checked_before_any_character_is_spent(
    engine, credentials, tmp_path: Path
) -> None:
    with pytest.raises(QuotaExceededError, match="max_characters"):
        narrate(
            [{"id": "long", "text": "Far too many words for this small budget."}],
            output_dir=str(tmp_path),
            max_characters=10,
            credentials=credentials,
        )
    assert characters_spent(engine, credentials) == 0


def test_the_plan_quota_is_checked_too(make_engine, tmp_path: Path) -> None:
    handle = make_engine(character_quota=20)
    credentials = fresh_credentials(handle)
    with pytest.raises(QuotaExceededError, match="left"):
        narrate(
            [{"id": "long", "text": "More characters than the plan has left this month."}],
            output_dir=str(tmp_path),
            credentials=credentials,
        )
    assert characters_spent(handle, credentials) == 0


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("name,text\nintro,Hello\n", ".csv", "lacks the column(s) id"),
        ('{"id": "a", "text": "Hi"}\n{"id": "b", "text": "  "}\n', ".jsonl", "'b' has no text"),
        ('{"id": "a", "text": "Hi"}\n{"id": "a", "text": "Yo"}\n', ".jsonl", "duplicate id 'a'"),
        ('{"id": "../etc", "text": "Hi"}\n', ".jsonl", "cannot name a file"),
        ('{"id": "a", "text": "Hi"}\nnot json\n', ".jsonl", "line 2 is not valid JSON"),
    ],
)
def test_bad_script_files_fail_before_anything_is_spoken(
    engine, credentials, tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    path = tmp_path / f"scripts{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ScriptError, match=message.replace("(", r"\(").replace(")", r"\)")):
        narrate(str(path), output_dir=str(tmp_path / "out"), credentials=credentials)
    assert characters_spent(engine, credentials) == 0


def test_a_non_utf8_file_names_the_file_and_byte(credentials, tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "fine.txt").write_text("All good.", encoding="utf-8")
    (folder / "latin.txt").write_bytes("Caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ScriptError) as caught:
        narrate(str(folder), output_dir=str(tmp_path / "out"), credentials=credentials)
    assert "latin.txt" in str(caught.value)
    assert "byte 3" in str(caught.value)
