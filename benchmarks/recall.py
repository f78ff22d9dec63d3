"""Recall speed: seconds per page per reader and rung (CPU OCR), and DeepSeek-OCR decoding tokens per second.

Two measurements, each against a baseline run in the same process:

1. ``--readers rapidocr,tesseract`` (default on CPU): a dense transcript page is rendered at 1280 px, taken
   to each rung (and to 384 / 256 px below Tiny), read ``--repeats`` times; the median seconds per page, the
   character accuracy, and the ratio to the Large read (the baseline) are reported.
2. ``--deepseek-random``: the ``deepseek`` reader with a randomly initialised FULL-size DeepSeek-OCR model
   (3.34 B parameters, built on the device from the official ``config.json`` in ``tests/encoders/data``;
   speed only, the text is noise) reads a page at each ``--rungs`` rung for exactly ``--new-tokens`` tokens
   (EOS ignored). Reported: prefill seconds (vision encoder + prompt), decode tokens per second of the
   reader (transformers' ``generate`` with the no-repeat-n-gram rule), and of a bare ``generate`` on the
   same inputs without the rule (the baseline: the ratio is what the rule costs per token).
   ``--deepseek-tiny`` does the same with the tiny test model on CPU.

Usage::

    python benchmarks/recall.py                                   # CPU OCR readers
    python benchmarks/recall.py --deepseek-random --device cuda --dtype bfloat16 --new-tokens 256
    python benchmarks/recall.py --deepseek-tiny --readers none    # the decoding loop on CPU, tiny model

Writes JSON (``--out``, default ``benchmarks/results/recall.json``) with the machine, versions and commit.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optical_memory.images import downsample  # noqa: E402
from optical_memory.recall import char_accuracy, get_reader  # noqa: E402
from optical_memory.recall.forgetting import LEVELS  # noqa: E402
from optical_memory.renderers import render_turns  # noqa: E402
from optical_memory.types import Turn  # noqa: E402

CONFIG = ROOT / "tests" / "encoders" / "data" / "config.json"
PARAGRAPH = (
    "The agent kept the last few turns as text and the older ones as page images. When the user asked "
    "about the deployment on March 12 at 09:30 UTC, the page holding that turn had already faded to Small, "
    "so the agent called recall_page(7) and read the exact figures back: 2,048 requests, 0.5% errors. "
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--readers", default="rapidocr,tesseract", help="comma list of CPU readers, or 'none'")
    p.add_argument("--levels", default="large,base,small,tiny,384px,256px")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--deepseek-random", action="store_true", help="full-size random DeepSeek-OCR (GPU)")
    p.add_argument("--deepseek-tiny", action="store_true", help="tiny random DeepSeek-OCR (CPU smoke test)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--rungs", default="tiny,small,base,large", help="deepseek: rungs to read at")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--no-baseline", action="store_true", help="deepseek: skip the bare generate baseline")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "recall.json")
    return p.parse_args(argv)


def dense_page() -> Any:
    turns = [Turn("user" if i % 2 == 0 else "assistant", PARAGRAPH * 3) for i in range(12)]
    return render_turns(turns)[0]


def bench_readers(names: list[str], levels: list[str], repeats: int) -> list[dict[str, Any]]:
    page = dense_page()
    rows = []
    for name in names:
        try:
            reader = get_reader(name)
        except Exception as exc:  # a reader whose extra or binary is missing is reported, not fatal
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        base = None
        for level in [lv for lv in LEVELS if lv.name in levels]:
            image = downsample(page.image, level.size)
            times, acc = [], 0.0
            for _ in range(repeats):
                start = time.perf_counter()
                reading = reader.read(image, rung=level.rung)
                times.append(time.perf_counter() - start)
                acc = char_accuracy(page.text, reading.text)
            median = statistics.median(times)
            base = base or median
            rows.append(
                {
                    "reader": name,
                    "level": level.name,
                    "size": level.size,
                    "seconds_per_page": median,
                    "ratio_to_large": median / base,
                    "char_accuracy": acc,
                    "text_tokens": page.text_tokens,
                }
            )
            print(f"{name:<10} {level.name:<6} {median:7.2f} s/page  x{median / base:4.2f}  acc {acc:.3f}")
    return rows


def _sync(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_random_model(device: str, dtype: str | None, tiny: bool) -> Any:
    import torch

    from optical_memory.encoders.checkpoint import translate_config
    from optical_memory.recall.deepseek import DeepSeekReader
    from tests.recall.helpers import make_tokenizer

    if tiny:
        from tests.encoders.tiny import make_tiny_model

        model = make_tiny_model()
    else:
        from transformers import UnlimitedOcrForConditionalGeneration

        config = translate_config(json.loads(CONFIG.read_text()))
        torch_dtype = getattr(torch, dtype or ("bfloat16" if device.startswith("cuda") else "float32"))
        start = time.perf_counter()
        with torch.device(device):  # random init on the device: seconds instead of minutes
            model = UnlimitedOcrForConditionalGeneration._from_config(config, dtype=torch_dtype)
        print(f"built a random full-size model in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return DeepSeekReader(model=model, tokenizer=make_tokenizer(), device=device, dtype=dtype)


def bench_deepseek(reader: Any, rungs: list[str], new_tokens: int, baseline: bool) -> list[dict[str, Any]]:
    import torch

    from optical_memory.recall.deepseek import decode_attention

    reader.max_new_tokens = new_tokens
    page = dense_page()
    rows = []
    params = sum(p.numel() for p in reader.model.parameters())
    for rung in rungs:
        inputs = reader.prepare(
            downsample(page.image, LEVELS[[lv.name for lv in LEVELS].index(rung)].size), rung=rung
        )
        ids = torch.tensor([inputs.input_ids], device=reader.device)
        reader.generate_ids(inputs, stop_at_eos=False)  # warm-up: kernels, allocator, every key length
        _sync(torch, reader.device)
        start = time.perf_counter()
        with torch.inference_mode():
            reader.model(input_ids=ids, pixel_values=inputs.pixel_values, use_cache=True, logits_to_keep=1)
        _sync(torch, reader.device)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        generated = reader.generate_ids(inputs, stop_at_eos=False)
        _sync(torch, reader.device)
        total = time.perf_counter() - start
        ours = len(generated) / max(total - prefill, 1e-9)
        row = {
            "rung": rung,
            "positions": ids.shape[1],
            "new_tokens": len(generated),
            "prefill_s": prefill,
            "total_s": total,
            "decode_tokens_per_s": ours,
            "parameters": params,
        }
        if baseline:
            start = time.perf_counter()
            with torch.inference_mode(), decode_attention(reader.device):
                out = reader.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    pixel_values=inputs.pixel_values,
                    do_sample=False,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    pad_token_id=1,
                    eos_token_id=1,
                )
            _sync(torch, reader.device)
            hf_total = time.perf_counter() - start
            hf_tokens = out.shape[1] - ids.shape[1]
            row.update(
                {
                    "hf_total_s": hf_total,
                    "hf_decode_tokens_per_s": hf_tokens / max(hf_total - prefill, 1e-9),
                    "speed_vs_bare_generate": hf_total / total * len(generated) / hf_tokens,
                }
            )
        rows.append(row)
        extra = f"  bare generate {row['hf_decode_tokens_per_s']:7.1f} tok/s" if baseline else ""
        print(f"deepseek {rung:<6} prefill {prefill:6.3f} s  decode {ours:7.1f} tok/s{extra}")
    return rows


def machine(torch_device: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": __import__("os").cpu_count(),
    }
    try:
        import torch
        import transformers

        info.update({"torch": torch.__version__, "transformers": transformers.__version__})
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import rapidocr

        info["rapidocr"] = getattr(rapidocr, "__version__", "?")
    except ImportError:
        pass
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = "uncommitted"
    return info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {"benchmark": "recall", "machine": machine(args.device)}
    names = [] if args.readers == "none" else [n for n in args.readers.split(",") if n]
    if names:
        result["readers"] = bench_readers(names, args.levels.split(","), args.repeats)
    if args.deepseek_random or args.deepseek_tiny:
        import torch

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        reader = build_random_model(device, args.dtype, tiny=args.deepseek_tiny)
        result["deepseek"] = {
            "model": "tiny-random" if args.deepseek_tiny else "full-size-random",
            "device": str(reader.device),
            "dtype": str(reader.dtype),
            "rows": bench_deepseek(reader, args.rungs.split(","), args.new_tokens, not args.no_baseline),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
