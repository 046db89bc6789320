"""RELIABILITY.md, the published table: every measurement in it, none short of its target.

The document is written by ``report.py --write RELIABILITY.md``; these checks catch a table that
lost a measurement, or one regenerated while a figure fell short and committed as is.
"""

from __future__ import annotations

import re

from .report import MEASUREMENTS, REPORT_COMMAND, ROOT

DOC = ROOT / "RELIABILITY.md"


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_every_measurement_has_figures_and_the_commands_that_produce_them() -> None:
    text = DOC.read_text(encoding="utf-8")
    figures = text.split("## ", 1)[0]
    commands = _section(text, "Commands")
    for name in MEASUREMENTS:
        command = f"`{REPORT_COMMAND} --only {name}`"
        assert re.search(rf"^\| .+ \| {re.escape(command)} \|$", figures, re.M), name
        assert re.search(rf"^\| {re.escape(name)} \| {re.escape(command)} \|", commands, re.M)


def test_no_published_figure_is_short_of_its_target() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert _section(text, "Figures short of their target").strip() == (
        "None: every figure met its target."
    )
