"""Verbatim spans and masked credentials, on strings from the real chats of ``benchmarks/data/chats``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optical_memory.errors import ConfigError
from optical_memory.spans import KINDS, MASK, extract, mask_secrets

CHATS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "chats"


def _texts(kind: str, text: str) -> list[str]:
    return [s.text for s in extract(text, kinds=(kind,))]


def _chat(name: str) -> str:
    messages = json.loads((CHATS / name).read_text())["messages"]
    return "\n".join(m.get("content") or "" for m in messages)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("id", "trace 019c5238-193d-71ea-96fe-a6cf3950a1c3 done", ["019c5238-193d-71ea-96fe-a6cf3950a1c3"]),
        ("id", "fixed in 12e2d10, see 0x1000", ["12e2d10", "0x1000"]),
        (
            "id",
            "order ORD-48213 and invoice INV_2024_0042 for 4815162342",
            ["ORD-48213", "INV_2024_0042", "4815162342"],
        ),
        ("id", "call to_iso8601 from pixel_array; in 2024 a decade passed; a facade", []),
        (
            "number",
            "took 0.782s, then 2.2 seconds; 128 bits at 20px",
            ["0.782s", "2.2 seconds", "128 bits", "20px"],
        ),
        ("number", "costs $1,299.00 or €25; 45% off; 1 in 5 ask; echo $1", ["$1,299.00", "€25", "45%"]),
        ("number", "买了10个苹果，花了300元，用时2小时", ["10个", "300元", "2小时"]),
        ("number", "load at 209.3 req/s, copies at 40 MB/s, 5 tok/s", ["209.3 req/s", "40 MB/s", "5 tok/s"]),
        ("url", "see (https://www.w3.org/TR/trace-context/).", ["https://www.w3.org/TR/trace-context/"]),
        ("email", "mail sloria1@gmail.com or git@github.com:repo", ["sloria1@gmail.com", "git@github.com"]),
        (
            "path",
            "edit /testbed/src/marshmallow/fields.py and lib/spotter/application.ex, then run reproduce.py",
            ["/testbed/src/marshmallow/fields.py", "lib/spotter/application.ex", "reproduce.py"],
        ),
        ("path", r"open C:\Users\me\notes.txt now", [r"C:\Users\me\notes.txt"]),
        (
            "code",
            "use `get_current_trace_id()` and `Spotter.Telemetry.Otel`, not `mix credo`",
            ["get_current_trace_id()", "Spotter.Telemetry.Otel"],
        ),
        (
            "quote",
            'the error says "Script completed successfully, no errors." and 「保持原样」',
            ["Script completed successfully, no errors.", "保持原样"],
        ),
        ("quote", 'an empty "" or ", " is no quote', []),
    ],
)
def test_each_kind_finds_what_an_agent_must_quote(kind: str, text: str, expected: list[str]) -> None:
    assert _texts(kind, text) == expected


def test_overlaps_go_to_the_longest_and_repeats_are_kept_once() -> None:
    text = "GET https://hex.pm/api/packages/opentelemetry_api/2.0 then again https://hex.pm/api/packages/opentelemetry_api/2.0"
    spans = extract(text)
    assert [(s.kind, s.text) for s in spans] == [("url", "https://hex.pm/api/packages/opentelemetry_api/2.0")]
    assert text[spans[0].start : spans[0].end] == spans[0].text


def test_real_chats_give_their_ids_urls_and_paths() -> None:
    spotter = _chat("en_agent_claude_code_spotter.json")
    kinds = {(s.kind, s.text) for s in extract(spotter)}
    assert ("id", "019c5238-193d-71ea-96fe-a6cf3950a1c3") in kinds
    assert ("url", "https://www.w3.org/TR/trace-context/") in kinds
    assert ("path", "lib/spotter_web/controllers/otel_trace_helpers.ex") in kinds
    assert ("code", "get_current_trace_id()") in kinds
    chinese = _chat("zh_adventure_sharegpt.json")
    assert any(s.kind == "number" and s.text.endswith("个") for s in extract(chinese))
    for path in sorted(CHATS.glob("*.json")):  # none of the public chats holds a credential
        assert mask_secrets(_chat(path.name))[1] == 0, path.name


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-4fT9xQ2mZ8vL1cR7yB3nW6kH0jD5sA2e",
        "sk-ant-api03-Zq8Xk2Lm9Nw4Rt7Yb1Vc6Hd3Jf5Gs0Pa",
        "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-2048-4096-Zx9Yw8Vu7Ts6",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ],
)
def test_credentials_in_known_formats_are_masked_and_counted(secret: str) -> None:
    text, n = mask_secrets(f"export KEY_VALUE={secret} # do not share")
    assert secret not in text and MASK in text and n == 1
    assert all(MASK not in s.text and secret not in s.text for s in extract(text))


def test_credentials_by_their_neighbours_are_masked_but_words_are_not() -> None:
    text = (
        "password: Xk9#mQ2$vL7p\n"
        "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0\n"
        "db = postgresql://app:s3cr3t-Pa55@db.internal/agents\n"
        "the token: placeholder and secret = something\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\n"
    )
    masked, n = mask_secrets(text)
    assert n == 4
    for secret in ("Xk9#mQ2$vL7p", "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "s3cr3t-Pa55", "MIIEowIBAAKCAQEA7"):
        assert secret not in masked
    assert "token: placeholder" in masked and "secret = something" in masked  # plain words stay
    assert "postgresql://app:[masked]@db.internal/agents" in masked


def test_unknown_kinds_are_refused() -> None:
    assert set(KINDS) >= {"id", "url"}
    with pytest.raises(ConfigError, match="unknown span kinds"):
        extract("x", kinds=("ids",))


def test_trim_drops_tool_output_first_then_the_last_kinds_and_keeps_the_order() -> None:
    from optical_memory.spans import line, trim

    exact = (
        ("path", "src/app/main.py", "tool"),
        ("id", "ORD-48213", "user"),
        ("quote", "ship it friday", "user"),
        ("url", "https://shop.example.com/o/48213", "assistant"),
        ("number", "12.5 ms", "user"),
        ("id", "9f2c1e7", "tool"),
    )
    size = sum(len(text) for _, text, _ in exact)
    assert trim(exact, size) == exact
    # tool results' spans go first (their last kinds first), then the assistant's, then the user's
    assert [t for _, t, _ in trim(exact, size - 1)] == [t for _, t, _ in exact if t != "src/app/main.py"]
    assert [t for _, t, _ in trim(exact, 60)] == ["ORD-48213", "ship it friday", "12.5 ms"]
    assert [t for _, t, _ in trim(exact, 20)] == ["ORD-48213", "12.5 ms"]
    assert trim(exact, 0) == ()
    assert line(3, trim(exact, 20)) == "page 3 · exact: ORD-48213 · 12.5 ms"
    assert line(3, ()) == ""
