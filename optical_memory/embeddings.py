"""The ``embeddings`` context: input ids and ``inputs_embeds`` for a self-hosted DeepSeek-OCR language model.

DeepSeek-OCR ships no chat template (its ``infer`` uses the ``plain`` template: ``[BOS] + text before
<image> + image tokens + text after``). The memory lays its context out as one sequence, following
DeepSeek-VL2's ``deepseek`` conversation template (``<|User|>: ...\\n\\n<|Assistant|>: ...<｜end▁of▁sentence｜>``)
for the turns::

    <｜begin▁of▁sentence｜>                        BOS, id 0
    {system text}\\n\\n                            the system turns joined by a blank line (if any)
    <image> x n_1 \\n  <image> x n_2 \\n  ...      one line per page, oldest first, the open page last;
                                                 n = the page's positions (421 / 273 / 111 / 73); a page
                                                 with verbatim spans has them after its image positions
                                                 (" page 3 · exact: ...") on its line
    <|User|>: {text}\\n\\n                          a user turn (tool and later system turns as user
                                                 turns: "Tool result (name):\\n..." / "System note:\\n...")
    <|Assistant|>: {text}<｜end▁of▁sentence｜>      an assistant turn
    <|Assistant|>:                               the reply starts here

``<image>`` is id 128815 (:data:`~optical_memory.pricing.deepseek.IMAGE_TOKEN_ID`), ``<|User|>`` 128825,
``<|Assistant|>`` 128826 (each looked up in the tokenizer). Text is tokenized with the checkpoint's
``tokenizer.json``, piece by piece and with special-token names in the text encoded as plain text, so a
turn that contains ``<image>`` cannot forge an image position.
``inputs_embeds`` holds the language model's token embeddings (``model.embed_tokens.weight``) at text
positions and each page's vision tokens at its image positions, in order, as DeepSeek-OCR's
``masked_scatter_`` does (HF ``modeling_deepseekocr.py``; vLLM ``merge_multimodal_embeddings``).

Sources: DeepSeek-OCR HF ``modeling_deepseekocr.py`` (``infer``, ``format_messages``), DeepSeek-VL2
``conversation.py`` (template ``deepseek``), the DeepSeek-OCR paper (arXiv 2510.18234) section 3.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optical_memory.errors import CheckpointError, ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import torch

    from optical_memory.encoders.checkpoint import EmbeddingTable

IMAGE_TOKEN = "<image>"
USER_TOKEN = "<|User|>"
ASSISTANT_TOKEN = "<|Assistant|>"
BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"


@dataclass(frozen=True, slots=True)
class EmbeddingInputs:
    """What a self-hosted DeepSeek-OCR language model consumes for one context (torch tensors, on the CPU).

    Attributes:
        input_ids: (T,) int64 ids; every image position holds ``<image>`` (128815).
        image_mask: (T,) bool, True at image positions.
        image_embeds: (N, hidden) the pages' vision tokens, concatenated in order (N = image positions).
        inputs_embeds: (T, hidden) token embeddings with the vision tokens scattered into the image
            positions, in the encoder's dtype; None when the language model's embedding table is not
            available (no checkpoint folder configured, or a vision-only checkpoint file).
        page_ids: The pages shown, in order (the open page last, when there is one).
        page_positions: Per page, its (start, end) positions in the sequence (``end`` exclusive).
    """

    input_ids: torch.Tensor
    image_mask: torch.Tensor
    image_embeds: torch.Tensor = field(repr=False)
    inputs_embeds: torch.Tensor | None = field(repr=False)
    page_ids: tuple[int, ...]
    page_positions: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def batch(self, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
        """Keyword arguments for the language model: a batch of one, with an all-ones attention mask.

        ``inputs_embeds`` when available, else ``input_ids``.
        """
        mask = self.input_ids.new_ones(self.input_ids.shape)[None]
        main = (
            {"inputs_embeds": self.inputs_embeds[None]}
            if self.inputs_embeds is not None
            else {"input_ids": self.input_ids[None]}
        )
        out = {**main, "attention_mask": mask}
        return out if device is None else {k: v.to(device) for k, v in out.items()}


@functools.cache
def _load_tokenizer(path: str) -> Any:
    try:
        import tokenizers
    except ImportError as exc:
        raise MissingDependencyError("tokenizers", "model", "the embeddings context format") from exc
    tok = tokenizers.Tokenizer.from_file(path)
    tok.encode_special_tokens = True  # text never turns into special ids: a turn cannot forge <image>
    return tok


def load_tokenizer(path: str | Path) -> Any:
    """A private copy of a DeepSeek-OCR ``tokenizer.json`` that encodes special-token names as plain text.

    Raises:
        CheckpointError: If the file is missing or lacks the DeepSeek-OCR special tokens.
        MissingDependencyError: If ``tokenizers`` is not installed.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"no tokenizer.json at {file}: the embeddings format needs the DeepSeek-OCR checkpoint's tokenizer"
        )
    tok = _load_tokenizer(str(file.resolve()))
    missing = [
        t
        for t in (BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN, USER_TOKEN, ASSISTANT_TOKEN)
        if tok.token_to_id(t) is None
    ]
    if missing:
        raise CheckpointError(f"{file} is not a DeepSeek-OCR tokenizer: it lacks {', '.join(missing)}")
    return tok


@dataclass(frozen=True, slots=True)
class TextPart:
    """A turn as the layout sees it: role (``system``, ``user``, ``assistant``) and text."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class PagePart:
    """A page as the layout sees it: its id, vision tokens (positions, hidden) and verbatim spans' text."""

    page_id: int
    tokens: Any = field(repr=False)
    exact: str = ""


def layout_ids(
    tokenizer: Any, system: Sequence[str], pages: Sequence[tuple[int, int, str]], turns: Sequence[TextPart]
) -> tuple[list[int], list[tuple[int, int]]]:
    """The id sequence of a context and each page's (start, end) positions.

    Args:
        tokenizer: From :func:`load_tokenizer`.
        system: The system texts.
        pages: (page id, positions, verbatim spans' text) per page, in order.
        turns: The recent turns (roles ``user`` or ``assistant``; other roles become user turns upstream).
    """

    def text(s: str) -> list[int]:
        return list(tokenizer.encode(s, add_special_tokens=False).ids) if s else []

    special = {name: int(tokenizer.token_to_id(name)) for name in (BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN)}
    user, assistant = int(tokenizer.token_to_id(USER_TOKEN)), int(tokenizer.token_to_id(ASSISTANT_TOKEN))
    ids = [special[BOS_TOKEN]]
    if system:
        ids += text("\n\n".join(system) + "\n\n")
    newline = text("\n")
    spans = []
    for _, positions, exact in pages:
        spans.append((len(ids), len(ids) + positions))
        ids += [special[IMAGE_TOKEN]] * positions + (text(" " + exact + "\n") if exact else newline)
    for turn in turns:
        if turn.role == "assistant":
            ids += [assistant, *text(": " + turn.text), special[EOS_TOKEN]]
        else:
            ids += [user, *text(": " + turn.text + "\n\n")]
    ids += [assistant, *text(":")]
    return ids, spans


def build_inputs(
    tokenizer: Any,
    system: Sequence[str],
    pages: Sequence[PagePart],
    turns: Sequence[TextPart],
    table: EmbeddingTable | None,
) -> EmbeddingInputs:
    """Lay out a context and build its :class:`EmbeddingInputs`.

    The vision tokens' dtype (the first page's; float32 without pages) is the dtype of ``inputs_embeds``.

    Raises:
        ConfigError: If the embedding table's width differs from the vision tokens' width.
        MissingDependencyError: If torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "model", "the embeddings context format") from exc

    tensors = [_as_tensor(p.tokens) for p in pages]
    counts = [(p.page_id, int(t.shape[0]), p.exact) for p, t in zip(pages, tensors, strict=True)]
    ids, spans = layout_ids(tokenizer, system, counts, turns)
    input_ids = torch.tensor(ids, dtype=torch.long)
    image_mask = torch.zeros(len(ids), dtype=torch.bool)
    for start, end in spans:
        image_mask[start:end] = True
    dtype = tensors[0].dtype if tensors else torch.float32
    width = int(tensors[0].shape[1]) if tensors else (table.shape[1] if table is not None else 0)
    image_embeds = (
        torch.cat([t.to(dtype) for t in tensors]) if tensors else torch.zeros((0, width), dtype=dtype)
    )
    inputs_embeds = None
    if table is not None:
        if table.shape[1] != width:
            raise ConfigError(
                f"the vision tokens are {width} wide but the checkpoint's token embeddings are {table.shape[1]}: "
                "use the encoder of the same checkpoint"
            )
        inputs_embeds = torch.empty((len(ids), width), dtype=dtype)
        inputs_embeds[~image_mask] = table.lookup(input_ids[~image_mask].numpy()).to(dtype)
        inputs_embeds[image_mask] = image_embeds
    return EmbeddingInputs(
        input_ids,
        image_mask,
        image_embeds,
        inputs_embeds,
        tuple(p.page_id for p in pages),
        tuple(spans),
    )


def _as_tensor(tokens: Any) -> torch.Tensor:
    import torch

    if isinstance(tokens, torch.Tensor):
        return tokens.detach().to("cpu")
    return torch.from_numpy(tokens)
