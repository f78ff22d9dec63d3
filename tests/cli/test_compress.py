"""``optical-memory compress``: context JSON, pages, table, store sessions, and one-line errors."""

from __future__ import annotations

import base64
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import ContentBlockParam, MessageParam
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from PIL import Image

from optical_memory.cli import main
from optical_memory.ladder import ORDER
from optical_memory.pricing.providers import get_provider
from tests.cli.conftest import conversation
from tests.formats.test_formats import _validate


def _decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def _openai_images(messages: list[dict[str, Any]]) -> list[Image.Image]:
    return [
        _decode_data_url(part["image_url"]["url"])
        for m in messages
        if isinstance(m["content"], list)
        for part in m["content"]
        if part["type"] == "image_url"
    ]


def test_compress_writes_context_pages_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, pages, long = tmp_path / "ctx" / "context.json", tmp_path / "pages", tmp_path / "long.json"
    long.write_text(json.dumps(conversation(60), ensure_ascii=False), encoding="utf-8")
    argv = ["compress", str(long), "--provider", "openai:gpt-4o", "--recent", "2"]
    assert main([*argv, "--out", str(out), "--pages", str(pages)]) == 0
    printed = capsys.readouterr().out
    assert "openai:gpt-4o" in printed and "ratio" in printed and "61" in printed  # 61 turns

    doc = json.loads(out.read_text(encoding="utf-8"))
    assert set(doc) == {"provider", "format", "system", "messages", "usage"}
    assert doc["provider"] == "openai:gpt-4o" and doc["format"] == "openai-chat"
    _validate(ChatCompletionMessageParam, ChatCompletionContentPartParam, doc["messages"])
    usage = doc["usage"]
    images = _openai_images(doc["messages"])
    assert len(images) >= 2
    gpt4o = get_provider("openai:gpt-4o")
    # the usage's image cost is exactly the provider's formula over the images actually sent, at their detail
    details = [p["image_url"]["detail"] for m in doc["messages"] if isinstance(m["content"], list)
               for p in m["content"] if p["type"] == "image_url"]  # fmt: skip
    assert usage["image_tokens"] == sum(
        gpt4o.image_tokens(*im.size, d) for im, d in zip(images, details, strict=True)
    )
    assert usage["context_tokens"] == usage["text_tokens"] + usage["image_tokens"]
    assert usage["ratio"] == pytest.approx(usage["history_text_tokens"] / usage["context_tokens"])
    per_rung = "/".join(str(usage["pages_per_rung"][r.value]) for r in ORDER)
    assert per_rung in printed

    listing = json.loads((pages / "pages.json").read_text())
    assert [e["page_id"] for e in listing] == list(range(len(listing)))
    details = {"large": "high", "base": "high", "small": "high", "tiny": "low"}  # gpt-4o's render profile
    for entry in listing:
        with Image.open(pages / entry["file"]) as image:
            assert image.size == (entry["width"], entry["height"])
        assert entry["cost"] == gpt4o.image_tokens(entry["width"], entry["height"], details[entry["rung"]])
        assert entry["text_tokens"] > 0 and entry["fill"] > 0
        assert all(set(span) == {"kind", "text", "role"} for span in entry["exact"]) and entry["masked"] == 0
    assert listing[-1]["sealed"] is False and listing[0]["sealed"] is True
    assert len({e["rung"] for e in listing}) >= 2  # older pages have faded


def test_compress_budget_is_respected(conversation_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "context.json"
    assert (
        main(["compress", str(conversation_file), "--budget", "2500", "--recent", "2", "--out", str(out)])
        == 0
    )
    usage = json.loads(out.read_text())["usage"]
    assert usage["context_tokens"] <= 2500


def test_compress_hf_format_is_json_with_data_urls(conversation_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "context.json"
    assert main(["compress", str(conversation_file), "--recent", "2", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["provider"] == "deepseek-ocr" and doc["format"] == "hf"
    parts = [p for m in doc["messages"] for p in m["content"] if p["type"] == "image"]
    assert parts and all(_decode_data_url(p["image"]).mode == "L" for p in parts)


def test_compress_anthropic_keeps_system_apart(conversation_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "context.json"
    argv = [
        "compress",
        str(conversation_file),
        "--provider",
        "anthropic:claude-sonnet-4-5",
        "--out",
        str(out),
    ]
    assert main([*argv, "--recent", "3"]) == 0
    doc = json.loads(out.read_text())
    assert doc["system"] == "You are a careful assistant."
    _validate(MessageParam, ContentBlockParam, doc["messages"])
    roles = [m["role"] for m in doc["messages"]]
    assert roles[0] == "user" and all(a != b for a, b in itertools.pairwise(roles))


def test_compress_into_a_store_then_refuse_to_repeat(
    conversation_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "memory.db"
    argv = ["compress", str(conversation_file), "--db", str(db), "--session", "s1", "--recent", "2"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("optical-memory: error: session 's1'") and "already holds 25 turns" in err
    assert main([*argv[:-4], "--session", "s2", "--recent", "2"]) == 0  # another session in the same file


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--session", "x"], "give --db FILE too"),
        (["--budget", "0"], "--budget must be a positive"),
        (["--provider", "nosuch"], "unknown provider"),
        (["--budget", "5"], "budget"),
    ],
)
def test_compress_errors_are_one_line(
    conversation_file: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compress", str(conversation_file), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optical-memory: error:") and message in err
    assert "Traceback" not in err


def test_compress_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
