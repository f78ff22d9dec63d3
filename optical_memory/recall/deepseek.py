"""The ``deepseek`` reader: DeepSeek-OCR (DeepEncoder + DeepSeek3B-MoE decoder) reads a page back.

The network is transformers' ``UnlimitedOcrForConditionalGeneration`` (the DeepSeek-OCR v1 architecture),
loaded from the user's local checkpoint folder by :func:`optical_memory.encoders.checkpoint.load_model`;
the tokenizer is the folder's ``tokenizer.json`` (read with ``tokenizers``). What this module adds is what
DeepSeek-OCR's own ``infer()`` and vLLM runners do around the network:

- the prompt, in the ``plain`` conversation template (no roles): ``<image>\\nFree OCR.`` for plain text (the
  Fox setting), or ``<image>\\n<|grounding|>Convert the document to markdown.``;
- input ids ``[BOS 0] + [<image> 128815] * positions + tokens("\\nFree OCR.")``, the placeholder expanded to
  exactly the sequence positions of the page at its rung (g * (g + 1) + 1 for a g x g token grid:
  421 / 273 / 111 / 73 at Large / Base / Small / Tiny; :mod:`optical_memory.pricing.deepseek`);
- greedy decoding (transformers' ``generate``), the sliding-window no-repeat-n-gram rule (n 30 in 90 generated tokens,
  ``<td>``/``</td>`` exempt; :mod:`optical_memory.recall.ngram`), stopping at EOS (id 1) or
  ``max_new_tokens``;
- streaming: transformers' ``TextIteratorStreamer`` turns tokens into text as whole words (or CJK
  characters, or lines) are finished; decoding runs in a worker thread that may run at most
  :data:`STREAM_QUEUE_SIZE` pieces ahead of the consumer, and a consumer that stops early stops the
  decoding at its next step. Pieces are handed to a callback, or yielded by :meth:`DeepSeekReader.stream`.

On a CUDA GPU the model runs in bfloat16; on the CPU in float32, which works but is slow (the full model
takes minutes per page), and a warning says so. Pages whose side is not a ladder size (the forgetting
curve's 384 and 256 px) are fed at their own size when it is a multiple of 64: the token grid shrinks
(6 x 6, 4 x 4) and the model is extrapolating beyond the modes it was trained on.

Sources: DeepSeek-OCR ``modeling_deepseekocr.py`` (``infer``, ``format_messages``, ``text_encode``),
``conversation.py`` (``plain`` template), ``DeepSeek-OCR-vllm/run_dpsk_ocr_image.py`` (greedy,
``max_tokens`` 8192, n-gram 30/90); transformers 5.23 ``models/unlimited_ocr``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from optical_memory.errors import CheckpointError, ConfigError, InputError, MissingDependencyError
from optical_memory.ladder import TOKEN_PX, Rung, spec
from optical_memory.pricing.deepseek import IMAGE_TOKEN_ID, view_positions
from optical_memory.recall.base import ReadCallback, Reading, resolve_rung
from optical_memory.recall.ngram import EXEMPT_TOKEN_IDS, NGRAM_SIZE, NGRAM_WINDOW, SlidingWindowNoRepeatNGram

if TYPE_CHECKING:
    import torch

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PROMPTS",
    "STREAM_QUEUE_SIZE",
    "DeepSeekReader",
    "PageInput",
    "prompt_ids",
    "view_size",
]

logger = logging.getLogger(__name__)

BOS_ID = 0
EOS_ID = 1
PROMPTS: dict[str, str] = {
    "free": "<image>\nFree OCR.",
    "markdown": "<image>\n<|grounding|>Convert the document to markdown.",
}
"""DeepSeek-OCR's documented prompts: plain text (used for the Fox study) and grounded Markdown."""
CHECKPOINT_ENV = "OPTICAL_MEMORY_CHECKPOINT"
STREAM_QUEUE_SIZE = 32
"""Text pieces the decoding thread may hold for a streaming consumer before it waits for it."""
_POLL_S = 0.05
"""How often a decoding thread waiting on a full queue looks whether its consumer has gone."""


def view_size(image: Image.Image, rung: Rung | None) -> int:
    """Side of the square view the model sees: the rung's size, else the image's own side when it is a
    square multiple of 64 between 256 and 1280, else Base (1024).
    """
    if rung is not None:
        return spec(rung).size
    side = image.width
    if image.width == image.height and side % TOKEN_PX == 0 and 256 <= side <= spec(Rung.LARGE).size:
        return side
    return spec(Rung.BASE).size


def prompt_ids(encode: Callable[[str], list[int]], prompt: str, positions: int) -> list[int]:
    """Input ids of a one-image prompt: BOS, the image placeholder expanded, then the rest of the text.

    Args:
        encode: Text -> token ids without special tokens added.
        prompt: A prompt holding ``<image>`` exactly once.
        positions: How many placeholder tokens the image takes.

    Raises:
        ConfigError: If the prompt does not hold exactly one ``<image>``.
    """
    if prompt.count("<image>") != 1:
        raise ConfigError(f"a DeepSeek-OCR prompt needs exactly one <image>, got {prompt!r}")
    before, after = prompt.split("<image>")
    ids = [BOS_ID]
    ids += encode(before) if before else []
    ids += [IMAGE_TOKEN_ID] * positions
    ids += encode(after) if after else []
    return ids


@dataclass(frozen=True, slots=True)
class PageInput:
    """What the model gets for one page.

    Attributes:
        input_ids: The prompt ids (BOS, placeholders, prompt text).
        pixel_values: (1, 3, S, S) normalised pixels.
        size: S, the side of the view.
        rung: The rung read at (None for an off-ladder size).
    """

    input_ids: tuple[int, ...]
    pixel_values: torch.Tensor
    size: int
    rung: Rung | None


class _Cancelled:
    """A transformers stopping criterion: stop every sequence once ``event`` is set.

    Duck-typed like :class:`~optical_memory.recall.ngram.SlidingWindowNoRepeatNGram`, so this module does not
    import transformers before it decodes.
    """

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


class DeepSeekReader:
    """Reads pages with DeepSeek-OCR from a local checkpoint folder.

    Args:
        checkpoint: The folder (``config.json``, safetensors, ``tokenizer.json``); default the
            ``OPTICAL_MEMORY_CHECKPOINT`` environment variable.
        device: ``cuda``, ``cpu``, ... (default: CUDA when available).
        dtype: ``torch.bfloat16`` / ``torch.float32`` or their names (default: bf16 on CUDA, fp32 on CPU).
        prompt: ``free``, ``markdown`` or a prompt text holding ``<image>``.
        max_new_tokens: Bound on the tokens generated per page.
        ngram_size: n of the no-repeat rule (0 turns the rule off).
        ngram_window: Generated tokens the rule looks back over.
        model: An already loaded ``UnlimitedOcrForConditionalGeneration`` (then ``checkpoint`` is only
            used for the tokenizer, unless ``tokenizer`` is given too).
        tokenizer: A ``tokenizers.Tokenizer`` to use instead of the folder's ``tokenizer.json``.

    Raises:
        ConfigError: If no checkpoint is given or set, or a setting is invalid.
        CheckpointError: If the folder lacks files or its tensors do not match its config.
        MissingDependencyError: If torch, transformers, safetensors or tokenizers is missing (extra ``model``).
    """

    name = "deepseek"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: Any = None,
        prompt: str = "free",
        max_new_tokens: int = 4096,
        ngram_size: int = NGRAM_SIZE,
        ngram_window: int = NGRAM_WINDOW,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        torch = _import_torch()
        if max_new_tokens <= 0:
            raise ConfigError(f"max_new_tokens must be positive, got {max_new_tokens}")
        if ngram_size < 0 or ngram_window <= 0:
            raise ConfigError("ngram_size must be >= 0 (0 = off) and ngram_window positive")
        self.prompt = PROMPTS.get(prompt, prompt)
        prompt_ids(lambda s: [], self.prompt, 1)  # validates the placeholder
        self.max_new_tokens = max_new_tokens
        self.ngram_size = ngram_size
        self.ngram_window = ngram_window
        path = checkpoint if checkpoint is not None else os.environ.get(CHECKPOINT_ENV)
        if (model is None or tokenizer is None) and not path:
            raise ConfigError(
                f"the deepseek reader needs a DeepSeek-OCR checkpoint folder: pass checkpoint= or set "
                f"{CHECKPOINT_ENV} (the folder holds config.json, model-00001-of-000001.safetensors and "
                "tokenizer.json)"
            )
        self.tokenizer = tokenizer if tokenizer is not None else _load_tokenizer(Path(str(path)))
        if model is None:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            self.dtype = _dtype(torch, dtype, self.device)
            self._warn_if_slow()
            from optical_memory.encoders.checkpoint import load_model

            start = time.perf_counter()
            model, _ = load_model(Path(str(path)), device=self.device, dtype=self.dtype)
            logger.info("loaded DeepSeek-OCR from %s in %.1f s", path, time.perf_counter() - start)
        else:
            param = next(model.parameters())
            self.device = torch.device(device) if device else param.device
            self.dtype = _dtype(torch, dtype, self.device) if dtype is not None else param.dtype
            model = model.to(self.device, self.dtype)
        self.model = model.eval()

    def _warn_if_slow(self) -> None:
        if self.device.type == "cpu":
            logger.warning(
                "DeepSeek-OCR is running on the CPU in %s: this works but is slow (minutes per page for the "
                "full model); a CUDA GPU runs it in bfloat16",
                str(self.dtype).removeprefix("torch."),
            )

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens added (``<|grounding|>`` etc. are still matched)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens such as ``<|ref|>`` kept, BOS/EOS dropped)."""
        kept = [i for i in ids if i not in (BOS_ID, EOS_ID)]
        return str(self.tokenizer.decode(kept, skip_special_tokens=False))

    def prepare(self, image: Image.Image, *, rung: Rung | str | None = None) -> PageInput:
        """Pixels and prompt ids for one page.

        Raises:
            InputError: If ``image`` is not a PIL image (or ``rung`` is ``forgotten``).
        """
        from optical_memory.encoders.preprocess import fit_page, normalize

        if not isinstance(image, Image.Image):
            raise InputError(f"expected a PIL image, got {type(image).__name__}")
        r = resolve_rung(image, rung)
        size = view_size(image, r)
        pad = r is not None and not spec(r).resize  # Base/Large keep the aspect ratio on grey
        pixels = normalize(fit_page(image, size, pad=pad)).unsqueeze(0)  # (1, 3, S, S)
        ids = prompt_ids(self.encode_text, self.prompt, view_positions(size))
        return PageInput(tuple(ids), pixels.to(self.device, self.dtype), size, r)

    def logits_processor(self, prompt_length: int) -> SlidingWindowNoRepeatNGram | None:
        """The no-repeat-n-gram processor for a prompt of this length (None when the rule is off)."""
        if not self.ngram_size:
            return None
        return SlidingWindowNoRepeatNGram(
            prompt_length, ngram_size=self.ngram_size, window_size=self.ngram_window, exempt=EXEMPT_TOKEN_IDS
        )

    def generate_ids(
        self,
        page: PageInput,
        *,
        streamer: Any = None,
        cancel: threading.Event | None = None,
        stop_at_eos: bool = True,
    ) -> list[int]:
        """Greedy decoding through transformers' ``generate``; returns the generated ids (EOS included).

        Args:
            page: What :meth:`prepare` made of the page.
            streamer: A transformers streamer handed the prompt, then each new token.
            cancel: Decoding stops at the next step once this event is set.
            stop_at_eos: False always generates ``max_new_tokens`` tokens (for speed measurements).
        """
        torch = _import_torch()
        from transformers import LogitsProcessorList, StoppingCriteriaList

        ids = torch.tensor([page.input_ids], dtype=torch.long, device=self.device)  # (1, T)
        processor = self.logits_processor(ids.shape[1])
        with torch.inference_mode(), decode_attention(self.device):
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                pixel_values=page.pixel_values,
                logits_processor=LogitsProcessorList([processor] if processor is not None else []),
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                min_new_tokens=0 if stop_at_eos else self.max_new_tokens,
                eos_token_id=EOS_ID,
                pad_token_id=EOS_ID,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)] if cancel is not None else []),
            )
        return [int(t) for t in out[0, ids.shape[1] :].tolist()]

    def read(
        self,
        image: Image.Image,
        *,
        rung: Rung | str | None = None,
        page: int | None = None,
        on_text: ReadCallback | None = None,
    ) -> Reading:
        """Read a page; ``on_text`` (if given) receives the text piece by piece as it is generated.

        Raises:
            InputError: If ``image`` is not a PIL image.
        """
        inputs = self.prepare(image, rung=rung)
        start = time.perf_counter()
        if on_text is None:
            generated = self.generate_ids(inputs)
            self._warn_if_cut(generated)
        else:
            generated = []
            # closed even when on_text raises, so the decoding stops rather than waiting on a full queue
            with contextlib.closing(self._pieces(inputs, generated)) as pieces:
                for piece in pieces:
                    on_text(piece)
        seconds = time.perf_counter() - start
        return Reading(self.decode(generated), self.name, inputs.rung, seconds, len(generated))

    def stream(self, image: Image.Image, *, rung: Rung | str | None = None) -> Iterator[str]:
        """Yield the page's text piece by piece as it is generated (decoding runs in a worker thread).

        Leaving early (a ``break`` out of the loop, or ``close()``) stops the decoding and ends its thread.

        Raises:
            InputError: If ``image`` is not a PIL image.
        """
        yield from self._pieces(self.prepare(image, rung=rung), [])

    def _pieces(self, page: PageInput, generated: list[int]) -> Generator[str, None, None]:
        """Decode ``page`` in a worker thread, yielding the text its streamer finalises; ``generated``
        receives the ids at the end.

        However this generator ends (exhausted, closed early, or with an error), decoding is cancelled and
        the worker joined before it returns, so no thread outlives it.
        """
        cancel = threading.Event()
        streamer = _streamer_type()(self, cancel)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                generated.extend(self.generate_ids(page, streamer=streamer, cancel=cancel))
            except BaseException as exc:  # handed to the consumer, re-raised there
                failure.append(exc)
                streamer.on_finalized_text("", stream_end=True)  # generate never reached streamer.end()

        worker = threading.Thread(target=work, name="deepseek-recall", daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            cancel.set()
            worker.join()
        if failure:
            raise failure[0]
        self._warn_if_cut(generated)  # reached only when the stream ran to its end

    def _warn_if_cut(self, generated: list[int]) -> None:
        if generated and generated[-1] != EOS_ID:
            logger.warning("stopped at max_new_tokens=%d before the end of the page", self.max_new_tokens)


@functools.cache
def _streamer_type() -> type[Any]:
    """transformers' ``TextIteratorStreamer`` with a bounded queue and a cancel event, built on first use so
    importing this module does not import transformers.
    """
    from transformers import TextIteratorStreamer

    class BoundedTextStreamer(TextIteratorStreamer):
        """Holds at most :data:`STREAM_QUEUE_SIZE` pieces; once ``cancel`` is set it drops what it is given,
        so a decoding thread never waits on a consumer that has gone.
        """

        def __init__(self, reader: DeepSeekReader, cancel: threading.Event) -> None:
            # The reader decodes as this streamer needs: BOS/EOS dropped, <|ref|> and the like kept.
            super().__init__(reader, skip_prompt=True)  # type: ignore[arg-type]
            self.text_queue: queue.Queue[str | None] = queue.Queue(maxsize=STREAM_QUEUE_SIZE)
            self.cancel = cancel

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            items: list[str | None] = [text] if text else []  # the base class also queues empty pieces
            if stream_end:
                items.append(self.stop_signal)
            for item in items:
                while not self.cancel.is_set():
                    try:
                        self.text_queue.put(item, timeout=_POLL_S)
                        break
                    except queue.Full:
                        continue

    return BoundedTextStreamer


@contextlib.contextmanager
def decode_attention(device: Any) -> Iterator[None]:
    """On CUDA, keep SDPA off the cuDNN backend while decoding.

    cuDNN attention builds a plan for every new key length, so a decode loop (one new length per token)
    pays a plan build per step until every length has been seen once: measured on an H100 with the full
    model, 11 tokens/s on first use against 42 once warm. Flash / memory-efficient kernels need no plans.
    """
    if getattr(device, "type", str(device)) != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    with sdpa_kernel(backends):
        yield


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "model", "the deepseek reader") from exc
    return torch


def _dtype(torch: Any, dtype: Any, device: torch.device) -> Any:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"unknown dtype {dtype!r}: use bfloat16, float16 or float32")
        return value
    return dtype


def _load_tokenizer(folder: Path) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise MissingDependencyError("tokenizers", "model", "the deepseek reader") from exc
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint folder {folder} has no tokenizer.json: copy it from the DeepSeek-OCR download "
            "(it sits beside config.json)"
        )
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
