"""Translating transcript segments for the ``dub`` flow's ``compose`` strategy.

A translator is anything with an async ``translate(texts, source, target)`` that returns one
translation per input text, in order (the :class:`Translator` protocol). Two ship here:

- :class:`LocalEngineTranslator` asks the local engine (Apertium behind its
  ``POST /local/translate`` route) through the same client and credentials as every other call.
  ``dub`` picks it by itself when the credentials point at the local engine.
- :class:`OpenAICompatibleTranslator`, a Prefect block, asks any chat-completions endpoint that
  speaks OpenAI's wire format (OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, LiteLLM...) to
  translate segments in batches and answer with JSON, one translation per segment.

Example:
    ```python
    from prefect_elevenlabs.translators import OpenAICompatibleTranslator

    translator = OpenAICompatibleTranslator(api_key="sk-...", model="gpt-4o-mini")
    texts = await translator.translate(["Good morning."], source="en", target="es")
    ```
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from .blocks import ElevenLabsCredentials
from .errors import ConfigurationError, ElevenLabsError, NotFoundError

__all__ = [
    "LOCAL_ENGINE_NAME",
    "LocalEngineTranslator",
    "OpenAICompatibleTranslator",
    "TranslationError",
    "Translator",
    "default_translator",
    "translator_identity",
]

LOCAL_ENGINE_NAME = "prefect-elevenlabs-local"
"""What the local engine's ``/health`` route reports as ``engine``."""

# The engine's limits for one /local/translate call (see local/routes/extensions.py).
_LOCAL_MAX_TEXTS = 5000
_LOCAL_MAX_CHARACTERS = 200_000


class TranslationError(ElevenLabsError):
    """A translation could not be obtained or did not match the segments sent."""


@runtime_checkable
class Translator(Protocol):
    """Turns texts in one language into texts in another, one output per input, in order.

    Example:
        ```python
        class Shouting:
            async def translate(self, texts, source, target):
                return [text.upper() for text in texts]
        ```
    """

    async def translate(self, texts: Sequence[str], source: str | None, target: str) -> list[str]:
        """The translations of ``texts`` from ``source`` (None: unknown) into ``target``."""
        ...


def translator_identity(translator: Any) -> str:
    """A stable description of a translator for cache keys (never contains secrets).

    Translators may define ``cache_identity()``; otherwise the class name is used.
    """
    identity = getattr(translator, "cache_identity", None)
    if callable(identity):
        return str(identity())
    cls = type(translator)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_result(texts: Sequence[str], translated: Any, who: str) -> list[str]:
    if not isinstance(translated, list) or not all(isinstance(t, str) for t in translated):
        raise TranslationError(
            f"{who} did not answer with a list of texts", status="invalid_translation"
        )
    if len(translated) != len(texts):
        raise TranslationError(
            f"{who} returned {len(translated)} translations for {len(texts)} texts",
            status="invalid_translation",
        )
    return translated


# --------------------------------------------------------------------------------------------
# The local engine


class LocalEngineTranslator:
    """Translates with the local engine's Apertium pairs, through the credentials' client.

    Works with ``ElevenLabsCredentials(base_url="local")`` and with a standalone engine
    (``prefect-elevenlabs local serve``); against the real API the route does not exist and a
    :class:`~prefect_elevenlabs.errors.ConfigurationError` says so.

    Example:
        ```python
        translator = LocalEngineTranslator(ElevenLabsCredentials(base_url="local"))
        await translator.translate(["Thank you."], source="en", target="es")  # ["Gracias."]
        ```
    """

    def __init__(self, credentials: ElevenLabsCredentials) -> None:
        self.credentials = credentials

    def cache_identity(self) -> str:
        """Apertium gives the same output for the same input, wherever the engine runs."""
        return "local-engine/apertium"

    async def pairs(self) -> list[tuple[str, str]]:
        """The installed (source, target) pairs, as ISO 639-1 codes."""
        client = self.credentials.get_client()
        data, _ = await self._call(
            client, "GET", "/local/translate/pairs", endpoint="GET /local/translate/pairs"
        )
        return [(p["source"], p["target"]) for p in (data or {}).get("pairs", [])]

    async def translate(self, texts: Sequence[str], source: str | None, target: str) -> list[str]:
        """Translates ``texts`` in as few calls as the engine's size limits allow."""
        items = list(texts)
        if not items:
            return []
        if not source:
            raise ConfigurationError(
                "the local engine's translator needs the source language: pass "
                "source_language (e.g. 'en') or let speech-to-text detect it",
                status="missing_source_language",
            )
        client = self.credentials.get_client()
        results: list[str] = []
        for batch in _batches(items, max_items=_LOCAL_MAX_TEXTS, max_chars=_LOCAL_MAX_CHARACTERS):
            data, _ = await self._call(
                client,
                "POST",
                "/local/translate",
                json={"texts": batch, "source": source, "target": target},
                endpoint="POST /local/translate",
            )
            translated = (data or {}).get("texts")
            results.extend(_check_result(batch, translated, "the local engine"))
        return results

    @staticmethod
    async def _call(client: Any, method: str, path: str, **kwargs: Any) -> tuple[Any, Any]:
        try:
            result: tuple[Any, Any] = await client.transport.request_json(method, path, **kwargs)
            return result
        except NotFoundError as exc:
            raise ConfigurationError(
                f"{client.base_url} has no {path} route: only the local engine translates. "
                "Use ElevenLabsCredentials(base_url='local') or a standalone local engine, "
                "or pass translator=OpenAICompatibleTranslator(...)",
                status="translator_unavailable",
            ) from exc


async def _is_local_engine(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            response = await http.get(f"{base_url.rstrip('/')}/health")
        return bool(
            response.status_code == 200 and response.json().get("engine") == LOCAL_ENGINE_NAME
        )
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


async def default_translator(credentials: ElevenLabsCredentials) -> Translator:
    """The translator ``dub`` uses when none is given: the local engine's, when there is one.

    That is the case for ``base_url="local"`` and for a standalone local engine on a loopback
    address (recognised by its ``/health`` answer). Anything else needs an explicit translator.

    Raises:
        ConfigurationError: the credentials point at an API that cannot translate text.
    """
    if credentials.is_local():
        return LocalEngineTranslator(credentials)
    base_url = credentials.resolved_base_url()
    host = urlsplit(base_url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1") and await _is_local_engine(base_url):
        return LocalEngineTranslator(credentials)
    raise ConfigurationError(
        "the compose strategy translates each segment itself and the ElevenLabs API has no text "
        "translation: pass translator=OpenAICompatibleTranslator(...) (or any object with an "
        "async translate(texts, source, target)), use strategy='dubbing_api', or run offline "
        "with ElevenLabsCredentials(base_url='local')",
        status="translator_required",
    )


# --------------------------------------------------------------------------------------------
# OpenAI-compatible chat endpoints

DEFAULT_SYSTEM_PROMPT = (
    "You are a professional subtitle and dubbing translator. You receive a JSON object with "
    "'source' and 'target' language codes and a list 'segments' of objects with 'id' and "
    "'text'. Translate every segment's text from the source language into the target language. "
    "Keep each translation about as long as the original so it can be spoken in the same time; "
    "keep names, numbers and punctuation style; translate each segment on its own, never merge "
    "or split segments. Answer with JSON only, exactly of the form "
    '{"translations": [{"id": <id>, "text": "<translation>"}, ...]} with one entry per input '
    "segment, the same ids, in the same order."
)

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*|\s*```$")


def parse_translations(content: str, ids: Sequence[int]) -> list[str]:
    """Reads a model's answer into one text per id, accepting the shapes models tend to send.

    Accepted: ``{"translations": [{"id", "text"}...]}``, ``{"translations": ["..."]}``, a bare
    list of either, and any of those wrapped in a Markdown code fence or surrounded by prose.

    Raises:
        TranslationError: the answer holds no JSON, or not one translation per id.
    """
    data = _first_json(content)
    if isinstance(data, dict):
        for key in ("translations", "segments", "texts", "result", "results"):
            if key in data:
                data = data[key]
                break
    if not isinstance(data, list):
        raise TranslationError(
            f"the model's answer has no list of translations: {_preview(content)}",
            status="invalid_translation",
        )
    if all(isinstance(item, str) for item in data):
        texts = list(data)
    elif all(isinstance(item, dict) for item in data):
        by_id: dict[int, str] = {}
        ordered: list[str] = []
        for item in data:
            text = item.get("text", item.get("translation"))
            if not isinstance(text, str):
                raise TranslationError(
                    f"a translation entry has no 'text': {_preview(json.dumps(item))}",
                    status="invalid_translation",
                )
            ordered.append(text)
            raw_id = item.get("id")
            try:
                if raw_id is not None:
                    by_id[int(raw_id)] = text
            except (TypeError, ValueError):
                pass
        texts = [by_id[i] for i in ids] if set(ids) <= set(by_id) else ordered
    else:
        raise TranslationError(
            f"the model's translations are neither texts nor objects: {_preview(content)}",
            status="invalid_translation",
        )
    if len(texts) != len(ids):
        raise TranslationError(
            f"the model returned {len(texts)} translations for {len(ids)} segments",
            status="invalid_translation",
        )
    return texts


def _first_json(content: str) -> Any:
    text = _FENCE.sub("", content.strip())
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "[{":
            try:
                return decoder.raw_decode(text, index)[0]
            except ValueError:
                continue
    raise TranslationError(
        f"the model's answer is not JSON: {_preview(content)}", status="invalid_translation"
    )


def _preview(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def _batches(texts: list[str], *, max_items: int, max_chars: int) -> list[list[str]]:
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for text in texts:
        if current and (len(current) >= max_items or size + len(text) > max_chars):
            batches.append(current)
            current, size = [], 0
        current.append(text)
        size += len(text)
    if current:
        batches.append(current)
    return batches


class OpenAICompatibleTranslator(Block):
    """Translates segments with a chat model behind any OpenAI-compatible endpoint.

    Segments go in batches as JSON with numbered ids; the model answers with JSON holding one
    translation per id. An answer that cannot be read is retried by halving the batch, so one
    confused answer costs a few small requests rather than the run; a single segment that
    still gets no usable answer fails with a :class:`TranslationError` quoting the answer.

    Examples:
        Save once, then use it in ``dub``:
        ```python
        from prefect_elevenlabs.translators import OpenAICompatibleTranslator

        OpenAICompatibleTranslator(api_key="sk-...", model="gpt-4o-mini").save("translator")
        dub("talk.mp4", ["es"], translator=OpenAICompatibleTranslator.load("translator"))
        ```

        A model served by Ollama on this machine:
        ```python
        OpenAICompatibleTranslator(base_url="http://127.0.0.1:11434/v1", model="qwen2.5:7b")
        ```
    """

    _block_type_name: ClassVar[str] = "OpenAI-Compatible Translator"
    _block_type_slug: ClassVar[str] = "openai-compatible-translator"
    _description: ClassVar[str] = (
        "Translates dubbing segments with a chat model behind any OpenAI-compatible endpoint."
    )

    api_key: SecretStr | None = Field(
        default=None,
        title="API Key",
        description="Sent as 'Authorization: Bearer <key>'. Leave empty for servers without auth.",
    )
    base_url: str = Field(
        default="https://api.openai.com/v1",
        title="Base URL",
        description="The API root that /chat/completions is appended to, including any /v1.",
    )
    model: str = Field(default="gpt-4o-mini", description="The chat model to ask.")
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 keeps answers steady."
    )
    batch_size: int = Field(
        default=40, ge=1, le=500, description="Most segments sent in one request."
    )
    max_batch_characters: int = Field(
        default=6000, ge=100, description="Most characters of segment text in one request."
    )
    json_mode: bool = Field(
        default=True,
        description=(
            "Ask for response_format json_object. Turn off for servers that reject the field; "
            "answers are parsed robustly either way."
        ),
    )
    system_prompt: str | None = Field(
        default=None,
        description="Replaces the built-in instructions (which ask for JSON with one "
        "translation per segment id).",
    )
    timeout: float = Field(default=120.0, gt=0, description="Seconds to wait for one answer.")
    max_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a request on 429, 5xx and dropped links."
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"base_url {value!r} must be an http(s) URL such as https://api.openai.com/v1"
            )
        return value.strip().rstrip("/")

    def cache_identity(self) -> str:
        """Endpoint, model and prompt: what decides the translations (not the key)."""
        prompt = self.system_prompt or DEFAULT_SYSTEM_PROMPT
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        return f"openai-compatible|{self.base_url}|{self.model}|{self.temperature}|{digest}"

    async def translate(self, texts: Sequence[str], source: str | None, target: str) -> list[str]:
        """Translates ``texts`` batch by batch; returns one translation per text, in order.

        Raises:
            TranslationError: the endpoint failed or answered something unreadable.
        """
        items = list(texts)
        if not items:
            return []
        results: list[str] = []
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            offset = 0
            for batch in _batches(
                items, max_items=self.batch_size, max_chars=self.max_batch_characters
            ):
                ids = list(range(offset, offset + len(batch)))
                results.extend(await self._translate_batch(http, batch, ids, source, target))
                offset += len(batch)
        return results

    async def _translate_batch(
        self,
        http: httpx.AsyncClient,
        texts: list[str],
        ids: list[int],
        source: str | None,
        target: str,
    ) -> list[str]:
        content = await self._complete(http, self._messages(texts, ids, source, target))
        try:
            return parse_translations(content, ids)
        except TranslationError:
            if len(texts) == 1:
                raise
        # Models sometimes merge or drop segments in a long batch: halve it and ask again.
        middle = len(texts) // 2
        first = await self._translate_batch(http, texts[:middle], ids[:middle], source, target)
        second = await self._translate_batch(http, texts[middle:], ids[middle:], source, target)
        return first + second

    def _messages(
        self, texts: list[str], ids: list[int], source: str | None, target: str
    ) -> list[dict[str, str]]:
        payload = {
            "source": source or "auto",
            "target": target,
            "segments": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)],
        }
        return [
            {"role": "system", "content": self.system_prompt or DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
        ]

    async def _complete(self, http: httpx.AsyncClient, messages: list[dict[str, str]]) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        if self.api_key is not None and self.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        url = f"{self.base_url}/chat/completions"
        attempt = 0
        while True:
            try:
                response = await http.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                if attempt >= self.max_retries:
                    raise TranslationError(
                        f"{url} could not be reached: {type(exc).__name__}: {exc}",
                        status="translator_unreachable",
                    ) from exc
            else:
                if response.status_code < 400:
                    return _answer_text(response, url)
                if response.status_code not in (408, 409, 429) and response.status_code < 500:
                    raise TranslationError(
                        f"{url} refused the request: {_preview(response.text)}",
                        status_code=response.status_code,
                        status="translator_refused",
                    )
                if attempt >= self.max_retries:
                    raise TranslationError(
                        f"{url} kept failing: {_preview(response.text)}",
                        status_code=response.status_code,
                        status="translator_unavailable",
                    )
            attempt += 1
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))


def _answer_text(response: httpx.Response, url: str) -> str:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise TranslationError(
            f"{url} did not answer in the chat-completions shape "
            f"(choices[0].message.content): {_preview(response.text)}",
            status="invalid_translation",
        ) from exc
    if not isinstance(content, str):
        raise TranslationError(
            f"{url} answered without text content: {_preview(response.text)}",
            status="invalid_translation",
        )
    return content
