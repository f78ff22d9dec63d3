"""``optical-memory bench legibility``: needle pages read back per rung, against a small OpenAI-compatible
server on 127.0.0.1 whose answers come from the offline OCR, and the calibration it writes."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from optical_memory.cli import main
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.profiles import PROFILES
from optical_memory.pricing.providers import get_provider
from optical_memory.recall import legibility
from optical_memory.recall.legibility import (
    KINDS,
    LegibilityReport,
    RungLegibility,
    calibrate,
    needle_conversation,
)
from tests.recall.fakes import ConstantReader
from tests.servers import ChatServer, reply

needs_ocr = pytest.mark.skipif(
    importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the ocr extra (rapidocr, onnxruntime) is not installed",
)


class _OCRServer(ChatServer):
    """A chat-completions server that transcribes the image it is sent with the offline OCR."""

    def __init__(self) -> None:
        from optical_memory.recall import get_reader

        self.reader = get_reader("rapidocr")
        self.prompts: list[str] = []
        super().__init__(self._answer)

    def _answer(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        parts = body["messages"][0]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        self.prompts.append(next(p["text"] for p in parts if p["type"] == "text"))
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        return 200, reply(self.reader.read(image).text)


@pytest.fixture
def ocr_server() -> Iterator[_OCRServer]:
    server = _OCRServer()
    yield server
    server.close()


def test_needles_are_planted_deterministically() -> None:
    turns, needles = needle_conversation(seed=3)
    again, same = needle_conversation(seed=3)
    assert [t.content for t in turns] == [t.content for t in again] and needles == same
    assert {n.kind for n in needles} == set(KINDS) and len(needles) >= 20
    text = "\n".join(t.content for t in turns)
    assert all(n.text in text for n in needles)


@needs_ocr
def test_bench_reads_through_an_endpoint_and_writes_a_profile_a_memory_loads(
    ocr_server: _OCRServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, profile = tmp_path / "report.json", tmp_path / "gemini.json"
    argv = [
        "bench",
        "legibility",
        "--provider",
        "gemini:gemini-2.0-flash",
        "--pages",
        "1",
        "--reader",
        "endpoint",
    ]
    argv += [
        "--base-url",
        ocr_server.url,
        "--model",
        "ocr",
        "--out",
        str(report),
        "--write-profile",
        str(profile),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "read by endpoint" in printed and "large" in printed
    assert ocr_server.prompts and ocr_server.prompts[0].startswith("Transcribe every character")
    doc = json.loads(report.read_text())
    assert doc["proxy"] is False and doc["provider"] == "gemini:gemini-2.0-flash"
    (row,) = doc["rows"]
    assert row["served"] == [768, 768] and row["cost"] == 258
    assert row["char_accuracy"] >= 0.98
    assert all(row["needles"][k][0] == row["needles"][k][1] > 0 for k in ("digits", "hex"))
    saved = json.loads(profile.read_text())
    assert saved["name"] == "gemini-2-calibrated" and saved["measured"]["large"] == pytest.approx(
        row["char_accuracy"], abs=1e-4
    )
    with OpticalMemory({"provider": "gemini:gemini-2.0-flash", "profile": str(profile)}) as m:
        assert m.profile.name == "gemini-2-calibrated" and m.profile.body_px == saved["body_px"]


def _row(rung: str, accuracy: float, digits_found: int = 2) -> RungLegibility:
    needles = {k: [2, 2] for k in KINDS}
    needles["digits"] = [digits_found, 2]
    return RungLegibility(rung, 100, 100, (100, 100), None, 10, accuracy, needles, 1.0, 0.1)


def test_calibration_grows_glyphs_until_the_top_reads_and_cuts_illegible_rungs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []

    def fake_measure(profile, provider, reader, **kw):  # type: ignore[no-untyped-def]
        seen.append(profile.body_px)
        good = profile.body_px >= 18
        rows = [
            _row("large", 0.99 if good else 0.97, 2 if good else 1),
            _row("base", 0.95),
            _row("small", 0.91),
            _row("tiny", 0.70),
        ]
        return LegibilityReport(provider.name, profile.to_dict(), "fake", True, 1, rows)

    monkeypatch.setattr(legibility, "measure", fake_measure)
    profile, report = calibrate(
        PROFILES["anthropic"], get_provider("anthropic:claude-sonnet-4-5"), ConstantReader()
    )
    assert seen == [16, 17, 18] and profile.body_px == 18
    assert [r.value for r, _ in profile.rungs] == ["large", "base", "small"]  # tiny no longer reads
    assert profile.measured == {"large": 0.99, "base": 0.95, "small": 0.91, "tiny": 0.7}
    assert report.rows[0].char_accuracy == 0.99
