"""Page rendering speed: the transcript renderer against a plain Pillow baseline, on one CPU core.

    python benchmarks/render.py [--runs 7] [--pages 6] [--out benchmarks/results/render.json]

For English and Chinese text it renders the same text two ways, in the same process:

* ``renderer``: :class:`optical_memory.renderers.ChatRenderer` (Markdown, per-character font fallback,
  kinsoku wrapping, span bookkeeping, token counting of each page's text);
* ``baseline``: greedy wrapping with one font (Noto Sans for English, Noto Sans CJK for Chinese) and no
  fallback, one ``ImageDraw.text`` call per wrapped line, same page geometry.

It reports milliseconds per dense 1280 px page and pages per second (medians over runs), the ratio
baseline / renderer (above 1 means the renderer is faster), the renderer on a mixed Markdown/code/emoji
page, and, separately, downsampling a page to 1024/640/512 and PNG encoding. Results go to a JSON file with
the machine, library versions and git commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import PIL
from PIL import Image, ImageDraw, ImageFont

from optical_memory.images import downsample, encode_png
from optical_memory.renderers import ChatRenderer, RenderStyle
from optical_memory.renderers.fontchain import load_font
from optical_memory.types import Turn

EN = [
    "The committee met on Tuesday to review the budget for the next fiscal year.",
    "Most of the discussion focused on maintenance costs, which rose by twelve percent.",
    "A proposal to replace the old heating system was postponed until spring.",
    "Several members asked for a clearer breakdown of the consulting fees.",
    "The treasurer agreed to circulate a revised spreadsheet before the next meeting.",
    "Meanwhile, volunteers reported that the library renovation is ahead of schedule.",
    "New shelves were installed last week, and the reading room reopens in May.",
    "Attendance at evening lectures has doubled since the program moved online.",
    "The board thanked everyone who donated books, furniture and time this year.",
    "Questions about parking permits should be sent to the front office by Friday.",
]
ZH = [
    "委员会于周二开会，审议了下一财政年度的预算。",
    "讨论主要集中在维护费用上，这部分费用增长了百分之十二。",
    "更换旧供暖系统的提议被推迟到明年春天。",
    "几位成员要求更清楚地列出咨询费用的明细。",
    "财务主管同意在下次会议前分发修订后的表格。",
    "与此同时，志愿者报告说图书馆的翻修工程提前完成。",
    "新书架上周已经安装完毕，阅览室将于五月重新开放。",
    "自从课程转到网上以后，晚间讲座的参加人数翻了一番。",
    "理事会感谢今年捐赠书籍、家具和时间的每一个人。",
    "有关停车许可的问题，请在周五前发送到前台办公室。",
]
MIXED = (
    "## Results\n\nThe run finished in **41 s** — see `train.py` (步骤 3 ✓ 😀).\n\n"
    "1. Loss fell from 2.31 to 0.87.\n2. Accuracy: 91.4% (≈ +3.2).\n   - 中文说明：结果稳定。\n\n"
    "```python\nfor step, batch in enumerate(loader):\n\tloss = model(batch).loss\n\tloss.backward()\n"
    "\toptimizer.step()  # a long comment that keeps going past the right edge of the page to force a wrap\n"
    "```\n\n> Note: ∑ᵢ xᵢ² ≤ ‖x‖² holds.\n\n"
)


def _text(sentences: list[str], chars: int, seed: int, joiner: str) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    while total < chars:
        s = rng.choice(sentences)
        out.append(s)
        total += len(s) + len(joiner)
    return joiner.join(out)


def baseline_pages(text: str, font: ImageFont.FreeTypeFont, style: RenderStyle, *, cjk: bool) -> int:
    """Plain rendering: greedy wrap with one font, one draw.text per line, same geometry."""
    width = style.width
    widths: dict[str, float] = {}

    def length(s: str) -> float:
        w = widths.get(s)
        if w is None:
            w = widths[s] = font.getlength(s)
        return w

    lines: list[str] = []
    if cjk:
        cur, used = [], 0.0
        for ch in text:
            w = length(ch)
            if used + w > width:
                lines.append("".join(cur))
                cur, used = [], 0.0
            cur.append(ch)
            used += w
        lines.append("".join(cur))
    else:
        space = length(" ")
        cur, used = [], 0.0
        for word in text.split(" "):
            w = length(word)
            if cur and used + space + w > width:
                lines.append(" ".join(cur))
                cur, used = [], 0.0
            used += (space if cur else 0) + w
            cur.append(word)
        lines.append(" ".join(cur))
    per_page = (style.height - 2 * style.margin) // style.line_height
    pages = 0
    for start in range(0, len(lines), per_page):
        image = Image.new("L", (style.width, style.height), 255)
        draw = ImageDraw.Draw(image)
        y = style.margin + round(0.8 * style.body_size) + (style.line_height - style.body_size) // 2
        for line in lines[start : start + per_page]:
            draw.text((style.margin, y), line, font=font, fill=0, anchor="ls")
            y += style.line_height
        pages += 1
    return pages


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pages", type=int, default=6, help="full pages per run and language")
    parser.add_argument("--out", default="benchmarks/results/render.json")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    style = RenderStyle()
    renderer = ChatRenderer(style)
    results: dict[str, dict[str, float]] = {}
    cases = {
        "english": (_text(EN, 4700 * args.pages, 1, " "), load_font("NotoSans-Regular.ttf", 22), False),
        "chinese": (_text(ZH, 2350 * args.pages, 2, ""), load_font("NotoSansCJKsc-Regular.otf", 22), True),
    }
    for name, (text, font, cjk) in cases.items():
        turns = [Turn("user", text)]
        pages = renderer.render(turns)
        full = pages[:-1]
        n_ours = len(pages)
        n_base = baseline_pages(text, font, style, cjk=cjk)
        ours = _median_ms(lambda t=turns: renderer.render(t), args.runs) / n_ours
        base = (
            _median_ms(lambda t=text, f=font, c=cjk: baseline_pages(t, f, style, cjk=c), args.runs) / n_base
        )
        results[name] = {
            "renderer_ms_per_page": ours,
            "renderer_pages_per_s": 1000 / ours,
            "baseline_ms_per_page": base,
            "baseline_pages_per_s": 1000 / base,
            "speedup_vs_baseline": base / ours,
            "chars_per_page": statistics.median(len(p.text) for p in full),
            "tokens_per_page": statistics.median(p.text_tokens for p in full),
            "pages": n_ours,
            "baseline_pages": n_base,
        }
    mixed = [Turn("user", MIXED * 12)]
    n_mixed = len(renderer.render(mixed))
    results["mixed_markdown"] = {
        "renderer_ms_per_page": _median_ms(lambda: renderer.render(mixed), args.runs) / n_mixed
    }
    page = renderer.render([Turn("user", cases["english"][0])])[0].image
    for size in (1024, 640, 512):
        results[f"downsample_{size}"] = {"ms": _median_ms(lambda s=size: downsample(page, s), args.runs)}
    results["encode_png_1280"] = {
        "ms": _median_ms(lambda: encode_png(page), args.runs),
        "kb": len(encode_png(page)) / 1024,
    }
    print(
        f"{'case':<16} {'renderer ms/page':>17} {'pages/s':>8} {'baseline ms/page':>17} {'speedup':>8} "
        f"{'chars/page':>11} {'tokens/page':>12}"
    )
    for name in ("english", "chinese"):
        r = results[name]
        print(
            f"{name:<16} {r['renderer_ms_per_page']:>17.1f} {r['renderer_pages_per_s']:>8.1f} "
            f"{r['baseline_ms_per_page']:>17.1f} {r['speedup_vs_baseline']:>7.2f}x "
            f"{r['chars_per_page']:>11.0f} {r['tokens_per_page']:>12.0f}"
        )
    print(f"{'mixed_markdown':<16} {results['mixed_markdown']['renderer_ms_per_page']:>17.1f}")
    for key in ("downsample_1024", "downsample_640", "downsample_512", "encode_png_1280"):
        extra = f"  ({results[key]['kb']:.0f} KB)" if "kb" in results[key] else ""
        print(f"{key:<16} {results[key]['ms']:>14.1f} ms{extra}")
    record = {
        "benchmark": "render",
        "results": results,
        "runs": args.runs,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {"pillow": PIL.__version__, "freetype": ImageFont.core.freetype2_version},
        "commit": _commit(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
