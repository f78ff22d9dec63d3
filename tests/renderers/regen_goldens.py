"""Regenerate the golden page images: ``python -m tests.renderers.regen_goldens`` from the repository root.

Run it only after a deliberate change to how pages look; review the new PNGs before committing them.
"""

from __future__ import annotations

from optical_memory.images import encode_png
from tests.renderers.cases import CASES, GOLDEN_DIR, render_case


def main() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name in CASES:
        page = render_case(name)
        (GOLDEN_DIR / f"{name}.png").write_bytes(encode_png(page.image))
        (GOLDEN_DIR / f"{name}.txt").write_text(page.text, encoding="utf-8")
        print(f"wrote {GOLDEN_DIR / name}.png ({page.text_tokens} tokens, {page.missing_glyphs} missing)")


if __name__ == "__main__":
    main()
