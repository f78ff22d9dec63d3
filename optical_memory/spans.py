"""Verbatim spans: the strings an agent must quote exactly, found in a turn's text; and credentials masked.

Pixels keep the gist of a page but not exact strings (a digit or a hex letter read wrong is silently wrong),
so these are what a page keeps as text beside its image:

- ``id``: UUIDs, hex (``0x...``), hashes (7 to 64 hex digits with a digit and a letter), long digit runs
  (5 or more), and codes mixing letters and at least 3 digits (``ORD-48213``, ``INV_2024_0042``);
- ``number``: numbers with a unit, a rate or a currency (``12.5 ms``, ``3 GB``, ``40 MB/s``, ``45%``, ``$1,299.00``,
  ``300元``);
- ``url``, ``email``, and ``path`` (absolute and relative paths, Windows paths, file names with a known
  extension);
- ``code``: code identifiers in backticks (``foo_bar``, ``Class.method()``; no spaces);
- ``quote``: strings in quotation marks (straight, curly or CJK corner brackets; what a user marks so, so a
  page keeps them from user turns only).

:func:`extract` finds them, longest first where they overlap, in order of appearance, each once.
:func:`on_page` gives a page's spans, found in the whole text of each turn it holds (so none is cut where
a turn breaks across pages; quotes from user turns only, :func:`turn_kinds`), :func:`trim` fits them to a size cap and :func:`line` writes them as the text
a context sends beside the page's image (``page 12 · exact: ORD-48213 · https://example.com/a``).

A page's spans are fitted to ``exact_chars`` (the config) when it is sealed, and to a share of it as it
decays (:data:`EXACT_SHARE`): whole spans go, those found in tool results first, then the assistant's, then
the user's; by role, the last kind of :data:`KINDS` first (quotes, then paths, ..., ids last), within a kind
the later ones first. A forgotten page's spans go with it.

:func:`mask_secrets` replaces credentials with :data:`MASK` before anything is extracted or drawn: common
key formats (OpenAI, Anthropic, GitHub, GitLab, AWS, Slack, Google API keys, JWTs, private key blocks,
bearer tokens, passwords in URLs) and random-looking values next to a word like key, token, secret or
password. A masked credential is never a span. The memory masks a turn as it leaves the recent window, so
its page, its spans and its text kept never carry one.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from optical_memory.errors import ConfigError
from optical_memory.ladder import Rung

__all__ = [
    "EXACT_SHARE",
    "KINDS",
    "MASK",
    "Span",
    "extract",
    "line",
    "mask_secrets",
    "on_page",
    "trim",
    "turn_kinds",
]

Exact = tuple[tuple[str, str, str], ...]
"""A page's verbatim spans: (kind, text, role of the turn it is from) in order of appearance."""

KINDS = ("id", "number", "url", "email", "code", "path", "quote")
"""Every kind of span, in the order a page keeps them when it must drop some (the last goes first)."""
EXACT_SHARE: Mapping[Rung, float] = MappingProxyType(
    {Rung.LARGE: 1.0, Rung.BASE: 1.0, Rung.SMALL: 0.75, Rung.TINY: 0.5, Rung.FORGOTTEN: 0.0}
)
"""The share of ``exact_chars`` a page's spans keep at each rung (a forgotten page keeps none)."""
_SPECIFIC = ("id", "number", "url", "email", "path", "code", "quote")
"""Which kind a string found as two kinds is (a path in backticks is a path)."""
ROLES = ("user", "system", "assistant", "tool")
"""Whose spans a page keeps longest: a user's first, tool results' last (the trim order of :func:`trim`)."""
SEPARATOR = " · "
"""What separates the spans in :func:`line`."""
MASK = "[masked]"
"""What a credential is replaced with, on the page and in the spans."""

_UNITS = (
    "ns|µs|us|ms|sec|secs|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?|months?|years?|"
    "kb|mb|gb|tb|pb|kib|mib|gib|tib|bytes?|bits?|kbps|mbps|gbps|hz|khz|mhz|ghz|"
    "px|pt|rem|dpi|mm|cm|km|kg|mg|lbs?|oz|ml|°c|°f|mv|ma|kw|mw|kwh|"
    "tokens?|steps?|epochs?|items?|rows?|usd|eur|gbp|cny|rmb|jpy"
)
_RATES = r"(?:req|reqs|requests|ops|tok|tokens|it|kb|mb|gb|kib|mib|gib|rows|msgs?)/(?:s|sec|min|h|hr|day)|qps|rps|tps"
"""Rates, tried before the plain units so that ``MB/s`` is not cut at ``MB``."""
_UNITS_ATTACHED = "s|m|h|b|g|k|x"  # one letter: only right after the number (20s, 5m, 3x)
_CJK_UNITS = (
    "元|块|个|次|天|年|月|周|小时|分钟|秒|公里|千米|公斤|千克|克|米|厘米|毫米|岁|人|页|行|条|张|台|件|倍"
)
_NUMBER = r"\d(?:[\d,]*\d)?(?:\.\d+)?"

_PATTERNS: dict[str, re.Pattern[str]] = {
    "url": re.compile(r"\b(?:https?|ftp|wss?)://[^\s<>\"'`\]\[{}|\\^]+"),
    "email": re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    "path": re.compile(
        r"(?<![\w/.~-])(?:~|\.{1,2})?/(?:[\w.@+-]+/)*[\w.@+-]+/?"  # /usr/lib/x, ./src/a.py, ~/notes
        r"|(?<![\w/.-])(?:[\w.@+-]+/)+[\w@+-]+\.[A-Za-z][\w]{0,7}\b"  # src/pkg/mod.py
        r"|\b[A-Za-z]:\\(?:[\w .-]+\\)*[\w.-]+"  # C:\Users\me\x.txt
        r"|(?<![\w/.-])[\w-]+\.(?:py|pyi|js|jsx|ts|tsx|json|jsonl|md|rst|txt|csv|tsv|yaml|yml|toml|ini|cfg|"
        r"rs|go|java|kt|c|h|cc|cpp|hpp|cs|rb|php|sh|bash|sql|html|css|scss|vue|swift|lock|log|xml|ipynb|"
        r"dockerfile|env|pdf|png|jpg|jpeg|gif|svg|zip|tar|gz)\b"
    ),
    "code": re.compile(r"`([^`\s]{1,80})`"),
    "id": re.compile(
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"  # UUID
        r"|\b0[xX][0-9a-fA-F]+\b"  # hex
        r"|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b"  # hashes
        r"|(?<![\w.,])\d{5,}(?![\w.,]\d)"  # long digit runs
        r"|\b(?=(?:[A-Za-z_-]*\d){3})(?=[\w-]*[A-Za-z])[A-Za-z0-9][\w-]{4,}\b",  # ORD-48213, INV_2024_0042
        re.ASCII,
    ),
    "number": re.compile(
        rf"(?<![\w.$])[-+]?(?:[$€£¥]\s?(?:\d[\d,]*\.\d+|\d[\d,]*\d)"  # $1,299.00 $25 (not $1, a shell argument)
        rf"|{_NUMBER}(?:\s?%|\s?(?:{_RATES}|{_UNITS})\b|(?:{_UNITS_ATTACHED})\b|\s?(?:{_CJK_UNITS})))",
        re.IGNORECASE | re.ASCII,  # ASCII word boundaries: a number right after CJK text still starts one
    ),
    "quote": re.compile(
        r"\"([^\"\s][^\"\n]{1,158}[^\"\s])\"|“([^”\n]{2,160})”|「([^」\n]{2,160})」|『([^』\n]{2,160})』"
    ),
}
_TRAILING = ".,;:!?)]}'\""

_SECRETS = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"
    r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{22,}"
    r"|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/-]{16,}=*)")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)", re.IGNORECASE)
_NAMED = re.compile(
    r"(?i)(\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|token|password|passwd|pwd|"
    r"client[_-]?secret|private[_-]?key)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{8,})"
)
_MIN_ENTROPY = 3.5
"""Bits per character from which a long value of two kinds of characters (a hex token) reads as random."""


@dataclass(frozen=True, slots=True)
class Span:
    """A string to keep verbatim: its kind (see :data:`KINDS`), its text, and where it is in the source."""

    kind: str
    text: str
    start: int
    end: int


def extract(text: str, kinds: Collection[str] = KINDS) -> list[Span]:
    """The verbatim spans of ``text`` (credentials already masked), in order of appearance, each string once.

    Where candidates overlap, the longest wins (a URL over the path and numbers inside it); a quote holding
    other spans is kept whole.

    Raises:
        ConfigError: For an unknown kind.
    """
    check_kinds(kinds)
    found: list[Span] = []
    for kind in kinds:
        for match in _PATTERNS[kind].finditer(text):
            span = _span(kind, match)
            if span is not None and MASK not in span.text:
                found.append(span)
    found.sort(key=lambda s: (s.start, -(s.end - s.start), _SPECIFIC.index(s.kind)))
    out: list[Span] = []
    seen: set[str] = set()
    end = -1
    for span in found:
        if span.start < end:
            continue
        end = span.end
        if span.text not in seen:
            seen.add(span.text)
            out.append(span)
    return out


def check_kinds(kinds: Collection[str]) -> None:
    """Refuse kinds that are not in :data:`KINDS`.

    Raises:
        ConfigError: For an unknown kind.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ConfigError(f"unknown span kinds {sorted(unknown)}: use some of {', '.join(KINDS)}")


def turn_kinds(role: str, kinds: Collection[str]) -> list[str]:
    """The kinds of span a page keeps from a turn of ``role``: quotes from user turns only."""
    return [k for k in kinds if k != "quote" or role == "user"]


def on_page(pieces: Iterable[tuple[str, Sequence[Span], int, int]]) -> Exact:
    """The spans of a page: for each turn piece on it, (the turn's role, the spans of the turn's whole text,
    where the piece starts and ends), the spans that start within the piece, as (kind, text, role); each
    string once, in order of appearance."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for role, found, start, end in pieces:
        for span in found:
            if start <= span.start < end and span.text not in seen:
                seen.add(span.text)
                out.append((span.kind, span.text, role))
    return tuple(out)


def trim(exact: Sequence[tuple[str, str, str]], max_chars: int) -> Exact:
    """``exact`` with whole spans dropped until their text holds at most ``max_chars`` characters: those of
    tool results first, then the assistant's, then the user's (:data:`ROLES`); by role, the last kind of
    :data:`KINDS` first, and within a kind the later spans first. The order of appearance is kept."""
    keep = list(exact)
    size = sum(len(text) for _, text, _ in keep)
    if size <= max_chars:
        return tuple(keep)
    kinds = {kind: i for i, kind in enumerate(KINDS)}
    roles = {role: i for i, role in enumerate(ROLES)}

    def rank(i: int) -> tuple[int, int, int]:
        kind, _, role = keep[i]
        return (roles.get(role, len(ROLES)), kinds.get(kind, len(KINDS)), i)

    dropped: set[int] = set()
    for i in sorted(range(len(keep)), key=rank, reverse=True):
        if size <= max_chars:
            break
        dropped.add(i)
        size -= len(keep[i][1])
    return tuple(span for i, span in enumerate(keep) if i not in dropped)


def line(page_id: int, exact: Sequence[tuple[str, str, str]]) -> str:
    """The text a context sends beside a page's image: ``page 12 · exact: a · b`` ("" without spans)."""
    if not exact:
        return ""
    return f"page {page_id}{SEPARATOR}exact: " + SEPARATOR.join(text for _, text, _ in exact)


def _span(kind: str, match: re.Match[str]) -> Span | None:
    inner = next((g for g in match.groups() if g is not None), None) if match.groups() else None
    if inner is not None:  # a quote or a code name: the text inside the marks
        if not any(c.isalnum() for c in inner):
            return None
        start = match.start() + match.group(0).index(inner)
        return Span(kind, inner, start, start + len(inner))
    value = match.group(0)
    if kind == "id" and not _id_like(value):
        return None
    if kind in ("url", "path"):
        value = value.rstrip(_TRAILING)
    if kind == "url" and value.count("(") < value.count(")"):
        value = value[: value.rindex(")")]
    if not value:
        return None
    return Span(kind, value, match.start(), match.start() + len(value))


def _id_like(value: str) -> bool:
    """Whether a code of letters and digits reads as an id (``ORD-48213``) rather than a name
    (``from_iso8601``): hex is always an id; otherwise at least half of its letters and digits are digits."""
    if re.fullmatch(r"[0-9a-fA-FxX-]+", value):
        return True
    alnum = [c for c in value if c.isalnum()]
    return sum(c.isdigit() for c in alnum) >= 0.5 * len(alnum)


def mask_secrets(text: str) -> tuple[str, int]:
    """``text`` with every credential replaced by :data:`MASK`, and how many were masked."""
    text, n = _SECRETS.subn(MASK, text)
    text, bearer = _BEARER.subn(lambda m: m.group(1) + MASK, text)
    text, in_urls = _URL_PASSWORD.subn(lambda m: m.group(1) + MASK + m.group(3), text)
    named = 0

    def named_value(match: re.Match[str]) -> str:
        nonlocal named
        value = match.group(2)
        if MASK in value or not _looks_random(value):
            return match.group(0)
        named += 1
        return match.group(1) + MASK

    text = _NAMED.sub(named_value, text)
    return text, n + bearer + in_urls + named


def _looks_random(value: str) -> bool:
    """Whether a value written next to a word like ``token`` reads as a credential rather than a word: it
    mixes three kinds of characters (lower, upper, digits, symbols), or is 16 or more characters of two
    kinds with at least :data:`_MIN_ENTROPY` bits a character (short English words reach 3 bits too)."""
    classes = sum(
        any(test(c) for c in value)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    return classes >= 3 or (classes == 2 and len(value) >= 16 and _entropy(value) >= _MIN_ENTROPY)


def _entropy(value: str) -> float:
    """Shannon entropy of ``value``'s characters, in bits per character."""
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())
