"""An MCP server over one optical-memory session: ``optical-memory mcp --db FILE [--session S]``.

How it plugs in: any MCP client (Claude Desktop, an IDE agent, an application using the ``mcp`` SDK)
launches the server over stdio, or an application builds it in-process with :func:`build_server`
(``mcp.Client(server)``). The server is an ``MCPServer`` of the ``mcp`` SDK (extra ``mcp``) whose tools
act on one :class:`~optical_memory.memory.OpticalMemory` session, kept in a SQLite file; a later server
process over the same file and session continues it exactly. Run one server per session at a time (each
process holds the session's state in memory), and send ``add_turn`` calls one after another, each after
the previous one's result (the turns are stored in the order the calls run).

Tools:

- ``add_turn(role, content="", name=None, tool_calls=None, tool_call_id=None, images=None)``: stores
  one turn. ``tool_calls`` is a list of ``{"id", "name", "arguments"}`` (arguments as JSON text, or an
  object); a tool result names the call it answers in ``tool_call_id``; ``images`` (a user turn's) is a
  list of ``{"data": base64, "mime_type"}``. Returns the :class:`AddTurnResult` (turn id, pages sealed
  and demoted, the context's cost now).
- ``get_context(provider=None, budget="config")``: the optical context. ``provider`` is whose tokens it
  is priced in (the session's provider when None); ``budget`` is a number of tokens, ``"window"`` (half
  the model's context window), null (no bound) or ``"config"`` (the default: the session's budget),
  as in :meth:`OpticalMemory.context`. The result's ``content`` is what a client passes on to its model,
  in order: each system or turn text as a text block, and for each page of older turns a text block
  with its label (``page 3, turns 10-14``) followed by the page as an **image block (PNG)**; the first
  page is preceded by a text block introducing the page images, and a recent user turn's own images
  follow its text block as image blocks. One last text block is the usage
  summary as JSON (``{"provider", "usage"}``: ``context_tokens``, ``image_tokens``, ``text_tokens``,
  ``pages_per_rung``, ``budget``...; it is not part of the priced context and may be dropped). The
  ``structuredContent`` (:class:`ContextSummary`) holds the usage and one entry per context item: a
  page (id, rung, label, the index of its image block) or a text turn with its role, text, tool calls
  and ``tool_call_id`` (and the index of its text block), from which a client can rebuild its own
  message list. A turn's text block reads ``[turn 12] assistant:`` then its text, then one line per
  call ``-> call <id>: <name>(<arguments>)``; a tool result reads ``[turn 13] tool result for call
  <id> (<name>):`` then the result. These few framing words are not priced (as in the message formats).
- ``list_pages()``: every page (:class:`PageSummary`: id, rung, turns, sealed, pinned, image tokens,
  text kept, size), oldest first.
- ``recall_page(page_id, as_image=False)``: the page read back as text, with the reader the
  application chose when building the server (``reader=`` of :func:`build_server`, ``--reader`` of the
  command); a tool argument never chooses the reader. With ``as_image=True``: the page image (PNG) at
  its rung.
- ``pin_page(page_id, rung=None)``: holds a page at a rung (its current one when None).
- ``search_memory(query, k=5)``: the best matching pages (:meth:`OpticalMemory.search`): id, score, rung,
  matching exact values and line.

Errors: a tool call the memory refuses (an unknown page, a tool result answering a call id the session
never made, tool-call arguments that are not JSON, an unknown rung or provider, a budget too small) comes
back as an MCP tool error (``isError``) with the library's message, and nothing stored changes.

What it stores: each turn as added: its text, tool calls and tool-call id, and the images a user turn
carries (``images``: base64 data and media type, the shape of MCP image content; they reach the memory
as ``image_url`` parts, and the memory prices and keeps them). Leading system turns stay text for good.
Other content (audio, files, embedded resources) has no way in through these tools; a client that wants
a note of such a part adds it as text (:func:`optical_memory.integrations.parts.unsupported_part`
writes the marker the other adapters use).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from optical_memory.config import MemoryConfig
from optical_memory.errors import ConfigError, OpticalMemoryError
from optical_memory.formats import PageItem, TextItem, intro_text
from optical_memory.images import encode_png
from optical_memory.integrations.parts import image_part, text_part
from optical_memory.integrations.threads import require
from optical_memory.memory import OpticalMemory

require("mcp.server.mcpserver", "mcp", "the MCP server")

from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.server.mcpserver.exceptions import ToolError  # noqa: E402
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations  # noqa: E402

if TYPE_CHECKING:
    from optical_memory.context import AddResult, Context, PageInfo
    from optical_memory.recall.base import RecallBackend

__all__ = [
    "AddTurnResult",
    "ContextSummary",
    "ImageIn",
    "PageSummary",
    "RecalledPage",
    "ToolCallIn",
    "build_server",
    "context_result",
    "main",
    "serve",
]

logger = logging.getLogger(__name__)

SERVER_NAME = "optical-memory"
INSTRUCTIONS = (
    "Optical memory of one conversation. Add each turn with add_turn (tool calls with their ids, tool "
    "results with tool_call_id); get_context returns the conversation to send to the model: recent turns "
    "as text, older turns as page images that fade as they age, within a token budget. list_pages, "
    "recall_page and pin_page inspect, read back and hold pages; search_memory finds them by their words."
)


def _none_to_empty(value: object) -> object:
    return "" if value is None else value


# A string argument the SDK passes through untouched. The SDK parses a string argument as JSON when its
# annotation is not exactly ``str`` (a tool result such as '{"ok": true}' would become an object), so
# these are annotated ``str`` and accept null through a validator; their schema says string or null.
_OptionalText = Annotated[
    str,
    BeforeValidator(_none_to_empty),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]}),
]


# --- what the tools take and return --------------------------------------------------------------------


class ToolCallIn(BaseModel):
    """One function call an assistant turn makes."""

    id: str = Field(description="The call id its result answers with (tool_call_id).")
    name: str = Field(description="The function's name.")
    arguments: str | dict[str, Any] | list[Any] = Field(
        default="{}", description="The arguments as JSON text (or a JSON object)."
    )


class ImageIn(BaseModel):
    """An image a user turn carries, in MCP's image content shape."""

    data: str = Field(description="The encoded image (PNG, JPEG, GIF or WebP) as base64.")
    mime_type: str = Field(default="image/png", description="Its media type, e.g. image/png.")


class AddTurnResult(BaseModel):
    """What ``add_turn`` did."""

    turn_id: int = Field(description="The new turn's id in the session (0, 1, 2, ...).")
    sealed: list[int] = Field(description="Pages this turn filled and sealed.")
    demoted: list[int] = Field(description="Pages moved down the ladder (or forgotten) by age.")
    context_tokens: int = Field(description="The context's cost now in the session provider's tokens.")
    turns: int = Field(description="Turns the session holds.")
    pages: int = Field(description="Pages the session holds (sealed, and the open one).")


class PageSummary(BaseModel):
    """One page of the session."""

    page_id: int
    rung: str = Field(description="large, base, small, tiny or forgotten.")
    turns: list[int] = Field(description="First and last turn id on the page.")
    sealed: bool = Field(description="False for the open page, still filling.")
    pinned: str | None = Field(description="The rung it is pinned at, if any.")
    image_tokens: int = Field(description="Its image's cost at its rung, in the session provider's tokens.")
    text_kept: bool = Field(description="Whether the exact text of its turns is still stored.")
    text_tokens: int = Field(description="o200k tokens of the text drawn on it.")
    width: int
    height: int
    age_pages: int
    age_turns: int


class PageList(BaseModel):
    """``list_pages``: every page, oldest first."""

    pages: list[PageSummary]


class ContextPage(BaseModel):
    """A page sent as an image."""

    type: Literal["page"] = "page"
    page_id: int
    rung: str
    label: str
    image_block: int = Field(description="Index of its image block in the result's content.")


class ContextTurn(BaseModel):
    """A system or turn text sent as text (a recent turn, or the turns of a page cheaper as text)."""

    type: Literal["text"] = "text"
    role: str
    content: str
    name: str | None = None
    tool_calls: list[ToolCallIn] = Field(default_factory=list)
    tool_call_id: str | None = None
    turn: int | None = None
    text_block: int = Field(description="Index of its text block in the result's content.")


class ContextSummary(BaseModel):
    """``get_context``'s structured content."""

    provider: str
    usage: dict[str, Any] = Field(description="What the context costs (Usage.to_dict()).")
    items: list[ContextPage | ContextTurn] = Field(description="The context items, in order.")


class RecalledPage(BaseModel):
    """``recall_page``: the page read back (text), or its image (``as_image``)."""

    page_id: int
    rung: str | None
    reader: str | None = Field(description="The reader that read it (None for an image).")
    text: str | None = None
    seconds: float | None = None
    width: int | None = None
    height: int | None = None


class SearchHitOut(BaseModel):
    """A page ``search_memory`` found."""

    page_id: int
    score: float
    rung: str
    spans: list[str] = Field(description="Its exact values matching the query (all of them with no line).")
    snippet: str | None = Field(description="Its line sharing the most words with the query, if any.")
    source: str | None = Field(description="Where the line came from: text, or ocr:<reader>.")


class SearchResult(BaseModel):
    """``search_memory``: the best pages first."""

    hits: list[SearchHitOut]


# --- the server --------------------------------------------------------------------------------------


def build_server(
    db: str | Path | OpticalMemory,
    session: str = "default",
    *,
    reader: str | RecallBackend | None = None,
    config: MemoryConfig | Mapping[str, Any] | None = None,
) -> MCPServer:
    """An MCP server whose tools act on one optical-memory session.

    Args:
        db: The SQLite file of the memory (created when missing), or an open
            :class:`~optical_memory.memory.OpticalMemory` (then ``session`` and ``config`` must be left
            out; the caller closes it).
        session: The session in the file.
        reader: How ``recall_page`` reads pages back: a reader name (``exact``, ``rapidocr``, ...), a reader
            object, or None (``exact`` when the page's text was kept, else ``rapidocr``).
        config: The session's config (a new session's, or a compatible replacement); None keeps the
            stored one (defaults for a new session).

    Returns:
        The ``mcp`` SDK's ``MCPServer``: ``server.run()`` serves it on stdio; ``mcp.Client(server)``
        talks to it in-process. The memory it opened is closed when the server is garbage-collected.

    Raises:
        StoreError: If the file cannot be opened.
        ConfigError: If ``config`` is invalid or incompatible with the stored one.
    """
    if isinstance(db, OpticalMemory):
        if config is not None or session != "default":
            raise ConfigError("give session and config when opening a file, not with an open memory")
        memory = db
    else:
        memory = OpticalMemory.open(db, session=session, config=config)
    server: MCPServer = MCPServer(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        warn_on_duplicate_tools=False,
    )
    _register(server, memory, reader)
    return server


def _register(server: MCPServer, memory: OpticalMemory, reader: str | RecallBackend | None) -> None:
    @server.tool(
        title="Add a turn",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
    )
    def add_turn(
        role: Annotated[str, Field(description="system, user, assistant, tool or developer.")],
        content: Annotated[_OptionalText, Field(description="The turn's text.")] = "",
        name: Annotated[_OptionalText, Field(description="Speaker or tool name.")] = "",
        tool_calls: Annotated[
            list[ToolCallIn] | None, Field(description="An assistant turn's calls: {id, name, arguments}.")
        ] = None,
        tool_call_id: Annotated[_OptionalText, Field(description="The call a tool result answers.")] = "",
        images: Annotated[
            list[ImageIn] | None, Field(description="Images a user turn carries: {data (base64), mime_type}.")
        ] = None,
    ) -> AddTurnResult:
        """Store one turn of the conversation (a tool result after the assistant turn that made the call)."""
        body: str | list[dict[str, Any]] = content
        if images:
            body = [text_part(content)] if content else []
            body += [image_part(i.data, i.mime_type) for i in images]
        turn: dict[str, Any] = {"role": role, "content": body}
        if name:
            turn["name"] = name
        if tool_calls:
            turn["tool_calls"] = [_call_dict(c) for c in tool_calls]
        if tool_call_id:
            turn["tool_call_id"] = tool_call_id
        with _tool_errors():
            result: AddResult = memory.add(turn)
            pages = len(memory.pages())
        return AddTurnResult(
            turn_id=result.turn_id,
            sealed=list(result.sealed),
            demoted=list(result.demoted),
            context_tokens=result.context_tokens,
            turns=len(memory),
            pages=pages,
        )

    @server.tool(
        title="Get the optical context",
        annotations=ToolAnnotations(read_only_hint=True),
    )
    def get_context(
        provider: Annotated[
            str | None,
            Field(description="Whose tokens to price in, e.g. openai:gpt-4o (default: session's)."),
        ] = None,
        budget: Annotated[
            int | Literal["window", "config"] | None,
            Field(
                description="Most tokens the context may cost: a number, 'window' (half the model's window), "
                "null (no bound) or 'config' (the session's budget, the default)."
            ),
        ] = "config",
    ) -> Annotated[CallToolResult, ContextSummary]:
        """The conversation to send to the model: recent turns as text, older turns as page images (PNG),
        within the budget; the last text block is the usage summary (JSON)."""
        with _tool_errors():
            # openai-chat whatever the provider (pricing follows the provider): its messages carry every
            # page as PNG base64 already, which the result reuses
            context = memory.context(provider=provider, budget=budget, format="openai-chat")
        return context_result(context)

    @server.tool(title="List the pages", annotations=ToolAnnotations(read_only_hint=True))
    def list_pages() -> Annotated[CallToolResult, PageList]:
        """Every page of the session, oldest first: id, rung, turns, pin, image tokens, whether text is kept."""
        with _tool_errors():
            pages = [page_summary(p) for p in memory.pages()]
        body = [p.model_dump(mode="json") for p in pages]
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
            structured_content={"pages": body},
        )

    @server.tool(title="Read a page back", annotations=ToolAnnotations(read_only_hint=True))
    def recall_page(
        page_id: Annotated[int, Field(description="The page to read (see list_pages).")],
        as_image: Annotated[bool, Field(description="Return the page image (PNG) instead of text.")] = False,
    ) -> Annotated[CallToolResult, RecalledPage]:
        """A page read back as text (with the server's reader), or the page image at its rung."""
        if as_image:
            with _tool_errors():
                image = memory.page_image(page_id)
                info = _info(memory, page_id)
            png = encode_png(image)
            out = RecalledPage(
                page_id=page_id, rung=info.rung.value, reader=None, width=image.width, height=image.height
            )
            return CallToolResult(content=[_image_block(png)], structured_content=out.model_dump(mode="json"))
        with _tool_errors():
            reading = memory.recall(page_id, reader=reader)
        out = RecalledPage(
            page_id=page_id,
            rung=None if reading.rung is None else reading.rung.value,
            reader=reading.reader,
            text=reading.text,
            seconds=reading.seconds,
        )
        return CallToolResult(
            content=[TextContent(type="text", text=reading.text)],
            structured_content=out.model_dump(mode="json"),
        )

    @server.tool(
        title="Pin a page",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True),
    )
    def pin_page(
        page_id: Annotated[int, Field(description="The page to pin (see list_pages).")],
        rung: Annotated[
            str | None,
            Field(description="large, base, small or tiny (default: the page's current rung)."),
        ] = None,
    ) -> PageSummary:
        """Hold a page at a rung whatever its age (a sharper rung needs its text kept)."""
        with _tool_errors():
            memory.pin(page_id, rung)
            return page_summary(_info(memory, page_id))

    @server.tool(title="Search the pages", annotations=ToolAnnotations(read_only_hint=True))
    def search_memory(
        query: Annotated[str, Field(description="Words, ids, numbers or names to look for.")],
        k: Annotated[int, Field(ge=1, le=20, description="How many pages to return.")] = 5,
    ) -> SearchResult:
        """The pages that best match the query (BM25 over what the memory holds of each), best first, with
        their matching exact values and line."""
        with _tool_errors():
            hits = memory.search(query, k)
        return SearchResult(hits=[SearchHitOut(**h.to_dict()) for h in hits])


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn the library's own errors into MCP tool errors carrying their message."""
    try:
        yield
    except OpticalMemoryError as exc:
        raise ToolError(str(exc)) from exc


def _call_dict(call: ToolCallIn) -> dict[str, Any]:
    arguments = call.arguments
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def _info(memory: OpticalMemory, page_id: int) -> PageInfo:
    from optical_memory.errors import PageNotFoundError

    for info in memory.pages():
        if info.page_id == page_id:
            return info
    raise PageNotFoundError(f"no page {page_id!r} in session {memory.session!r}")


def page_summary(info: PageInfo) -> PageSummary:
    """A page as ``list_pages`` shows it."""
    return PageSummary(
        page_id=info.page_id,
        rung=info.rung.value,
        turns=list(info.turns),
        sealed=info.sealed,
        pinned=None if info.pinned is None else info.pinned.value,
        image_tokens=info.cost,
        text_kept=info.text_kept,
        text_tokens=info.text_tokens,
        width=info.width,
        height=info.height,
        age_pages=info.age_pages,
        age_turns=info.age_turns,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _image_block(png: bytes) -> ImageContent:
    return ImageContent(type="image", data=_b64(png), mime_type="image/png")


def turn_text(item: TextItem) -> str:
    """A context text item as the text block ``get_context`` sends."""
    where = f"[turn {item.turn}] " if item.turn is not None else ""
    if item.role == "tool":
        call = f" for call {item.tool_call_id}" if item.tool_call_id else ""
        name = f" ({item.name})" if item.name else ""
        return f"{where}tool result{call}{name}:\n{item.content}"
    who = f"{item.role} ({item.name})" if item.name else item.role
    lines = [f"{where}{who}:"]
    if item.content:
        lines.append(item.content)
    lines += [f"-> call {c.id}: {c.name}({c.arguments})" for c in item.tool_calls]
    return "\n".join(lines)


_PNG_URL = "data:image/png;base64,"


def _page_pngs(context: Context) -> dict[str, str]:
    """The base64 PNG of each page an ``openai-chat`` context's messages carry, by page label."""
    out: dict[str, str] = {}
    if context.format != "openai-chat":
        return out
    for message in context.messages:
        parts = message.get("content")
        if message.get("role") != "user" or not isinstance(parts, list):
            continue
        for label, image in itertools.pairwise(parts):
            url = image.get("image_url", {}).get("url", "") if image.get("type") == "image_url" else ""
            if label.get("type") == "text" and url.startswith(_PNG_URL):
                out[label["text"]] = url[len(_PNG_URL) :]
    return out


def context_result(context: Context) -> CallToolResult:
    """A context as ``get_context``'s result: text and image blocks in order, then the usage as JSON."""
    blocks: list[TextContent | ImageContent] = []
    items: list[ContextPage | ContextTurn] = []
    introduced = False
    pngs = _page_pngs(context)  # reused: encoding 50 pages again would cost more than building them
    for item in context.items:
        if isinstance(item, PageItem):
            if not introduced:
                blocks.append(TextContent(type="text", text=intro_text()))
                introduced = True
            blocks.append(TextContent(type="text", text=item.label))
            data = pngs.get(item.label)
            if data is None:
                data = _b64(item.png if item.png is not None else encode_png(item.image))
            items.append(
                ContextPage(
                    page_id=item.page_id, rung=item.rung.value, label=item.label, image_block=len(blocks)
                )
            )
            blocks.append(ImageContent(type="image", data=data, mime_type="image/png"))
        else:
            items.append(
                ContextTurn(
                    role=item.role,
                    content=item.content,
                    name=item.name,
                    tool_calls=[
                        ToolCallIn(id=c.id, name=c.name, arguments=c.arguments) for c in item.tool_calls
                    ],
                    tool_call_id=item.tool_call_id,
                    turn=item.turn,
                    text_block=len(blocks),
                )
            )
            blocks.append(TextContent(type="text", text=turn_text(item)))
            for image in item.images:  # images a user turn carries
                blocks.append(ImageContent(type="image", data=image.b64(), mime_type=image.mime))
    usage = {"provider": context.provider, "usage": context.usage.to_dict()}
    blocks.append(TextContent(type="text", text=json.dumps(usage)))
    summary = ContextSummary(provider=context.provider, usage=context.usage.to_dict(), items=items)
    return CallToolResult(content=list(blocks), structured_content=summary.model_dump(mode="json"))


# --- running it ---------------------------------------------------------------------------------------


def serve(
    db: str | Path,
    session: str = "default",
    *,
    reader: str | RecallBackend | None = None,
    config: MemoryConfig | Mapping[str, Any] | None = None,
) -> None:
    """Serve one session on stdio until the client closes the connection.

    Raises:
        StoreError: If the file cannot be opened.
        ConfigError: If ``config`` is invalid or incompatible with the stored one.
    """
    memory = OpticalMemory.open(db, session=session, config=config)
    with memory:
        server = build_server(memory, reader=reader)
        logger.info("serving session %r of %s on stdio (%d turns)", session, db, len(memory))
        server.run("stdio")


def main(argv: list[str] | None = None) -> int:
    """``optical-memory mcp ARGS``: the command line's ``mcp`` command (see ``optical-memory mcp --help``)."""
    import sys

    from optical_memory.cli import main as cli_main

    return cli_main(["mcp", *(sys.argv[1:] if argv is None else argv)])
