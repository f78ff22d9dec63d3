"""The contact sheet (``optical_memory.sheet``) and ``optical-memory show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from optical_memory import sheet as sheet_module
from optical_memory.cli import main
from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import get_provider
from optical_memory.sheet import RUNG_COLOURS, SheetPage, contact_sheet, draw_sheet, page_caption
from tests.cli.conftest import conversation


def _black(side: int) -> Image.Image:
    return Image.new("L", (side, side), 0)


def _black_boxes(sheet: Image.Image) -> list[tuple[int, int]]:
    """Widths and heights of the black squares (page images) on a sheet, left to right."""
    dark = (np.asarray(sheet.convert("L")) == 0).astype(np.int8)
    columns = dark.any(axis=0)
    boxes, x = [], 0
    while x < len(columns):
        if columns[x]:
            start = x
            while x < len(columns) and columns[x]:
                x += 1
            rows = np.flatnonzero(dark[:, start:x].any(axis=1))
            boxes.append((x - start, int(rows[-1] - rows[0] + 1)))
        x += 1
    return boxes


def test_pages_are_drawn_at_true_relative_size_in_order() -> None:
    pages = [
        SheetPage(0, (0, 3), Rung.TINY, 73, _black(512)),
        SheetPage(1, (4, 6), Rung.SMALL, 111, _black(640)),
        SheetPage(2, (7, 9), Rung.LARGE, 421, _black(1280), sealed=False),
    ]
    sheet = draw_sheet(pages, scale=0.25)
    assert _black_boxes(sheet) == [(128, 128), (160, 160), (320, 320)]
    # each page is framed in its rung's colour
    arr = np.asarray(sheet)
    for rung in (Rung.TINY, Rung.SMALL, Rung.LARGE):
        assert (arr == RUNG_COLOURS[rung]).all(axis=-1).sum() > 500


def test_forgotten_pages_are_empty_frames_and_captions_say_everything() -> None:
    forgotten = SheetPage(0, (0, 3), Rung.FORGOTTEN, 0, None)
    pinned = SheetPage(1, (4, 4), Rung.SMALL, 111, _black(640), pinned=Rung.SMALL)
    open_page = SheetPage(2, (5, 9), Rung.LARGE, 765, _black(1280), sealed=False)
    sheet = draw_sheet([forgotten, pinned], scale=0.25)
    assert _black_boxes(sheet)[-1] == (160, 160)
    assert page_caption(forgotten) == ("page 0 · turns 0-3", "forgotten")
    assert page_caption(pinned) == ("page 1 · turn 4", "small · 111 tok · pinned")
    assert page_caption(open_page, "positions") == ("page 2 · turns 5-9", "large · 765 positions · open")


def test_rows_wrap_at_max_width() -> None:
    pages = [SheetPage(i, (i, i), Rung.TINY, 73, _black(512)) for i in range(8)]
    wide = draw_sheet(pages, scale=0.25, max_width=5000)
    narrow = draw_sheet(pages, scale=0.25, max_width=600)
    assert narrow.width <= max(600, 720 + 48) and narrow.height > 2 * wide.height - 200
    assert len(_black_boxes(narrow)) < 8  # columns overlap once rows wrap


@pytest.mark.parametrize(("scale", "width"), [(0.0, 2400), (1.5, 2400), (0.5, 100)])
def test_bad_sheet_settings(scale: float, width: int) -> None:
    with pytest.raises(ConfigError):
        draw_sheet([], scale=scale, max_width=width)


def test_contact_sheet_of_a_memory_shows_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = OpticalMemory({"recent_turns": 2})
    for message in conversation(48):
        memory.add(message)
    memory.forget(0)
    drawn: dict[str, Any] = {}

    def capture(pages: list[SheetPage], **kwargs: Any) -> Image.Image:
        drawn.update(kwargs, pages=pages)
        return draw_sheet(pages, **kwargs)

    monkeypatch.setattr(sheet_module, "draw_sheet", capture)
    sheet = contact_sheet(memory, provider="openai:gpt-4o", scale=0.25)
    gpt4o = get_provider("openai:gpt-4o")
    infos = memory.pages()
    entries = drawn["pages"]
    assert [e.page_id for e in entries] == [i.page_id for i in infos]
    assert [e.rung for e in entries] == [i.rung for i in infos]
    assert entries[0].rung is Rung.FORGOTTEN and entries[0].image is None and entries[0].cost == 0
    assert len({e.rung for e in entries}) >= 3
    for entry in entries[1:]:
        assert entry.image is not None
        assert entry.image.tobytes() == memory.page_image(entry.page_id).tobytes()  # the stored pixels
        assert entry.cost == gpt4o.image_tokens(entry.image.width, entry.image.height)
    assert entries[-1].sealed is False
    usage = memory.context(provider="openai:gpt-4o").usage
    assert f"{usage.context_tokens:,} openai:gpt-4o tokens" in drawn["subtitle"]
    assert f"{len(memory)} turns" in drawn["title"]
    assert sheet.size == draw_sheet(entries, **{k: v for k, v in drawn.items() if k != "pages"}).size


def test_show_draws_a_stored_session(
    tmp_path: Path, conversation_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, out = tmp_path / "m.db", tmp_path / "sheets" / "sheet.png"
    assert main(["compress", str(conversation_file), "--db", str(db), "--session", "s", "--recent", "2"]) == 0
    capsys.readouterr()
    assert main(["show", "--db", str(db), "--session", "s", "--out", str(out)]) == 0
    assert "of session 's'" in capsys.readouterr().out
    with Image.open(out) as sheet:
        assert sheet.mode == "RGB" and sheet.width > 1000


def test_show_refuses_missing_store_and_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.db"
    assert main(["show", "--db", str(missing), "--out", str(tmp_path / "s.png")]) == 2
    assert "no such store file" in capsys.readouterr().err
    assert not missing.exists()  # nothing was created
    db = tmp_path / "m.db"
    OpticalMemory.open(db, session="real").close()
    assert main(["show", "--db", str(db), "--session", "other", "--out", str(tmp_path / "s.png")]) == 2
    assert "sessions there: 'real'" in capsys.readouterr().err
