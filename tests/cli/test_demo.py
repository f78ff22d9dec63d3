"""``optical-memory demo``: the main job on the bundled sample, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from optical_memory.cli.demo import PROVIDERS, sample_turns
from optical_memory.renderers import render_turns


def test_bundled_sample_is_bilingual_with_code_and_fills_pages() -> None:
    turns = sample_turns()
    assert 40 <= len(turns) <= 80
    text = "\n".join(t.content for t in turns)
    assert "```python" in text and "```sql" in text
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) > 1000  # plenty of Chinese
    assert {t.role for t in turns} == {"system", "user", "assistant", "tool"}
    pages = render_turns(turns[:-8])  # what the default recent window leaves for pages
    assert 8 <= len(pages) <= 15
    assert sum(p.missing_glyphs for p in pages) == 0


def test_python_dash_m_demo(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "optical_memory", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert elapsed < 60
    for provider in PROVIDERS:
        assert provider in done.stdout
    assert "ratio" in done.stdout and "contact sheet" in done.stdout
    with Image.open(out / "sheet.png") as sheet:
        assert sheet.width > 1000
    doc = json.loads((out / "context.json").read_text(encoding="utf-8"))
    assert doc["provider"] == "deepseek-ocr" and doc["usage"]["ratio"] > 1
