"""Writing the CLI's output files: the one place a command writes a file.

Every output (page PNGs, sheets, plots, context and report JSON, page texts) goes through
:func:`write_file` (or the helpers built on it), which creates the parent folders and turns an OS error
into one :class:`~optical_memory.errors.InputError` line naming the file, which ``optical-memory`` prints
without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optical_memory.errors import InputError


def _reason(exc: OSError, path: Path) -> str:
    """An OS error as a short reason, naming the path that failed when it is not ``path`` itself."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    failed = exc.filename
    if failed is not None and str(failed) != str(path):
        reason += f" ({failed})"
    return reason


def write_file(path: Path, data: bytes | str) -> None:
    """Write bytes or UTF-8 text to ``path``, creating its folder.

    Raises:
        InputError: If the file or its folder cannot be written.
    """
    path = Path(path)
    make_folder(path.parent)
    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {_reason(exc, path)}") from None


def save_image(path: Path, image: Any) -> None:
    """Write a PIL image as PNG (the library's deterministic encoding) to ``path``, creating its folder.

    Raises:
        InputError: If the file cannot be written.
    """
    from optical_memory.images import encode_png

    write_file(path, encode_png(image))


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (non-ASCII kept as is) to ``path``.

    Raises:
        InputError: If the file cannot be written.
    """
    write_file(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def make_folder(path: Path) -> None:
    """Create an output folder (and its parents); nothing happens when it exists.

    Raises:
        InputError: If it cannot be created, or a file of that name is in the way.
    """
    path = Path(path)
    if path.is_dir():
        return
    if path.exists():
        raise InputError(f"cannot create output folder {path}: a file of that name is in the way")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {path}: {_reason(exc, path)}") from None


def write_listing(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write a list of JSON objects, one per line (the ``pages.json`` the CLI writes).

    Raises:
        InputError: If the file cannot be written.
    """
    listing = ",\n ".join(json.dumps(e, ensure_ascii=False) for e in entries)
    write_file(path, f"[{listing}]\n" if entries else "[]\n")
