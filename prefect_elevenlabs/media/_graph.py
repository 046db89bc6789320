"""Filter-graph building blocks shared by the functions that combine several files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ffmpeg

__all__ = ["audio_inputs"]


def audio_inputs(paths: Sequence[Path]) -> list[Any]:
    """Returns one audio stream per entry of ``paths``, in order, even when a file repeats.

    ffmpeg-python treats identical ``input()`` calls as one node, so a file listed twice would be
    wired to two places without a split and the graph would not compile. Repeated files are
    therefore opened once and fanned out with ``asplit``; a branch used later holds at most that
    one file's decoded audio until it is consumed.
    """
    uses = Counter(paths)
    fans: dict[Path, Any] = {}
    taken: Counter[Path] = Counter()
    streams = []
    for path in paths:
        source = ffmpeg.input(str(path))["a:0"]
        if uses[path] == 1:
            streams.append(source)
            continue
        if path not in fans:
            fans[path] = source.asplit()
        streams.append(fans[path][taken[path]])
        taken[path] += 1
    return streams
