"""Layout settings of a transcript page: :class:`RenderStyle`.

The defaults were chosen for DeepSeek-OCR's ladder (Large 1280 px down to Tiny 512 px): body text of 22 px
at 1280 becomes about 9 px at 512, where the bundled Noto Sans stays readable (looked at by eye after a
Lanczos downsample, the way :func:`optical_memory.images.downsample` makes lower rungs). A full page of
English prose holds about 4,300 characters, roughly 1,000 o200k tokens; a page of Chinese about 2,200
characters.
"""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass

from optical_memory.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RenderStyle:
    """How a transcript page is laid out. All lengths are pixels at the page size ``size``.

    Attributes:
        size: Side of the square page (the top rung; 1280 is DeepSeek-OCR's Large mode).
        margin: Blank border on every side.
        body_size: Font size of prose (Noto Sans; CJK, symbols and emoji fall back at the same size).
        line_height: Advance from one prose line to the next.
        code_size: Font size of code blocks and inline code (Noto Sans Mono).
        code_line_height: Advance from one code line to the next.
        heading_sizes: Bold font size of Markdown headings, levels 1, 2 and 3-6.
        label_size: Font size of the bold role label that opens each turn.
        paragraph_gap: Height of the space a blank source line leaves.
        turn_gap: Height of the space between two turns (a thin rule is drawn in its middle).
        indent: Hanging indent per list or quote level.
        tab_width: Spaces a tab becomes (code and prose alike).
        ink: Gray level of text (0 is black).
        paper: Gray level of the background (255 is white).
        code_paper: Gray level behind code lines.
        rule_ink: Gray level of the rule between turns and of quote bars.
    """

    size: int = 1280
    margin: int = 32
    body_size: int = 22
    line_height: int = 28
    code_size: int = 20
    code_line_height: int = 26
    heading_sizes: tuple[int, int, int] = (28, 25, 23)
    label_size: int = 22
    paragraph_gap: int = 12
    turn_gap: int = 16
    indent: int = 26
    tab_width: int = 4
    ink: int = 0
    paper: int = 255
    code_paper: int = 242
    rule_ink: int = 170

    def __post_init__(self) -> None:
        if not 64 <= self.size <= 8192:
            raise ConfigError(f"page size must be between 64 and 8192 px; got {self.size}")
        if not 0 <= self.margin < self.size // 4:
            raise ConfigError(f"margin must be between 0 and a quarter of the page; got {self.margin}")
        sizes = (self.body_size, self.code_size, self.label_size, *self.heading_sizes)
        if len(self.heading_sizes) != 3 or min(sizes) < 4:
            raise ConfigError("font sizes must be at least 4 px (and heading_sizes holds three sizes)")
        usable = self.size - 2 * self.margin
        tallest = max(self.line_height, self.code_line_height, *self.heading_sizes, self.label_size)
        if min(self.line_height, self.code_line_height) < 4 or 3 * tallest + self.turn_gap > usable:
            raise ConfigError("line heights must be at least 4 px and three lines must fit on a page")
        if max(sizes) * 8 > usable:
            raise ConfigError(f"fonts of {max(sizes)} px are too large for a {self.size} px page")
        if not 1 <= self.tab_width <= 16 or self.indent < 0 or min(self.paragraph_gap, self.turn_gap) < 0:
            raise ConfigError("tab_width must be 1-16 and indent and gaps must not be negative")
        for name in ("ink", "paper", "code_paper", "rule_ink"):
            if not 0 <= getattr(self, name) <= 255:
                raise ConfigError(f"{name} must be a gray level 0-255; got {getattr(self, name)}")

    @classmethod
    def for_size(cls, size: int) -> RenderStyle:
        """The default style scaled to another page side, keeping the same characters per page.

        Raises:
            ConfigError: If the size is out of range.
        """
        if size == 1280:
            return cls()
        if not 64 <= size <= 8192:
            raise ConfigError(f"page size must be between 64 and 8192 px; got {size}")
        base = cls()
        scale = size / base.size

        def px(value: int) -> int:
            return max(1, round(value * scale))

        return cls(
            size=size,
            margin=px(base.margin),
            body_size=max(4, px(base.body_size)),
            line_height=max(4, px(base.line_height)),
            code_size=max(4, px(base.code_size)),
            code_line_height=max(4, px(base.code_line_height)),
            heading_sizes=(
                max(4, px(base.heading_sizes[0])),
                max(4, px(base.heading_sizes[1])),
                max(4, px(base.heading_sizes[2])),
            ),
            label_size=max(4, px(base.label_size)),
            paragraph_gap=px(base.paragraph_gap),
            turn_gap=px(base.turn_gap),
            indent=px(base.indent),
        )

    @property
    def width(self) -> int:
        """Width of the text column."""
        return self.size - 2 * self.margin

    def digest(self) -> str:
        """A short stable fingerprint of every setting (saved with a packer's state)."""
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()[:16]
