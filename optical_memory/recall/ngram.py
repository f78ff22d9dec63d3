"""DeepSeek-OCR's guard against repetition loops: a sliding-window no-repeat-n-gram rule.

Greedy decoding of a dense page can fall into a loop (the same line forever). DeepSeek-OCR's vLLM runners
ship a logits processor that bans any token which would complete an n-gram already seen among the last
``window`` generated tokens, with the table-cell tokens ``<td>`` / ``</td>`` exempt (tables legitimately
repeat). Settings upstream: n 30 in a window of 90 for images (20/50 for PDFs, 40/90 in eval).

Sources: DeepSeek-OCR ``DeepSeek-OCR-vllm/process/ngram_norepeat.py`` and ``run_dpsk_ocr_image.py``; vLLM
``model_executor/models/deepseek_ocr.py`` (``NGramPerReqLogitsProcessor``, same rule). There, the processor
sees the *generated* tokens only (never the prompt), which :class:`SlidingWindowNoRepeatNGram` reproduces
with its ``prompt_length``. transformers' ``UnlimitedOcrSlidingWindowNoRepeatNgramLogitsProcessor`` differs:
its window also reaches back into the prompt and it has no exemptions.

:func:`banned_tokens` is the rule as a pure function; the processor applies it per sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from optical_memory.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXEMPT_TOKEN_IDS",
    "NGRAM_SIZE",
    "NGRAM_WINDOW",
    "SlidingWindowNoRepeatNGram",
    "banned_tokens",
]

NGRAM_SIZE = 30
"""n of the rule DeepSeek-OCR uses for images."""
NGRAM_WINDOW = 90
"""Generated tokens the rule looks back over."""
EXEMPT_TOKEN_IDS: frozenset[int] = frozenset({128821, 128822})
"""``<td>`` and ``</td>`` in the DeepSeek-OCR vocabulary: allowed to repeat."""


def _check(ngram_size: int, window_size: int) -> None:
    if not isinstance(ngram_size, int) or ngram_size <= 0:
        raise ConfigError(f"ngram_size must be a positive integer, got {ngram_size!r}")
    if not isinstance(window_size, int) or window_size <= 0:
        raise ConfigError(f"window_size must be a positive integer, got {window_size!r}")


def banned_tokens(
    generated: Sequence[int],
    *,
    ngram_size: int = NGRAM_SIZE,
    window_size: int = NGRAM_WINDOW,
    exempt: Iterable[int] = EXEMPT_TOKEN_IDS,
) -> set[int]:
    """Tokens that must not come next, so no n-gram repeats within the window.

    Every n-gram that starts inside the last ``window_size`` generated tokens and whose first ``n - 1``
    tokens equal the last ``n - 1`` generated tokens bans its final token, unless that token is exempt.
    With fewer than ``ngram_size`` generated tokens nothing is banned. (For ``ngram_size == 1`` every
    token in the window is banned; upstream's slicing would misbehave there.)

    Args:
        generated: The tokens generated so far (not the prompt), oldest first.
        ngram_size: n.
        window_size: How many trailing generated tokens the n-grams are searched in.
        exempt: Token ids never banned.

    Raises:
        ConfigError: If ``ngram_size`` or ``window_size`` is not a positive integer.
    """
    _check(ngram_size, window_size)
    length = len(generated)
    if length < ngram_size:
        return set()
    ids = list(generated)
    n_prefix = ngram_size - 1
    prefix = ids[length - n_prefix :] if n_prefix else []
    banned: set[int] = set()
    for i in range(max(0, length - window_size), length - ngram_size + 1):
        if ids[i : i + n_prefix] == prefix:
            banned.add(int(ids[i + n_prefix]))
    return banned - set(exempt)


class SlidingWindowNoRepeatNGram:
    """The rule as a transformers ``LogitsProcessor`` (a callable ``(input_ids, scores) -> scores``).

    It is duck-typed rather than subclassed, so importing this module never imports transformers; pass it
    in a ``LogitsProcessorList`` to ``generate`` or call it from a decoding loop.

    Args:
        prompt_length: Tokens at the start of ``input_ids`` that are prompt, not generated text (they are
            ignored, as in DeepSeek-OCR's vLLM runner). 0 treats every token as generated.
        ngram_size: n (30 upstream).
        window_size: Trailing generated tokens searched (90 upstream).
        exempt: Token ids never banned (``<td>``, ``</td>`` upstream).

    Raises:
        ConfigError: For a non-positive size or a negative prompt length.
    """

    def __init__(
        self,
        prompt_length: int = 0,
        *,
        ngram_size: int = NGRAM_SIZE,
        window_size: int = NGRAM_WINDOW,
        exempt: Iterable[int] = EXEMPT_TOKEN_IDS,
    ) -> None:
        _check(ngram_size, window_size)
        if prompt_length < 0:
            raise ConfigError(f"prompt_length must not be negative, got {prompt_length}")
        self.prompt_length = prompt_length
        self.ngram_size = ngram_size
        self.window_size = window_size
        self.exempt = frozenset(int(t) for t in exempt)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Set the scores of banned tokens to -inf, per row of the batch.

        Args:
            input_ids: ``(batch, length)`` prompt plus generated tokens.
            scores: ``(batch, vocab)`` next-token scores; returned unchanged when nothing is banned.
        """
        out: Any = scores
        # Only the last ngram_size - 1 + window tokens can matter; copying them to Python is cheap.
        keep = self.window_size + self.ngram_size
        for row in range(input_ids.shape[0]):
            generated = input_ids[row, self.prompt_length :]
            skipped = max(0, generated.shape[0] - keep)
            tail = generated[skipped:].tolist()
            banned = banned_tokens(
                tail, ngram_size=self.ngram_size, window_size=self.window_size, exempt=self.exempt
            )
            if banned:
                if out is scores:
                    out = scores.clone()
                out[row, sorted(banned)] = float("-inf")
        return out  # type: ignore[no-any-return]
