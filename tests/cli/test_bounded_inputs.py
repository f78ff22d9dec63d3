"""The CLI on bad inputs and unwritable outputs: one ``optical-memory: error:`` line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from optical_memory import conversation
from optical_memory.cli import main
from optical_memory.images import encode_png
from optical_memory.recall.base import READERS
from tests.core.test_image_files import png_header_only


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("optical-memory: error: "), err
    return lines[0]


@pytest.fixture
def constant_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(READERS, "constant", "tests.recall.fakes:ConstantReader")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bomb.png", png_header_only(20_000, 20_000), "decompression bomb"),
        ("big.png", png_header_only(6_000, 6_000), "refusing to decode a 6000x6000 image"),
        ("notes.png", b"just some text\n", "not a PNG, JPEG"),
        ("cut.png", encode_png(Image.effect_noise((256, 256), 60).convert("L"))[:3000], "truncated"),
    ],
)
def test_recall_refuses_bad_image_files_in_one_line(
    constant_reader: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    data: bytes,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert main(["recall", str(path), "--reader", "constant"]) == 2
    line = _error_line(capsys)
    assert str(path) in line and message in line


def test_recall_command_has_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    done = subprocess.run(
        [sys.executable, "-m", "optical_memory", "recall", str(path), "--reader", "exact"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("optical-memory: error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_render_into_unwritable_places_is_one_line(
    conversation_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["render", str(conversation_file), "--out", str(blocker)]) == 2
    assert "a file of that name is in the way" in _error_line(capsys)
    assert main(["render", str(conversation_file), "--out", str(blocker / "pages")]) == 2
    assert f"cannot create output folder {blocker / 'pages'}" in _error_line(capsys)
    out = tmp_path / "out"
    (out / "page-00000.png").mkdir(parents=True)  # a folder where the first page goes
    assert main(["render", str(conversation_file), "--out", str(out)]) == 2
    assert f"cannot write {out / 'page-00000.png'}" in _error_line(capsys)


def test_every_command_that_writes_files_gives_one_line(
    conversation_file: Path, constant_reader: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    db = tmp_path / "memory.db"
    assert main(["compress", str(conversation_file), "--db", str(db)]) == 0
    capsys.readouterr()
    bench = ["bench", "forgetting", str(conversation_file), "--reader", "constant", "--limit-pages", "1"]
    commands = [
        ["compress", str(conversation_file), "--out", str(blocker / "context.json")],
        ["compress", str(conversation_file), "--pages", str(blocker / "pages")],
        ["show", "--db", str(db), "--out", str(blocker / "sheet.png")],
        ["demo", "--out", str(blocker / "demo")],
        [*bench, "--plot", str(blocker / "curve.png")],
        [*bench, "--out", str(blocker / "curve.json")],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        line = _error_line(capsys)
        assert str(blocker) in line, (argv, line)


def test_conversation_caps_reach_the_cli_as_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(conversation, "MAX_LINE_BYTES", 100)
    path = tmp_path / "chat.jsonl"
    lines = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x" * 200}]
    path.write_text("\n".join(json.dumps(m) for m in lines) + "\n")
    assert main(["render", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"{path}:2: the line is longer than 100 bytes" in _error_line(capsys)


def test_os_errors_the_library_does_not_wrap_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optical_memory.cli.show as show

    def refuse(args: object) -> int:
        raise PermissionError(13, "Permission denied", "/somewhere/sheet.png")

    monkeypatch.setattr(show, "run", refuse)
    assert main(["show", "--db", "x.db"]) == 1
    line = _error_line(capsys)
    assert "Permission denied" in line and "/somewhere/sheet.png" in line and "-v" in line

    def closed_pipe(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(show, "run", closed_pipe)
    assert main(["show", "--db", "x.db"]) == 1
    assert capsys.readouterr().err == ""
