"""The budget check: the setting resolved to tokens, and the floor of what always stays."""

import pytest

from optical_memory.errors import ConfigError
from optical_memory.pricing.budget import WINDOW_SHARE, check_floor, resolve_budget
from optical_memory.pricing.providers import get_provider


def test_window_is_a_share_of_the_models_context_window():
    provider = get_provider("openai:gpt-4o")
    assert resolve_budget("window", provider) == int(provider.context_window * WINDOW_SHARE)
    assert resolve_budget(None, provider) is None
    assert resolve_budget(5000, provider) == 5000


@pytest.mark.parametrize("budget", [0, -3, True, 2.5, "half"])
def test_other_budgets_are_config_errors(budget):
    with pytest.raises(ConfigError, match="positive number of tokens"):
        resolve_budget(budget, get_provider("deepseek-ocr"))


def test_the_budget_must_cover_the_text_and_the_open_page():
    check_floor(100, 60, 40)
    with pytest.raises(ConfigError, match=r"recent text alone \(60 tokens\) and the open page \(41 tokens\)"):
        check_floor(100, 60, 41)
    with pytest.raises(ConfigError, match=r"\(101 tokens\), which always stay"):
        check_floor(100, 101, 0)
