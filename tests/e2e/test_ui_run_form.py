"""The Prefect UI in a real headless browser: a deployment's run form
(``/deployments/deployment/<id>/run``) shows the flows' typed parameters as form fields, with
the titles and descriptions of their pydantic models. Screenshots are kept in
``tests/e2e/artifacts/``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    ARTIFACTS_DIR,
    Engine,
    PrefectServer,
    deploy_from_yaml,
    deployment_by_name,
    save_credentials,
)

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _browser_ready() -> None:
    """Skips with what to install when the browser or node is missing; installs the pinned
    playwright-core (an npm package, no browser download) when only that is missing."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if not Path(CHROMIUM).exists():
        missing.append(f"chromium ({CHROMIUM})")
    if missing:
        pytest.skip(
            f"the browser check needs {', '.join(missing)}: run scripts/ensure_e2e_deps.sh "
            "(Debian packages chromium, nodejs, npm)"
        )
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=BROWSER_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )


def open_pages(pages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Opens each page in headless chromium; returns its title and visible text."""
    result = subprocess.run(
        ["node", str(BROWSER_DIR / "open_pages.mjs"), json.dumps(pages)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM},
        check=False,
    )
    assert result.returncode == 0, (
        f"the browser script failed ({result.returncode}); screenshots in {ARTIFACTS_DIR}\n"
        f"{result.stderr[-3000:]}\n{result.stdout[-3000:]}"
    )
    return list(json.loads(result.stdout))


@pytest.fixture(scope="module")
def run_forms(
    prefect_server: PrefectServer, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """The run forms of the narrate and transcribe deployments, as the browser showed them."""
    _browser_ready()
    save_credentials(prefect_server, engine)
    # The form needs the deployments, whoever created them (serve.py or prefect deploy).
    existing = prefect_server.request("POST", "deployments/filter", {}).json()
    if not {"narrate-scripts", "transcribe-media"} <= {d["name"] for d in existing}:
        deploy_from_yaml(prefect_server, tmp_path_factory.mktemp("ui-deploy"))
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    specs = {
        "narrate": ("Narrate scripts", "narrate-scripts", "Voice Id"),
        "transcribe": ("Transcribe media", "transcribe-media", "Num Speakers"),
    }
    pages = []
    for flow_name, name, wait_for in specs.values():
        deployment = deployment_by_name(prefect_server, flow_name, name)
        pages.append(
            {
                "url": f"{prefect_server.url}/deployments/deployment/{deployment['id']}/run",
                "screenshot": str(ARTIFACTS_DIR / f"{name}-run-form.png"),
                "waitFor": wait_for,
            }
        )
    shown = open_pages(pages)
    return dict(zip(specs, shown, strict=True))


def test_the_narrate_run_form_shows_the_script_fields(
    run_forms: dict[str, dict[str, Any]],
) -> None:
    page = run_forms["narrate"]
    assert "/run" in page["url"]
    assert "narrate-scripts" in page["title"]
    text = page["text"]
    # The ScriptItem model's fields, titled and described as in the pydantic model.
    for title in ("Id", "Text", "Voice Id", "Markdown"):
        assert f"\n{title}" in text, f"no {title!r} field on the form:\n{text}"
    assert "Names the output file" in text
    assert "What to say" in text
    # Top-level parameters, their docstring descriptions, and the defaults of prefect.yaml.
    for parameter in ("scripts", "output_dir", "target_lufs", "chapters", "credentials"):
        assert parameter in text
    assert "Integrated loudness of the outputs" in text
    # The credentials parameter is a picker of saved blocks of our type.
    assert "ElevenLabsCredentials" in text
    assert (ARTIFACTS_DIR / "narrate-scripts-run-form.png").stat().st_size > 10_000


def test_the_transcribe_run_form_shows_the_options_model(
    run_forms: dict[str, dict[str, Any]],
) -> None:
    text = run_forms["transcribe"]["text"]
    for title in ("Model Id", "Language Code", "Diarize", "Num Speakers", "Keyterms"):
        assert title in text, f"no {title!r} field on the form:\n{text}"
    assert "Tell speakers apart" in text
    for parameter in ("inputs", "output_dir", "formats", "options", "max_concurrency"):
        assert parameter in text
    assert (ARTIFACTS_DIR / "transcribe-media-run-form.png").stat().st_size > 10_000
