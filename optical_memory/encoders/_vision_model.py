"""``DeepEncoderModel``: transformers' ``UnlimitedOcrModel`` without the language model.

Encoding pages needs the vision tower (SAM-B + CLIP-L), the 2048 -> 1280 projector and the two learned
embeddings (row newline, view separator): about 0.4 B of DeepSeek-OCR's 3.3 B parameters. This subclass
builds only those, so its ``get_image_features`` (inherited unchanged from transformers: token layout, local
tiles then global view then separator) runs without allocating the MoE decoder. Its model type stays
``unlimited_ocr``, so ``from_pretrained`` applies transformers' own conversion mapping to it.

Source: transformers 5.23 ``models/unlimited_ocr/modeling_unlimited_ocr.py`` (``UnlimitedOcrModel.__init__``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from optical_memory.errors import MissingDependencyError


@cache
def deep_encoder_class() -> Any:
    """The ``DeepEncoderModel`` class (built on first use so importing this module needs no torch).

    Raises:
        MissingDependencyError: If torch or transformers is not installed.
    """
    try:
        import torch
        from torch import nn
        from transformers.models.unlimited_ocr import modeling_unlimited_ocr as upstream
    except ImportError as exc:
        raise MissingDependencyError("transformers", "model", "the DeepSeek-OCR encoder") from exc

    class DeepEncoderModel(upstream.UnlimitedOcrModel):  # type: ignore[no-untyped-call]
        """``UnlimitedOcrModel`` with the vision tower, projector, newline and separator only."""

        def __init__(self, config: Any) -> None:
            # Skip UnlimitedOcrModel.__init__ (it builds the language model); mirror its vision half.
            upstream.UnlimitedOcrPreTrainedModel.__init__(self, config)
            vision = config.vision_config
            hidden = config.text_config.hidden_size
            self.vision_tower = upstream.UnlimitedOcrVisionModel(vision)
            self.multi_modal_projector = nn.Linear(
                vision.sam_config.downsample_channels[-1] + vision.encoder_config.hidden_size, hidden
            )
            self.vocab_size = config.text_config.vocab_size
            self.view_separator = nn.Parameter(torch.empty(hidden))
            self.image_newline = nn.Parameter(torch.empty(hidden))
            self.post_init()  # type: ignore[no-untyped-call]

        def get_input_embeddings(self) -> Any:
            raise NotImplementedError("DeepEncoderModel has no language model")

    # transformers applies its conversion mappings only to its own classes, or to classes registered by
    # name: give this one the "unlimited_ocr" renames (sam_model -> vision_tower.sam_encoder, ...). The
    # nested SAM and CLIP encoders are transformers classes and keep their own (qkv split, block names).
    from transformers.conversion_mapping import (
        get_checkpoint_conversion_mapping,
        register_checkpoint_conversion_mapping,
    )

    mapping = get_checkpoint_conversion_mapping("unlimited_ocr")  # type: ignore[no-untyped-call]
    register_checkpoint_conversion_mapping(DeepEncoderModel.__name__, mapping, overwrite=True)
    return DeepEncoderModel
