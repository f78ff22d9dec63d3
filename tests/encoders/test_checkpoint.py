"""The checkpoint loader: official folder layout in, transformers model out, bad checkpoints refused."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from optical_memory.encoders import DeepSeekOCREncoder  # noqa: E402
from optical_memory.encoders.checkpoint import (  # noqa: E402
    is_vision_key,
    load_checkpoint_dir,
    load_model,
    load_vision_model,
    translate_config,
    vision_fingerprint,
)
from optical_memory.errors import CheckpointError  # noqa: E402
from tests.encoders.tiny import SHARD, TINY_OFFICIAL_CONFIG, make_tiny_checkpoint, noise_image  # noqa: E402

OFFICIAL = Path(__file__).resolve().parent / "data"  # the official config.json and index


def _official_config() -> dict:
    if not (OFFICIAL / "config.json").is_file():
        pytest.skip("official DeepSeek-OCR config.json not available")
    return json.loads((OFFICIAL / "config.json").read_text())


def test_translate_official_config():
    config = translate_config(_official_config())
    text, sam, clip = config.text_config, config.vision_config.sam_config, config.vision_config.encoder_config
    assert config.model_type == "unlimited_ocr" and config.image_token_id == 128815
    assert text.layer_types == ["full_attention"] * 12 and isinstance(text.sliding_window, int)
    assert text.mlp_layer_types == ["dense"] + ["sparse"] * 11
    assert (text.vocab_size, text.hidden_size, text.num_attention_heads, text.num_key_value_heads) == (
        129280,
        1280,
        10,
        10,
    )
    assert (text.n_routed_experts, text.num_experts_per_tok, text.n_shared_experts) == (64, 6, 2)
    assert (text.moe_intermediate_size, text.intermediate_size, text.max_position_embeddings) == (
        896,
        6848,
        8192,
    )
    assert text.rope_parameters["rope_theta"] == 10000.0
    assert (sam.hidden_size, sam.num_hidden_layers, sam.num_attention_heads, sam.mlp_dim) == (
        768,
        12,
        12,
        3072,
    )
    assert list(sam.global_attn_indexes) == [2, 5, 8, 11] and list(sam.downsample_channels) == [512, 1024]
    assert (sam.output_channels, sam.window_size, sam.image_size, sam.patch_size) == (256, 14, 1024, 16)
    assert (clip.hidden_size, clip.num_hidden_layers, clip.num_attention_heads, clip.intermediate_size) == (
        1024,
        24,
        16,
        4096,
    )
    assert clip.hidden_act == "quick_gelu" and clip.layer_norm_eps == 1e-5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(model_type="llama"), "deepseek_vl_v2"),
        (lambda c: c["language_config"].update(use_mla=True, kv_lora_rank=512), "latent attention"),
        (lambda c: c["projector_config"].update(input_dim=100), "input_dim"),
        (lambda c: c["projector_config"].update(n_embed=64), "n_embed"),
        (lambda c: c["vision_config"]["width"].pop("sam_vit_b"), "sam_vit_b"),
        (lambda c: c["vision_config"]["width"]["clip-l-14-224"].update(width=48), "CLIP width"),
        (lambda c: c.pop("vision_config"), "vision_config"),
    ],
)
def test_translate_refuses_inconsistent_configs(edit, message):
    config = copy.deepcopy(TINY_OFFICIAL_CONFIG)
    edit(config)
    with pytest.raises(CheckpointError, match=message):
        translate_config(config)


def test_checkpoint_dir_lists_the_official_files(tiny_checkpoint):
    files = load_checkpoint_dir(tiny_checkpoint)
    assert files.config_path.name == "config.json" and files.tokenizer_path is None
    assert [p.name for p in files.weight_files] == [SHARD]
    vision = files.keys(vision_only=True)
    assert "model.sam_model.blocks.0.attn.qkv.weight" in vision and "model.view_seperator" in vision
    assert not any(k.startswith(("model.layers.", "lm_head")) for k in vision)
    assert all(is_vision_key(k) for k in vision)


def test_missing_folder_or_config_names_what_is_missing(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint_dir(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_checkpoint_dir(tmp_path)


def test_index_naming_a_missing_file_is_refused(tiny_checkpoint, tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / SHARD).unlink()
    with pytest.raises(CheckpointError, match=SHARD):
        load_checkpoint_dir(folder)


def test_pickle_checkpoints_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_OFFICIAL_CONFIG))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(CheckpointError, match=r"pickle.*pytorch_model\.bin.*safetensors"):
        load_checkpoint_dir(tmp_path)
    with pytest.raises(CheckpointError, match="pickle"):
        DeepSeekOCREncoder.from_pretrained(tmp_path, device="cpu")


def test_vision_only_file_without_index_loads_and_encodes(tiny_model, tiny_encoder, tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "vision", model=tiny_model, vision_only=True, index=False)
    # without an index any *.safetensors name works
    (folder / SHARD).rename(folder / "deepencoder.safetensors")
    encoder = DeepSeekOCREncoder.from_pretrained(folder, device="cpu")
    image = noise_image(640, 640, seed=5)
    torch.testing.assert_close(encoder.encode([image], "small")[0], tiny_encoder.encode([image], "small")[0])
    assert encoder.fingerprint == tiny_encoder.fingerprint  # same weights, other file layout and path
    with pytest.raises(CheckpointError, match="missing"):
        load_model(folder)  # but the language model is not there


def test_vision_loader_reads_exactly_the_vision_weights(tiny_model, tiny_checkpoint):
    model, config = load_vision_model(tiny_checkpoint)
    assert not hasattr(model, "language_model") or model.language_model is None
    reference = tiny_model.model.state_dict()
    state = model.state_dict()
    assert state.keys() <= reference.keys() and len(state) == 63
    for key, tensor in state.items():
        assert torch.equal(tensor, reference[key]), key
    assert config.text_config.layer_types == ["full_attention", "full_attention"]


def test_full_model_loads_every_tensor(tiny_model, tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    reference = tiny_model.state_dict()
    state = model.state_dict()
    assert state.keys() == reference.keys()
    for key in reference:
        assert torch.equal(state[key], reference[key]), key
    assert not model.training


def _reshape(key: str, shape: tuple[int, ...]):
    def edit(tensors):
        tensors[key] = torch.zeros(shape)
        return tensors

    return edit


def test_mis_shaped_tensor_is_refused_with_its_name_and_shapes(tiny_model, tmp_path):
    key = "model.sam_model.blocks.0.attn.rel_pos_h"
    folder = make_tiny_checkpoint(tmp_path, model=tiny_model, edit=_reshape(key, (5, 16)))
    with pytest.raises(CheckpointError, match=r"mis-shaped") as info:
        DeepSeekOCREncoder.from_pretrained(folder, device="cpu")
    message = str(info.value)
    assert key in message and "(5, 16)" in message and "(27, 16)" in message


def test_mis_shaped_fused_qkv_is_refused(tiny_model, tmp_path):
    key = "model.vision_model.transformer.layers.0.self_attn.qkv_proj.weight"
    folder = make_tiny_checkpoint(tmp_path, model=tiny_model, edit=_reshape(key, (96, 64)))
    with pytest.raises(CheckpointError, match="q_proj"):
        load_vision_model(folder)


def test_mis_shaped_language_tensor_is_refused_by_the_full_loader(tiny_model, tmp_path):
    folder = make_tiny_checkpoint(tmp_path, model=tiny_model, edit=_reshape("model.norm.weight", (31,)))
    load_vision_model(folder)  # the encoder does not read it
    with pytest.raises(CheckpointError, match=r"norm\.weight"):
        load_model(folder)


def test_unexpected_and_missing_tensors_are_listed(tiny_model, tmp_path):
    def edit(tensors):
        tensors["model.sam_model.blocks.0.attn.extra"] = torch.zeros(3)
        tensors["model.mystery"] = torch.zeros(3)
        del tensors["model.image_newline"]
        return tensors

    folder = make_tiny_checkpoint(tmp_path, model=tiny_model, edit=edit)
    with pytest.raises(CheckpointError) as info:
        load_vision_model(folder)
    message = str(info.value)
    assert "model.sam_model.blocks.0.attn.extra" in message and "model.mystery" in message
    assert "missing" in message and "image_newline" in message


def test_fingerprint_changes_with_the_weights(tiny_checkpoint, tmp_path):
    other = make_tiny_checkpoint(tmp_path, seed=1, vision_only=True)
    same = vision_fingerprint(load_checkpoint_dir(tiny_checkpoint))
    assert same == vision_fingerprint(load_checkpoint_dir(tiny_checkpoint))
    assert vision_fingerprint(load_checkpoint_dir(other)) != same


def test_index_naming_a_tensor_the_file_lacks_is_refused(tiny_checkpoint, tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, folder)
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["model.sam_model.ghost"] = SHARD
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"does not hold model\.sam_model\.ghost"):
        load_vision_model(folder)
    with pytest.raises(CheckpointError, match="ghost"):
        vision_fingerprint(load_checkpoint_dir(folder))
