"""The README's task examples run exactly as printed, offline, and write what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"

pytestmark = pytest.mark.usefixtures("prefect_server")


def task_examples() -> list[str]:
    text = README.read_text()
    section = text.split("### Task examples", 1)[1].split("Behaviour every generation task", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


EXAMPLES = task_examples()


def test_the_readme_has_an_example_for_every_task():
    import prefect_elevenlabs.tasks as tasks

    shown = "\n".join(EXAMPLES)
    task_names = [name for name in tasks.__all__ if hasattr(getattr(tasks, name), "fn")]
    assert len(task_names) > 25
    missing = [name for name in task_names if not re.search(rf"\b{name}\(", shown)]
    assert not missing, f"tasks without a README example: {missing}"


@pytest.mark.parametrize(
    "source", EXAMPLES, ids=[re.search(r"def (\w+)\(\)", s).group(1) for s in EXAMPLES]
)
def test_a_readme_example_runs_as_written(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(source, "README.md", "exec"), namespace)

    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert written, "the example wrote nothing under out/"
    assert not [p for p in written if ".part" in p.name], "a partial file was left behind"
