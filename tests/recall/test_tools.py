"""memory.tools(): schemas valid for the OpenAI and Anthropic SDK types, answers in both shapes, the reader
bound by the application (never the model), and bad calls answered as tool errors. On a real chat with a
planted order id."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pydantic
import pytest
from PIL import Image

from optical_memory.errors import ConfigError, RecallError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.recall.api import built_reader
from tests.memory.test_exact import ORDER, _chat, _planted_page
from tests.recall.fakes import ConstantReader


def _memory(**config: object) -> OpticalMemory:
    memory = OpticalMemory({"provider": "openai:gpt-4o", "recent_turns": 4, **config})
    memory.extend(_chat(60))
    return memory


def test_schemas_validate_against_the_sdk_types_and_accept_what_the_handler_accepts() -> None:
    from anthropic.types import ToolParam
    from openai.types.chat import ChatCompletionToolParam
    from openai.types.responses import FunctionToolParam

    tools = _memory().tools(reader=ConstantReader())
    assert tools.names == ("search_memory", "recall_page", "expand_page")
    for tool in tools.openai:
        pydantic.TypeAdapter(ChatCompletionToolParam).validate_python(tool, strict=True)
        jsonschema.Draft202012Validator.check_schema(tool["function"]["parameters"])
    for tool in tools.anthropic:
        pydantic.TypeAdapter(ToolParam).validate_python(tool, strict=True)
    for tool in tools.responses:
        pydantic.TypeAdapter(FunctionToolParam).validate_python(tool, strict=True)
    schemas = {t["name"]: t["input_schema"] for t in tools.anthropic}
    assert all("reader" not in s["properties"] for s in schemas.values())  # the model never chooses it
    for name, good, bad in [
        ("search_memory", {"query": "order", "k": 3}, {"query": "order", "k": 0}),
        ("recall_page", {"page_id": 0}, {"page_id": -1}),
        ("expand_page", {"page_id": 0}, {"page": 0}),
    ]:
        jsonschema.validate(good, schemas[name])
        assert not tools.handle(name, good).is_error
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schemas[name])
        assert tools.handle(name, bad).is_error


def test_answers_validate_as_openai_messages_and_anthropic_blocks() -> None:
    from anthropic.types import MessageParam, ToolResultBlockParam
    from openai.types.chat import ChatCompletionMessageParam
    from openai.types.responses import ResponseInputItemParam

    tools = _memory().tools(reader=ConstantReader())
    for name, args in [("search_memory", '{"query": "order"}'), ("expand_page", '{"page_id": 1}')]:
        result = tools.handle(name, args)
        for message in result.openai_messages("call_1"):
            pydantic.TypeAdapter(ChatCompletionMessageParam).validate_python(message, strict=True)
        pydantic.TypeAdapter(ResponseInputItemParam).validate_python(
            result.responses_item("fc_1"), strict=True
        )
        block = result.anthropic_block("toolu_1")
        pydantic.TypeAdapter(ToolResultBlockParam).validate_python(block, strict=True)
        pydantic.TypeAdapter(MessageParam).validate_python({"role": "user", "content": [block]}, strict=True)
    expanded = tools.handle("expand_page", {"page_id": 1})
    assert [m["role"] for m in expanded.openai_messages("call_2")] == [
        "tool",
        "user",
    ]  # no image in a tool message
    output = expanded.responses_item("fc_2")["output"]
    assert [p["type"] for p in output] == ["input_text", "input_image"]


def test_search_then_recall_gets_the_order_id_back() -> None:
    memory = _memory()
    tools = memory.tools(reader=ConstantReader("what the page image shows"))
    found = json.loads(
        tools.handle("search_memory", {"query": "what was my order at the shop?", "k": 3}).content
    )
    page = _planted_page(memory)
    assert found["hits"][0]["page_id"] == page and ORDER in found["hits"][0]["spans"]
    answer = json.loads(tools.handle("recall_page", {"page_id": page}).content)
    parts = {p["source"]: p for p in answer["parts"]}
    assert ORDER in parts["exact"]["spans"] and "text" not in parts  # its text was not kept
    assert parts["ocr:constant"]["text"] == "what the page image shows"
    assert answer["rung"] == memory.pages()[page].rung.value


def test_recall_gives_the_kept_text_without_reading_the_image() -> None:
    memory = _memory(keep_text=True)
    reader = ConstantReader()
    page = _planted_page(memory)
    answer = json.loads(memory.tools(reader=reader).handle("recall_page", {"page_id": page}).content)
    assert [p["source"] for p in answer["parts"]] == ["text", "exact"]
    assert answer["parts"][0]["text"] == memory.page_text(page) and reader.calls == []


def test_expand_gives_the_sharpest_image_the_memory_still_has() -> None:
    def size(png: bytes | None) -> tuple[int, int]:
        assert png is not None
        return Image.open(io.BytesIO(png)).size

    kept = _memory(keep_text=True)
    top = kept.profile.shape(kept.profile.top)
    page = next(p for p in kept.pages() if p.sealed and p.rung is not Rung.LARGE)
    result = kept.tools(reader=ConstantReader()).handle("expand_page", {"page_id": page.page_id})
    assert size(result.image) == (top.width, top.height)  # re-rendered from the kept text
    assert kept.pages()[page.page_id].rung is page.rung  # nothing stored changed
    dropped = _memory()
    page = next(p for p in dropped.pages() if p.sealed and p.rung is not Rung.LARGE)
    result = dropped.tools(reader=ConstantReader()).handle("expand_page", {"page_id": page.page_id})
    assert size(result.image) == (page.width, page.height)  # only its stored image is left


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("recall_page", "{not json", "not valid JSON"),
        ("recall_page", "[1]", "valid dictionary"),
        ("recall_page", '{"page": 1}', "page_id"),
        ("recall_page", '{"page_id": "1"}', "valid integer"),
        ("recall_page", '{"page_id": true}', "valid integer"),
        ("recall_page", '{"page_id": 0, "reader": "deepseek"}', "reader"),
        ("recall_page", '{"page_id": 999}', "no page 999"),
        ("expand_page", '{"page_id": 999}', "no sealed page 999"),
        ("search_memory", '{"query": ""}', "query"),
        ("search_memory", '{"query": "!!"}', "words or numbers"),
        ("search_memory", '{"query": "order", "k": 50}', "k"),
        ("delete_memory", "{}", "unknown tool"),
    ],
)
def test_bad_calls_are_tool_errors_not_exceptions(name: str, arguments: str, message: str) -> None:
    result = _memory().tools(reader=ConstantReader()).handle(name, arguments)
    assert result.is_error and message in json.loads(result.content)["error"]
    assert result.anthropic_block("toolu_1")["is_error"] is True


class _Unreachable:
    name = "endpoint"

    def read(self, image: Image.Image, *, rung: object = None, page: object = None) -> None:
        raise RecallError("the server at http://127.0.0.1:9 cannot be reached")


def test_a_reader_that_fails_leaves_the_rest_of_the_answer() -> None:
    memory = _memory()
    page = _planted_page(memory)
    result = memory.tools(reader=_Unreachable()).handle("recall_page", {"page_id": page})
    answer = json.loads(result.content)
    assert not result.is_error and ORDER in answer["parts"][0]["spans"]
    assert (
        answer["note"]
        == "the page image could not be read: the server at http://127.0.0.1:9 cannot be reached"
    )


def test_the_application_binds_the_reader_and_readers_are_per_memory() -> None:
    with pytest.raises(ConfigError, match="reader of page images"):
        _memory().tools(reader="exact")
    with pytest.raises(ConfigError, match="unknown reader"):
        _memory().tools(reader="magic")
    first, second = {}, {}
    assert built_reader("endpoint", first) is built_reader("endpoint", first)
    assert built_reader("endpoint", first) is not built_reader("endpoint", second)


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="needs the ocr extra")
def test_example_08_gets_the_order_id_back_from_200_turns_earlier(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "examples" / "08_recall_tools.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "the order id was given 200 turns ago" in done.stdout
    assert "tool search_memory(" in done.stdout and "tool recall_page(" in done.stdout
    assert done.stdout.strip().endswith("assistant: The order id was ORD-58213-QX.")
