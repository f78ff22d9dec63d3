"""Writing the CLI's output files: parent folders made, OS errors turned into one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optical_memory.errors import InputError


def write_file(path: Path, data: bytes | str) -> None:
    """Write bytes or UTF-8 text to ``path``, creating its folder.

    Raises:
        InputError: If the file or its folder cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc}") from None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (non-ASCII kept as is) to ``path``.

    Raises:
        InputError: If the file cannot be written.
    """
    write_file(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def make_folder(path: Path) -> None:
    """Create an output folder.

    Raises:
        InputError: If it cannot be created.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {path}: {exc}") from None


def write_listing(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write a list of JSON objects, one per line (the ``pages.json`` the CLI writes).

    Raises:
        InputError: If the file cannot be written.
    """
    listing = ",\n ".join(json.dumps(e, ensure_ascii=False) for e in entries)
    write_file(path, f"[{listing}]\n" if entries else "[]\n")
