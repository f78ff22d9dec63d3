"""Fuzzed user inputs: conversation files and corrupted store files fail with the library's own errors.

A conversation file either loads or raises :class:`InputError`, whatever its bytes; a store file with random
bytes written over part of it either opens or raises :class:`StoreError` naming the file. Examples are
few (tens to a couple of hundred) so the module runs in seconds.
"""

from __future__ import annotations

import base64
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from optical_memory.conversation import load_conversation, turns_from_json
from optical_memory.errors import InputError, StoreError
from optical_memory.types import Turn

FUZZ = settings(
    max_examples=100,
    derandomize=True,  # the same examples on every run: CI never flakes on a rare one
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = (
    "role",
    "content",
    "messages",
    "conversations",
    "from",
    "value",
    "tool_calls",
    "tool_call_id",
    "name",
    "function",
    "arguments",
    "id",
    "type",
    "text",
    "image_url",
    "url",
)
WORDS = (
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "human",
    "gpt",
    "function_call",
    "observation",
    "text",
    "image_url",
    "call_1",
    '{"name": "f", "arguments": {}}',
    "data:image/png;base64,iVBORw0KGgo=",
    "data:image/png;base64,!!",
)


def _tiny_png() -> str:
    buf = io.BytesIO()
    Image.new("L", (4, 3), 200).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from((*WORDS, _tiny_png()))
)


def _nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5
    )


JSON = st.recursive(SCALARS, _nest, max_leaves=25)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(("user", "assistant", "system", "tool", "robot")) | SCALARS},
    optional={
        "content": SCALARS | st.lists(JSON, max_size=3),
        "tool_calls": JSON,
        "tool_call_id": SCALARS,
        "name": SCALARS,
    },
)
SHAREGPT = st.fixed_dictionaries(
    {
        "conversations": st.lists(
            st.fixed_dictionaries(
                {
                    "from": st.sampled_from(("human", "gpt", "function_call", "observation", "alien"))
                    | SCALARS
                },
                optional={"value": JSON},
            ),
            max_size=5,
        )
        | JSON
    }
)
DOCUMENT = (
    st.lists(MESSAGE, max_size=5)
    | st.builds(lambda ms: {"messages": ms}, st.lists(MESSAGE, max_size=5))
    | SHAREGPT
    | st.lists(SHAREGPT, min_size=1, max_size=3)
    | JSON
)


def _as_file_bytes(data: Any, form: str) -> bytes:
    if form == "jsonl" and isinstance(data, list):
        return "\n".join(json.dumps(d) for d in data).encode("utf-8") + b"\n"
    if form == "pretty":
        return json.dumps(data, indent=2).encode("utf-8")
    return json.dumps(data).encode("utf-8")


def _load_or_input_error(path: Path) -> None:
    try:
        turns = load_conversation(path)
    except InputError as exc:
        assert str(path) in str(exc) or "no such file" in str(exc)
    else:
        assert isinstance(turns, list) and all(isinstance(t, Turn) for t in turns)


@FUZZ
@given(data=DOCUMENT)
def test_parsed_json_converts_or_raises_input_error(data: Any) -> None:
    try:
        turns = turns_from_json(data, "fuzz")
    except InputError:
        return
    assert all(isinstance(t, Turn) for t in turns)


@FUZZ
@given(data=DOCUMENT, form=st.sampled_from(("json", "jsonl", "pretty")))
def test_conversation_files_load_or_raise_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: Any, form: str
) -> None:
    path = tmp_path_factory.mktemp("conv") / f"c.{form}"
    path.write_bytes(_as_file_bytes(data, form))
    _load_or_input_error(path)


@FUZZ
@given(
    data=st.lists(MESSAGE | SHAREGPT, min_size=2, max_size=5),
    cut=st.integers(0, 10_000),
    noise=st.binary(max_size=16),
)
def test_damaged_jsonl_loads_or_raises_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: list[Any], cut: int, noise: bytes
) -> None:
    raw = _as_file_bytes(data, "jsonl")
    cut %= len(raw) + 1
    path = tmp_path_factory.mktemp("conv") / "c.jsonl"
    path.write_bytes(raw[:cut] + noise + raw[cut:])
    _load_or_input_error(path)


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes_load_or_raise_input_error(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("conv") / "c.json"
    path.write_bytes(raw)
    _load_or_input_error(path)


def test_deep_nesting_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"deep\.json"):
        load_conversation(path)
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"role": "user", "content": "x"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError, match=r"deep\.jsonl:2"):
        load_conversation(lines)
    args = "[" * 5000 + "]" * 5000
    calls = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "a", "name": "f", "arguments": args}]}
    ]
    with pytest.raises(InputError, match="nested too deeply"):
        turns_from_json(calls)


# --- a store file with random bytes written over part of it -------------------------------------------


class _Pristine(bytes):
    def __repr__(self) -> str:  # hypothesis prints the test's arguments on failure: keep it short
        return f"<store file, {len(self)} bytes>"


@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real store: a session with a few turns, enough to seal pages."""
    from optical_memory.memory import OpticalMemory

    path = tmp_path_factory.mktemp("store") / "memory.db"
    with OpticalMemory.open(path, config={"recent_turns": 2}) as memory:
        for i in range(8):
            memory.add(
                {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: " + "words " * 300}
            )
    # fold the write-ahead log into the file so the bytes below are the whole store
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return _Pristine(path.read_bytes())


@FUZZ
@given(
    spots=st.lists(
        st.tuples(st.integers(0, 2**31), st.binary(min_size=1, max_size=64)), min_size=1, max_size=4
    )
)
def test_a_corrupted_store_reopens_or_raises_store_error(
    tmp_path_factory: pytest.TempPathFactory, store_bytes: bytes, spots: list[tuple[int, bytes]]
) -> None:
    from optical_memory.memory import OpticalMemory

    raw = bytearray(store_bytes)
    for offset, noise in spots:
        at = offset % len(raw)
        raw[at : at + len(noise)] = noise[: len(raw) - at]
    path = tmp_path_factory.mktemp("store") / "corrupt.db"
    path.write_bytes(bytes(raw))
    try:
        memory = OpticalMemory.open(path)
    except StoreError as exc:
        assert str(path) in str(exc)
    else:
        memory.close()


# --- damaged image files --------------------------------------------------------------------------------


def _image_files() -> list[bytes]:
    base = Image.new("RGB", (48, 32), (250, 250, 250))
    for x in range(0, 48, 3):
        base.putpixel((x, x % 32), (0, 0, 0))
    out = []
    for fmt, options in (
        ("PNG", {}),
        ("JPEG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("PNG", {"save_all": True, "append_images": [base.rotate(90)]}),
    ):
        buf = io.BytesIO()
        base.save(buf, format=fmt, **options)
        out.append(buf.getvalue())
    return out


IMAGE_FILES = _image_files()


@FUZZ
@given(
    which=st.integers(0, len(IMAGE_FILES) - 1),
    cut=st.integers(0, 4096),
    spots=st.lists(st.tuples(st.integers(0, 4096), st.binary(min_size=1, max_size=8)), max_size=5),
)
def test_damaged_image_files_open_or_raise_input_error(
    tmp_path_factory: pytest.TempPathFactory, which: int, cut: int, spots: list[tuple[int, bytes]]
) -> None:
    from optical_memory.images import open_image_file

    raw = bytearray(IMAGE_FILES[which])
    for offset, noise in spots:
        at = offset % len(raw)
        raw[at : at + len(noise)] = noise[: len(raw) - at]
    if cut < len(raw) and cut % 3 == 0:
        del raw[cut:]
    path = tmp_path_factory.mktemp("img") / "page.png"
    path.write_bytes(bytes(raw))
    try:
        image = open_image_file(path)
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert image.width * image.height > 0
