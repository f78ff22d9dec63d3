"""User settings of a memory: :class:`MemoryConfig` (pydantic, strict, saved with each stored session).

A config says how large the recent text window is, whether the text of paged turns is kept, which decay
policy assigns rungs (and its settings), the target provider of
:meth:`OpticalMemory.context <optical_memory.memory.OpticalMemory.context>` and its budget, and the render
profile pages are made with (by default the target provider's row of
:data:`optical_memory.pricing.profiles.PROFILES`).

The budget is one setting: a number of tokens, ``"window"`` (the default:
:data:`~optical_memory.pricing.budget.WINDOW_SHARE` of the target model's context window, from the
provider table), or None (no bound). ``context(budget=...)`` overrides it for one call.

Validation happens at the boundary: unknown fields, an unknown policy, provider or profile name, or policy
settings the policy does not accept are refused when the config is built. :func:`as_config` turns a
mapping, a JSON string or a config into a :class:`MemoryConfig` and reports problems as
:class:`~optical_memory.errors.ConfigError` (pydantic's own ``ValidationError`` is a ``ValueError`` too).
Configs saved by version 0.1 (``page_size``, the ``budget`` policy) are read and translated.

``exact_kinds`` and ``exact_chars`` choose the verbatim spans each page keeps as text beside its image (see
:mod:`optical_memory.spans`). ``gate_reader`` and ``gate_min_accuracy`` hold a page at its rung while a reader
could not read it at the next (see :mod:`optical_memory.gate`; off by default).

``encoder`` (an :class:`EncoderConfig`, or its name as a string) chooses the vision encoder of the
``embeddings`` context format; None keeps the deterministic fake encoder, so nothing in the core needs torch.

A stored session keeps its config. Reopening with another config replaces it only when the two are
compatible (:meth:`MemoryConfig.check_compatible`): the render profile cannot change, because stored pages
were laid out with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optical_memory import ladder
from optical_memory.errors import ConfigError, OpticalMemoryError
from optical_memory.pricing.profiles import RenderProfile, load_profile, profile_for
from optical_memory.spans import KINDS, check_kinds

PAGE_SIZES = tuple(s.size for s in ladder.LADDER)
Budget = int | Literal["window"] | None


class EncoderConfig(BaseModel):
    """Which vision encoder turns pages into vision tokens, and where its checkpoint lives.

    ``name`` is a key of :data:`optical_memory.encoders.ENCODERS`. ``path`` is a DeepSeek-OCR checkpoint folder
    as users download it: required for ``deepseek`` (the DeepEncoder's weights); for either encoder it also
    provides the tokenizer (``tokenizer.json``) and the language model's token embeddings
    (``model.embed_tokens.weight``, memory-mapped) that the ``embeddings`` context format needs. With ``fake``
    and a ``path``, the fake tokens take the checkpoint's hidden size. ``tokenizer`` names a ``tokenizer.json``
    when the folder has none (or when there is no folder: the ``embeddings`` format then gives ids and vision
    tokens but no ``inputs_embeds``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        default="fake", description="Encoder: 'fake' (numpy only) or 'deepseek' (needs the model extra)."
    )
    path: str | None = Field(
        default=None, description="DeepSeek-OCR checkpoint folder (required for 'deepseek')."
    )
    device: str | None = Field(
        default=None, description="'deepseek' only: torch device (default CUDA when available, else CPU)."
    )
    dtype: str | None = Field(
        default=None,
        description="'deepseek' only: float32, bfloat16 or float16 (default bf16 on CUDA, fp32 on CPU).",
    )
    batch_size: int | None = Field(default=None, ge=1, description="'deepseek' only: pages per forward pass.")
    tokenizer: str | None = Field(
        default=None, description="A tokenizer.json to use instead of the one in the checkpoint folder."
    )
    cache_mb: float | None = Field(
        default=256.0,
        gt=0,
        description="Most megabytes of cached vision tokens a session keeps (the oldest pages' go first); "
        "None keeps them all.",
    )

    @field_validator("name")
    @classmethod
    def _name_known(cls, value: str) -> str:
        from optical_memory.encoders.base import ENCODERS

        name = value.strip().lower()
        if name not in ENCODERS:
            raise ValueError(f"unknown encoder {value!r}: use one of {', '.join(sorted(ENCODERS))}")
        return name

    @field_validator("dtype")
    @classmethod
    def _dtype_known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().lower().removeprefix("torch.")
        canonical = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(name, name)
        if canonical not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"unknown dtype {value!r}: use float32, bfloat16 or float16")
        return canonical

    @model_validator(mode="after")
    def _options_fit(self) -> EncoderConfig:
        if self.name == "deepseek" and not self.path:
            raise ValueError("the 'deepseek' encoder needs path=<folder of the DeepSeek-OCR checkpoint>")
        if self.name == "fake":
            extra = [f for f in ("device", "dtype", "batch_size") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} apply to the 'deepseek' encoder only")
        return self


class MemoryConfig(BaseModel):
    """How an :class:`~optical_memory.memory.OpticalMemory` keeps its history.

    The recent window is the longest run of newest turns that satisfies both limits (``None`` lifts a
    limit); turns leaving it are packed, in order, into pages. Leading system turns (the system prompt)
    always stay text and count against neither limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recent_turns: int | None = Field(
        default=8,
        ge=0,
        description="Newest turns kept as text (None: no limit by count; 0: page every turn).",
    )
    recent_tokens: int | None = Field(
        default=None, ge=0, description="Most o200k tokens the recent text window may hold (None: no limit)."
    )
    keep_text: bool = Field(
        default=False,
        description="Keep the text of paged turns too (exact recall; pages pinned sharper are re-rendered).",
    )
    exact_kinds: tuple[str, ...] = Field(
        default=KINDS,
        description=(
            "Kinds of verbatim spans a page keeps as text beside its image (see optical_memory.spans): "
            "some of 'id', 'number', 'url', 'email', 'code', 'path', 'quote'; () keeps none."
        ),
    )
    exact_chars: int = Field(
        default=160,
        ge=0,
        description="Most characters of verbatim spans a page keeps at its sharpest rung (less as it decays).",
    )
    gate_reader: str | None = Field(
        default=None,
        description=(
            "A reader ('rapidocr', 'tesseract', 'endpoint', 'deepseek') that must still read a page at the "
            "rung the age rule moves it to (see optical_memory.gate); None: no gate."
        ),
    )
    gate_min_accuracy: float = Field(
        default=0.9, ge=0.0, le=1.0, description="The lowest score a page may have at the rung it goes to."
    )
    policy: str = Field(default="age", description="Decay policy assigning rungs: 'age'.")
    policy_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of the policy, e.g. {'unit': 'pages', 'large': 2, 'base': 4, 'small': 8}.",
    )
    provider: str = Field(
        default="deepseek-ocr",
        description="Default target of context(), e.g. 'openai:gpt-4o' (prices images, chooses the profile).",
    )
    budget: Budget = Field(
        default="window",
        description=(
            "Most tokens a context may cost, in the provider's tokens: a number, 'window' (half the model's "
            "context window) or None (no bound); context(budget=...) overrides it per call."
        ),
    )
    profile: str | dict[str, Any] | None = Field(
        default=None,
        description=(
            "Render profile: None (the provider's), a profile name, a .json profile file, or a dict of fields "
            "overriding the provider's profile, e.g. {'body_px': 18}."
        ),
    )
    encoder: EncoderConfig | None = Field(
        default=None,
        description=(
            "Vision encoder for the 'embeddings' context, e.g. {'name': 'deepseek', 'path': <checkpoint folder>} "
            "(None: the deterministic fake encoder, which needs no torch)."
        ),
    )

    @field_validator("gate_reader")
    @classmethod
    def _image_reader(cls, value: str | None) -> str | None:
        from optical_memory.recall.base import READERS

        if value is not None and (value not in READERS or value == "exact"):
            names = ", ".join(n for n in READERS if n != "exact")
            raise ValueError(f"gate_reader must read page images: one of {names}, not {value!r}")
        return value

    @field_validator("exact_kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            check_kinds(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("encoder", mode="before")
    @classmethod
    def _encoder_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _read_version_1(cls, data: Any) -> Any:
        """Translate configs saved by version 0.1: ``page_size`` and the ``budget`` policy."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "page_size" in data:
            size = data.pop("page_size")
            if size not in PAGE_SIZES:
                raise ValueError(f"page_size must be one of the ladder sizes {PAGE_SIZES}; got {size}")
            if data.get("profile") is None:  # 0.1 drew DeepSeek-OCR pages whatever the provider
                data["profile"] = {
                    "name": "deepseek-ocr",
                    "formula": "deepseek-ocr",
                    "rungs": {s.rung.value: [s.size, s.size] for s in ladder.LADDER if s.size <= size},
                    "body_px": round(22 * size / 1280),
                    "margin_px": round(32 * size / 1280),
                }
            data.setdefault("budget", None)  # 0.1 had no default bound
        if data.get("policy") == "budget":
            options = dict(data.get("policy_options") or {})
            standing = options.pop("budget", None)
            data["policy"], data["policy_options"] = "age", options
            if data.get("budget") is None:
                data["budget"] = standing
        return data

    @field_validator("budget")
    @classmethod
    def _budget_valid(cls, value: Budget) -> Budget:
        if isinstance(value, bool) or (isinstance(value, int) and value < 1):
            raise ValueError(f"budget must be a positive number of tokens, 'window' or None; got {value!r}")
        return value

    @field_validator("provider")
    @classmethod
    def _provider_known(cls, value: str) -> str:
        from optical_memory.pricing.providers import get_provider

        try:
            return get_provider(value).name
        except OpticalMemoryError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _policy_builds(self) -> MemoryConfig:
        try:
            self.build_policy()
        except OpticalMemoryError as exc:
            raise ValueError(str(exc)) from None
        except TypeError as exc:  # an option the policy does not take
            raise ValueError(f"bad options for policy {self.policy!r}: {exc}") from None
        if self.recent_turns is None and self.recent_tokens is None:
            raise ValueError(
                "set recent_turns or recent_tokens (or both); with neither nothing is ever paged"
            )
        try:
            self.render_profile()
        except OpticalMemoryError as exc:
            raise ValueError(str(exc)) from None
        return self

    def render_profile(self) -> RenderProfile:
        """The profile pages are made with: ``profile`` applied to the provider's row.

        Raises:
            ConfigError: If the profile is unknown or invalid.
        """
        from optical_memory.pricing.providers import get_provider

        base = profile_for(get_provider(self.provider).formula)
        return base if self.profile is None else load_profile(self.profile, base=base)

    @property
    def top_rung(self) -> ladder.Rung:
        """The rung at which pages are rendered (the sharpest a page can be)."""
        return self.render_profile().top

    def build_policy(self) -> Any:
        """A fresh policy object built from ``policy`` and ``policy_options``.

        Raises:
            ConfigError: If the policy name is unknown or its options are invalid.
        """
        from optical_memory.policies import get_policy

        try:
            return get_policy(self.policy, **self.policy_options)
        except TypeError as exc:
            raise ConfigError(f"bad options for policy {self.policy!r}: {exc}") from None

    def check_compatible(self, stored: MemoryConfig) -> None:
        """Check that this config can replace ``stored`` for an existing session.

        Raises:
            ConfigError: If the render profile's pages differ (stored pages were laid out with the stored
                one).
        """
        mine, theirs = self.render_profile(), stored.render_profile()
        if (mine.rungs, mine.style()) != (theirs.rungs, theirs.style()):
            raise ConfigError(
                f"this config draws pages with profile {mine.describe()}, but the session's pages were "
                f"laid out with {theirs.describe()}: open without a config, set profile={theirs.name!r} "
                "(with the same overrides), or use a new session"
            )

    def to_json(self) -> str:
        """The config as compact, key-sorted JSON (the form the store saves)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def as_config(value: MemoryConfig | Mapping[str, Any] | str | None) -> MemoryConfig:
    """Turn a config, a mapping of settings, a JSON string, or None (defaults) into a MemoryConfig.

    Raises:
        ConfigError: If the settings are invalid (the message names each bad field).
    """
    if isinstance(value, MemoryConfig):
        return value
    try:
        if value is None:
            return MemoryConfig()
        if isinstance(value, str):
            return MemoryConfig.model_validate_json(value)
        if isinstance(value, Mapping):
            return MemoryConfig.model_validate(dict(value))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    raise ConfigError(f"config must be a MemoryConfig, a dict or JSON; got {type(value).__name__}")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "config"
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "invalid memory config: " + "; ".join(parts)
