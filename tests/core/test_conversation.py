"""Conversation files in every accepted form, and clear errors for the rest (caps included)."""

import base64
import json
import struct
import zlib

import pytest

from optical_memory import conversation
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


# --- bounded reading: streamed JSONL, caps with clear errors -------------------------------------------


def _jsonl(messages):
    return "\n".join(json.dumps(m) for m in messages) + "\n"


def test_jsonl_is_not_bound_by_the_json_document_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(conversation, "MAX_JSON_BYTES", 100)
    many = MESSAGES * 20  # far over 100 bytes, every line short
    assert load_conversation(write(tmp_path, "a.jsonl", _jsonl(many))) == EXPECTED * 20
    with pytest.raises(InputError, match=r"a\.json is over 100 bytes.*MAX_JSON_BYTES.*JSON Lines"):
        load_conversation(write(tmp_path, "a.json", json.dumps(many, indent=1)))


def test_a_jsonl_line_over_the_cap_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(conversation, "MAX_LINE_BYTES", 200)
    lines = [MESSAGES[0], MESSAGES[2], {"role": "user", "content": "x" * 300}, MESSAGES[2]]
    with pytest.raises(InputError, match=r"b\.jsonl:3: the line is longer than 200 bytes.*MAX_LINE_BYTES"):
        load_conversation(write(tmp_path, "b.jsonl", _jsonl(lines)))
    # a first line over the cap is reported too (the file is tried as one document first)
    with pytest.raises(InputError, match=r"c\.jsonl:1: the line is longer"):
        load_conversation(write(tmp_path, "c.jsonl", _jsonl(lines[2:])))
    # a minified document on one long line is a document, bound by MAX_JSON_BYTES only
    assert len(load_conversation(write(tmp_path, "d.json", json.dumps(lines)))) == 4


def test_message_count_and_length_caps_name_the_message(tmp_path, monkeypatch):
    monkeypatch.setattr(conversation, "MAX_MESSAGES", 3)
    four = [*MESSAGES, MESSAGES[2]]
    assert len(load_conversation(write(tmp_path, "ok.json", json.dumps(MESSAGES)))) == 3
    with pytest.raises(InputError, match=r"e\.json: message 3: .*more than 3 messages.*MAX_MESSAGES"):
        load_conversation(write(tmp_path, "e.json", json.dumps(four)))
    with pytest.raises(InputError, match=r"e\.jsonl:4: .*more than 3 messages"):
        load_conversation(write(tmp_path, "e.jsonl", _jsonl(four)))
    monkeypatch.setattr(conversation, "MAX_MESSAGES", 100)
    monkeypatch.setattr(conversation, "MAX_MESSAGE_CHARS", 10)
    long = [MESSAGES[0], {"role": "user", "content": "y" * 11}]
    with pytest.raises(InputError, match=r"f\.jsonl:2: the message is 11 characters long.*MAX_MESSAGE_CHARS"):
        load_conversation(write(tmp_path, "f.jsonl", _jsonl(long)))
    # turns_from_json takes data already in memory: the file caps do not apply
    assert len(turns_from_json(four * 2)) == 8


def test_jsonl_streaming_keeps_every_form(tmp_path):
    text = "\ufeff\n\n" + _jsonl(MESSAGES).replace("\n", "\r\n")  # BOM, blank lines, CRLF
    assert load_conversation(write(tmp_path, "crlf.jsonl", text)) == EXPECTED
    assert load_conversation(write(tmp_path, "bom.json", "\ufeff" + json.dumps(MESSAGES))) == EXPECTED
    pretty = json.dumps({"messages": MESSAGES}, indent=2)
    assert load_conversation(write(tmp_path, "pretty.json", pretty)) == EXPECTED
    one = json.dumps({"role": "user", "content": "only"})
    assert load_conversation(write(tmp_path, "one.jsonl", one + "\n")) == [Turn("user", "only")]
    # a literal U+2028 inside a JSON string is part of its line, not a line break
    sep = json.dumps({"role": "user", "content": "a\u2028b"}, ensure_ascii=False)
    assert load_conversation(write(tmp_path, "sep.jsonl", sep + "\n" + sep + "\n"))[0].content == "a\u2028b"


def test_jsonl_errors_name_the_line(tmp_path):
    record = json.dumps({"conversations": [{"from": "human", "value": "Q"}]})
    message = json.dumps({"role": "user", "content": "x"})
    with pytest.raises(InputError, match=r"mixed\.jsonl:3: expected a ShareGPT record"):
        load_conversation(write(tmp_path, "mixed.jsonl", f"{record}\n{record}\n{message}\n"))
    with pytest.raises(InputError, match=r"roles\.jsonl:2: .*role must be one of"):
        load_conversation(write(tmp_path, "roles.jsonl", f'{message}\n{{"role": "robot", "content": "x"}}\n'))
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(
        message.encode() + b"\n" + '{"role": "user", "content": "caf\xe9"}'.encode("latin-1") + b"\n"
    )
    with pytest.raises(InputError, match=r"latin1\.jsonl:2: not UTF-8"):
        load_conversation(p)
    with pytest.raises(InputError, match=r"conv\.jsonl:1: ShareGPT 'conversations' must be a list"):
        load_conversation(write(tmp_path, "conv.jsonl", '{"conversations": 5}\n{"conversations": []}\n'))
    with pytest.raises(InputError, match=r"digits\.json"):
        load_conversation(write(tmp_path, "digits.json", "[\n" + "1" * 5000 + "\n]"))


def _png_header_only(width, height):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [9_000, 100_000])  # over MAX_PIXELS; over Pillow's own bomb limit
def test_a_pasted_decompression_bomb_is_an_input_error(tmp_path, side):
    url = "data:image/png;base64," + base64.b64encode(_png_header_only(side, side)).decode()
    message = {
        "role": "user",
        "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}],
    }
    with pytest.raises(InputError, match=r"bomb\.jsonl:2: .*(image|bomb)"):
        load_conversation(write(tmp_path, "bomb.jsonl", _jsonl([MESSAGES[0], message])))
