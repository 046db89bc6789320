"""Input checks and atomic output files shared by every media function."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import MediaError

__all__ = ["PathLike", "atomic_dir", "atomic_output", "require_file"]

PathLike = str | os.PathLike[str]


def require_file(path: PathLike) -> Path:
    """Returns ``path`` as a Path after checking it names a readable, non-empty file."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p.name} does not exist (looked for {p})", status="media_not_found")
    if not p.is_file():
        raise MediaError(f"{p.name} is not a file ({p})", status="media_not_found")
    if p.stat().st_size == 0:
        raise MediaError(f"{p.name} is empty (0 bytes), not a media file", status="media_corrupt")
    if not os.access(p, os.R_OK):
        raise MediaError(f"{p.name} is not readable ({p})", status="media_not_found")
    return p


def _prepare_destination(dest: PathLike) -> Path:
    p = Path(dest)
    if p.exists() and p.is_dir():
        raise MediaError(
            f"{p} is a directory; pass a file name for the output", status="invalid_parameters"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_output(dest: PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``dest``; it replaces ``dest`` only if the block succeeds.

    The temporary name keeps ``dest``'s suffix so ffmpeg picks the same container, and lives in
    the same directory so the final `os.replace` is atomic. On any error the partial file is
    removed, so readers never see half-written media and no debris is left behind.
    """
    final = _prepare_destination(dest)
    tmp = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.partial{final.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise MediaError(f"ffmpeg produced no output for {final.name}", status="media_corrupt")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(dest_dir: PathLike) -> Iterator[Path]:
    """Yields a hidden scratch directory inside ``dest_dir``, removed afterwards in every case.

    Callers write their files there and move them into ``dest_dir`` with `os.replace` once the
    whole job has succeeded.
    """
    target = Path(dest_dir)
    if target.exists() and not target.is_dir():
        raise MediaError(f"{target} exists and is not a directory", status="invalid_parameters")
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=target))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
