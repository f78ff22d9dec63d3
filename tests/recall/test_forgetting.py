"""The forgetting curve, its JSON and plot, and the ``bench forgetting`` / ``recall`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from optical_memory.cli import main
from optical_memory.errors import ConfigError, InputError
from optical_memory.images import encode_png
from optical_memory.memory import OpticalMemory
from optical_memory.recall import READERS
from optical_memory.recall.forgetting import FOX, LEVELS, forgetting_curve, reader_note, render_pages
from optical_memory.recall.plot import draw_curve
from optical_memory.types import Turn
from tests.recall.fakes import FadingReader

TURNS = [
    Turn(
        "user" if i % 2 == 0 else "assistant", f"Turn {i}. " + "Pages fade down the ladder as they age. " * 25
    )
    for i in range(6)
]


@pytest.fixture(scope="module")
def pages() -> list:
    return render_pages(TURNS, limit_pages=2)


def test_levels_cover_the_ladder_and_two_sizes_below() -> None:
    assert [(lv.name, lv.size) for lv in LEVELS] == [
        ("large", 1280),
        ("base", 1024),
        ("small", 640),
        ("tiny", 512),
        ("384px", 384),
        ("256px", 256),
    ]
    assert [lv.vision_tokens for lv in LEVELS] == [400, 256, 100, 64, 36, 16]
    assert [lv.positions for lv in LEVELS][:4] == [421, 273, 111, 73]


def test_render_pages_limits(pages: list) -> None:
    assert len(pages) == 2 and all(p.size == 1280 for p in pages)
    with pytest.raises(ConfigError):
        render_pages(TURNS, limit_pages=0)
    with pytest.raises(InputError):
        render_pages([])


def test_curve_rows(pages: list) -> None:
    curve = forgetting_curve(pages, FadingReader([p.text for p in pages]))
    assert curve.reader == "fading" and curve.pages == 2
    rows = {r.rung: r for r in curve.rows}
    assert list(rows) == [lv.name for lv in LEVELS]
    assert rows["large"].char_accuracy == pytest.approx(1.0)
    accuracies = [r.char_accuracy for r in curve.rows]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[-1] < 0.3
    assert rows["tiny"].vision_tokens == 64 and not rows["tiny"].vision_tokens_extrapolated
    assert rows["256px"].vision_tokens_extrapolated
    mean_tokens = sum(p.text_tokens for p in pages) / 2
    assert rows["tiny"].text_tokens == pytest.approx(mean_tokens)
    assert rows["tiny"].compression == pytest.approx(mean_tokens / 64)
    assert all(r.pages == 2 and r.char_accuracy_min <= r.char_accuracy for r in curve.rows)
    data = json.loads(json.dumps(curve.to_dict()))
    assert data["reader"] == "fading" and data["rows"][0]["rung"] == "large"
    assert set(data["rows"][0]) >= {
        "char_accuracy",
        "bag_recall",
        "text_tokens",
        "vision_tokens",
        "compression",
        "seconds_per_page",
    }


def test_curve_needs_pages_at_least_as_large_as_the_levels() -> None:
    small = render_pages(TURNS[:1], size=640)
    with pytest.raises(InputError, match="large"):
        forgetting_curve(small, FadingReader([small[0].text]))


def test_notes_name_what_is_measured() -> None:
    assert "pixel loss" in reader_note("rapidocr")
    assert "vision tokens" in reader_note("deepseek")


def test_plot_names_the_reader_and_shows_the_fox_figures(pages: list) -> None:
    curve = forgetting_curve(pages, FadingReader([p.text for p in pages]))
    image = draw_curve(curve)
    assert image.size == (960, 640) and image.mode == "RGB"
    colors = {c for _, c in image.getcolors(maxcolors=1 << 16)}
    assert (200, 40, 40) in colors and (40, 90, 200) in colors and (30, 150, 80) in colors
    assert len(FOX) == 7


@pytest.fixture
def constant_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(READERS, "constant", "tests.recall.fakes:ConstantReader")


def test_bench_forgetting_command(
    constant_by_name: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    convo = tmp_path / "chat.json"
    convo.write_text(json.dumps([t.to_dict() for t in TURNS]))
    out, plot = tmp_path / "curve.json", tmp_path / "curve.png"
    code = main(
        [
            "bench",
            "forgetting",
            str(convo),
            "--reader",
            "constant",
            "--limit-pages",
            "1",
            "--out",
            str(out),
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "reader: constant" in table and "256px" in table and "extrapolated" in table
    data = json.loads(out.read_text())
    assert data["reader"] == "constant" and len(data["rows"]) == 6 and data["pages"] == 1
    with Image.open(plot) as image:
        assert image.size == (960, 640)


def test_reader_settings_must_fit_the_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    convo = tmp_path / "chat.json"
    convo.write_text(json.dumps([t.to_dict() for t in TURNS]))
    assert main(["bench", "forgetting", str(convo), "--reader", "exact", "--checkpoint", "x"]) == 2
    assert "--checkpoint do(es) not apply to the exact reader" in capsys.readouterr().err


def test_recall_command_reads_an_image(
    constant_by_name: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "page.png"
    png.write_bytes(encode_png(Image.new("L", (640, 640), 255)))
    assert main(["recall", str(png), "--reader", "constant"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "hello page\n" and "constant at small" in captured.err


def test_recall_command_reads_a_stored_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "memory.db"
    with OpticalMemory.open(db, config={"recent_turns": 1, "keep_text": True}) as memory:
        for turn in TURNS * 2:
            memory.add(turn)
        page = memory.pages()[0]
        expected = memory.page_text(page.page_id)
    assert main(["recall", "--db", str(db), "--page", str(page.page_id)]) == 0
    captured = capsys.readouterr()
    assert captured.out == expected + "\n" and "exact" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recall"], "either an image file or --db"),
        (["recall", "missing.png"], "no such image file"),
        (["recall", "--db", "missing.db", "--page", "0"], "no such memory file"),
        (["recall", "--page", "0", "x.png"], "--page needs --db"),
    ],
)
def test_recall_command_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
