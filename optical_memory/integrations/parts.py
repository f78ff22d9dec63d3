"""Content parts an adapter hands to the memory: text, pasted images, and a marker for what cannot be kept.

Frameworks carry a message's content as typed parts. The memory stores text and images (given as OpenAI
``image_url`` parts holding a data URL, whatever the framework's own image type); a part it cannot price
or draw (audio, a file, a video) becomes a short text marker saying what was there, and a warning is
logged once per kind. The framework's own store keeps the original part.
"""

from __future__ import annotations

import base64
import logging

logger = logging.getLogger(__name__)

_warned: set[str] = set()


def text_part(text: str) -> dict[str, str]:
    """An OpenAI text part."""
    return {"type": "text", "text": text}


def image_part(data: bytes | str, mime: str = "image/png") -> dict[str, object]:
    """An OpenAI ``image_url`` part holding ``data`` (raw bytes, or base64 text) as a data URL."""
    b64 = data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}}


def url_image_part(url: str) -> dict[str, object]:
    """An OpenAI ``image_url`` part for an image given by URL (kept as a marker: nothing is downloaded)."""
    return {"type": "image_url", "image_url": {"url": url}}


def unsupported_part(kind: str, what: str = "") -> dict[str, str]:
    """A text marker for a part the memory cannot keep (``kind`` such as ``audio`` or ``file``)."""
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(
            "a %s part cannot be priced or drawn on a page: optical memory keeps a text marker in its place "
            "(the framework's own history keeps the part)",
            kind,
        )
    detail = f": {what}" if what else ""
    return text_part(f"[{kind} part{detail}; not kept in optical memory]")
