"""Optical memory inside the frameworks agents are built with, one module per framework.

- :mod:`~optical_memory.integrations.langchain` (extra ``langchain``): ``OpticalMemoryMiddleware`` for
  ``create_agent``, ``optical_messages`` for custom LangGraph nodes, and ``count_tokens``.
- :mod:`~optical_memory.integrations.openai_agents` (extra ``openai-agents``): ``OpticalSession``, an
  Agents SDK ``Session``.
- :mod:`~optical_memory.integrations.llamaindex` (extra ``llamaindex``): ``OpticalMemoryBlock``, a
  ``BaseMemoryBlock`` for ``Memory``.
- :mod:`~optical_memory.integrations.pydantic_ai` (extra ``pydantic-ai``): a history processor.
- :mod:`~optical_memory.integrations.mcp` (extra ``mcp``): the stdio server behind
  ``optical-memory mcp``.

Each module imports its framework only when used, and says which extra to install when it is missing.
:class:`~optical_memory.integrations.threads.Threads` is what they share: one memory session per
framework thread, in one SQLite file (or in RAM).
"""

from optical_memory.integrations.threads import Threads, require

__all__ = ["Threads", "require"]
