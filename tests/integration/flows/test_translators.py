"""Translators: the OpenAI-compatible block against a chat server on loopback, and the local
engine's Apertium route through the credentials' client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from prefect_elevenlabs import ElevenLabsCredentials
from prefect_elevenlabs.errors import ConfigurationError
from prefect_elevenlabs.translators import (
    LocalEngineTranslator,
    OpenAICompatibleTranslator,
    TranslationError,
    Translator,
    default_translator,
    parse_translations,
)

Answer = Callable[[dict[str, Any]], tuple[int, Any]]


class ChatServer:
    """A chat-completions endpoint whose answers a test scripts; it records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer: Answer = self.echo_upper
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, payload = outer.answer(body)
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @staticmethod
    def segments(body: dict[str, Any]) -> list[dict[str, Any]]:
        return list(json.loads(body["messages"][-1]["content"])["segments"])

    @staticmethod
    def chat(content: str) -> dict[str, Any]:
        return {"choices": [{"message": {"role": "assistant", "content": content}}]}

    def echo_upper(self, body: dict[str, Any]) -> tuple[int, Any]:
        translations = [{"id": s["id"], "text": s["text"].upper()} for s in self.segments(body)]
        return 200, self.chat(json.dumps({"translations": translations}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.close()


async def test_request_shape_and_batching(chat_server: ChatServer) -> None:
    translator = OpenAICompatibleTranslator(
        api_key="sk-test-secret",
        base_url=chat_server.base_url,
        model="tiny-model",
        temperature=0.2,
        batch_size=2,
    )
    assert isinstance(translator, Translator)
    texts = ["good morning", "thank you", "see you soon"]

    result = await translator.translate(texts, source="en", target="es")

    assert result == ["GOOD MORNING", "THANK YOU", "SEE YOU SOON"]
    assert len(chat_server.requests) == 2  # batches of two
    first = chat_server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test-secret"
    body = first["body"]
    assert body["model"] == "tiny-model"
    assert body["temperature"] == 0.2
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "one entry per input" in body["messages"][0]["content"]
    payload = json.loads(body["messages"][1]["content"])
    assert payload["source"] == "en" and payload["target"] == "es"
    assert payload["segments"] == [
        {"id": 0, "text": "good morning"},
        {"id": 1, "text": "thank you"},
    ]
    second = json.loads(chat_server.requests[1]["body"]["messages"][1]["content"])
    assert second["segments"] == [{"id": 2, "text": "see you soon"}]
    # The key is a secret: never in the block's repr.
    assert "sk-test-secret" not in repr(translator)


async def test_answers_in_a_code_fence_with_ids_out_of_order(chat_server: ChatServer) -> None:
    def fenced(body: dict[str, Any]) -> tuple[int, Any]:
        segments = list(reversed(chat_server.segments(body)))
        items = [{"id": s["id"], "text": f"<{s['text']}>"} for s in segments]
        content = "Here you go:\n```json\n" + json.dumps({"translations": items}) + "\n```"
        return 200, chat_server.chat(content)

    chat_server.answer = fenced
    translator = OpenAICompatibleTranslator(base_url=chat_server.base_url, json_mode=False)
    assert await translator.translate(["a", "b"], source="en", target="fr") == ["<a>", "<b>"]
    body = chat_server.requests[0]["body"]
    assert "response_format" not in body
    assert "Authorization" not in chat_server.requests[0]["headers"]


async def test_a_merged_batch_is_retried_in_halves(chat_server: ChatServer) -> None:
    def merges_long_batches(body: dict[str, Any]) -> tuple[int, Any]:
        segments = chat_server.segments(body)
        if len(segments) > 1:
            merged = " ".join(s["text"] for s in segments)
            return 200, chat_server.chat(json.dumps({"translations": [{"id": 0, "text": merged}]}))
        return chat_server.echo_upper(body)

    chat_server.answer = merges_long_batches
    translator = OpenAICompatibleTranslator(base_url=chat_server.base_url)
    result = await translator.translate(["one", "two", "three"], source="en", target="de")
    assert result == ["ONE", "TWO", "THREE"]
    # 3 -> (1, 2) -> (1, (1, 1)): the first request plus two halves plus two quarters.
    assert len(chat_server.requests) == 5


async def test_a_malformed_answer_is_a_clear_error(chat_server: ChatServer) -> None:
    chat_server.answer = lambda body: (200, chat_server.chat("Sorry, I cannot help with that."))
    translator = OpenAICompatibleTranslator(base_url=chat_server.base_url)
    with pytest.raises(TranslationError) as caught:
        await translator.translate(["hello"], source="en", target="es")
    message = str(caught.value)
    assert "not JSON" in message
    assert "Sorry, I cannot help" in message


async def test_a_non_chat_body_and_a_refusal_are_clear_errors(chat_server: ChatServer) -> None:
    translator = OpenAICompatibleTranslator(base_url=chat_server.base_url, max_retries=0)
    chat_server.answer = lambda body: (200, {"unexpected": True})
    with pytest.raises(TranslationError, match=r"choices\[0\]\.message\.content"):
        await translator.translate(["hello"], source="en", target="es")

    chat_server.answer = lambda body: (401, {"error": {"message": "bad key"}})
    with pytest.raises(TranslationError, match="refused the request") as caught:
        await translator.translate(["hello"], source="en", target="es")
    assert caught.value.status_code == 401


async def test_server_errors_are_retried(chat_server: ChatServer) -> None:
    calls = {"n": 0}

    def flaky(body: dict[str, Any]) -> tuple[int, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 503, {"error": "busy"}
        return chat_server.echo_upper(body)

    chat_server.answer = flaky
    translator = OpenAICompatibleTranslator(base_url=chat_server.base_url, max_retries=2)
    assert await translator.translate(["ok"], source="en", target="es") == ["OK"]
    assert calls["n"] == 2


def test_parse_translations_accepts_plain_lists_and_rejects_wrong_counts() -> None:
    assert parse_translations('["uno", "dos"]', [0, 1]) == ["uno", "dos"]
    assert parse_translations('{"translations": ["uno"]}', [7]) == ["uno"]
    with pytest.raises(TranslationError, match="2 translations for 3 segments"):
        parse_translations('{"translations": ["a", "b"]}', [0, 1, 2])


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAICompatibleTranslator(base_url="ftp://example.com")


@pytest.mark.engine
async def test_local_engine_translator_uses_apertium() -> None:
    credentials = ElevenLabsCredentials(base_url="local")
    translator = await default_translator(credentials)
    assert isinstance(translator, LocalEngineTranslator)
    assert ("en", "es") in await translator.pairs()
    result = await translator.translate(
        ["Good morning.", "Thank you very much."], source="en", target="es"
    )
    assert len(result) == 2
    assert "Buenos" in result[0]
    assert "gracias" in result[1].lower()


async def test_default_translator_refuses_the_real_api() -> None:
    credentials = ElevenLabsCredentials(
        api_key="sk-never-used", base_url="https://api.elevenlabs.io"
    )
    with pytest.raises(ConfigurationError, match="OpenAICompatibleTranslator"):
        await default_translator(credentials)
