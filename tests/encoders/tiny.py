"""Tiny random DeepSeek-OCR checkpoints in the official layout, for tests (encoder and recall).

``make_tiny_checkpoint(folder)`` writes what a user's DeepSeek-OCR download looks like, shrunk:
``config.json`` (``"model_type": "deepseek_vl_v2"``, sizes in ``vision_config.width["sam_vit_b"]`` /
``["clip-l-14-224"]`` and ``language_config``), ``model-00001-of-000001.safetensors`` with the ORIGINAL tensor
names (``model.sam_model.blocks.*``, ``model.vision_model.transformer.layers.*.self_attn.qkv_proj``,
``model.projector.layers.*``, ``model.image_newline``, ``model.view_seperator``, ``model.layers.*.mlp.experts.
{e}.gate_proj``, ``model.embed_tokens``, ``model.norm``, ``lm_head``) and ``model.safetensors.index.json``.

The renaming to the official layout is written out here by hand (:func:`official_state_dict`), independent of
transformers' conversion mapping, so loading the file back through the real loader tests that mapping.

Sizes: SAM width 32 (2 heads, 2 blocks, the second global), a 16-channel neck, downsample 32 -> 64; CLIP
width 64 (2 heads, 1 layer); decoder width 32 (2 heads, 2 layers: dense then MoE with 8 experts, top-2, one
shared expert), the official vocabulary of 129,280 so the ``<image>`` id 128815 exists. The page geometry
(16 px patches, 14-token windows, two stride-2 convs) is the real one, so tokens per rung are real too.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

TINY_OFFICIAL_CONFIG: dict[str, Any] = {
    "model_type": "deepseek_vl_v2",
    "architectures": ["DeepseekOCRForCausalLM"],
    "tile_tag": "2D",
    "global_view_pos": "head",
    "candidate_resolutions": [[1024, 1024]],
    "torch_dtype": "float32",
    "language_config": {
        "bos_token_id": 0,
        "eos_token_id": 1,
        "first_k_dense_replace": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "kv_lora_rank": None,
        "lm_head": True,
        "max_position_embeddings": 8192,
        "moe_intermediate_size": 16,
        "n_group": 1,
        "n_routed_experts": 8,
        "n_shared_experts": 1,
        "num_attention_heads": 2,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "q_lora_rank": None,
        "qk_nope_head_dim": 0,
        "qk_rope_head_dim": 0,
        "topk_group": 1,
        "topk_method": "greedy",
        "use_mla": False,
        "v_head_dim": 0,
        "vocab_size": 129280,
    },
    "projector_config": {
        "input_dim": 128,
        "model_type": "mlp_projector",
        "n_embed": 32,
        "projector_type": "linear",
    },
    "vision_config": {
        "image_size": 1024,
        "mlp_ratio": 3.7362,
        "model_name": "deeplip_b_l",
        "model_type": "vision",
        "width": {
            "clip-l-14-224": {
                "heads": 2,
                "image_size": 224,
                "layers": 1,
                "patch_size": 14,
                "width": 64,
                "ffn_hidden_size": 128,
            },
            "sam_vit_b": {
                "downsample_channels": [32, 64],
                "global_attn_indexes": [1],
                "heads": 2,
                "layers": 2,
                "width": 32,
                "mlp_dim": 64,
                "out_chans": 16,
            },
        },
    },
}
"""An official-style ``config.json`` with tiny sizes."""

SHARD = "model-00001-of-000001.safetensors"
CLIP_PATCH_KEY = "model.vision_model.embeddings.patch_embedding.weight"

# transformers name (after the leading "model.") -> official name, for renames that keep the tensor as is
_SAM_RULES = (
    (r"layers\.(\d+)\.layer_norm1\.", r"blocks.\1.norm1."),
    (r"layers\.(\d+)\.layer_norm2\.", r"blocks.\1.norm2."),
    (r"layers\.(\d+)\.", r"blocks.\1."),
    (r"patch_embed\.projection\.", "patch_embed.proj."),
    (r"neck\.conv1\.", "neck.0."),
    (r"neck\.layer_norm1\.", "neck.1."),
    (r"neck\.conv2\.", "neck.2."),
    (r"neck\.layer_norm2\.", "neck.3."),
    (r"proj\.conv1\.", "net_2."),
    (r"proj\.conv2\.", "net_3."),
)


def official_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``UnlimitedOcrForConditionalGeneration`` state dict to the official DeepSeek-OCR layout.

    Fuses CLIP's q/k/v into ``qkv_proj`` and splits the merged experts per expert; works on meta tensors.
    CLIP's unused ``patch_embedding`` (in the official file, dropped by transformers) is not added here.
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in state_dict.items():
        if name == "lm_head.weight":
            out[name] = tensor
            continue
        key = name.removeprefix("model.")
        if key.startswith("vision_tower.sam_encoder."):
            rest = key.removeprefix("vision_tower.sam_encoder.")
            for pattern, repl in _SAM_RULES:
                rest, n = re.subn("^" + pattern, repl, rest)
                if n:
                    break
            out["model.sam_model." + rest] = tensor
        elif key.startswith("vision_tower.vision_encoder."):
            rest = key.removeprefix("vision_tower.vision_encoder.").replace(
                "encoder.layers.", "transformer.layers."
            )
            m = re.match(r"(.*self_attn\.)([qkv])_proj\.(weight|bias)$", rest)
            if m:
                qkv.setdefault(f"model.vision_model.{m[1]}qkv_proj.{m[3]}", {})[m[2]] = tensor
            else:
                out["model.vision_model." + rest] = tensor
        elif key.startswith("multi_modal_projector."):
            out["model.projector.layers." + key.removeprefix("multi_modal_projector.")] = tensor
        elif key == "view_separator":
            out["model.view_seperator"] = tensor
        elif key == "image_newline":
            out["model.image_newline"] = tensor
        elif key.startswith("language_model."):
            out.update(_official_language(key.removeprefix("language_model."), tensor))
        else:
            raise AssertionError(f"unmapped tensor {name}")
    for fused, parts in qkv.items():
        out[fused] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def _official_language(key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    m = re.match(r"(layers\.\d+\.mlp\.experts\.)(gate_up_proj|down_proj)$", key)
    if not m:
        return {"model." + key: tensor}
    out = {}
    for e in range(tensor.shape[0]):
        if m[2] == "down_proj":
            out[f"model.{m[1]}{e}.down_proj.weight"] = tensor[e]
        else:
            gate, up = tensor[e].chunk(2, dim=0)
            out[f"model.{m[1]}{e}.gate_proj.weight"] = gate
            out[f"model.{m[1]}{e}.up_proj.weight"] = up
    return out


def tiny_config() -> Any:
    """The translated ``UnlimitedOcrConfig`` of :data:`TINY_OFFICIAL_CONFIG`."""
    from optical_memory.encoders.checkpoint import translate_config

    return translate_config(TINY_OFFICIAL_CONFIG)


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Overwrite every parameter with seeded random values (zero-initialised rel-pos tables and unit norms
    would hide interpolation and orientation bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
            if param.ndim == 1 and "norm" in name:
                value = 1.0 + 0.1 * noise
            elif param.ndim == 1 or name.endswith("pos_embed"):
                value = 0.1 * noise
            else:
                fan_in = param.shape[-1] if param.ndim <= 3 else param[0].numel()
                value = noise / fan_in**0.5
            param.copy_(value.to(param.dtype))
    return model


def make_tiny_model(seed: int = 0) -> Any:
    """A random ``UnlimitedOcrForConditionalGeneration`` with the tiny config, fp32, eval mode."""
    from transformers import UnlimitedOcrForConditionalGeneration

    torch.manual_seed(seed)
    model = UnlimitedOcrForConditionalGeneration(tiny_config())
    return randomize_(model, seed).eval()


def make_tiny_checkpoint(
    folder: str | Path,
    *,
    seed: int = 0,
    vision_only: bool = False,
    index: bool = True,
    model: Any = None,
    edit: Any = None,
) -> Path:
    """Write a tiny random DeepSeek-OCR checkpoint folder in the official layout and return its path.

    Args:
        folder: Where to write (created if needed).
        seed: Seed of the random weights (same seed, same weights).
        vision_only: Write only the DeepEncoder tensors.
        index: Also write ``model.safetensors.index.json`` (the official layout has one).
        model: Save this ``UnlimitedOcrForConditionalGeneration`` instead of a new random one.
        edit: Optional callable taking and returning the official-name state dict before saving (tests use
            it to drop, add or reshape tensors).
    """
    from safetensors.torch import save_file

    from optical_memory.encoders.checkpoint import is_vision_key

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = make_tiny_model(seed) if model is None else model
    tensors = official_state_dict(model.state_dict())
    width = TINY_OFFICIAL_CONFIG["vision_config"]["width"]["clip-l-14-224"]["width"]
    gen = torch.Generator().manual_seed(seed + 1)
    tensors[CLIP_PATCH_KEY] = torch.randn((width, 3, 14, 14), generator=gen) * 0.02
    if vision_only:
        tensors = {k: v for k, v in tensors.items() if is_vision_key(k)}
    if edit is not None:
        tensors = edit(tensors)
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    save_file(tensors, str(folder / SHARD), metadata={"format": "pt"})
    if index:
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        weight_map = {k: SHARD for k in sorted(tensors)}
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    (folder / "config.json").write_text(json.dumps(copy.deepcopy(TINY_OFFICIAL_CONFIG), indent=1))
    return folder


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A random RGB image (never flat, so every pixel matters)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
