"""Where task outputs go: a local directory or any fsspec URL (memory://, s3://, ...).

Outputs are staged in a local temporary file and moved into place only when complete, so a
crash or failure never leaves a partial file that a later run could mistake for a result. A
staging file's name carries the machine and process writing it, so what a killed process left
behind can be told from what a running one is still writing, and cleared.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..client._transport import default_file_mode
from ..errors import ConfigurationError, InvalidRequestError

OUTPUT_DIR_ENV = "PREFECT_ELEVENLABS_OUTPUT_DIR"
DEFAULT_OUTPUT_DIR = "elevenlabs-output"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")
# ".<stem>.<host>-<pid>.<mkstemp random>.part<.suffix>", as OutputDir.staged names them.
_STAGING = re.compile(
    r"^\.(?P<stem>.+)\.(?P<host>[a-z0-9-]+)-(?P<pid>\d+)\.[a-z0-9_]+\.part(\.[^.]+)?$"
)


def _host_tag() -> str:
    return re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:40] or "host"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def default_output_dir() -> str:
    return os.environ.get(OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR


def safe_name(name: str, *, what: str = "name") -> str:
    """Returns ``name`` if it can be a single file name, else raises saying what to change."""
    if (
        not isinstance(name, str)
        or not _SAFE_NAME.match(name)
        or ".." in name
        or name.strip() != name
    ):
        raise InvalidRequestError(
            f"{what} {name!r} cannot be used as a file name: use letters, digits, '.', '_', '-' "
            "or spaces, starting with a letter or digit, with no path separators and no '..'",
            status="invalid_name",
            param=what,
        )
    return name


def content_hash(*parts: Any, length: int = 12) -> str:
    """A short stable hash of the inputs that decide an output's content."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def slug(text: str, max_len: int = 32) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "-", text.lower()).strip("-")
    return words[:max_len].rstrip("-") or "audio"


class OutputDir:
    """A destination folder, local or remote, addressed by URI."""

    def __init__(self, location: str | os.PathLike[str] | None = None) -> None:
        raw = os.fspath(location) if location is not None else default_output_dir()
        if not raw.strip():
            raise ConfigurationError("output_dir must not be empty", status="invalid_output_dir")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(raw)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot write to {raw!r}: {exc} (for s3:// install s3fs, for gs:// gcsfs)",
                status="invalid_output_dir",
            ) from exc
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            self.root = str(Path(self.root).resolve())
        self._raw = raw

    def __repr__(self) -> str:
        return f"OutputDir({self.uri_of('')!r})"

    def uri_of(self, name: str) -> str:
        if self.is_local:
            return str(Path(self.root, name)) if name else self.root
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) else self.fs.protocol
        root = self.root.rstrip("/")
        return f"{protocol}://{root}/{name}" if name else f"{protocol}://{root}"

    def ensure(self) -> None:
        """Creates the folder, failing clearly when it cannot be written."""
        try:
            self.fs.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"output directory {self.uri_of('')!r} cannot be created: {exc.strerror or exc}",
                status="output_dir_not_writable",
            ) from exc
        if self.is_local and not os.access(self.root, os.W_OK):
            raise ConfigurationError(
                f"output directory {self.root!r} is not writable by this process",
                status="output_dir_not_writable",
            )

    def exists(self, name: str) -> bool:
        return exists(self.uri_of(name))

    def remove_abandoned_staging(self) -> list[Path]:
        """Deletes staging files below this (local) folder whose writer, a process on this
        machine, no longer runs: what a killed run left behind. Returns what it removed.

        Files written by a running process, by another machine (a shared volume) or by
        anything else are left alone.
        """
        if not self.is_local or not os.path.isdir(self.root):
            return []
        host = _host_tag()
        removed: list[Path] = []
        for folder, _subfolders, files in os.walk(self.root):
            for name in files:
                found = _STAGING.match(name)
                if found is None or found["host"] != host or _running(int(found["pid"])):
                    continue
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
        return removed

    @contextlib.contextmanager
    def staged(self, name: str) -> Iterator[Path]:
        """Yields a local temp path to write ``name`` into; publishes it only on success."""
        self.ensure()
        staging_dir = self.root if self.is_local else None
        # Keep the real suffix last so tools that infer the format from it (ffmpeg) still can.
        owner = f"{_host_tag()}-{os.getpid()}"
        fd, tmp = tempfile.mkstemp(
            prefix=f".{Path(name).stem}.{owner}.",
            suffix=f".part{Path(name).suffix}",
            dir=staging_dir,
        )
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            if not tmp_path.exists() or tmp_path.stat().st_size == 0:
                raise InvalidRequestError(f"no data was produced for {name}", status="empty_output")
            if self.is_local:
                # mkstemp made the file owner-only; publish it as open() would have created it.
                os.chmod(tmp_path, default_file_mode())
                os.replace(tmp_path, Path(self.root, name))
            else:
                # fsspec has no rename for every backend: upload under a temp key, then move.
                final = f"{self.root.rstrip('/')}/{name}"
                partial = f"{final}.part"
                self.fs.put_file(str(tmp_path), partial)
                self.fs.mv(partial, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()


def exists(uri: str) -> bool:
    """Whether an output still exists where a (possibly cached) result says it is."""
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.exists(path))
    except (OSError, ValueError, ImportError):
        return False


@contextlib.contextmanager
def local_copy(uri: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path for reading ``uri``: the file itself if local, else a temporary download."""
    fs, path = fsspec.core.url_to_fs(os.fspath(uri))
    if isinstance(fs, LocalFileSystem):
        yield Path(path)
        return
    suffix = Path(path).suffix
    with tempfile.TemporaryDirectory(prefix="elevenlabs-in-") as tmp:
        local = Path(tmp, f"input{suffix}")
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1024 * 1024)
        yield local
