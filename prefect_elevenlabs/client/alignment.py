"""Forced alignment: time known text against its audio, word by word."""

from __future__ import annotations

from ._common import FileInput, Resource, file_part, form_fields, invalid, parse
from ._transport import Multipart
from .models import ForcedAlignment


class ForcedAlignmentResource(Resource):
    """``/v1/forced-alignment``: align a transcript you already have to the audio.

    Example:
        ```python
        aligned = await client.forced_alignment.create("speech.wav", text="Hello there.")
        print([(w.text, w.start, w.end) for w in aligned.words])
        ```
    """

    async def create(
        self, file: FileInput, text: str, *, enabled_spooled_file: bool | None = None
    ) -> ForcedAlignment:
        """Aligns ``text`` to the audio ``file`` (a path streamed from disk, or bytes)."""
        if not isinstance(text, str) or not text.strip():
            raise invalid("text is required: the transcript to align", param="text")
        data, meta = await self._transport.request_json(
            "POST",
            "/v1/forced-alignment",
            multipart=Multipart(
                fields=form_fields({"text": text, "enabled_spooled_file": enabled_spooled_file}),
                files=[("file", file_part(file, "file", default_filename="audio"))],
            ),
            endpoint="POST /v1/forced-alignment",
        )
        return parse(ForcedAlignment, data, meta)
