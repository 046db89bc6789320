"""Runs the benchmarks, writes ``benchmarks/results/<name>.json`` and regenerates BENCHMARKS.md.

Usage::

    python -m benchmarks.run                     # everything (make bench), ~10 minutes
    python -m benchmarks.run --only streaming    # one benchmark (repeat --only for more)
    python -m benchmarks.run --quick             # tiny configurations, to check the scripts work

``BENCHMARKS.md`` is rebuilt from every JSON file in the results directory, so running one
benchmark refreshes its rows and keeps the others. Exit status: 0 when every benchmark ran
(missed targets are reported, not fatal), 1 when one of them failed to run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from ._prefect import configure_prefect
from ._report import (
    BenchmarkResult,
    machine_facts,
    now_iso,
    print_result,
    read_results,
    render_markdown,
    write_json,
)

BENCHMARKS: tuple[str, ...] = (
    "throughput",
    "overhead",
    "streaming",
    "memory",
    "credits",
    "engine_speed",
)
"""Benchmark modules under ``benchmarks``, in the order they run and appear in the table."""

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_MARKDOWN = REPO_ROOT / "BENCHMARKS.md"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Run the prefect-elevenlabs benchmarks against local engines.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny configurations that finish in seconds"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS_DIR,
        help=f"where <name>.json files go (default {DEFAULT_RESULTS_DIR})",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=DEFAULT_MARKDOWN,
        help=f"the table to regenerate (default {DEFAULT_MARKDOWN})",
    )
    return parser


def run_benchmark(name: str, *, quick: bool) -> BenchmarkResult:
    """Imports ``benchmarks.<name>`` and runs it, stamping time and machine facts."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"{__package__ or 'benchmarks'}.{name}")
    started_at = now_iso()
    machine = machine_facts()
    began = time.perf_counter()
    result: BenchmarkResult = module.run(quick=quick)
    result.seconds = time.perf_counter() - began
    result.started_at = started_at
    result.machine = machine
    result.quick = quick
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    configure_prefect()
    names = [n for n in BENCHMARKS if n in (args.only or BENCHMARKS)]
    failed: list[str] = []
    for name in names:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", flush=True)
        try:
            result = run_benchmark(name, quick=args.quick)
        except Exception:
            traceback.print_exc()
            print(f"benchmark {name} failed to run", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print_result(result)
        path = write_json(result, args.results_dir)
        print(f"  wrote {path}", flush=True)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(render_markdown(read_results(args.results_dir, BENCHMARKS)))
    print(f"wrote {args.markdown}")
    if failed:
        print(f"failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def run_one(name: str) -> None:
    """``python -m benchmarks.<name> [--quick] ...``: that benchmark alone."""
    raise SystemExit(main(["--only", name, *sys.argv[1:]]))


if __name__ == "__main__":
    raise SystemExit(main())
