"""DeepEncoder throughput: pages per second per rung and batch size, and the fraction of the GPU's peak.

A randomly initialised full-size DeepSeek-OCR encoder (401 M parameters, built from the official
``config.json`` in ``tests/encoders/data``; or ``--checkpoint`` a real folder) encodes random pixel batches
already on the device (model time), and, with ``--e2e``, PIL pages through ``DeepSeekOCREncoder.encode``
(preprocessing and copies included). Each configuration runs warm-up passes, then ``--iters`` timed passes
with the device synchronised; the median is reported. Work per page is the estimate of
the DeepSeek-OCR paper's encoder geometry (0.27 / 0.39 / 1.14 / 1.94 TFLOP for Tiny / Small / Base / Large);
the fraction of peak divides the achieved FLOP rate by ``--peak-tflops`` (dense bf16: 989 for H100 SXM and
H200). Ratios: speed-up over batch 1 of the same rung, measured in the same process.

A breakdown says where the time goes: SAM (ViT-B + neck + convs), CLIP-L, projector and token layout timed
separately, and the top operators of ``torch.profiler``.

Usage::

    python benchmarks/encoder.py --device cuda --dtype bfloat16 --rungs tiny,small,base,large \\
        --batches 1,8,16,32 --out results.json
    python benchmarks/encoder.py            # CPU: fp32, Tiny and Small, batches 1 and 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optical_memory.encoders._vision_model import deep_encoder_class  # noqa: E402
from optical_memory.encoders.checkpoint import translate_config  # noqa: E402
from optical_memory.encoders.deepseek import DeepSeekOCREncoder, resolve_dtype  # noqa: E402
from optical_memory.encoders.sam_attention import fold_sam_attention  # noqa: E402
from optical_memory.ladder import spec  # noqa: E402

TFLOP_PER_PAGE = {"tiny": 0.27, "small": 0.39, "base": 1.14, "large": 1.94}
PEAK_BF16 = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
CONFIG = ROOT / "tests" / "encoders" / "data" / "config.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--rungs", default=None, help="comma list (default: all on CUDA, tiny,small on CPU)")
    p.add_argument("--batches", default=None, help="comma list (default: 1,8,16,32 on CUDA, 1,2 on CPU)")
    p.add_argument("--iters", type=int, default=None, help="timed passes per configuration")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--peak-tflops", type=float, default=None, help="device dense peak for --dtype")
    p.add_argument("--sdpa", default="auto", choices=["auto", "efficient", "cudnn", "math", "flash"])
    p.add_argument("--compile", action="store_true", help="torch.compile SAM and CLIP")
    p.add_argument(
        "--sam-attention",
        choices=["transformers", "folded"],
        default="folded",
        help="'folded' (the library default) folds SAM's rel-pos bias into q/k; 'transformers' is the stock forward",
    )
    p.add_argument("--no-tf32", action="store_true", help="keep fp32 matmuls in full precision on CUDA")
    p.add_argument("--e2e", action="store_true", help="also time encode() on PIL pages")
    p.add_argument("--breakdown", default="base:16", help="rung:batch to break down ('' to skip)")
    p.add_argument("--checkpoint", default=None, help="a real DeepSeek-OCR folder instead of random weights")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def build_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> Any:
    if args.checkpoint:
        return DeepSeekOCREncoder.from_pretrained(args.checkpoint, device=device, dtype=dtype).model
    config = translate_config(json.loads(CONFIG.read_text()))
    torch.manual_seed(0)
    with torch.device(device):
        model = deep_encoder_class()(config)
    return model.to(dtype).eval()


def check_patch(model: Any, device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Fold SAM's attention and compare the tokens with the stock model's on a Base batch."""
    torch.manual_seed(1)
    # transformers initialises SAM with std 1e-10 and zero rel-pos tables: attention would add nothing to the
    # residual stream and any patch would look exact. Give the attention weights real values first.
    with torch.no_grad():
        for layer in model.vision_tower.sam_encoder.layers:
            for param in (layer.attn.rel_pos_h, layer.attn.rel_pos_w):
                param.normal_(std=0.5)
            for param in (layer.attn.qkv.weight, layer.attn.proj.weight):
                param.normal_(std=param.shape[-1] ** -0.5)
    pixels = torch.randn(2, 3, 1024, 1024, device=device, dtype=dtype)
    with torch.inference_mode():
        before = torch.stack(model.get_image_features(pixel_values=pixels).pooler_output).float()
        fold_sam_attention(model)
        after = torch.stack(model.get_image_features(pixel_values=pixels).pooler_output).float()
    cosine = torch.nn.functional.cosine_similarity(before, after, dim=-1)
    return {"min_cosine": cosine.min().item(), "max_abs": (before - after).abs().max().item()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sdpa_context(name: str) -> Any:
    import contextlib

    if name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "math": SDPBackend.MATH,
        "flash": SDPBackend.FLASH_ATTENTION,
    }[name]
    return sdpa_kernel([backend])


def bench_model(model: Any, rung: str, batch: int, args: argparse.Namespace, device, dtype) -> dict[str, Any]:
    size = spec(rung).size
    pixels = torch.randn(batch, 3, size, size, device=device, dtype=dtype)

    def run() -> Any:
        with torch.inference_mode():
            return model.get_image_features(pixel_values=pixels).pooler_output

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        seconds = median_seconds(run, device, args.warmup, args.iters)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"rung": rung, "batch": batch, "error": "out of memory"}
    pages = batch / seconds
    tflops = pages * TFLOP_PER_PAGE[rung]
    row = {
        "rung": rung,
        "batch": batch,
        "ms_per_batch": 1e3 * seconds,
        "pages_per_s": pages,
        "tflops": tflops,
    }
    if args.peak_tflops:
        row["fraction_of_peak"] = tflops / args.peak_tflops
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def bench_e2e(model: Any, rung: str, batch: int, args: argparse.Namespace, device) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    size = spec(rung).size
    rng = np.random.default_rng(0)
    pages = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(batch)]
    encoder = DeepSeekOCREncoder(model, fingerprint="random", batch_size=batch)
    seconds = median_seconds(lambda: encoder.encode(pages, rung), device, 1, args.iters)
    return {
        "rung": rung,
        "batch": batch,
        "e2e_pages_per_s": batch / seconds,
        "e2e_ms_per_batch": 1e3 * seconds,
    }


def breakdown(model: Any, rung: str, batch: int, args: argparse.Namespace, device, dtype) -> dict[str, Any]:
    size = spec(rung).size
    pixels = torch.randn(batch, 3, size, size, device=device, dtype=dtype)
    tower = model.vision_tower
    with torch.inference_mode():
        sam_out = tower.sam_encoder(pixels).last_hidden_state
        clip_out = tower.vision_encoder(sam_out).last_hidden_state
        fused = torch.cat([clip_out[:, 1:], sam_out.flatten(2).transpose(1, 2)], dim=-1)

        parts = {
            "sam": lambda: tower.sam_encoder(pixels),
            "clip": lambda: tower.vision_encoder(sam_out),
            "projector": lambda: model.multi_modal_projector(fused),
            "total": lambda: model.get_image_features(pixel_values=pixels),
        }
        times = {name: median_seconds(fn, device, 1, args.iters) for name, fn in parts.items()}
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            parts["total"]()
            sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)[:15]
    total_us = sum(getattr(e, key, 0) for e in prof.key_averages()) or 1
    top = [
        {
            "op": e.key,
            "ms": getattr(e, key, 0) / 1e3,
            "share": getattr(e, key, 0) / total_us,
            "calls": e.count,
        }
        for e in events
    ]
    return {"rung": rung, "batch": batch, "ms": {k: 1e3 * v for k, v in times.items()}, "top_ops": top}


def environment(device: torch.device, dtype: torch.dtype, model: Any) -> dict[str, Any]:
    import transformers

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "uncommitted"
    sam_attn = type(model.vision_tower.sam_encoder.layers[0].attn).__name__
    return {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "commit": commit,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "attn_implementation": model.config._attn_implementation,
        "sam_attention": sam_attn
        if model.vision_tower.sam_encoder.layers[2].attn.forward.__name__ == "forward"
        else "folded (optical_memory.encoders.sam_attention)",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    dtype = resolve_dtype(args.dtype, device)
    rungs = (args.rungs or ("tiny,small,base,large" if cuda else "tiny,small")).split(",")
    batches = [int(b) for b in (args.batches or ("1,8,16,32" if cuda else "1,2")).split(",")]
    args.iters = args.iters or (10 if cuda else 3)
    if args.peak_tflops is None and cuda:
        name = torch.cuda.get_device_name(device)
        args.peak_tflops = next((v for k, v in PEAK_BF16.items() if k in name), None)
        if args.peak_tflops and dtype == torch.float32:
            args.peak_tflops /= (
                2 if not args.no_tf32 else 16
            )  # tf32 is half the bf16 rate; plain fp32 far less
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = not args.no_tf32
        torch.backends.cudnn.allow_tf32 = not args.no_tf32
        torch.backends.cudnn.benchmark = True

    model = build_model(args, device, dtype)
    agreement = None
    if args.sam_attention == "folded":
        agreement = check_patch(model, device, dtype)
        print(f"folded vs transformers attention, base x2: {agreement}", file=sys.stderr)
    if args.compile:
        torch._dynamo.config.cache_size_limit = 64
        model.vision_tower.sam_encoder.compile()
        model.vision_tower.vision_encoder.compile()
    env = environment(device, dtype, model)
    print(json.dumps(env, indent=1), file=sys.stderr)

    rows, e2e, parts = [], [], None
    with sdpa_context(args.sdpa):
        for rung in rungs:
            base_rate = None
            for batch in batches:
                row = bench_model(model, rung, batch, args, device, dtype)
                if "pages_per_s" in row:
                    base_rate = base_rate or (row["pages_per_s"] if batch == batches[0] else None)
                    if base_rate:
                        row["speedup_vs_first_batch"] = row["pages_per_s"] / base_rate
                rows.append(row)
                print(format_row(row), file=sys.stderr, flush=True)
            if args.e2e:
                e2e.append(bench_e2e(model, rung, batches[-1], args, device))
        if args.breakdown:
            rung, batch = args.breakdown.split(":")
            parts = breakdown(model, rung, int(batch), args, device, dtype)

    print_table(rows, e2e, parts)
    result = {"environment": env, "args": vars(args), "results": rows, "e2e": e2e, "breakdown": parts}
    if agreement is not None:
        result["folded_attention_agreement"] = agreement
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


def format_row(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['rung']:>6} {row['batch']:>5}  {row['error']}"
    frac = f"{100 * row['fraction_of_peak']:6.1f}%" if "fraction_of_peak" in row else "      -"
    mem = f"{row['peak_memory_gib']:7.1f}" if "peak_memory_gib" in row else "      -"
    speed = f"{row.get('speedup_vs_first_batch', float('nan')):6.2f}x"
    return (
        f"{row['rung']:>6} {row['batch']:>5} {row['ms_per_batch']:10.1f} {row['pages_per_s']:9.2f} "
        f"{row['tflops']:8.1f} {frac} {speed} {mem}"
    )


def print_table(rows: list[dict[str, Any]], e2e: list[dict[str, Any]], parts: dict[str, Any] | None) -> None:
    print(
        f"{'rung':>6} {'batch':>5} {'ms/batch':>10} {'pages/s':>9} {'TFLOP/s':>8} {'%peak':>7} {'vs b1':>7} {'GiB':>7}"
    )
    for row in rows:
        print(format_row(row))
    for row in e2e:
        print(
            f"end to end (PIL pages -> tokens) {row['rung']} x{row['batch']}: {row['e2e_pages_per_s']:.2f} pages/s"
        )
    if parts:
        ms = parts["ms"]
        print(
            f"breakdown {parts['rung']} x{parts['batch']} (ms): "
            + ", ".join(f"{k} {v:.1f}" for k, v in ms.items())
        )
        for op in parts["top_ops"][:10]:
            print(f"  {op['share']:6.1%} {op['ms']:9.2f} ms {op['calls']:5d}x  {op['op'][:90]}")


if __name__ == "__main__":
    raise SystemExit(main())
