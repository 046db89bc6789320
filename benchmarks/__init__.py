"""Benchmarks of prefect-elevenlabs against baselines measured in the same run.

Each module measures one thing against local engines it starts on loopback and prints ratios;
``python -m benchmarks.run`` runs them all, writes ``benchmarks/results/<name>.json`` and
regenerates ``BENCHMARKS.md``. See :mod:`benchmarks.run` for the options.
"""
