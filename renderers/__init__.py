"""Text to page images: fonts with per-character fallback, layout, chat transcript pages.

``ChatRenderer().render(turns)`` draws a transcript onto square grayscale pages; ``PagePacker`` does the
same one turn at a time for a memory; ``FontChain`` is the per-character font fallback underneath.
"""

from optical_memory.renderers.chat import ChatRenderer, Renderer, render_turns
from optical_memory.renderers.fontchain import FontChain
from optical_memory.renderers.packer import PagePacker
from optical_memory.renderers.style import RenderStyle

__all__ = ["ChatRenderer", "FontChain", "PagePacker", "RenderStyle", "Renderer", "render_turns"]
