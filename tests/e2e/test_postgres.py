"""The same deployment path on a Prefect server backed by PostgreSQL: Debian's server started here
on loopback in a temp data dir, serve.py, a run started from the form, the rows in PostgreSQL."""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import (
    CREDENTIALS_BLOCK,
    SERVE_SCRIPT,
    SERVER_START_TIMEOUT,
    Engine,
    PrefectServer,
    Service,
    assert_completed,
    audio_duration,
    block_reference,
    deployment_by_name,
    free_port,
    save_credentials,
    start_prefect_server,
    start_service,
    tail_of,
    trigger_run,
    wait_for_final_state,
    wait_until,
)

DATABASE = "prefect"
ROLE = "prefect"


def postgres_bindir() -> Path | None:
    """Debian's PostgreSQL server binaries (newest version), or None when not installed."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class Postgres:
    """A PostgreSQL server of our own, on loopback, trusting local connections."""

    port: int
    bindir: Path
    service: Service

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Prefect's server connects with."""
        return f"postgresql+asyncpg://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def sql(self, query: str) -> str:
        """Runs ``query`` with psql and returns its unaligned output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                ROLE,
                "-d",
                DATABASE,
                "-tAc",
                query,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()


@pytest.fixture(scope="module")
def postgres(shared_tmp_root: Path) -> Iterator[Postgres]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run "
            "scripts/ensure_e2e_deps.sh, which installs Debian's postgresql"
        )
    # PostgreSQL refuses to run as root: then it runs as the postgres system user.
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        if shutil.which("setpriv") is None:
            pytest.skip("running as root needs setpriv (util-linux) to start PostgreSQL")
        user = "postgres"
    root = shared_tmp_root / "postgres"
    data = root / "data"
    root.mkdir()
    if user is not None:
        shutil.chown(root, user, user)
    run_as = ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--"] if user else []
    initdb = subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            ROLE,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if initdb.returncode != 0:
        pytest.skip(f"initdb failed as {user or getpass.getuser()}: {initdb.stderr[-1500:]}")

    port = free_port()
    service = start_service(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            "listen_addresses=127.0.0.1",
            # A throwaway database: durability buys nothing here.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        root,
        {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
        cwd=root,
        user=user,
        # SIGINT is PostgreSQL's fast shutdown: it disconnects clients instead of waiting.
        death_signal="INT",
        stop_signal=signal.SIGINT,
    )
    server = Postgres(port=port, bindir=bindir, service=service)

    def accepting() -> bool:
        if not service.alive():
            raise AssertionError(f"postgres exited:\n{tail_of(service.log)}")
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
            check=False,
        )
        return ready.returncode == 0

    try:
        wait_until(accepting, 120, "PostgreSQL to accept connections", service.log)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DATABASE],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield server
    finally:
        service.stop()


@pytest.fixture(scope="module")
def pg_prefect(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrefectServer]:
    server = start_prefect_server(tmp_path_factory.mktemp("pg-server"), database_url=postgres.url)
    yield server
    server.service.stop()


@pytest.fixture(scope="module")
def pg_served(
    pg_prefect: PrefectServer, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Path, str]]:
    credentials_id = save_credentials(pg_prefect, engine)
    workdir = tmp_path_factory.mktemp("pg-serve")
    service = start_service(
        "serve",
        [
            sys.executable,
            str(SERVE_SCRIPT),
            "--only",
            "narrate-scripts",
            "--credentials-block",
            CREDENTIALS_BLOCK,
        ],
        workdir,
        pg_prefect.env(),
        cwd=workdir,
    )

    def serving() -> bool:
        if not service.alive():
            raise AssertionError(f"serve.py exited:\n{tail_of(service.log)}")
        return "deployments are being served" in service.log.read_text(errors="replace")

    try:
        wait_until(serving, SERVER_START_TIMEOUT, "serve.py to start serving", service.log)
        yield service, workdir, credentials_id
    finally:
        service.stop()


def test_the_server_keeps_its_state_in_postgres(
    postgres: Postgres, pg_prefect: PrefectServer
) -> None:
    # Prefect created its schema in our database and registered the block type there.
    tables = postgres.sql("select tablename from pg_tables where schemaname = 'public'")
    assert {"flow_run", "deployment", "block_type"} <= set(tables.split())
    slugs = postgres.sql("select slug from block_type").split()
    assert "elevenlabs-credentials" in slugs


def test_a_served_deployment_runs_from_the_form_on_postgres(
    postgres: Postgres, pg_prefect: PrefectServer, pg_served: tuple[Service, Path, str]
) -> None:
    service, workdir, credentials_id = pg_served
    deployment = deployment_by_name(pg_prefect, "Narrate scripts", "narrate-scripts")
    run_id = trigger_run(
        pg_prefect,
        deployment["id"],
        {
            "scripts": [{"id": "on-postgres", "text": "This run was recorded in PostgreSQL."}],
            "credentials": block_reference(credentials_id),
        },
    )
    run = wait_for_final_state(pg_prefect, run_id, [service.log])
    assert_completed(pg_prefect, run, [service.log])
    assert audio_duration(workdir / "narration" / "on-postgres.mp3") > 1.0

    # The run, its tasks and its artifacts are rows in PostgreSQL.
    assert postgres.sql(f"select state_type from flow_run where id = '{run_id}'") == "COMPLETED"
    tasks = postgres.sql(f"select count(*) from task_run where flow_run_id = '{run_id}'")
    assert int(tasks) >= 2
    keys = postgres.sql(f"select key from artifact where flow_run_id = '{run_id}'").split()
    assert "narration-summary" in keys
