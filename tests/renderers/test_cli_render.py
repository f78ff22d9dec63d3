"""The ``optical-memory render`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from optical_memory.cli import main


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_render_writes_pages_texts_and_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conv = _write(
        tmp_path / "chat.json",
        {
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "你好 " * 2000},
            ]
        },
    )
    out = tmp_path / "out"
    assert main(["render", str(conv), "--out", str(out), "--provider", "openai:gpt-4o"]) == 0
    index = json.loads((out / "pages.json").read_text(encoding="utf-8"))
    assert len(index) >= 2
    assert index[0]["file"] == "page-00000.png" and index[0]["rung"] == "large"
    assert (index[0]["width"], index[0]["height"]) == (768, 1024)
    assert 0 < index[0]["fill"] < 3
    assert index[0]["turns"][0] == [0, 0, 5]
    assert index[-1]["turns"][-1][0] == 1 and index[-1]["turns"][-1][2] == len("你好 " * 2000)
    for entry in index:
        with Image.open(out / entry["file"]) as image:
            assert image.size == (768, 1024) and image.mode == "L"
        text = (out / entry["file"]).with_suffix(".txt").read_text(encoding="utf-8")
        assert entry["text_tokens"] > 0 and text.startswith(("User", "Assistant"))
    assert f"{len(index)} pages" in capsys.readouterr().out


def test_sharegpt_input(tmp_path: Path) -> None:
    conv = _write(
        tmp_path / "s.json",
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
    )
    assert main(["render", str(conv), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "page-00000.txt").read_text(encoding="utf-8") == "User: hi Assistant: yo"


def test_missing_and_malformed_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("optical-memory: error: ") and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"role": "user", "content": "x"', encoding="utf-8")
    assert main(["render", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert (
        main(
            [
                "render",
                str(_write(tmp_path / "c.json", [{"role": "user", "content": "x"}])),
                "--out",
                str(tmp_path / "o"),
                "--profile",
                "nope",
            ]
        )
        == 2
    )


def test_python_dash_m_render(tmp_path: Path) -> None:
    conv = _write(tmp_path / "c.jsonl", [])
    conv.write_text(
        '{"role": "user", "content": "one"}\n{"role": "assistant", "content": "two"}\n', encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "optical_memory", "render", str(conv), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rendered 2 turns into 1 pages" in result.stdout
    assert json.loads((tmp_path / "o" / "pages.json").read_text())[0]["turns"] == [[0, 0, 3], [1, 0, 3]]
