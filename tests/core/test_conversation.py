"""Conversation files in every accepted form, and clear errors for the rest."""

import json

import pytest

from optical_memory.conversation import load_conversation, turns_from_json
from optical_memory.errors import InputError
from optical_memory.types import Turn, as_turn

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
    {"role": "assistant", "content": "Hello!"},
]
EXPECTED = [Turn("system", "Be brief."), Turn("user", "Hi\n\nthere"), Turn("assistant", "Hello!")]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_json_list(tmp_path):
    assert load_conversation(write(tmp_path, "a.json", json.dumps(MESSAGES))) == EXPECTED


def test_messages_object(tmp_path):
    assert load_conversation(write(tmp_path, "a.json", json.dumps({"messages": MESSAGES}))) == EXPECTED


def test_jsonl(tmp_path):
    text = "\n".join(json.dumps(m) for m in MESSAGES) + "\n\n"
    assert load_conversation(write(tmp_path, "a.jsonl", text)) == EXPECTED


def test_sharegpt_one_list_and_lines(tmp_path):
    record = {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}
    expected = [Turn("user", "Q"), Turn("assistant", "A")]
    assert load_conversation(write(tmp_path, "one.json", json.dumps(record))) == expected
    assert load_conversation(write(tmp_path, "two.json", json.dumps([record, record]))) == expected * 2
    lines = json.dumps(record) + "\n" + json.dumps(record)
    assert load_conversation(write(tmp_path, "l.jsonl", lines)) == expected * 2


def test_missing_file_and_bad_json_are_clear(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_conversation(tmp_path / "nope.json")
    with pytest.raises(InputError, match=r"bad\.json:1: not valid JSON"):
        load_conversation(write(tmp_path, "bad.json", '[{"role": "user",'))
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not valid JSON"):
        load_conversation(write(tmp_path, "bad.jsonl", '{"role": "user", "content": "x"}\n{oops\n'))
    with pytest.raises(InputError, match="empty"):
        load_conversation(write(tmp_path, "e.json", "  \n"))


def test_structure_errors_say_where():
    with pytest.raises(InputError, match="message 1"):
        turns_from_json([{"role": "user", "content": "x"}, {"content": "no role"}])
    with pytest.raises(InputError, match="'messages'"):
        turns_from_json({"foo": 1})
    with pytest.raises(InputError, match="known speakers"):
        turns_from_json({"conversations": [{"from": "alien", "value": "x"}]})
    with pytest.raises(InputError, match="image_url"):
        turns_from_json([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])


def test_as_turn_forms():
    assert as_turn("hi", role="user") == Turn("user", "hi")
    assert as_turn({"role": "tool", "content": None, "name": "search"}) == Turn("tool", "", "search")
    with pytest.raises(InputError, match="needs a role"):
        as_turn("hi")
    with pytest.raises(InputError, match="role must be one of"):
        as_turn({"role": "robot", "content": "x"})
    with pytest.raises(InputError, match="must be a string"):
        Turn("user", 42)  # type: ignore[arg-type]
