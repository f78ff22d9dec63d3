"""Golden pages: the default style must keep drawing these conversations pixel for pixel.

Regenerate after a deliberate change with ``python -m tests.renderers.regen_goldens``.
"""

from __future__ import annotations

import pytest
from PIL import Image

from optical_memory.images import encode_png
from tests.renderers.cases import ACTUAL_DIR, CASES, GOLDEN_DIR, render_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_page(name: str) -> None:
    page = render_case(name)
    golden_png = GOLDEN_DIR / f"{name}.png"
    with Image.open(golden_png) as golden:
        golden.load()
        same = golden.mode == page.image.mode and golden.size == page.image.size
        same = same and golden.tobytes() == page.image.tobytes()
    if not same:
        ACTUAL_DIR.mkdir(exist_ok=True)
        actual = ACTUAL_DIR / f"{name}.png"
        actual.write_bytes(encode_png(page.image))
        pytest.fail(
            f"page {name!r} differs from {golden_png}; the actual page is at {actual} "
            "(regenerate with python -m tests.renderers.regen_goldens if the change is intended)"
        )
    assert page.text == (GOLDEN_DIR / f"{name}.txt").read_text(encoding="utf-8")


def test_golden_cases_use_every_script_and_block() -> None:
    pages = {name: render_case(name) for name in CASES}
    assert pages["mixed"].missing_glyphs == 3  # C1 control U+0085, private-use U+E000, U+10FFFD
    assert all(pages[name].missing_glyphs == 0 for name in ("latin", "cjk", "code"))
    assert "↪ " in pages["code"].text
    assert "    print(i)" in pages["code"].text  # the tab became four spaces
    assert "␀" in pages["mixed"].text and "␡" in pages["mixed"].text
    agent = pages["agent_flowed"].text
    assert "⇒ app.py" in agent and "⟨5 blank lines⟩" in agent and "⟨base64" in agent and "↵" in agent
