"""End-to-end fixtures: a real Prefect server, a standalone local engine and saved credentials.

Everything here runs as real subprocesses on loopback. Each subprocess is started in its own
process group (stopped as a group at teardown) and, where ``setpriv`` exists, with a parent-death
signal, so nothing outlives the test session even when pytest itself is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT_FILE = REPO / "deployments" / "prefect.yaml"
SERVE_SCRIPT = REPO / "deployments" / "serve.py"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
BIN = Path(sys.executable).parent

ENGINE_API_KEY = "sk-e2e-local-engine"
CREDENTIALS_BLOCK = "e2e-local-engine"

# Upper bounds on waits for things that take seconds: generous because CI shares two cores.
SERVER_START_TIMEOUT = 240.0
RUN_TIMEOUT = 420.0
TRANSIENT_STATUSES = frozenset({502, 503, 504})
E2E_TEST_TIMEOUT = 1800

T = TypeVar("T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test in this folder ``e2e`` (``pytest -m "not e2e"`` leaves them out) and
    gives it a longer pytest-timeout: its fixtures start servers on a shared two-core machine."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(E2E_TEST_TIMEOUT))


# ------------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, log: Path | None = None
) -> T:
    """Polls ``check`` until it returns something truthy; fails naming ``what`` after ``timeout``.

    The timeout is a ceiling on waiting for a service, not an assertion on speed.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError) as exc:
            last, value = exc, None
        if value:
            return value
        time.sleep(0.5)
    tail = f"\n--- {log} (tail) ---\n{tail_of(log)}" if log else ""
    raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what} (last: {last}){tail}")


def tail_of(path: Path | None, lines: int = 60) -> str:
    """The last lines of a log file, for failure messages."""
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _death_signal_prefix(signame: str, user: str | None = None) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise RuntimeError("running a service as another user needs setpriv (util-linux)")
        return []
    prefix = [setpriv, "--pdeathsig", signame]
    if user is not None:
        prefix += ["--reuid", user, "--regid", user, "--init-groups"]
    return [*prefix, "--"]


@dataclass
class Service:
    """A subprocess with its own process group and a log file, stopped with its children."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """Signals the whole process group, then kills whatever is left after ``grace`` s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        # Children that ignored the signal (or outlived their parent) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def start_service(
    name: str,
    command: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    user: str | None = None,
    death_signal: str = "TERM",
    stop_signal: int = signal.SIGTERM,
) -> Service:
    """Starts ``command`` in a new session, output to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    handle = log.open("ab")
    try:
        process = subprocess.Popen(
            [*_death_signal_prefix(death_signal, user), *command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        handle.close()
    return Service(name=name, process=process, log=log, stop_signal=stop_signal)


def base_env(**extra: str) -> dict[str, str]:
    """This environment without Prefect or ElevenLabs settings (test profiles, keys), plus
    ``extra``. Subprocesses start from it so that only what a test sets reaches them."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "ELEVENLABS_", "PYTEST_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------------
# Prefect server


@dataclass
class PrefectServer:
    """A running ``prefect server start`` and how to talk to it."""

    url: str
    home: Path
    service: Service
    database_url: str | None = None
    results_dir: Path = field(default_factory=Path)
    block_types_at_start: list[dict[str, Any]] = field(default_factory=list)
    """Every block type the server had registered by itself when it first answered."""

    @property
    def api_url(self) -> str:
        """The REST API root, as ``PREFECT_API_URL`` wants it."""
        return f"{self.url}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client process (CLI, serve, worker) of this server."""
        return base_env(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            # Runs start within about a second of being created instead of ten.
            PREFECT_RUNNER_POLL_FREQUENCY="1",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_WORKER_PREFETCH_SECONDS="5",
            PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(self.results_dir),
            **extra,
        )

    def request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """Calls the REST API (``path`` relative to ``/api``), retrying what the server answers
        while it is busy (503 when SQLite is locked under load), as Prefect's own client does."""
        for attempt in range(10):
            response = httpx.request(method, f"{self.api_url}/{path}", json=json, timeout=60.0)
            if response.status_code not in TRANSIENT_STATUSES:
                break
            time.sleep(min(0.5 * 2**attempt, 8.0))
        return response

    def prefect(
        self, *args: str, cwd: Path | None = None, timeout: float = 180.0, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Runs the ``prefect`` CLI against this server; fails the test on a non-zero exit."""
        result = subprocess.run(
            [str(BIN / "prefect"), *args],
            env=self.env(**env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"prefect {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
        return result


def start_prefect_server(workdir: Path, database_url: str | None = None) -> PrefectServer:
    """Starts a Prefect server on a free loopback port with its home in ``workdir``."""
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    results = workdir / "results"
    results.mkdir(exist_ok=True)
    port = free_port()
    env = base_env(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        # The UI in the browser calls the API at this address (it defaults to port 4200).
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
    )
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    service = start_service(
        "prefect-server",
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        workdir,
        env,
        cwd=workdir,
    )
    server = PrefectServer(
        url=f"http://127.0.0.1:{port}",
        home=home,
        service=service,
        database_url=database_url,
        results_dir=results,
    )

    def healthy() -> bool:
        if not service.alive():
            raise AssertionError(f"the Prefect server exited:\n{tail_of(service.log)}")
        return httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200

    try:
        # Migrations and block registration finish before /health first answers.
        wait_until(healthy, SERVER_START_TIMEOUT, "the Prefect server's /api/health", service.log)
        server.block_types_at_start = server.request("POST", "block_types/filter", {}).json()
    except BaseException:
        service.stop()
        raise
    return server


@pytest.fixture(scope="session")
def e2e_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide scratch folder for servers, engines and outputs."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def prefect_server(e2e_tmp: Path) -> Iterator[PrefectServer]:
    """One real Prefect server on SQLite shared by the end-to-end modules (about 15 s to start)."""
    server = start_prefect_server(e2e_tmp / "sqlite-server")
    yield server
    server.service.stop()


# ------------------------------------------------------------------------------------------------
# Local engine and credentials


@dataclass
class Engine:
    """A standalone local engine process."""

    base_url: str
    api_key: str
    service: Service


@pytest.fixture(scope="session")
def engine(e2e_tmp: Path) -> Iterator[Engine]:
    """``prefect-elevenlabs local serve`` on loopback, requiring an API key."""
    port = free_port()
    workdir = e2e_tmp / "engine"
    service = start_service(
        "local-engine",
        [
            str(BIN / "prefect-elevenlabs"),
            "local",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key",
            ENGINE_API_KEY,
            "--data-dir",
            str(workdir / "data"),
            "--log-level",
            "warning",
        ],
        workdir,
        base_env(),
    )
    base_url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not service.alive():
            raise AssertionError(f"the local engine exited:\n{tail_of(service.log)}")
        return httpx.get(f"{base_url}/health", timeout=5).status_code == 200

    try:
        wait_until(healthy, SERVER_START_TIMEOUT, "the local engine's /health", service.log)
    except BaseException:
        service.stop()
        raise
    yield Engine(base_url=base_url, api_key=ENGINE_API_KEY, service=service)
    service.stop()


def save_credentials(server: PrefectServer, engine: Engine, name: str = CREDENTIALS_BLOCK) -> str:
    """Saves an ``ElevenLabsCredentials`` document pointing at ``engine`` on ``server`` the way
    a user does (``.save()``, in a fresh process), and returns its block document id."""
    code = (
        "import sys\n"
        "from prefect_elevenlabs import ElevenLabsCredentials\n"
        "block = ElevenLabsCredentials(api_key=sys.argv[1], base_url=sys.argv[2])\n"
        "print(block.save(sys.argv[3], overwrite=True))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, engine.api_key, engine.base_url, name],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"saving the credentials block failed:\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


def block_reference(block_document_id: str) -> dict[str, Any]:
    """A parameter value referring to a saved block, exactly as the UI's block picker sends it."""
    return {"$ref": {"block_document_id": block_document_id}}


# ------------------------------------------------------------------------------------------------
# Deployments and runs through the REST API


def deployment_by_name(
    server: PrefectServer, flow_name: str, deployment_name: str
) -> dict[str, Any]:
    """The deployment ``<flow>/<deployment>`` as the API returns it; fails if it is missing."""
    response = server.request("GET", f"deployments/name/{flow_name}/{deployment_name}")
    assert response.status_code == 200, (
        f"no deployment {flow_name}/{deployment_name}: {response.status_code} {response.text}"
    )
    return dict(response.json())


def trigger_run(server: PrefectServer, deployment_id: str, parameters: dict[str, Any]) -> str:
    """Creates a flow run the way the UI's Run button does; returns the flow run id."""
    response = server.request(
        "POST",
        f"deployments/{deployment_id}/create_flow_run",
        {"parameters": parameters, "state": {"type": "SCHEDULED"}},
    )
    assert response.status_code in (200, 201), (
        f"creating a flow run was refused: {response.status_code} {response.text[:2000]}"
    )
    return str(response.json()["id"])


FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def wait_for_final_state(
    server: PrefectServer, flow_run_id: str, logs: Sequence[Path] = (), timeout: float = RUN_TIMEOUT
) -> dict[str, Any]:
    """Waits until the flow run is final and returns it; includes its logs in failures."""

    def final() -> dict[str, Any] | None:
        run = server.request("GET", f"flow_runs/{flow_run_id}").json()
        return run if run["state"]["type"] in FINAL_STATES else None

    try:
        return wait_until(final, timeout, f"flow run {flow_run_id} to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{describe_run(server, flow_run_id, logs)}") from None


def assert_completed(server: PrefectServer, run: dict[str, Any], logs: Sequence[Path] = ()) -> None:
    """Fails with the run's own log lines (and process logs) unless it Completed."""
    assert run["state"]["type"] == "COMPLETED", describe_run(server, run["id"], logs)


def describe_run(server: PrefectServer, flow_run_id: str, logs: Sequence[Path] = ()) -> str:
    """State, message and log lines of a flow run, plus the tails of process logs."""
    run = server.request("GET", f"flow_runs/{flow_run_id}").json()
    lines = server.request(
        "POST",
        "logs/filter",
        {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"},
    ).json()
    text = "\n".join(f"  {line['level']:>2} {line['message'][:500]}" for line in lines[-40:])
    tails = "".join(f"\n--- {p.name} ---\n{tail_of(p, 40)}" for p in logs)
    state = run.get("state") or {}
    return (
        f"flow run {flow_run_id}: {state.get('type')} {state.get('message')}\n"
        f"run logs:\n{text}{tails}"
    )


def artifacts_of(server: PrefectServer, flow_run_id: str) -> list[dict[str, Any]]:
    """Every artifact a flow run (or its tasks) created, via ``/api/artifacts/filter``."""
    response = server.request(
        "POST", "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    )
    response.raise_for_status()
    return list(response.json())


@pytest.fixture(scope="session")
def shared_tmp_root() -> Iterator[Path]:
    """A temp folder other users can enter (for services run as another user)."""
    path = Path(tempfile.mkdtemp(prefix="prefect-elevenlabs-e2e-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Work pool deployments

WORK_POOL = "elevenlabs-process"


def deploy_from_yaml(server: PrefectServer, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Creates the ``process`` work pool and runs ``prefect deploy --all`` on
    ``deployments/prefect.yaml`` from ``workdir``, non-interactively, as CI would."""
    workdir.mkdir(parents=True, exist_ok=True)
    server.prefect("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
    return server.prefect(
        "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE), cwd=workdir
    )


def start_worker(server: PrefectServer, workdir: Path, **env: str) -> Service:
    """Starts ``prefect worker start`` on the work pool and waits until the server sees it."""
    service = start_service(
        "worker",
        [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--limit", "2"],
        workdir,
        server.env(**env),
        cwd=workdir,
    )

    def registered() -> bool:
        if not service.alive():
            raise AssertionError(f"the worker exited:\n{tail_of(service.log)}")
        response = server.request("POST", f"work_pools/{WORK_POOL}/workers/filter", {})
        return response.status_code == 200 and len(response.json()) > 0

    try:
        wait_until(registered, SERVER_START_TIMEOUT, "the worker to register", service.log)
    except BaseException:
        service.stop()
        raise
    return service


def audio_duration(path: Path) -> float:
    """Decodes ``path`` with ffprobe and returns its duration in seconds."""
    import json

    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(result.stdout)["format"]["duration"])


RACHEL = "21m00Tcm4TlvDq8ikWAM"


def speak(engine: Engine, text: str, path: Path) -> Path:
    """Writes ``text`` spoken by the engine (plain ElevenLabs text-to-speech call) to ``path``."""
    response = httpx.post(
        f"{engine.base_url}/v1/text-to-speech/{RACHEL}",
        params={"output_format": "mp3_44100_128"},
        headers={"xi-api-key": engine.api_key},
        json={"text": text, "model_id": "eleven_multilingual_v2"},
        timeout=300,
    )
    response.raise_for_status()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(response.content)
    return path


RESULT_MARKER = "E2E-RESULT "


def finish(service: Service, timeout: float = RUN_TIMEOUT) -> Any:
    """Waits for a client process to end (killed with its children past ``timeout``) and
    returns the JSON it printed after ``RESULT_MARKER``; fails with its log otherwise."""
    import json

    try:
        service.process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"{service.name} ran longer than {timeout:.0f} s:\n{tail_of(service.log)}"
        ) from None
    finally:
        service.stop()
    assert service.process.returncode == 0, (
        f"{service.name} exited {service.process.returncode}:\n{tail_of(service.log)}"
    )
    output = service.log.read_text(errors="replace")
    results = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    assert results, f"{service.name} printed no result:\n{tail_of(service.log)}"
    return json.loads(results[-1][len(RESULT_MARKER) :])


def run_to_end(
    name: str,
    command: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str],
    timeout: float = RUN_TIMEOUT,
    cwd: Path | None = None,
) -> Any:
    """Runs a client process to its end and returns its result (see :func:`finish`)."""
    return finish(start_service(name, command, log_dir, env, cwd=cwd), timeout)
