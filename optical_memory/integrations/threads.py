"""One optical-memory session per framework thread (conversation), and the lazy import of a framework.

Agent frameworks hand the whole conversation to the model on every call and keep it in their own store
(a LangGraph checkpointer, an Agents SDK session, a LlamaIndex chat store). An adapter keeps a memory per
thread id in one SQLite file and calls :meth:`OpticalMemory.sync` with that conversation before each model
call, so only messages new since the last call are laid out; a second process opening the same file
continues the thread where the first left it.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from optical_memory.backends import MEMORY
from optical_memory.config import MemoryConfig, as_config
from optical_memory.errors import ConfigError, MissingDependencyError, ProviderError
from optical_memory.memory import OpticalMemory
from optical_memory.pricing.providers import get_provider


def provider_name(family: str | None, model: object) -> str | None:
    """Our provider name for a model a framework names by family and model name (None when either is
    missing, or the family is not one we price)."""
    if family is None or not isinstance(model, str) or not model:
        return None
    try:
        return get_provider(f"{family}:{model}").name
    except ProviderError:
        return None


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or say which optical-memory extra installs it.

    Raises:
        MissingDependencyError: If the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, feature) from exc


class Threads:
    """The memory session of each thread id.

    Args:
        path: The SQLite file every thread's session lives in (created when missing), each under its thread
            id as session name; None keeps each thread in RAM for the life of this object.
        config: The config of threads created from now on (a :class:`MemoryConfig` or a dict of its
            fields). An existing thread keeps its stored config when None, else takes this one (which
            must be compatible: see :meth:`OpticalMemory.open`).

    Raises:
        ConfigError: If ``config`` is invalid.
    """

    def __init__(
        self, path: str | Path | None = None, *, config: MemoryConfig | Mapping[str, Any] | None = None
    ) -> None:
        self.path = None if path is None else Path(path)
        self.config = None if config is None else as_config(config)
        self._memories: dict[str, OpticalMemory] = {}
        self._lock = threading.Lock()

    def get(self, thread_id: str) -> OpticalMemory:
        """The memory of ``thread_id``, opened (or created) on first use.

        Raises:
            ConfigError: If ``thread_id`` is not a non-empty string.
            StoreError: If the file cannot be opened.
        """
        if not isinstance(thread_id, str) or not thread_id:
            raise ConfigError(f"a thread id must be a non-empty string; got {thread_id!r}")
        with self._lock:
            memory = self._memories.get(thread_id)
            if memory is None:
                where = MEMORY if self.path is None else self.path
                memory = OpticalMemory.open(where, session=thread_id, config=self.config)
                self._memories[thread_id] = memory
            return memory

    async def aget(self, thread_id: str) -> OpticalMemory:
        """:meth:`get` without blocking the event loop (opening a file reads it)."""
        with self._lock:
            memory = self._memories.get(thread_id)
        return memory if memory is not None else await asyncio.to_thread(self.get, thread_id)

    def close(self) -> None:
        """Close every open memory (idempotent)."""
        with self._lock:
            for memory in self._memories.values():
                memory.close()
            self._memories.clear()

    def __enter__(self) -> Threads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
