"""``optical-memory show --db FILE --out sheet.png``: the contact sheet of a stored memory.

Every page of the session, in order, at its rung and true relative size, labelled with its page id,
turns, rung and cost, under a title line with the session's totals (see :mod:`optical_memory.sheet`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``show`` command."""
    parser = subparsers.add_parser(
        "show",
        help="draw a stored memory as a contact sheet",
        description="Draw every page of a stored session at its rung, labelled, in order: what the agent "
        "remembers and how sharply.",
    )
    parser.add_argument("--db", required=True, metavar="FILE", help="the SQLite store")
    parser.add_argument("--session", default="default", metavar="NAME", help="session (default 'default')")
    parser.add_argument("--out", default="sheet.png", metavar="PNG", help="where to write the sheet")
    parser.add_argument(
        "--provider", metavar="NAME", help="whose tokens costs are given in (default: the memory's provider)"
    )
    parser.add_argument(
        "--scale", type=float, default=0.5, help="sheet pixels per stored page pixel (default 0.5)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Draw the sheet of ``args.session`` in ``args.db``; returns the exit status."""
    sheet, turns, pages = draw_stored(Path(args.db), args.session, provider=args.provider, scale=args.scale)
    save_sheet(sheet, Path(args.out))
    print(f"drew {pages} pages ({turns} turns) of session {args.session!r} into {args.out}")
    return 0


def draw_stored(db: Path, session: str, *, provider: str | None, scale: float) -> tuple[Any, int, int]:
    """The sheet of one stored session, with its turn and page counts.

    Raises:
        InputError: If the file or the session does not exist (nothing is created).
    """
    from optical_memory.errors import InputError
    from optical_memory.memory import OpticalMemory
    from optical_memory.sheet import contact_sheet
    from optical_memory.store import Store

    if not db.is_file():
        raise InputError(f"no such store file: {db}")
    store = Store(db)
    try:
        names = store.sessions()
    finally:
        store.close()
    if session not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise InputError(f"no session {session!r} in {db}; sessions there: {known}")
    with OpticalMemory.open(db, session=session) as memory:
        sheet = contact_sheet(memory, provider=provider, scale=scale)
        return sheet, len(memory), len(memory.pages())


def save_sheet(sheet: Any, path: Path) -> None:
    """Save a sheet as PNG.

    Raises:
        InputError: If the file cannot be written.
    """
    from optical_memory.cli.files import save_image

    save_image(path, sheet)
