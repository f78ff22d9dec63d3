"""Exceptions raised by optical-memory.

Every error the library raises on purpose derives from :class:`OpticalMemoryError`, and each subclass
also inherits the built-in it refines, so ``except ValueError`` keeps working for callers who do not
know this package::

    OpticalMemoryError
    ├── ConfigError            (ValueError)    bad settings, unknown names, impossible budgets
    ├── InputError             (ValueError)    a turn, conversation file or image we cannot use
    ├── ProviderError          (ValueError)    an unknown provider or model
    ├── MissingDependencyError (ImportError)   an optional extra is not installed
    ├── CheckpointError        (ValueError)    a model folder that is missing, partial or mis-shaped
    ├── StoreError             (RuntimeError)  the SQLite store is unreadable or from a newer version
    ├── PageNotFoundError      (KeyError)      no page with that id in this session
    └── RecallError            (RuntimeError)  a reader failed (server unreachable, OCR failure)

Messages say what to do next: the extra to install, the file that is missing, the key that did not match.
"""

from __future__ import annotations


class OpticalMemoryError(Exception):
    """Base class of every error raised by optical-memory."""


class ConfigError(OpticalMemoryError, ValueError):
    """A setting is invalid, names something unknown, or cannot be satisfied."""


class InputError(OpticalMemoryError, ValueError):
    """A turn, conversation file or image cannot be used as given."""


class ProviderError(OpticalMemoryError, ValueError):
    """An unknown provider name, or a model the provider table cannot price."""


class MissingDependencyError(OpticalMemoryError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package: install it with pip install 'optical-memory[{extra}]'"
        )
        self.package = package
        self.extra = extra


class CheckpointError(OpticalMemoryError, ValueError):
    """A model checkpoint folder is missing files, holds unexpected tensors, or has the wrong shapes."""


class StoreError(OpticalMemoryError, RuntimeError):
    """The SQLite store cannot be opened, read or migrated."""


class PageNotFoundError(OpticalMemoryError, KeyError):
    """No page with the given id exists in this session."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of its argument
        return str(self.args[0]) if self.args else "page not found"


class RecallError(OpticalMemoryError, RuntimeError):
    """A recall reader failed to read a page."""
