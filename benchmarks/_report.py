"""What a benchmark produces, and how results become JSON files and ``BENCHMARKS.md``.

Example::

    row = Row(
        metric="time to first byte",
        ours=81.0, ours_label="client stream",
        baseline=78.5, baseline_label="httpx",
        unit="ms", ratio=81.0 / 78.5, target="<= 1.10", met=81.0 / 78.5 <= 1.10,
        how="median of 30 requests...",
    )
    result = BenchmarkResult(name="streaming", title="Streaming", rows=[row])
    write_json(result, Path("benchmarks/results"))
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BenchmarkResult",
    "Row",
    "format_value",
    "machine_facts",
    "now_iso",
    "print_result",
    "read_results",
    "render_markdown",
    "write_json",
]


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is what the target is stated on, unless ``target`` names another quantity
    (for instance "delta <= 15 ms"); ``met`` is None for reference rows that carry no target.
    """

    metric: str
    ours: float | None
    baseline: float | None
    unit: str
    ratio: float | None
    target: str
    met: bool | None
    how: str
    ours_label: str = ""
    baseline_label: str = ""


@dataclass
class BenchmarkResult:
    """Everything one benchmark measured: table rows, raw figures and notes."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    quick: bool = False
    started_at: str = ""
    seconds: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        """Rebuilds a result written by :func:`write_json`."""
        rows = [Row(**row) for row in data.get("rows", [])]
        return cls(**{**data, "rows": rows})


def machine_facts() -> dict[str, Any]:
    """CPU count, the CPUs this process may use, load average, Python and Prefect versions."""
    try:
        from importlib.metadata import version

        prefect_version = version("prefect")
    except Exception:
        prefect_version = "unknown"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "prefect": prefect_version,
        "platform": platform.platform(terse=True),
    }


def now_iso() -> str:
    """The current UTC time, to the second."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _clean(value: Any) -> Any:
    # JSON has no NaN or infinity; an unmeasurable figure is written as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(result: BenchmarkResult, results_dir: Path) -> Path:
    """Writes ``<results_dir>/<name>.json`` and returns its path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(asdict(result)), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read_results(results_dir: Path, order: Sequence[str]) -> list[BenchmarkResult]:
    """The results in ``results_dir``: those named in ``order`` first, in that order."""
    found = {p.stem: p for p in sorted(results_dir.glob("*.json"))}
    names = [n for n in order if n in found] + [n for n in found if n not in order]
    results = []
    for name in names:
        try:
            results.append(BenchmarkResult.from_dict(json.loads(found[name].read_text())))
        except (ValueError, TypeError):
            continue  # a file from an older layout: left out rather than breaking the table
    return results


def format_value(value: float | None, unit: str = "") -> str:
    """A figure with three significant digits (whole numbers stay whole) and its unit."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e9:
        text = f"{int(value):d}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def _cell(value: float | None, unit: str, label: str) -> str:
    text = format_value(value, unit)
    return f"{text} ({label})" if label and text != "n/a" else text


def _met(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def _ratio(ratio: float | None) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "n/a"
    return f"{ratio:.2f}" if abs(ratio) < 100 else f"{ratio:.0f}"


def print_result(result: BenchmarkResult) -> None:
    """Prints a result's rows and notes to standard output."""
    print(f"\n== {result.title} ({result.seconds:.1f} s{', quick' if result.quick else ''})")
    for row in result.rows:
        print(
            f"  {row.metric}: ours {_cell(row.ours, row.unit, row.ours_label)}; "
            f"baseline {_cell(row.baseline, row.unit, row.baseline_label)}; "
            f"ratio {_ratio(row.ratio)}; target {row.target or '—'}; met {_met(row.met)}"
        )
    for note in result.notes:
        print(f"  note: {note}")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(results: Iterable[BenchmarkResult]) -> str:
    """``BENCHMARKS.md``: the table (benchmark, metric, ours, baseline, ratio, target, met?)
    followed by how each row was measured and each benchmark's notes."""
    results = list(results)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.run` (`make bench`); each benchmark starts its own",
        "local engine(s) on loopback and measures its baseline in the same run. Raw figures are",
        "in `benchmarks/results/<name>.json`. Do not edit by hand: re-run to refresh.",
        "",
    ]
    if not results:
        return "\n".join([*lines, "No results yet: run `make bench`.", ""])
    for result in results:
        machine = result.machine
        load = machine.get("load_average") or []
        lines.append(
            f"- **{result.name}**: {result.started_at or 'unknown time'}, "
            f"{result.seconds:.0f} s{', quick configuration' if result.quick else ''}; "
            f"{machine.get('usable_cpus', '?')} CPUs, load average "
            f"{'/'.join(str(x) for x in load) or '?'} at start; Python "
            f"{machine.get('python', '?')}, Prefect {machine.get('prefect', '?')}"
        )
    lines += [
        "",
        "| benchmark | metric | ours | baseline | ratio | target | met? |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for row in result.rows:
            lines.append(
                "| "
                + " | ".join(
                    _escape(cell)
                    for cell in (
                        result.title,
                        row.metric,
                        _cell(row.ours, row.unit, row.ours_label),
                        _cell(row.baseline, row.unit, row.baseline_label),
                        _ratio(row.ratio),
                        row.target or "—",
                        _met(row.met),
                    )
                )
                + " |"
            )
    lines += ["", "## How measured", ""]
    for result in results:
        lines.append(f"### {result.title}")
        lines.append("")
        for row in result.rows:
            lines.append(f"- *{row.metric}*: {row.how}")
        for note in result.notes:
            lines.append(f"- Note: {note}")
        lines.append("")
    return "\n".join(lines)
