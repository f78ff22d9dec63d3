"""Layout settings of a transcript page: :class:`RenderStyle`.

Every length follows from three numbers a render profile chooses (see ``optical_memory.pricing.profiles``): the
page's width and height at the top rung, and the glyph size of prose (``body_size``). The rest keeps
fixed proportions to the glyph size (line pitch about 1.27 times the glyph, code about 0.9 times it,
small gaps between paragraphs and turns), so a page made for a dense provider and one made for
DeepSeek-OCR's 1280 px Large mode look alike, only at another scale. The default is DeepSeek-OCR's page:
1280 x 1280 with 22 px prose, which stays readable at Tiny (512 px, about 9 px glyphs) after the Lanczos
downsample :func:`optical_memory.images.downsample` makes lower rungs with.
"""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass

from optical_memory.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RenderStyle:
    """How a transcript page is laid out. All lengths are pixels at the top rung.

    Attributes:
        width: Width of the page.
        height: Height of the page.
        margin: Blank border on every side.
        body_size: Font size of prose (Noto Sans; CJK, symbols and emoji fall back at the same size).
        line_height: Advance from one prose line to the next.
        code_size: Font size of code, tool calls, tool results and inline code (Noto Sans Mono).
        code_line_height: Advance from one code line to the next.
        heading_sizes: Bold font size of Markdown headings, levels 1, 2 and 3-6.
        label_size: Font size of the bold role label that opens each turn.
        paragraph_gap: Height of the space a blank source line leaves (and a blank code line).
        turn_gap: Height of the space between two turns (a thin rule is drawn in its middle).
        indent: Hanging indent per list or quote level.
        tab_width: Spaces a tab becomes in code (prose turns tabs into one space).
        ink: Gray level of text (0 is black).
        paper: Gray level of the background (255 is white).
        code_paper: Gray level behind code lines.
        rule_ink: Gray level of the rule between turns and of quote bars.
        flow: Run the lines of a paragraph, list, quote or code block on, with a visible mark where each
            source line ends (see :mod:`~optical_memory.renderers.layout`); False keeps one drawn line
            (at least) per source line.
    """

    width: int = 1280
    height: int = 1280
    margin: int = 32
    body_size: int = 22
    line_height: int = 28
    code_size: int = 20
    code_line_height: int = 26
    heading_sizes: tuple[int, int, int] = (28, 25, 23)
    label_size: int = 22
    paragraph_gap: int = 8
    turn_gap: int = 8
    indent: int = 26
    tab_width: int = 4
    ink: int = 0
    paper: int = 255
    code_paper: int = 242
    rule_ink: int = 170
    flow: bool = False

    def __post_init__(self) -> None:
        for side in (self.width, self.height):
            if not 64 <= side <= 8192:
                raise ConfigError(
                    f"page sides must be between 64 and 8192 px; got {self.width}x{self.height}"
                )
        if not 0 <= self.margin < min(self.width, self.height) // 4:
            raise ConfigError(f"margin must be between 0 and a quarter of the page; got {self.margin}")
        sizes = (self.body_size, self.code_size, self.label_size, *self.heading_sizes)
        if len(self.heading_sizes) != 3 or min(sizes) < 4:
            raise ConfigError("font sizes must be at least 4 px (and heading_sizes holds three sizes)")
        usable = self.height - 2 * self.margin
        tallest = max(self.line_height, self.code_line_height, *self.heading_sizes, self.label_size)
        if min(self.line_height, self.code_line_height) < 4 or 3 * tallest + self.turn_gap > usable:
            raise ConfigError("line heights must be at least 4 px and three lines must fit on a page")
        if max(sizes) * 8 > self.width - 2 * self.margin:
            raise ConfigError(f"fonts of {max(sizes)} px are too large for a {self.width} px wide page")
        if not 1 <= self.tab_width <= 16 or self.indent < 0 or min(self.paragraph_gap, self.turn_gap) < 0:
            raise ConfigError("tab_width must be 1-16 and indent and gaps must not be negative")
        for name in ("ink", "paper", "code_paper", "rule_ink"):
            if not 0 <= getattr(self, name) <= 255:
                raise ConfigError(f"{name} must be a gray level 0-255; got {getattr(self, name)}")

    @classmethod
    def for_page(
        cls, width: int, height: int, body_size: int, *, margin: int | None = None, flow: bool = False
    ) -> RenderStyle:
        """The style of a ``width`` x ``height`` page whose prose is drawn at ``body_size`` px.

        Every other length keeps the default style's proportion to the glyph size; the margin defaults
        to about 1.45 glyphs (32 px for 22 px prose).

        Raises:
            ConfigError: If the sizes are out of range or the glyphs are too large for the page.
        """
        base = cls()
        scale = body_size / base.body_size

        def px(value: int) -> int:
            return max(1, round(value * scale))

        return cls(
            width=width,
            height=height,
            margin=px(base.margin) if margin is None else margin,
            body_size=body_size,
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
            flow=flow,
        )

    @classmethod
    def for_size(cls, size: int) -> RenderStyle:
        """The default style scaled to a square page of side ``size``, keeping the same characters per page.

        Raises:
            ConfigError: If the size is out of range.
        """
        if not 64 <= size <= 8192:
            raise ConfigError(f"page size must be between 64 and 8192 px; got {size}")
        base = cls()
        return cls.for_page(size, size, max(4, round(base.body_size * size / base.width)))

    @property
    def text_width(self) -> int:
        """Width of the text column."""
        return self.width - 2 * self.margin

    def digest(self) -> str:
        """A short stable fingerprint of every setting (saved with a packer's state)."""
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()[:16]
