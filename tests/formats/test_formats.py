"""Context formats: each provider family's messages, validated against the official SDK types."""

from __future__ import annotations

import base64
import io
import itertools
import json
from typing import Any

import pydantic
import pytest
from anthropic.types import ContentBlockParam, MessageParam
from openai.types.chat import (
    ChatCompletionContentPartParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from openai.types.responses import EasyInputMessageParam, ResponseInputContentParam, ResponseInputParam
from PIL import Image

from optical_memory.errors import ConfigError, InputError
from optical_memory.formats import (
    FORMATS,
    PAGES_INTRO,
    FormattedContext,
    PageItem,
    TextItem,
    build_messages,
    check_format,
    data_url,
    default_format,
    frame_text,
    jsonable,
    page_label,
)
from optical_memory.images import encode_png
from optical_memory.ladder import Rung
from optical_memory.pricing.providers import get_provider
from optical_memory.types import ToolCall


def _page(page_id: int, rung: Rung = Rung.TINY, shade: int = 0) -> PageItem:
    image = Image.new("L", (64, 64), 255)
    image.putpixel((page_id % 64, 0), shade)
    return PageItem(page_id, image, rung, page_label(page_id, (page_id * 3, page_id * 3 + 2)))


def _items() -> list[Any]:
    return [
        TextItem("system", "You are a helpful agent."),
        _page(0, Rung.TINY),
        _page(1, Rung.SMALL, shade=10),
        TextItem("user", "What did we decide about the 午夜 bug?"),
        TextItem("assistant", "We switched to half-open windows."),
        TextItem("tool", "9 passed in 0.52s", name="shell"),
        TextItem("user", "Great, thanks."),
    ]


def _exact(type_: Any, value: Any) -> None:
    """Validate against an SDK type and require a lossless round trip (no unknown keys dropped)."""
    adapter = pydantic.TypeAdapter(type_)
    assert adapter.dump_python(adapter.validate_python(value)) == value


def _validate(message_type: Any, part_type: Any, messages: list[dict[str, Any]]) -> None:
    """Check messages against the official SDK types, parts and tool calls eagerly (the SDKs declare them
    lazy)."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            _exact(list[part_type], content)  # type: ignore[valid-type]
            message = {**message, "content": "parts checked above"}
        if "tool_calls" in message:
            _exact(list[ChatCompletionMessageFunctionToolCallParam], message["tool_calls"])
            message = {k: v for k, v in message.items() if k != "tool_calls"}
        _exact(message_type, message)


def _png_of(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_page_label_and_frame_text() -> None:
    assert page_label(3, (10, 14)) == "page 3, turns 10-14"
    assert page_label(0, (2, 2)) == "page 0, turn 2"
    text = frame_text(_items())
    assert text.splitlines() == [PAGES_INTRO, "page 0, turns 0-2", "page 1, turns 3-5"]
    assert frame_text([TextItem("user", "hi")]) == ""


def test_default_format_per_family() -> None:
    assert default_format(get_provider("openai:gpt-4o")) == "openai-chat"
    assert default_format(get_provider("anthropic:claude-sonnet-4-5")) == "anthropic"
    assert default_format(get_provider("gemini:gemini-2.0-flash")) == "gemini"
    assert default_format(get_provider("qwen2.5-vl")) == "hf"
    assert default_format(get_provider("deepseek-ocr")) == "hf"


def test_unknown_format_and_detail_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="openai-chat"):
        build_messages(_items(), format="openai")
    with pytest.raises(ConfigError, match="detail"):
        build_messages(_items(), format="openai-chat", detail="medium")
    assert check_format(" Anthropic ") == "anthropic"


def test_bad_items_are_input_errors() -> None:
    forgotten = PageItem(5, Image.new("L", (8, 8)), Rung.FORGOTTEN, "page 5")
    with pytest.raises(InputError, match="forgotten"):
        build_messages([forgotten], format="openai-chat")
    with pytest.raises(InputError, match="TextItem or PageItem"):
        build_messages([{"role": "user", "content": "hi"}], format="hf")  # type: ignore[list-item]


def test_openai_chat_messages_validate_and_hold_the_pages() -> None:
    ctx = build_messages(_items(), format="openai-chat", detail="low")
    assert isinstance(ctx, FormattedContext) and ctx.system is None and ctx.format == "openai-chat"
    _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, ctx.messages)
    roles = [m["role"] for m in ctx.messages]
    assert roles == ["system", "user", "user", "assistant", "user", "user"]
    parts = ctx.messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "text", "image_url", "text", "image_url"]
    assert parts[0]["text"].startswith("The earlier part of this conversation is shown as page images")
    assert parts[1]["text"] == "page 0, turns 0-2"
    url = parts[2]["image_url"]
    assert url["detail"] == "low"
    assert url["url"].startswith("data:image/png;base64,")
    page = _items()[1]
    assert base64.b64decode(url["url"].split(",", 1)[1]) == encode_png(page.image)
    assert ctx.messages[4]["content"] == "Tool result (shell):\n9 passed in 0.52s"
    json.dumps(ctx.messages)  # plain JSON


def test_openai_detail_defaults_to_high_matching_the_cost_model() -> None:
    ctx = build_messages([_page(0)], format="openai-chat")
    assert ctx.messages[0]["content"][2]["image_url"]["detail"] == "high"
    ctx = build_messages([_page(0)], format="openai-responses")
    assert ctx.messages[0]["content"][2]["detail"] == "high"


def test_openai_names_kept_only_when_the_api_accepts_them() -> None:
    ctx = build_messages(
        [TextItem("user", "a", name="lin_wei"), TextItem("user", "b", name="Lin Wei")], format="openai-chat"
    )
    assert ctx.messages[0]["name"] == "lin_wei"
    assert "name" not in ctx.messages[1]
    _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, ctx.messages)


def test_openai_responses_input_validates() -> None:
    ctx = build_messages(_items(), format="openai-responses")
    _validate(EasyInputMessageParam, ResponseInputContentParam, ctx.messages)
    _exact(ResponseInputParam, [{**m, "content": "x"} for m in ctx.messages])
    pages = ctx.messages[1]["content"]
    assert [p["type"] for p in pages] == [
        "input_text",
        "input_text",
        "input_image",
        "input_text",
        "input_image",
    ]
    assert pages[2]["image_url"].startswith("data:image/png;base64,")
    assert ctx.messages[0] == {"role": "system", "content": "You are a helpful agent."}
    json.dumps(ctx.messages)


def test_anthropic_system_apart_roles_alternate_and_validate() -> None:
    ctx = build_messages(_items(), format="anthropic")
    assert ctx.system == "You are a helpful agent."
    _validate(MessageParam, ContentBlockParam, ctx.messages)
    roles = [m["role"] for m in ctx.messages]
    assert roles == ["user", "assistant", "user"]
    assert all(a != b for a, b in itertools.pairwise(roles))
    first = ctx.messages[0]["content"]
    # the pages message and the following user turn were merged into one user message
    assert [b["type"] for b in first] == ["text", "text", "image", "text", "image", "text"]
    assert first[-1]["text"] == "What did we decide about the 午夜 bug?"
    source = first[2]["source"]
    assert source["type"] == "base64" and source["media_type"] == "image/png"
    assert _png_of(source["data"]).size == (64, 64)
    last = ctx.messages[2]["content"]
    assert [b["text"] for b in last] == ["Tool result (shell):\n9 passed in 0.52s", "Great, thanks."]
    json.dumps(ctx.messages)


def test_anthropic_drops_empty_text_and_keeps_late_system_as_a_note() -> None:
    items = [TextItem("user", "hi"), TextItem("assistant", ""), TextItem("system", "be brief")]
    ctx = build_messages(items, format="anthropic")
    assert ctx.system is None
    assert ctx.messages == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "System note:\nbe brief"}],
        }
    ]
    _validate(MessageParam, ContentBlockParam, ctx.messages)


def test_gemini_contents() -> None:
    ctx = build_messages(_items(), format="gemini")
    assert ctx.system == "You are a helpful agent."
    assert [c["role"] for c in ctx.messages] == ["user", "model", "user"]
    parts = ctx.messages[0]["parts"]
    inline = [p["inline_data"] for p in parts if "inline_data" in p]
    assert len(inline) == 2 and all(p["mime_type"] == "image/png" for p in inline)
    assert _png_of(inline[1]["data"]).getpixel((1, 0)) == 10
    assert parts[-1] == {"text": "What did we decide about the 午夜 bug?"}
    for content in ctx.messages:
        for part in content["parts"]:
            assert set(part) in ({"text"}, {"inline_data"})
    json.dumps(ctx.messages)


def test_hf_messages_hold_pil_images_and_jsonable_converts_them() -> None:
    items = _items()
    ctx = build_messages(items, format="hf")
    assert ctx.system is None
    assert [m["role"] for m in ctx.messages] == ["system", "user", "user", "assistant", "tool", "user"]
    parts = ctx.messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "text", "image", "text", "image"]
    assert parts[2]["image"] is items[1].image
    assert ctx.messages[4]["name"] == "shell"
    as_json = jsonable(ctx.messages)
    assert as_json[1]["content"][2]["image"] == data_url(items[1].image)
    assert ctx.messages[1]["content"][2]["image"] is items[1].image  # the original is untouched
    json.loads(json.dumps(as_json))


def test_the_checker_catches_unknown_keys() -> None:
    bad = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x", "url": "y"}}
    with pytest.raises(AssertionError):
        _validate(MessageParam, ContentBlockParam, [{"role": "user", "content": [bad]}])
    bad_chat = {"role": "user", "content": "x", "detail": "high"}
    with pytest.raises(AssertionError):
        _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, [bad_chat])


def test_no_pages_means_no_pages_message() -> None:
    items = [TextItem("system", "sys"), TextItem("user", "hi")]
    for fmt in FORMATS:
        ctx = build_messages(items, format=fmt)
        dumped = json.dumps(jsonable(ctx.messages))
        assert "page" not in dumped, fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_deterministic_and_keeps_page_order(fmt: str) -> None:
    items = [_page(i, shade=i) for i in range(5)] + [TextItem("user", "next?")]
    a = json.dumps(jsonable(build_messages(items, format=fmt).messages))
    b = json.dumps(jsonable(build_messages(items, format=fmt).messages))
    assert a == b
    positions = [a.index(f"page {i},") for i in range(5)]
    assert positions == sorted(positions)


@pytest.mark.parametrize("fmt", ["openai-chat", "openai-responses", "anthropic", "gemini"])
def test_given_png_bytes_are_sent_as_they_are(fmt: str) -> None:
    page = PageItem(0, Image.new("L", (8, 8), 255), Rung.TINY, "page 0", png=b"stored-png")
    text = json.dumps(build_messages([page], format=fmt).messages)
    assert base64.b64encode(b"stored-png").decode() in text
    plain = json.dumps(build_messages([PageItem(0, page.image, Rung.TINY, "page 0")], format=fmt).messages)
    assert base64.b64encode(encode_png(page.image)).decode() in plain


# --- tool calls and the older conversation as text ------------------------------------------------------


def _tool_items() -> list[Any]:
    call = ToolCall("call_1", "bash", '{"command": "ls -F"}')
    other = ToolCall("call:2", "read", '{"path": "a.py"}')
    return [
        TextItem("system", "You are an agent."),
        _page(0),
        TextItem("user", "list the files", turn=3),
        TextItem("assistant", "", tool_calls=(call, other), turn=4),
        TextItem("tool", "AUTHORS LICENSE", name="bash", tool_call_id="call_1", turn=5),
        TextItem("tool", "print(1)", name="read", tool_call_id="call:2", turn=6),
        _page(1),
        TextItem("assistant", "Both read.", turn=8),
        TextItem("user", "thanks"),
    ]


def test_openai_chat_tool_calls_validate() -> None:
    ctx = build_messages(_tool_items(), format="openai-chat")
    _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, ctx.messages)
    roles = [m["role"] for m in ctx.messages]
    assert roles == ["system", "user", "user", "assistant", "tool", "tool", "user", "assistant", "user"]
    call = ctx.messages[3]
    assert call["content"] is None and [c["id"] for c in call["tool_calls"]] == ["call_1", "call:2"]
    assert call["tool_calls"][0]["function"] == {"name": "bash", "arguments": '{"command": "ls -F"}'}
    assert ctx.messages[4] == {"role": "tool", "tool_call_id": "call_1", "content": "AUTHORS LICENSE"}
    # two runs of pages: the introduction opens only the first
    assert ctx.messages[1]["content"][0]["text"] == PAGES_INTRO
    assert ctx.messages[6]["content"][0]["text"] == "page 1, turns 3-5"


def test_openai_responses_tool_items_validate() -> None:
    ctx = build_messages(_tool_items(), format="openai-responses")
    _exact(ResponseInputParam, [{**m, "content": "x"} if "content" in m else m for m in ctx.messages])
    kinds = [m.get("type", m.get("role")) for m in ctx.messages]
    assert kinds == [
        "system", "user", "user", "function_call", "function_call", "function_call_output",
        "function_call_output", "user", "assistant", "user",
    ]  # fmt: skip
    assert ctx.messages[3] == {
        "type": "function_call", "call_id": "call_1", "name": "bash", "arguments": '{"command": "ls -F"}'
    }  # fmt: skip
    assert ctx.messages[5] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "AUTHORS LICENSE",
    }


def test_anthropic_tool_use_and_results_validate() -> None:
    ctx = build_messages(_tool_items(), format="anthropic")
    _validate(MessageParam, ContentBlockParam, ctx.messages)
    roles = [m["role"] for m in ctx.messages]
    assert all(a != b for a, b in itertools.pairwise(roles))
    uses = [b for m in ctx.messages for b in m["content"] if b["type"] == "tool_use"]
    results = [b for m in ctx.messages for b in m["content"] if b["type"] == "tool_result"]
    assert [u["id"] for u in uses] == ["call_1", "call_2"]  # ids made safe for the API
    assert uses[0]["input"] == {"command": "ls -F"}
    assert [r["tool_use_id"] for r in results] == ["call_1", "call_2"]
    # both results answer in the one user message right after the calls
    i = next(i for i, m in enumerate(ctx.messages) if any(b["type"] == "tool_use" for b in m["content"]))
    assert [b["type"] for b in ctx.messages[i + 1]["content"]][:2] == ["tool_result", "tool_result"]


def test_gemini_function_calls_and_responses() -> None:
    ctx = build_messages(_tool_items(), format="gemini")
    parts = [p for c in ctx.messages for p in c["parts"]]
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    answers = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert calls[0] == {"id": "call_1", "name": "bash", "args": {"command": "ls -F"}}
    assert answers[1] == {"id": "call:2", "name": "read", "response": {"result": "print(1)"}}
    assert [c["role"] for c in ctx.messages] == ["user", "model", "user", "model", "user"]


def test_hf_tool_calls() -> None:
    ctx = build_messages(_tool_items(), format="hf")
    call = next(m for m in ctx.messages if "tool_calls" in m)
    assert call["tool_calls"][0] == {
        "id": "call_1", "type": "function", "function": {"name": "bash", "arguments": {"command": "ls -F"}}
    }  # fmt: skip
    assert [m.get("tool_call_id") for m in ctx.messages if m["role"] == "tool"] == ["call_1", "call:2"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_call_without_its_results_beside_it_is_written_as_text(fmt: str) -> None:
    call = ToolCall("c1", "bash", '{"command": "date"}')
    items = [
        TextItem("user", "what time is it?"),
        TextItem("assistant", "Let me check.", tool_calls=(call,)),
        _page(0),  # the result went onto a page image
        TextItem("tool", "12:00", name="date", tool_call_id="c9"),  # a result whose call is not here
        TextItem("user", "ok"),
    ]
    dumped = json.dumps(jsonable(build_messages(items, format=fmt).messages))
    assert "Called bash(" in dumped
    assert fmt == "hf" or "Tool result (date):" in dumped  # chat templates take a plain tool turn
    for key in ("tool_calls", "tool_use", "function_call", "functionCall", "tool_call_id", "tool_result"):
        assert key not in dumped, (fmt, key)


def test_gemini_pages_carry_their_media_resolution() -> None:
    page = PageItem(0, Image.new("L", (8, 8), 255), Rung.BASE, "page 0", detail="medium")
    parts = build_messages([page], format="gemini").messages[0]["parts"]
    assert parts[-1]["media_resolution"] == {"level": "MEDIA_RESOLUTION_MEDIUM"}
    openai = build_messages(
        [PageItem(0, page.image, Rung.TINY, "page 0", detail="low")], format="openai-chat"
    )
    assert openai.messages[0]["content"][-1]["image_url"]["detail"] == "low"
