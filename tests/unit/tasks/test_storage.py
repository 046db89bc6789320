"""Output folders: staged writes, and clearing what a killed writer left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_elevenlabs.errors import InvalidRequestError
from prefect_elevenlabs.tasks._storage import OutputDir, _host_tag


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_staged_file_appears_only_when_complete(tmp_path: Path) -> None:
    out = OutputDir(tmp_path)
    with out.staged("speech.mp3") as staged:
        # While it is written the file is hidden, and names this machine and process.
        assert staged.name.startswith(f".speech.{_host_tag()}-{os.getpid()}.")
        assert staged.name.endswith(".part.mp3")
        staged.write_bytes(b"ID3 audio")
        assert not (tmp_path / "speech.mp3").exists()
    assert (tmp_path / "speech.mp3").read_bytes() == b"ID3 audio"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.mp3"]

    with pytest.raises(InvalidRequestError, match="no data"), out.staged("empty.mp3"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.mp3"]


def test_only_files_of_writers_that_no_longer_run_are_removed(tmp_path: Path) -> None:
    host = _host_tag()
    nested = tmp_path / ".work" / "es"
    nested.mkdir(parents=True)
    abandoned = [
        tmp_path / f".intro.{host}-{_dead_pid()}.k2x_9abc.part.mp3",
        nested / f".hola.mundo.{host}-{_dead_pid()}.zz8q1w0e.part.wav",
        tmp_path / f".notes.{host}-{_dead_pid()}.q1w2e3r4.part",
    ]
    kept = [
        tmp_path / f".live.{host}-{os.getpid()}.abcd1234.part.mp3",  # this process writes it
        tmp_path / f".remote.other-machine-{_dead_pid()}.abcd1234.part.mp3",  # a shared volume
        tmp_path / ".hidden-but-ours.txt",
        tmp_path / "intro.mp3",
    ]
    for path in abandoned + kept:
        path.write_bytes(b"x")

    removed = OutputDir(tmp_path).remove_abandoned_staging()

    assert sorted(removed) == sorted(abandoned)
    assert all(not p.exists() for p in abandoned)
    assert all(p.exists() for p in kept)
    assert OutputDir(tmp_path / "missing").remove_abandoned_staging() == []
    assert OutputDir("memory://nowhere").remove_abandoned_staging() == []
