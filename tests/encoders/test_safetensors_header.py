"""A safetensors file's header length is checked before the file is handed to safetensors or its header read."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

pytest.importorskip("torch")

from optical_memory.encoders import checkpoint
from optical_memory.encoders.checkpoint import (
    MAX_HEADER_BYTES,
    embedding_table,
    load_checkpoint_dir,
    load_vision_model,
    vision_fingerprint,
)
from optical_memory.errors import CheckpointError
from tests.encoders.tiny import SHARD, TINY_OFFICIAL_CONFIG


def _folder(tmp_path: Path, weights: bytes) -> Path:
    """A checkpoint folder without an index: its one safetensors file is opened to list the tensors."""
    (tmp_path / "config.json").write_text(json.dumps(TINY_OFFICIAL_CONFIG))
    (tmp_path / "model.safetensors").write_bytes(weights)
    return tmp_path


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (struct.pack("<Q", 10**12) + b"{}", r"declares a 1,000,000,000,000-byte .* cap .*MAX_HEADER_BYTES"),
        (struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}", "over the 104,857,600-byte cap"),
        (struct.pack("<Q", 1000) + b'{"a": 1}', "holds only 16 bytes: the file is truncated"),
        (b"\x01\x02\x03", "not a safetensors file: it holds 3 bytes"),
        (struct.pack("<Q", 5) + b"[1,2]", "cannot read the safetensors file"),  # safetensors' own refusal
    ],
    ids=["absurd", "just-over", "truncated", "tiny", "not-an-object"],
)
def test_bad_headers_are_checkpoint_errors_naming_the_file(
    tmp_path: Path, weights: bytes, message: str
) -> None:
    folder = _folder(tmp_path, weights)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint_dir(folder)
    assert str(folder / "model.safetensors") in str(info.value)


def _copy_with_header_length(tiny_checkpoint: Path, tmp_path: Path, length: int) -> Path:
    folder = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, folder)
    shard = folder / SHARD
    raw = bytearray(shard.read_bytes())
    raw[:8] = struct.pack("<Q", length)
    shard.write_bytes(bytes(raw))
    return folder


def test_every_reader_of_an_indexed_checkpoint_checks_the_header(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    folder = _copy_with_header_length(tiny_checkpoint, tmp_path, 2**40)
    files = load_checkpoint_dir(folder)  # the index names the files: nothing is opened yet
    for read in (embedding_table, vision_fingerprint, load_vision_model):
        with pytest.raises(CheckpointError, match=rf"{SHARD} declares a .*-byte safetensors header"):
            read(files)


def test_the_cap_is_a_module_constant(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = load_checkpoint_dir(tiny_checkpoint)
    assert vision_fingerprint(files).startswith("deepseek-ocr:")
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", 16)
    with pytest.raises(CheckpointError, match="over the 16-byte cap"):
        vision_fingerprint(files)


def test_tensors_past_the_end_of_a_truncated_file_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, folder)
    shard = folder / SHARD
    raw = shard.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    shard.write_bytes(raw[: 8 + length + 16])  # the header whole, the tensors cut off
    files = load_checkpoint_dir(folder)
    with pytest.raises(CheckpointError, match="past the end of the file"):
        vision_fingerprint(files)
    if files.weight_map.get("model.embed_tokens.weight") is not None:
        with pytest.raises(CheckpointError, match="past the end of the file"):
            embedding_table(files)
