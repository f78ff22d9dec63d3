"""Pricing: what a context costs in the target provider's own tokens, and whether it fits the budget.

- :mod:`~optical_memory.pricing.providers`: the provider table (image formulas, text encoding, window);
- :mod:`~optical_memory.pricing.profiles`: render profiles, the dated page size and glyph size per rung;
- :mod:`~optical_memory.pricing.deepseek`: DeepSeek-OCR's ``<image>`` token id and positions formulas;
- :mod:`~optical_memory.pricing.costs`: :class:`~optical_memory.pricing.costs.CostModel`, text, pages and
  labels priced for one provider and profile;
- :mod:`~optical_memory.pricing.budget`: the budget setting resolved to tokens, and the floor it must cover.

Nothing is re-exported here: import from the submodule (``from optical_memory.pricing.providers import
get_provider``). :mod:`~optical_memory.pricing.deepseek` sits just above :mod:`optical_memory.ladder` and
imports nothing else, so the ladder's users, the encoders and the readers can count with it.
"""
