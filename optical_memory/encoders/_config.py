"""Translate DeepSeek-OCR's official ``config.json`` (``deepseek_vl_v2``) into transformers' ``unlimited_ocr``.

The official file describes the vision side only by name and a few sizes
(``vision_config.width["sam_vit_b"]`` and ``["clip-l-14-224"]``); everything else is fixed in the reference
code (``deepencoder.py``: SAM MLP ratio 4, a 256-channel neck, 14-token windows, patch 16; CLIP FFN
4 x width). Those constants are the defaults here; a config may override them with the optional keys
``mlp_dim``, ``out_chans``, ``window_size``, ``patch_size`` (SAM) and ``ffn_hidden_size`` (CLIP), which the
tiny test checkpoints use. The language side (``language_config``) is DeepseekV2 without MLA.

Two settings differ from transformers' Unlimited-OCR defaults and are forced here: every text layer uses
full attention (``layer_types``; the 128-token reference sliding window is Unlimited-OCR's, not
DeepSeek-OCR's, and makes decoding drift after 128 tokens; ``sliding_window`` stays a number because
transformers rejects None), and the image token id is 128815 (``<image>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optical_memory.errors import CheckpointError, MissingDependencyError
from optical_memory.pricing.deepseek import IMAGE_TOKEN_ID

if TYPE_CHECKING:
    from transformers import UnlimitedOcrConfig

SAM_KEY = "sam_vit_b"
CLIP_KEY = "clip-l-14-224"

# language_config fields copied as they are (the names agree with UnlimitedOcrTextConfig)
_TEXT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "moe_intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "n_routed_experts",
    "n_shared_experts",
    "num_experts_per_tok",
    "n_group",
    "topk_group",
    "topk_method",
    "routed_scaling_factor",
    "max_position_embeddings",
    "rms_norm_eps",
    "bos_token_id",
    "eos_token_id",
    "hidden_act",
)


def translate_config(official: Mapping[str, Any]) -> UnlimitedOcrConfig:
    """Turn an official DeepSeek-OCR ``config.json`` (already parsed) into an ``UnlimitedOcrConfig``.

    Args:
        official: The parsed ``config.json`` (``"model_type": "deepseek_vl_v2"``).

    Returns:
        The transformers config, with full attention in every text layer and image token id 128815.

    Raises:
        CheckpointError: If the config is of another type, lacks a section, uses MLA or a router the
            transformers classes do not implement, or its vision, projector and language sizes disagree.
        MissingDependencyError: If transformers is not installed.
    """
    try:
        from transformers import UnlimitedOcrConfig
    except ImportError as exc:
        raise MissingDependencyError("transformers", "model", "the DeepSeek-OCR model") from exc

    model_type = official.get("model_type")
    if model_type != "deepseek_vl_v2":
        raise CheckpointError(
            f"config.json has model_type {model_type!r}; expected 'deepseek_vl_v2' (the official "
            "DeepSeek-OCR checkpoint)"
        )
    text = _text_config(official)
    vision = _vision_config(official)
    _check_projector(official, vision, text)
    try:
        return UnlimitedOcrConfig(vision_config=vision, text_config=text, image_token_id=IMAGE_TOKEN_ID)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"config.json does not describe a valid DeepSeek-OCR model: {exc}") from exc


def _section(official: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = official.get(name)
    if not isinstance(value, Mapping):
        raise CheckpointError(f"config.json has no '{name}' object")
    return value


def _text_config(official: Mapping[str, Any]) -> dict[str, Any]:
    lang = official.get("language_config")
    if not isinstance(lang, Mapping):
        lang = official  # older copies keep the language fields at the top level only
    if lang.get("use_mla") or lang.get("kv_lora_rank") or lang.get("q_lora_rank"):
        raise CheckpointError(
            "config.json asks for multi-head latent attention (use_mla / kv_lora_rank); DeepSeek-OCR's "
            "decoder uses plain multi-head attention and that is all the loader supports"
        )
    if lang.get("norm_topk_prob") or lang.get("scoring_func", "softmax") != "softmax":
        raise CheckpointError(
            "config.json asks for a MoE router (norm_topk_prob / scoring_func) not supported"
        )
    if "num_hidden_layers" not in lang or "hidden_size" not in lang:
        raise CheckpointError("config.json's language_config lacks num_hidden_layers or hidden_size")
    text: dict[str, Any] = {name: lang[name] for name in _TEXT_FIELDS if lang.get(name) is not None}
    layers = int(lang["num_hidden_layers"])
    first_dense = int(lang.get("first_k_dense_replace", 1) or 0)
    text["mlp_layer_types"] = ["dense" if i < first_dense else "sparse" for i in range(layers)]
    text["layer_types"] = ["full_attention"] * layers
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": float(lang.get("rope_theta", 10000.0))}
    if int(text.get("vocab_size", 129280)) <= IMAGE_TOKEN_ID:
        raise CheckpointError(
            f"vocab_size {text.get('vocab_size')} has no room for the <image> id {IMAGE_TOKEN_ID}"
        )
    return text


def _vision_config(official: Mapping[str, Any]) -> dict[str, Any]:
    vision = _section(official, "vision_config")
    widths = vision.get("width")
    if not isinstance(widths, Mapping) or SAM_KEY not in widths or CLIP_KEY not in widths:
        raise CheckpointError(f"config.json's vision_config.width needs '{SAM_KEY}' and '{CLIP_KEY}' entries")
    sam, clip = widths[SAM_KEY], widths[CLIP_KEY]
    try:
        sam_width = int(sam["width"])
        downsample = [int(c) for c in sam.get("downsample_channels", (512, 1024))]
        sam_config: dict[str, Any] = {
            "hidden_size": sam_width,
            "num_hidden_layers": int(sam["layers"]),
            "num_attention_heads": int(sam["heads"]),
            "global_attn_indexes": [int(i) for i in sam.get("global_attn_indexes", (2, 5, 8, 11))],
            "downsample_channels": downsample,
            "mlp_dim": int(sam.get("mlp_dim", 4 * sam_width)),
            "output_channels": int(sam.get("out_chans", 256)),
            "window_size": int(sam.get("window_size", 14)),
            "patch_size": int(sam.get("patch_size", 16)),
            "image_size": int(vision.get("image_size", 1024)),
        }
        clip_width = int(clip["width"])
        clip_config: dict[str, Any] = {
            "hidden_size": clip_width,
            "num_hidden_layers": int(clip["layers"]),
            "num_attention_heads": int(clip["heads"]),
            "intermediate_size": int(clip.get("ffn_hidden_size", 4 * clip_width)),
            "image_size": int(clip.get("image_size", 224)),
            "patch_size": int(clip.get("patch_size", 14)),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"config.json's vision_config.width is incomplete or malformed: {exc}") from exc
    if len(downsample) != 2:
        raise CheckpointError(f"SAM downsample_channels must list two convolutions, got {downsample}")
    if clip_width != downsample[-1]:
        raise CheckpointError(
            f"CLIP width {clip_width} must equal SAM's last downsample channels {downsample[-1]} (CLIP reads "
            "the SAM feature map as its patch embeddings)"
        )
    for name, cfg in (("SAM", sam_config), ("CLIP", clip_config)):
        if cfg["hidden_size"] % cfg["num_attention_heads"]:
            raise CheckpointError(f"{name} width {cfg['hidden_size']} is not divisible by its head count")
    bad = [i for i in sam_config["global_attn_indexes"] if not 0 <= i < sam_config["num_hidden_layers"]]
    if bad:
        raise CheckpointError(
            f"SAM global_attn_indexes {bad} are outside its {sam_config['num_hidden_layers']} layers"
        )
    return {"sam_config": sam_config, "encoder_config": clip_config}


def _check_projector(official: Mapping[str, Any], vision: Mapping[str, Any], text: Mapping[str, Any]) -> None:
    proj = _section(official, "projector_config")
    if proj.get("projector_type", "linear") != "linear":
        raise CheckpointError(
            f"projector_type {proj.get('projector_type')!r} is not supported (only 'linear')"
        )
    fused = vision["encoder_config"]["hidden_size"] + vision["sam_config"]["downsample_channels"][-1]
    if int(proj.get("input_dim", fused)) != fused:
        raise CheckpointError(f"projector input_dim {proj.get('input_dim')} != CLIP + SAM channels {fused}")
    if int(proj.get("n_embed", text["hidden_size"])) != int(text["hidden_size"]):
        raise CheckpointError(
            f"projector n_embed {proj.get('n_embed')} != language hidden_size {text['hidden_size']}"
        )
