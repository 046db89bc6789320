"""The local engine's defences: loopback bind, required keys, upload limit, the data dir wall,
fuzzing without 5xx, and a consistent state under concurrent writes."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from prefect_elevenlabs.local.config import EngineConfig
from prefect_elevenlabs.local.server import EngineHandle

from .report import (
    ConcurrencyRun,
    EngineProcess,
    FuzzRun,
    files_under,
    measure_concurrency,
    measure_fuzzing,
)

KEY = "hardening-key"
OPEN_PATHS = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def _machine_addresses() -> set[str]:
    """This machine's non-loopback IPv4 addresses."""
    addresses = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            addresses.add(probe.getsockname()[0])
        except OSError:
            pass
    return {a for a in addresses if not a.startswith("127.")}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """``prefect-elevenlabs local serve`` with no --host: what a user gets by default."""
    with EngineProcess(Path(tmp_path_factory.mktemp("served")) / "data") as engine:
        yield engine


def test_the_engine_binds_loopback_by_default(served: EngineProcess) -> None:
    assert EngineConfig().host == "127.0.0.1"
    assert _listening_addresses(served.port) == {"0100007F"}  # 127.0.0.1, nothing else
    for address in _machine_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, served.port), timeout=2).close()


def test_exposing_the_engine_without_a_key_is_warned_about(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "data", host="0.0.0.0")
    with engine:
        pass
    assert "anyone who can reach this machine" in engine.log_tail(5000)


# --------------------------------------------------------------------------------------------
# Keys


@pytest.fixture(scope="module")
def locked(start_engine: Callable[..., EngineHandle]) -> EngineHandle:
    return start_engine(api_keys=[KEY], max_upload_mb=1)


def _operations(base_url: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    return [
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        for method in methods
        if path not in OPEN_PATHS
    ]


@pytest.mark.parametrize("key", [None, "wrong-key", ""])
def test_every_route_requires_the_configured_key(locked: EngineHandle, key: str | None) -> None:
    operations = _operations(locked.base_url)
    assert len(operations) > 40
    headers = {} if key is None else {"xi-api-key": key}
    refused = {}
    with httpx.Client(base_url=locked.base_url, headers=headers, timeout=30) as http:
        for method, path in operations:
            url = path.replace("{", "").replace("}", "")  # {voice_id} -> voice_id
            response = http.request(method, url)
            refused[f"{method} {path}"] = (response.status_code, response.text[:120])
    let_through = {op: answer for op, answer in refused.items() if answer[0] != 401}
    assert let_through == {}
    assert all("invalid_api_key" in text for _, text in refused.values())


async def test_the_realtime_socket_requires_the_key(locked: EngineHandle) -> None:
    url = locked.base_url.replace("http://", "ws://") + "/v1/speech-to-text/realtime"
    async with websockets.connect(url, additional_headers={"xi-api-key": "wrong"}) as ws:
        message = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert message["message_type"] == "auth_error"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# --------------------------------------------------------------------------------------------
# Uploads and the data dir


def test_an_upload_over_the_limit_is_refused_and_not_stored(locked: EngineHandle) -> None:
    data_dir = locked.config.data_dir
    before = files_under(data_dir / "audio")
    blob = b"\0" * (2 * 1024 * 1024)
    headers = {"xi-api-key": KEY}
    with httpx.Client(base_url=locked.base_url, headers=headers, timeout=60) as http:
        declared = http.post(
            "/v1/voices/add", data={"name": "big"}, files={"files": ("big.wav", blob)}
        )

        form = (
            b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
            b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + blob + b"\r\n--x--\r\n"
        )

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it comes
            for start in range(0, len(form), 64 * 1024):
                yield form[start : start + 64 * 1024]

        streamed = http.post(
            "/v1/voices/add",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["detail"]["status"] == "payload_too_large"
        assert "max_upload_mb" in response.json()["detail"]["message"]
    assert files_under(data_dir / "audio") == before


TRAVERSALS = [
    "..",
    "..%2F..%2F..%2Fsentinel.txt",
    "%2e%2e%2f%2e%2e%2fsentinel.txt",
    "..%5C..%5Csentinel.txt",
    "%2Ftmp%2Fsentinel.txt",
    "....%2F%2F....%2F%2Fsentinel.txt",
    "x" * 300,
    "%00",
]


def test_no_id_reaches_outside_the_data_dir(
    start_engine: Callable[..., EngineHandle], tmp_path: Path
) -> None:
    data_dir = tmp_path / "inner" / "data"
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("outside the data dir\n")
    (tmp_path / "inner" / "media").mkdir(parents=True)
    (tmp_path / "inner" / "sentinel.txt").write_text("outside the data dir\n")
    engine = start_engine(data_dir=data_dir, source_url_roots=[tmp_path / "inner" / "media"])
    outside_before = {p for p in files_under(tmp_path) if not p.startswith("inner/data/")}
    answers = []
    with httpx.Client(base_url=engine.base_url, timeout=60) as http:
        for method, path in _operations(engine.base_url):
            if "{" not in path:
                continue
            for payload in TRAVERSALS:
                url = path
                while "{" in url:
                    start, end = url.index("{"), url.index("}")
                    url = url[:start] + payload + url[end + 1 :]
                response = http.request(method, url)
                answers.append((method, url, response.status_code, response.content))
        # Upload names and file:// sources are the other ways a name reaches the disk.
        sample = http.post(
            "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM?output_format=wav_16000",
            json={"text": "A sample to clone from, spoken clearly."},
        ).content
        cloned = http.post(
            "/v1/voices/add",
            data={"name": "../../../escaped"},
            files={"files": ("../../../escaped.wav", sample, "audio/wav")},
        )
        assert cloned.status_code == 200, cloned.text
        for url in (
            "file:///etc/passwd",
            f"file://{tmp_path / 'sentinel.txt'}",
            f"file://{tmp_path / 'inner' / 'media'}/../sentinel.txt",
            "http://example.com/a.mp3",
        ):
            response = http.post(
                "/v1/speech-to-text",
                data={"model_id": "scribe_v1", "source_url": url},
                files={"unused": ("", b"")},
            )
            answers.append(
                (
                    "POST",
                    f"/v1/speech-to-text source_url={url}",
                    response.status_code,
                    response.content,
                )
            )
            assert response.status_code == 400, (url, response.text)
    server_errors = [(m, u, s) for m, u, s, _ in answers if s >= 500]
    assert server_errors == []
    assert not any(b"outside the data dir" in body for *_, body in answers)
    assert not any(b"root:x:0:0" in body for *_, body in answers)
    outside_after = {p for p in files_under(tmp_path) if not p.startswith("inner/data/")}
    assert outside_after == outside_before
    assert sentinel.read_text() == "outside the data dir\n"
    for stored in data_dir.rglob("*"):
        assert stored.resolve().is_relative_to(data_dir.resolve())
        assert "escaped" not in stored.name


# --------------------------------------------------------------------------------------------
# Fuzzing and concurrency


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> FuzzRun:
    return measure_fuzzing(Path(tmp_path_factory.mktemp("fuzz")))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fuzzing_the_openapi_finds_no_server_error(fuzzed: FuzzRun) -> None:
    assert fuzzed.operations > 40
    assert fuzzed.operations_run == fuzzed.operations, "the time budget ran out"
    assert fuzzed.requests >= fuzzed.operations * 4
    assert fuzzed.server_errors == []
    assert fuzzed.transport_errors == []


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> ConcurrencyRun:
    return measure_concurrency(Path(tmp_path_factory.mktemp("burst")))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fifty_concurrent_writes_leave_a_consistent_state(burst: ConcurrencyRun) -> None:
    assert sum(burst.sent.values()) == 50
    assert burst.unexpected == []
    assert burst.voice_mismatch == []
    assert burst.voices_listed == burst.voices_expected == burst.sent["clone"]
    assert burst.orphan_files == []
    assert burst.missing_files == []
    assert burst.history_items == burst.sent["tts"] + 1
    assert burst.characters_used == burst.characters_expected
    assert burst.integrity == "ok"
