"""``optical-memory mcp --db FILE [--session S]``: serve one memory session to MCP clients over stdio.

The tools (``add_turn``, ``get_context``, ``list_pages``, ``recall_page``, ``pin_page``) are described in
:mod:`optical_memory.integrations.mcp`. ``--provider``, ``--budget``, ``--recent`` and ``--keep-text`` set
the session's config: a new session's, or changes to a stored one's (the other settings stay as stored;
the render profile, which follows the provider, cannot change once pages exist). ``--reader`` (and its
settings) is how ``recall_page`` reads pages back. Stdout carries the protocol; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from optical_memory.cli.recall import add_reader_arguments


def register(subparsers: Any) -> None:
    """Add the ``mcp`` command."""
    parser = subparsers.add_parser(
        "mcp",
        help="serve a memory session to MCP clients (stdio)",
        description="Serve one optical-memory session over stdio as an MCP server: tools add turns, build "
        "the optical context (recent turns as text, older turns as page images), list, read back and pin "
        "pages. Needs the 'mcp' extra.",
    )
    parser.add_argument("--db", required=True, type=Path, metavar="FILE", help="the SQLite store")
    parser.add_argument("--session", default="default", metavar="NAME", help="session (default 'default')")
    parser.add_argument("--provider", metavar="NAME", help="the session's provider, e.g. openai:gpt-4o")
    parser.add_argument(
        "--budget", metavar="N|window|none", help="the session's budget: tokens, 'window' or 'none'"
    )
    parser.add_argument("--recent", type=int, metavar="N", help="newest turns kept as text")
    parser.add_argument("--keep-text", action="store_true", help="keep paged turns' text in the store too")
    add_reader_arguments(parser, default=None)
    parser.set_defaults(run=run)


def session_config(args: argparse.Namespace) -> Any:
    """The config the options give (over the stored one), or None when none is given."""
    from optical_memory.cli.compress import parse_budget
    from optical_memory.config import as_config
    from optical_memory.store import Store

    settings: dict[str, Any] = {}
    if args.provider is not None:
        settings["provider"] = args.provider
    if args.budget is not None:
        settings["budget"] = parse_budget(args.budget)
    if args.recent is not None:
        settings["recent_turns"] = args.recent
    if args.keep_text:
        settings["keep_text"] = True
    if not settings:
        return None
    stored: dict[str, Any] = {}
    if args.db.is_file():
        store = Store(args.db)
        try:
            row = store.session(args.session)
        finally:
            store.close()
        if row is not None:
            stored = json.loads(row.config)
    return as_config({**stored, **settings})


def run(args: argparse.Namespace) -> int:
    """Serve until the client closes stdin."""
    from optical_memory.cli.recall import reader_from_args
    from optical_memory.integrations.threads import require

    config = session_config(args)
    reader = reader_from_args(args) if args.reader is not None else None
    require("mcp", "mcp", "the MCP server")
    from optical_memory.integrations.mcp import serve

    serve(args.db, args.session, reader=reader, config=config)
    return 0
