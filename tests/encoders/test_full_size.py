"""The full-size model from the official config: same tensors as the official checkpoint; bf16 on a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from optical_memory.encoders.checkpoint import translate_config  # noqa: E402
from tests.encoders.tiny import CLIP_PATCH_KEY, official_state_dict, randomize_  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
OFFICIAL_PARAMETERS = 3_336_106_240  # = 6,672,212,480 bytes of bf16 in the index metadata


def _official_config() -> dict:
    return json.loads((DATA / "config.json").read_text())


def _official_keys() -> set[str]:
    return set(json.loads((DATA / "model.safetensors.index.json").read_text())["weight_map"])


def _meta_model() -> torch.nn.Module:
    with torch.device("meta"):
        return transformers.UnlimitedOcrForConditionalGeneration(translate_config(_official_config()))


def test_meta_model_has_the_official_tensors_after_renaming():
    model = _meta_model()
    tensors = official_state_dict(model.state_dict())
    # CLIP's patch conv is in the file but unused (transformers drops it)
    tensors[CLIP_PATCH_KEY] = torch.empty((1024, 3, 14, 14), device="meta")
    official = _official_keys()
    assert len(official) == 2710
    assert set(tensors) == official, (
        sorted(set(tensors) - official)[:5],
        sorted(official - set(tensors))[:5],
    )
    assert sum(t.numel() for t in tensors.values()) == OFFICIAL_PARAMETERS
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    # A sample of deepseek_ocr.md section 3.2.
    assert shapes["model.sam_model.pos_embed"] == (1, 64, 64, 768)
    assert shapes["model.sam_model.blocks.2.attn.rel_pos_h"] == (127, 64)
    assert shapes["model.sam_model.blocks.3.attn.rel_pos_w"] == (27, 64)
    assert shapes["model.sam_model.blocks.0.attn.qkv.weight"] == (2304, 768)
    assert shapes["model.sam_model.neck.0.weight"] == (256, 768, 1, 1)
    assert shapes["model.sam_model.net_3.weight"] == (1024, 512, 3, 3)
    assert shapes["model.vision_model.embeddings.position_embedding.weight"] == (257, 1024)
    assert shapes["model.vision_model.transformer.layers.23.self_attn.qkv_proj.weight"] == (3072, 1024)
    assert shapes["model.vision_model.transformer.layers.0.mlp.fc1.weight"] == (4096, 1024)
    assert shapes["model.projector.layers.weight"] == (1280, 2048)
    assert shapes["model.image_newline"] == shapes["model.view_seperator"] == (1280,)
    assert shapes["model.embed_tokens.weight"] == shapes["lm_head.weight"] == (129280, 1280)
    assert shapes["model.layers.0.mlp.gate_proj.weight"] == (6848, 1280)
    assert shapes["model.layers.5.mlp.gate.weight"] == (64, 1280)
    assert shapes["model.layers.11.mlp.experts.63.down_proj.weight"] == (1280, 896)
    assert shapes["model.layers.1.mlp.shared_experts.up_proj.weight"] == (1792, 1280)


def test_meta_vision_model_matches_the_official_vision_tensors():
    from optical_memory.encoders._vision_model import deep_encoder_class

    config = translate_config(_official_config())
    with torch.device("meta"):
        vision = deep_encoder_class()(config)
    renamed = official_state_dict({"model." + k: v for k, v in vision.state_dict().items()})
    wanted = {
        k for k in _official_keys() if not k.startswith(("model.layers.", "model.embed", "model.norm", "lm_"))
    }
    assert set(renamed) | {CLIP_PATCH_KEY} == wanted
    # 401.37 M in the file (deepseek_ocr.md: ~401.4 M) less CLIP's unused 3 x 14 x 14 -> 1024 patch conv
    assert sum(t.numel() for t in vision.parameters()) == 401_372_160 - 1024 * 3 * 14 * 14


@pytest.mark.gpu
def test_full_size_encoder_bf16_close_to_fp32_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from optical_memory.encoders._vision_model import deep_encoder_class
    from optical_memory.encoders.deepseek import DeepSeekOCREncoder
    from optical_memory.encoders.sam_attention import fold_sam_attention
    from tests.encoders.tiny import noise_image

    config = translate_config(_official_config())
    model = randomize_(deep_encoder_class()(config), seed=0).eval().to("cuda")
    fold_sam_attention(model)  # as from_pretrained does
    images = [noise_image(900, 1200, seed=s) for s in range(2)]
    high = DeepSeekOCREncoder(model, fingerprint="random", batch_size=2)
    fp32 = {rung: high.encode(images, rung) for rung in ("tiny", "base")}
    low = DeepSeekOCREncoder(model.to(torch.bfloat16), fingerprint="random", batch_size=2)
    for rung, reference in fp32.items():
        for got, want in zip(low.encode(images, rung), reference, strict=True):
            assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
            cosine = torch.nn.functional.cosine_similarity(got.float(), want, dim=-1)
            assert cosine.min() > 0.99, (rung, cosine.min().item())
