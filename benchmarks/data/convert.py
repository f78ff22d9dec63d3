"""Convert real public conversations into OpenAI-style chat files for the benchmarks.

Reads raw files taken unmodified from public repositories (see ``SOURCES.md`` for where each came from)
and writes one JSON file per conversation into ``chats/``::

    {"source": {"dataset", "repository", "path", "commit", "license", "selection"},
     "messages": [{"role": ..., "content": ..., ["name"], ["tool_calls"], ["tool_call_id"]}, ...]}

Message text is copied exactly as the source has it: nothing is cleaned, trimmed or re-wrapped, because
the benchmarks measure how messy real text is handled. Every exception is named in the file's
``selection`` note: LoCoMo's photo captions appended, the separator between joined content blocks, the
markers Aider's log puts around each line, tool-call arguments re-serialised as JSON strings.

Run: ``python benchmarks/data/convert.py [--raw-dir /tmp/rawdata] [--out benchmarks/data/chats]``
(every raw file can also be given on its own, see ``--help``). It validates what it writes and prints a
summary; ``validate`` is importable for tests.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Message = dict[str, Any]
Chat = dict[str, Any]

HERE = Path(__file__).resolve().parent
ROLES = frozenset({"system", "user", "assistant", "tool"})
# LoCoMo's own task_eval/evaluation_stats.py writes a shared photo as "[shares <blip_caption>]"; the
# captions already read "a photo of ...", so the caption follows "shares" directly.
LOCOMO_PHOTO = " [shares {caption}]"
BLOCK_SEPARATOR = "\n\n"  # between several text blocks of one Claude Code message


def _source(
    dataset: str, repository: str, path: str, commit: str, license: str, selection: str
) -> dict[str, str]:
    return {
        "dataset": dataset,
        "repository": repository,
        "path": path,
        "commit": commit,
        "license": license,
        "selection": selection,
    }


# --- LoCoMo -----------------------------------------------------------------------------------------


def locomo(raw: Path, sample_id: str = "conv-26") -> Chat:
    """All sessions of one LoCoMo conversation in order; speaker_a is the user, speaker_b the assistant."""
    item = next(x for x in json.loads(raw.read_text(encoding="utf-8")) if x["sample_id"] == sample_id)
    conv = item["conversation"]
    roles = {conv["speaker_a"]: "user", conv["speaker_b"]: "assistant"}
    keys = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k.split("_")[1]))
    messages: list[Message] = []
    photos = 0
    for key in keys:
        for turn in conv[key]:
            text = turn["text"]
            if "blip_caption" in turn:
                text += LOCOMO_PHOTO.format(caption=turn["blip_caption"])
                photos += 1
            messages.append({"role": roles[turn["speaker"]], "name": turn["speaker"], "content": text})
    selection = (
        f"sample_id {sample_id}, sessions 1-{len(keys)} in order, every turn ({len(messages)}). "
        f"speaker_a ({conv['speaker_a']}) -> user, speaker_b ({conv['speaker_b']}) -> assistant, name = speaker. "
        f"{photos} turns that share a photo get '{LOCOMO_PHOTO.format(caption='<blip_caption>')}' appended "
        "(LoCoMo's task_eval/evaluation_stats.py wording); session dates and image URLs are left out."
    )
    return {
        "source": _source(
            "LoCoMo (locomo10)",
            "snap-research/LoCoMo",
            "data/locomo10.json",
            "cbfbc1dba6bc53d00625212a0f22d55ffee7c1fc",
            "CC BY-NC 4.0 (non-commercial use only)",
            selection,
        ),
        "messages": messages,
    }


# --- ShareGPT (ShareGPT "from"/"value" records) -------------------------------------------------------

SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def sharegpt_zh(raw: Path, line: int, what: str) -> Chat:
    """One line of MedicalGPT's sharegpt_zh_1K_format.jsonl, human -> user and gpt -> assistant."""
    record = json.loads(raw.read_text(encoding="utf-8").split("\n")[line])
    messages = [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]
    return {
        "source": _source(
            "ShareGPT, Chinese (sharegpt_zh_1K_format)",
            "shibing624/MedicalGPT",
            "data/sft/sharegpt_zh_1K_format.jsonl",
            "d5f7a1aeffac3155dd149852989f2e83f929551a",
            "Apache-2.0 (repository); its README limits the data to research use; the ShareGPT text itself "
            "carries no licence of its own",
            f"line {line} (0-based) of the file, whole conversation ({len(messages)} messages): {what}.",
        ),
        "messages": messages,
    }


# --- SWE-agent ----------------------------------------------------------------------------------------


def _literal(value: Any) -> Any:
    """SWE-agent stores some lists as Python-repr strings; others are already JSON lists."""
    return ast.literal_eval(value) if isinstance(value, str) else value


def swe_agent_function_calling(raw: Path) -> Chat:
    """SWE-agent trajectory whose history is already OpenAI-shaped (tool_calls, tool_call_ids)."""
    history = json.loads(raw.read_text(encoding="utf-8"))["history"]
    messages: list[Message] = []
    multi = 0
    for entry in history:
        message: Message = {"role": entry["role"], "content": entry["content"]}
        if entry.get("tool_calls"):
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                    },
                }
                for call in _literal(entry["tool_calls"])
            ]
        if entry["role"] == "tool":
            ids = _literal(entry["tool_call_ids"])
            multi += len(ids) > 1
            message["tool_call_id"] = ids[0]  # one output can't be split between ids, so the first gets it
        messages.append(message)
    path = (
        "trajectories/demonstrations/replay__marshmallow-code__marshmallow-1867__function_calling_replace_from_source/"
        "marshmallow-code__marshmallow-1867.traj"
    )
    selection = (
        f"the trajectory's 'history' list, all {len(messages)} entries in order; tool_calls and tool_call_ids "
        f"copied as stored. {multi} tool messages answer several ids (such output would go to the first id). "
        "The demonstration reuses call ids: call_5iDdbOYybq7L19vqXmR0DPaU names 5 different calls and "
        "call_ahToD2vM0aQWJPkRmy5cumru 2, each answered right after its call."
    )
    return {
        "source": _source(
            "SWE-agent demonstration trajectory (function calling)",
            "princeton-nlp/SWE-agent",
            path,
            "43ea05d2c727115b3976e879a1e48624bdbfc938",
            "MIT",
            selection,
        ),
        "messages": messages,
    }


def swe_agent_text(raw: Path) -> Chat:
    """SWE-agent trajectory in the text format: observations come back as user messages."""
    history = json.loads(raw.read_text(encoding="utf-8"))["history"]
    messages = [{"role": entry["role"], "content": entry["content"]} for entry in history]
    path = (
        "tests/test_data/trajectories/gpt4__swe-bench-dev-easy_first_only__default__t-0.00__p-0.95__c-3.00__install-1/"
        "pydicom__pydicom-1458.traj"
    )
    return {
        "source": _source(
            "SWE-agent test trajectory (gpt4, text actions)",
            "princeton-nlp/SWE-agent",
            path,
            "abd42d9469d14862b7d833837515d9ed10c9a618",
            "MIT",
            f"the trajectory's 'history' list, all {len(messages)} entries as is (message 1 is the in-context "
            "demonstration SWE-agent sends, marked is_demo in the source).",
        ),
        "messages": messages,
    }


# --- Glaive function calling (LLaMA-Factory demo) ---------------------------------------------------


def glaive(raw: Path) -> Chat:
    """The longest conversation of the demo file that calls a function, in OpenAI tool-call form."""
    data = json.loads(raw.read_text(encoding="utf-8"))

    def size(i: int) -> tuple[int, int]:
        turns = data[i]["conversations"]
        return len(turns), sum(len(t["value"]) for t in turns)

    with_calls = [
        i for i, x in enumerate(data) if any(t["from"] == "function_call" for t in x["conversations"])
    ]
    index = max(with_calls, key=lambda i: (*size(i), -i))
    messages: list[Message] = []
    calls = 0
    for turn in data[index]["conversations"]:
        kind, value = turn["from"], turn["value"]
        if kind == "function_call":
            call = json.loads(value)
            arguments = call["arguments"]
            calls += 1
            messages.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": f"call_{calls}",
                            "type": "function",
                            "function": {
                                "name": call["name"],
                                "arguments": arguments
                                if isinstance(arguments, str)
                                else json.dumps(arguments, ensure_ascii=False),
                            },
                        }
                    ],
                }
            )
        elif kind == "observation":
            messages.append({"role": "tool", "tool_call_id": f"call_{calls}", "content": value})
        else:
            messages.append({"role": SHAREGPT_ROLES[kind], "content": value})
    tools = [{"type": "function", "function": tool} for tool in json.loads(data[index]["tools"])]
    longest = max(range(len(data)), key=lambda i: (*size(i), -i))
    selection = (
        f"conversation {index} (0-based) of {len(data)}: the longest ({len(messages)} messages, ties broken by "
        f"characters) of the {len(with_calls)} that contain a function_call (the longest overall, {longest}, has "
        "no tool use). function_call -> assistant with one tool_call (id call_<n> made up here, arguments "
        "re-serialised with json.dumps), observation -> tool message answering it. The conversation's tool "
        "definitions are in 'tools'. Glaive's data is machine-generated, not a logged human session."
    )
    return {
        "source": _source(
            "glaive-function-calling-v2 demo (glaive_toolcall_en_demo)",
            "hiyouga/LLaMA-Factory",
            "data/glaive_toolcall_en_demo.json",
            "a0d44c650a9a38c1ec6c8fc48a7daeacca9900a9",
            "Apache-2.0 (repository and upstream glaiveai/glaive-function-calling-v2)",
            selection,
        ),
        "messages": messages,
        "tools": tools,
    }


# --- Claude Code session transcript (marot/spotter test fixture) -------------------------------------


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") != "text":
            raise ValueError(f"tool result block of type {block.get('type')!r} has no text form")
        parts.append(block["text"])
    return "\n".join(parts)


def claude_code(raw: Path, name: str, path: str, commit: str) -> Chat:
    """A Claude Code JSONL transcript as OpenAI messages, in file order.

    Consecutive lines of one API message (same message.id, one content block per line) become one
    assistant message: text blocks joined by BLOCK_SEPARATOR, tool_use blocks as tool_calls. Tool results
    are held back until that message is complete, so every call precedes its answer. Thinking blocks,
    progress/hook lines, file-history snapshots and system lines are not chat messages and are skipped.
    """
    lines = [json.loads(x) for x in raw.read_text(encoding="utf-8").splitlines() if x.strip()]
    messages: list[Message] = []
    open_id: str | None = None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[Message] = []
    skipped = {"thinking": 0, "thinking-only messages": 0}

    def flush() -> None:
        nonlocal open_id
        if open_id is not None:
            if texts or calls:
                message: Message = {"role": "assistant", "content": BLOCK_SEPARATOR.join(texts)}
                if calls:
                    message["tool_calls"] = list(calls)
                messages.append(message)
            else:
                skipped["thinking-only messages"] += 1
        messages.extend(results)
        open_id = None
        texts.clear()
        calls.clear()
        results.clear()

    for line in lines:
        if line.get("isSidechain") or line.get("type") not in ("user", "assistant"):
            continue
        body = line["message"]
        content = body["content"]
        if line["type"] == "assistant":
            if body["id"] != open_id:
                flush()
                open_id = body["id"]
            for block in content:
                if block["type"] == "text":
                    texts.append(block["text"])
                elif block["type"] == "tool_use":
                    calls.append(
                        {
                            "id": block["id"],
                            "type": "function",
                            "function": {
                                "name": block["name"],
                                "arguments": json.dumps(block["input"], ensure_ascii=False),
                            },
                        }
                    )
                elif block["type"] == "thinking":
                    skipped["thinking"] += 1
                else:
                    raise ValueError(f"assistant block of type {block['type']!r}")
        elif isinstance(content, list) and content and all(b.get("type") == "tool_result" for b in content):
            for block in content:
                results.append(
                    {
                        "role": "tool",
                        "tool_call_id": block["tool_use_id"],
                        "content": _tool_result_text(block["content"]),
                    }
                )
        else:
            flush()
            text = content if isinstance(content, str) else BLOCK_SEPARATOR.join(b["text"] for b in content)
            messages.append({"role": "user", "content": text})
    flush()
    selection = (
        f"session {name}, main thread only (subagent sidechains are separate files), every user, assistant "
        f"and tool-result entry in file order: {len(messages)} messages. Blocks of one API message are merged "
        f"(text joined with {BLOCK_SEPARATOR!r}); tool_use -> tool_calls with input as JSON; tool_result -> "
        f"tool message (text blocks joined with '\\n'). Left out: {skipped['thinking']} thinking blocks "
        f"({skipped['thinking-only messages']} messages had nothing else), progress/hook lines, file-history "
        "snapshots, system lines. Kept as user messages: Claude Code's injected meta text (skill text, "
        "/compact command echo with ANSI escapes) and the compaction summary. The fixture's author redacted "
        "user names, e-mails and signatures before publishing."
    )
    return {
        "source": _source(
            "Claude Code session transcript (spotter test fixture)",
            "marot/spotter",
            path,
            commit,
            "MIT",
            selection,
        ),
        "messages": messages,
    }


# --- Aider chat history (aider's own tests/fixtures/chat-history.md) ---------------------------------


def _aider_blocks(session: str) -> Iterator[tuple[str, list[str]]]:
    """("user" | "assistant", lines) blocks of one session of an .aider.chat.history.md file.

    Aider logs user input as "#### <line>  ", console output as "> <text>  " and the model's reply as
    plain markdown. Inside a reply's ``` fence every line belongs to the reply, whatever it starts with.
    """
    mode: str | None = None
    lines: list[str] = []
    fence = False
    for line in session.split("\n")[1:]:  # [0] is the "# aider chat started at" header
        if mode == "assistant" and (fence or not (line.startswith(("####", "> ")) or line == ">")):
            lines.append(line)
            fence ^= line.lstrip().startswith("```")
            continue
        if mode is not None and not (mode == "user" and line.startswith("####")):
            yield mode, lines
            mode, lines = None, []
        if line.startswith("####"):
            mode = "user"
            lines.append(line)
        elif line.strip() and not (line.startswith("> ") or line == ">"):
            mode, fence = "assistant", line.lstrip().startswith("```")
            lines.append(line)
    if mode is not None:
        yield mode, lines


def aider(raw: Path, started: str) -> Chat:
    """One session of Aider's chat-history fixture: what the user sent the model, and its replies."""
    text = raw.read_text(encoding="utf-8")
    header = f"# aider chat started at {started}\n"
    start = text.index(header)
    end = text.find("\n# aider chat started at ", start + len(header))
    messages: list[Message] = []
    commands: dict[str, int] = {}
    for mode, lines in _aider_blocks(text[start : end if end >= 0 else len(text)]):
        if mode == "assistant":
            messages.append({"role": "assistant", "content": "\n".join(lines).strip("\n")})
            continue
        # Aider wrote each input line as "#### " + line + "  " (the last line right-stripped first).
        content = "\n".join(line.removeprefix("####").removeprefix(" ").removesuffix("  ") for line in lines)
        if content.startswith("/"):
            command = content.split()[0]
            commands[command] = commands.get(command, 0) + 1
            continue
        messages.append({"role": "user", "content": content})
    dropped = ", ".join(f"{c} x{n}" for c, n in sorted(commands.items()))
    selection = (
        f"the session started {started} (a developer working on aider's website charts with "
        f"claude-3-5-sonnet-20240620): {len(messages)} messages. User = the '#### ' lines with that prefix "
        "and the two trailing spaces aider adds removed; assistant = the model's reply as logged (aider logs "
        "reply.strip()). Left out: aider's console lines ('> ...': token counts, 'Applied edit', commits) and "
        f"slash commands that never reach the model ({dropped}); an /ask line is followed in the log by the "
        "message actually sent, which is kept (with its leading space). /clear emptied the model's context "
        "several times, so the model did not see the whole session at once."
    )
    return {
        "source": _source(
            "Aider chat history (test fixture of real aider sessions)",
            "Aider-AI/aider",
            "tests/fixtures/chat-history.md",
            "4b2227c71f82193cf6edba5dd2117962782cacf2",
            "Apache-2.0",
            selection,
        ),
        "messages": messages,
    }


# --- validation and output ---------------------------------------------------------------------------


def validate(chat: Chat) -> list[str]:
    """Problems in one chat file: roles, content types, tool-call ids and JSON arguments."""
    problems: list[str] = []
    src = chat.get("source", {})
    for key in ("dataset", "repository", "path", "commit", "license", "selection"):
        if not isinstance(src.get(key), str) or not src[key]:
            problems.append(f"source.{key} missing")
    seen: set[str] = set()
    for i, m in enumerate(chat["messages"]):
        if m.get("role") not in ROLES:
            problems.append(f"message {i}: role {m.get('role')!r}")
        if not isinstance(m.get("content"), str):
            problems.append(f"message {i}: content is not a string")
        for call in m.get("tool_calls", []):
            if m["role"] != "assistant":
                problems.append(f"message {i}: tool_calls on a {m['role']} message")
            if call.get("type") != "function" or not call["function"].get("name"):
                problems.append(f"message {i}: malformed tool call")
            try:
                json.loads(call["function"]["arguments"])
            except (TypeError, ValueError):
                problems.append(f"message {i}: arguments of {call.get('id')} are not JSON")
            seen.add(call["id"])
        if m["role"] == "tool" and m.get("tool_call_id") not in seen:
            problems.append(f"message {i}: tool_call_id {m.get('tool_call_id')!r} answers no earlier call")
    return problems


def dumps(chat: Chat) -> str:
    """JSON with one message per line, so diffs and greps stay readable."""
    head = {k: v for k, v in chat.items() if k != "messages"}
    parts = [
        f' "{k}": {json.dumps(v, ensure_ascii=False, indent=1).replace(chr(10), chr(10) + " ")}'
        for k, v in head.items()
    ]
    rows = ",\n".join("  " + json.dumps(m, ensure_ascii=False) for m in chat["messages"])
    parts.append(f' "messages": [\n{rows}\n ]')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def jobs(args: argparse.Namespace) -> Iterator[tuple[str, Callable[[], Chat]]]:
    spotter_path = "test/fixtures/transcripts/ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl"
    yield "en_prose_locomo_conv26.json", lambda: locomo(args.locomo)
    yield (
        "zh_adventure_sharegpt.json",
        lambda: sharegpt_zh(args.sharegpt_zh, 9, "a Pokémon Yellow text adventure"),
    )
    yield (
        "zh_code_sharegpt.json",
        lambda: sharegpt_zh(args.sharegpt_zh, 616, "a programming chat with many code blocks"),
    )
    yield "en_agent_swe_marshmallow_tools.json", lambda: swe_agent_function_calling(args.swe_fc)
    yield "en_agent_swe_pydicom.json", lambda: swe_agent_text(args.pydicom)
    yield "en_tools_glaive.json", lambda: glaive(args.glaive)
    yield "en_code_aider_chat.json", lambda: aider(args.aider, "2024-08-13 13:42:45")
    yield (
        "en_agent_claude_code_spotter.json",
        lambda: claude_code(
            args.spotter,
            "ae4a77f8-aedd-4bc1-888f-c94edc91af04",
            spotter_path,
            "53a088d2335599db2a99d1099be22152d1785d6f",
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw-dir", type=Path, default=Path("/tmp/rawdata"))
    parser.add_argument("--out", type=Path, default=HERE / "chats")
    raw_files = {
        "locomo": "locomo10.json",
        "sharegpt-zh": "sharegpt_zh.jsonl",
        "swe-fc": "swe_fc.traj",
        "pydicom": "pydicom.traj",
        "glaive": "glaive_en.json",
        "spotter": "spotter_ae4a77f8.jsonl",
        "aider": "aider_chat_history.md",
    }
    for flag, name in raw_files.items():
        parser.add_argument(f"--{flag}", type=Path, default=None, help=f"default: RAW_DIR/{name}")
    args = parser.parse_args(argv)
    for flag, name in raw_files.items():
        attr = flag.replace("-", "_")
        if getattr(args, attr) is None:
            setattr(args, attr, args.raw_dir / name)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for filename, make in jobs(args):
        chat = make()
        problems = validate(chat)
        text = dumps(chat)
        assert json.loads(text) == chat
        (args.out / filename).write_text(text, encoding="utf-8")
        chars = sum(len(m["content"]) for m in chat["messages"])
        print(
            f"{filename:40} {len(chat['messages']):5} messages {chars:8} chars {len(text.encode()):8} bytes"
        )
        for problem in problems:
            failed = True
            print(f"  PROBLEM {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
