"""Images users paste: kept through the store and a reopen, sent as images while recent (in every format's
image parts, SDK-validated), priced with the provider's formula, and drawn as labelled thumbnails on pages."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from anthropic.types import ContentBlockParam, MessageParam
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from openai.types.responses import EasyInputMessageParam, ResponseInputContentParam
from PIL import Image, ImageDraw

from optical_memory.errors import InputError
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import get_provider
from tests.formats.test_formats import _validate
from tests.memory.helpers import turns

PROVIDER = "openai:gpt-4o"


def chart_url(size: tuple[int, int] = (800, 600), fmt: str = "PNG") -> str:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((80, 80, size[0] - 80, size[1] - 80), outline="black", width=12)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def pasted(text: str, *urls: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return {"role": "user", "content": parts}


def test_a_recent_turn_sends_its_images_priced_and_valid_in_every_format(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with OpticalMemory.open(path, config={"provider": PROVIDER, "recent_turns": 4}) as memory:
        memory.add(pasted("What does this chart show?", chart_url(), chart_url((400, 300), "JPEG")))
    with OpticalMemory.open(path) as memory:  # kept through the store
        images = memory._w.turns[0].images
        assert [(i.mime, i.width, i.height) for i in images] == [
            ("image/png", 800, 600),
            ("image/jpeg", 400, 300),
        ]
        chat = memory.context()
        parts = chat.messages[0]["content"]
        assert (
            parts[0]["text"]
            == "What does this chart show?\n\n[image 1: 800x600 png]\n\n[image 2: 400x300 jpeg]"
        )
        assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
        assert parts[1]["image_url"]["url"] == images[0].data_url()
        _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, chat.messages)
        gpt4o = get_provider(PROVIDER)
        assert chat.usage.image_tokens == gpt4o.image_tokens(800, 600) + gpt4o.image_tokens(400, 300)
        responses = memory.context(format="openai-responses")
        _validate(EasyInputMessageParam, ResponseInputContentParam, responses.messages)
        claude = memory.context(provider="anthropic:claude-sonnet-4-5")
        _validate(MessageParam, ContentBlockParam, claude.messages)
        assert claude.messages[0]["content"][2]["source"]["media_type"] == "image/jpeg"
        gemini = memory.context(provider="gemini:gemini-2.0-flash")
        assert gemini.messages[0]["parts"][1]["inline_data"]["mime_type"] == "image/png"
        hf = memory.context(provider="qwen2.5-vl")
        assert hf.messages[0]["content"][1]["image"].size == (800, 600)


def test_an_older_turn_shows_its_image_as_a_thumbnail_on_its_page() -> None:
    memory = OpticalMemory({"provider": PROVIDER, "recent_turns": 2})
    plain = OpticalMemory({"provider": PROVIDER, "recent_turns": 2})
    memory.add(pasted("Here is the chart.", chart_url()))
    plain.add(pasted("Here is the chart."))
    for t in turns(6, words=40):
        memory.add(t)
        plain.add(t)
    page = memory.pages()[0]
    assert page.turns[0] == 0 and memory.page_text(0).startswith(
        "Here is the chart.\n\n[image 1: 800x600 png]"
    )
    drawn = np.asarray(memory.page_image(0))
    without = np.asarray(plain.page_image(0))
    assert (drawn < 128).sum() > (without < 128).sum() + 2000  # the thumbnail's frame and box are drawn
    context = memory.context(budget=None)
    assert context.usage.pages_as_text == 0  # a page holding a picture is never sent as its text
    assert all(
        p.get("type") != "image_url" or "detail" in p["image_url"] for p in context.messages[0]["content"]
    )


def test_images_are_dropped_with_their_text_once_the_page_pays() -> None:
    memory = OpticalMemory({"provider": PROVIDER, "recent_turns": 2})
    memory.add(pasted("chart", chart_url()))
    for t in turns(40):
        memory.add(t)
    assert memory._w.turns[0].content is None and memory._w.turns[0].images == ()
    assert memory.context(budget=None).usage.image_tokens > 0


def test_what_cannot_be_kept_as_an_image_is_refused_or_marked() -> None:
    memory = OpticalMemory()
    memory.add(pasted("see", "https://example.com/chart.png"))
    assert memory._w.turns[0].content == "see\n\n[image: https://example.com/chart.png]"
    assert memory._w.turns[0].images == ()
    call = {"id": "c1", "function": {"name": "shot", "arguments": "{}"}}
    memory.add({"role": "assistant", "content": None, "tool_calls": [call]})
    memory.add(
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": [{"type": "image_url", "image_url": {"url": chart_url()}}],
        }
    )
    assert "only user turns keep images" in memory._w.turns[2].content
    for bad, message in [
        ("data:image/png;base64,!!!", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "readable image"),
        ("data:image/bmp;base64," + chart_url(fmt="BMP").split(",")[1], "not supported"),
    ]:
        with pytest.raises(InputError, match=message):
            memory.add(pasted("bad", bad))
    assert len(memory) == 3
