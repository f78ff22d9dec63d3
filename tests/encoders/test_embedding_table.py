"""The language model's token-embedding table, memory-mapped from the checkpoint's safetensors file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optical_memory.encoders.checkpoint import embedding_table
from optical_memory.errors import InputError
from tests.encoders.tiny import make_tiny_checkpoint


def test_rows_equal_the_models_embeddings(tiny_model, tiny_checkpoint):
    table = embedding_table(tiny_checkpoint)
    assert table is not None and table.dtype == "float32"
    assert isinstance(table.weight, np.memmap) and table.shape == (129280, 32)
    ids = torch.tensor([0, 5, 128815, 129279, 5])
    with torch.no_grad():
        assert torch.equal(table.lookup(ids.numpy()), tiny_model.get_input_embeddings()(ids))
    with pytest.raises(InputError, match="token ids must lie in"):
        table.lookup([129280])


def test_bfloat16_table_and_vision_only_file(tiny_model, tmp_path):
    def to_bf16(tensors):
        return {
            k: v.to(torch.bfloat16) if k == "model.embed_tokens.weight" else v for k, v in tensors.items()
        }

    folder = make_tiny_checkpoint(tmp_path / "bf16", model=tiny_model, edit=to_bf16)
    table = embedding_table(folder)
    assert table is not None and table.dtype == "bfloat16"
    rows = table.lookup([7, 9])
    want = tiny_model.get_input_embeddings().weight[[7, 9]].detach().to(torch.bfloat16)
    assert rows.dtype == torch.bfloat16 and torch.equal(rows, want)
    assert (
        embedding_table(make_tiny_checkpoint(tmp_path / "vision", model=tiny_model, vision_only=True)) is None
    )
