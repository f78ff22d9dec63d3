"""Conversations drawn by the golden-image tests (shared with ``regen_goldens``)."""

from __future__ import annotations

from pathlib import Path

from optical_memory.pricing.profiles import PROFILES
from optical_memory.renderers import ChatRenderer, RenderStyle
from optical_memory.types import RenderedPage, ToolCall, Turn

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
ACTUAL_DIR = GOLDEN_DIR / "actual"

CASES: dict[str, list[Turn]] = {
    "latin": [
        Turn("system", "You are a concise assistant."),
        Turn("user", "How do I keep a **sourdough** starter alive while I'm away for two weeks?"),
        Turn(
            "assistant",
            "## Before you leave\n\n"
            "1. Feed it a stiff ratio (1:5:5) so it ferments slowly.\n"
            "2. Put it in the fridge in a clean jar with a loose lid.\n"
            "- Hooch (grey liquid) on top is normal: pour it off or stir it in.\n"
            "  - A pink or orange tint means spoilage; start again.\n\n"
            "> Tip: a dried starter keeps for months.\n\n"
            "Refresh it twice at room temperature when you are back -- it should double in 4-8 hours. "
            "See https://example.org/a/very/long/path/that/keeps/going/and/going/without/any/spaces/at/"
            "all/so-it-has-to-break-at-the-line-width/index.html for more.",
        ),
    ],
    "cjk": [
        Turn("user", "请用中文解释一下“光学记忆”是什么？（简短一点）"),
        Turn(
            "assistant",
            "光学记忆把较早的对话轮次渲染成页面图像，再由视觉编码器把每页压缩成少量视觉令牌。"
            "页面越旧，分辨率越低，就像人的记忆会逐渐模糊一样。「最近的内容」仍然以文本形式保留，"
            "需要时还可以把旧页面重新识别出来。\n\n"
            "日本語：古いページは「低解像度」に移され、トークンを節約します。\n"
            "한국어: 오래된 페이지는 더 낮은 해상도로 옮겨집니다.",
        ),
    ],
    "code": [
        Turn("user", "Why does this loop never stop?\n\n```python\nwhile i < 10:\n\tprint(i)\n```"),
        Turn(
            "assistant",
            "You never increment `i`. Indent the increment inside the loop:\n\n"
            "```python\n"
            "i = 0\n"
            "while i < 10:\n"
            "    print(i)\n"
            "    i += 1  # without this line the condition never changes, so the loop spins forever"
            " and the process has to be killed\n"
            "```\n",
        ),
        Turn("tool", '{"exit_code": 0, "stdout": "0\\n1\\n2"}', name="python"),
    ],
    "mixed": [
        Turn(
            "user",
            "Symbols ∑ ∫ √ ≈ ≠ → ⇒ ✓ ★ ♠, emoji 😀 🚀 👍, Greek αβγ, Cyrillic Привет, "
            "kana カタカナ, Hangul 한글.\nControls: [\x00] [\x07] [\x1b] [\x7f] [\x85]; "
            "uncovered: [\ue000] [\U0010fffd]; tab[\t]end.",
        ),
        Turn("assistant", "# Title\n\nAll of that should render, with `inline code` too.\n\n---\n\nDone."),
    ],
}


_CALL = ToolCall("call_1", "bash", '{"command": "ls -F src/"}')
_READ = ToolCall("call_2", "read_file", '{"path": "src/app.py", "lines": [1, 40]}')
CASES["agent_flowed"] = [
    Turn("user", "The tests fail on CI but not locally.\nCan you look?\n\n- Python 3.11\n- pytest 8"),
    Turn("assistant", "", tool_calls=(_CALL,)),
    Turn("tool", "app.py  models.py  views.py", tool_call_id="call_1", name="bash"),
    Turn("assistant", "Reading the app.", tool_calls=(_READ,)),
    Turn(
        "tool",
        "import os\n\n\n\n\n\ndef main():\n    path = os.environ['DATA']\n    return path\n"
        + "ICON = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg"
        + "1234567890abcdefABCDEF" * 8
        + "'",
        tool_call_id="call_2",
        name="read_file",
    ),
    Turn("assistant", "`DATA` is unset on CI:\n\n```python\npath = os.environ.get('DATA', 'data/')\n```"),
    Turn("user", "好的，谢谢！"),
]
STYLES = {"agent_flowed": PROFILES["anthropic"].style()}
"""Cases drawn with another style than the default (``RenderStyle()``)."""


def render_case(name: str) -> RenderedPage:
    """The single page a golden case draws (with the default style unless :data:`STYLES` says otherwise)."""
    pages = ChatRenderer(STYLES.get(name, RenderStyle())).render(CASES[name])
    assert len(pages) == 1, f"golden case {name!r} should fit one page, drew {len(pages)}"
    return pages[0]
