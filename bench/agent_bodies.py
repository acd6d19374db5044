#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0.
"""Agent-shaped request bodies for the benchmarks (generated here, copied
from nowhere; deterministic: the same bytes on every run).

    make_bodies(out_dir) -> {name: path}

  claude_code.json      an Anthropic Messages request shaped like a coding
                        agent's turn: a large system prompt, 20 tools with
                        JSON schemas, a 30-turn conversation of text,
                        tool_use and tool_result blocks (about 100 KB)
  codex_responses.json  an OpenAI Responses request shaped like a coding
                        agent's: instructions, tools, input items with
                        messages, function calls and their outputs
  chat_1k.json          a 1 KiB OpenAI chat request
  plain_string.json     a chat request that is one long plain string
                        (about 100 KB)

Each entry of BODIES says the body's path under /v1 and its protocol.
"""

import json
import os
import random

CLAUDE_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"
CODEX_MODEL = "gpt-5-codex"

# name -> (path under the gateway's /v1, protocol)
BODIES = {
    "claude_code": ("/messages", "anthropic"),
    "codex_responses": ("/responses", "openai"),
    "chat_1k": ("/chat/completions", "openai"),
    "plain_string": ("/chat/completions", "openai"),
}

WORDS = ("the file function return value error test module build request "
         "response config handler buffer parse line path state client "
         "server update check result index cache limit stream token model "
         "change review patch diff commit branch merge lint format").split()


def _text(rng, n_words):
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def _code(rng, lines):
    out = []
    for i in range(lines):
        out.append("    %s_%d = %s(%s, \"%s\")  # %s" % (
            rng.choice(WORDS), i, rng.choice(WORDS), rng.choice(WORDS),
            rng.choice(WORDS), _text(rng, 4)))
    return "\n".join(out)


def _schema(rng, i):
    props = {}
    for j in range(rng.randint(3, 7)):
        name = "%s_%s" % (rng.choice(WORDS), rng.choice(WORDS))
        kind = rng.choice(["string", "integer", "boolean", "array", "object"])
        p = {"type": kind, "description": _text(rng, rng.randint(8, 20))}
        if kind == "array":
            p["items"] = {"type": "string"}
        elif kind == "object":
            p["properties"] = {"mode": {"type": "string",
                                        "enum": ["fast", "full", "dry"]}}
            p["additionalProperties"] = False
        elif kind == "string" and j == 0:
            p["enum"] = [rng.choice(WORDS) for _ in range(4)]
        props[name] = p
    return {"type": "object", "properties": props,
            "required": sorted(props)[:2],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#"}


def _tools(rng, n):
    tools = []
    for i in range(n):
        tools.append({"name": "%s_%s_%d" % (rng.choice(WORDS),
                                            rng.choice(WORDS), i),
                      "description": _text(rng, rng.randint(40, 120)),
                      "schema": _schema(rng, i)})
    return tools


def claude_code(rng):
    tools = _tools(rng, 20)
    messages = []
    for turn in range(30):
        tid = "toolu_%016x" % rng.getrandbits(64)
        tool = rng.choice(tools)
        messages.append({"role": "user", "content": [
            {"type": "text", "text": _text(rng, rng.randint(10, 60))}]
            if turn == 0 or turn % 5 == 0 else [
            {"type": "tool_result", "tool_use_id": prev_id,
             "content": [{"type": "text",
                          "text": _code(rng, rng.randint(5, 25))}]}]})
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": _text(rng, rng.randint(10, 40))},
            {"type": "tool_use", "id": tid, "name": tool["name"],
             "input": {k: (rng.choice(WORDS) if v["type"] == "string"
                           else 3 if v["type"] == "integer"
                           else True if v["type"] == "boolean"
                           else [rng.choice(WORDS)] if v["type"] == "array"
                           else {"mode": "fast"})
                       for k, v in tool["schema"]["properties"].items()}}]})
        prev_id = tid
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": prev_id,
         "content": "ok: " + _text(rng, 30)},
        {"type": "text", "text": _text(rng, 20),
         "cache_control": {"type": "ephemeral"}}]})
    return {
        "model": CLAUDE_MODEL, "max_tokens": 32000, "stream": True,
        "system": [{"type": "text", "text": _text(rng, 3200),
                    "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": t["name"], "description": t["description"],
                   "input_schema": t["schema"]} for t in tools],
        "messages": messages,
        "metadata": {"user_id": "user_%016x" % rng.getrandbits(64)},
        "temperature": 1,
    }


def codex_responses(rng):
    tools = _tools(rng, 12)
    items = [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": _text(rng, 80)}]}]
    for turn in range(25):
        cid = "call_%016x" % rng.getrandbits(64)
        tool = rng.choice(tools)
        items.append({"type": "reasoning", "id": "rs_%016x" % rng.getrandbits(64),
                      "summary": [{"type": "summary_text",
                                   "text": _text(rng, 25)}]})
        items.append({"type": "function_call", "call_id": cid,
                      "name": tool["name"],
                      "arguments": json.dumps({"cmd": ["bash", "-lc",
                                                       _text(rng, 8)]})})
        items.append({"type": "function_call_output", "call_id": cid,
                      "output": _code(rng, rng.randint(5, 30))})
    return {
        "model": CODEX_MODEL, "stream": True, "store": False,
        "instructions": _text(rng, 1800),
        "tools": [{"type": "function", "name": t["name"],
                   "description": t["description"], "strict": False,
                   "parameters": t["schema"]} for t in tools],
        "tool_choice": "auto", "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "input": items,
    }


def chat(size, rng=None):
    base = {"model": OPENAI_MODEL, "stream": False, "max_tokens": 64,
            "messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": ""}]}
    pad = size - len(json.dumps(base, separators=(",", ":")))
    base["messages"][1]["content"] = "x" * max(pad, 0)
    return base


def make_bodies(out_dir):
    """Write the four bodies into out_dir; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    docs = {
        "claude_code": claude_code(random.Random(1)),
        "codex_responses": codex_responses(random.Random(2)),
        "chat_1k": chat(1024),
        "plain_string": chat(100 * 1024),
    }
    paths = {}
    for name, doc in docs.items():
        path = os.path.join(out_dir, name + ".json")
        with open(path, "wb") as f:
            f.write(json.dumps(doc, separators=(",", ":")).encode())
        os.chmod(path, 0o644)
        paths[name] = path
    return paths


if __name__ == "__main__":
    import sys
    for name, path in make_bodies(sys.argv[1] if len(sys.argv) > 1
                                  else ".").items():
        print("%-16s %8d bytes  %s" % (name, os.path.getsize(path), path))
