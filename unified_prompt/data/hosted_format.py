"""Training files for hosted fine-tuning: supervised chat JSONL and DPO JSONL.

Validated here, against the hosted API's rules, before anything is uploaded: a bad line
fails in a second with its line number instead of minutes later inside a paid job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from unified_prompt.errors import DataError

Kind = Literal["supervised", "dpo"]
ROLES = ("system", "user", "assistant")
MIN_EXAMPLES = 10
MAX_FILE_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_EXAMPLE_TOKENS = 65_536


@dataclass(frozen=True)
class FormatRules:
    min_examples: int = MIN_EXAMPLES
    max_example_tokens: int = DEFAULT_MAX_EXAMPLE_TOKENS
    max_file_bytes: int = MAX_FILE_BYTES


def chat_example(prompt: str, answer: str, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def dpo_example(prompt: str, preferred: str, rejected: str,
                system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return {"input": {"messages": messages},
            "preferred_output": [{"role": "assistant", "content": preferred}],
            "non_preferred_output": [{"role": "assistant", "content": rejected}]}


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate (3 characters a token) so limits err on the safe side."""
    return len(text) // 3 + 1


def check_messages(messages: Any, where: str, *, final_role: str | None) -> list[str]:
    """Every way `messages` breaks the chat format's rules, as readable problems."""
    if not isinstance(messages, list) or not messages:
        return [f"{where} must be a non-empty list of messages"]
    problems: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            problems.append(f"{where}[{i}] is not an object")
            continue
        extra = set(msg) - {"role", "content", "name", "weight"}
        if extra:
            problems.append(f"{where}[{i}] has unknown keys {sorted(extra)}")
        role = msg.get("role")
        if role not in ROLES:
            problems.append(f"{where}[{i}].role {role!r} is not one of {', '.join(ROLES)}")
        content = msg.get("content")
        if not isinstance(content, str) or not content.strip():
            problems.append(f"{where}[{i}].content must be a non-empty string")
        if "weight" in msg and (role != "assistant" or msg["weight"] not in (0, 1)):
            problems.append(f"{where}[{i}].weight must be 0 or 1, on assistant messages only")
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if final_role and roles and roles[-1] != final_role:
        problems.append(f"{where}: the last message must have role {final_role!r} "
                        f"(it has {roles[-1]!r})")
    if "system" in roles[1:]:
        problems.append(f"{where}: a system message may only come first")
    return problems


def _tokens(obj: Any) -> int:
    if isinstance(obj, str):
        return estimate_tokens(obj)
    if isinstance(obj, dict):
        return sum(_tokens(v) for k, v in obj.items() if k == "content" or isinstance(v, (dict, list))) + 4
    if isinstance(obj, list):
        return sum(_tokens(v) for v in obj)
    return 0


def check_line(obj: Any, kind: Kind, rules: FormatRules = FormatRules()) -> list[str]:
    """Problems with one parsed line (empty when it is valid)."""
    if not isinstance(obj, dict):
        return ["a line must be a JSON object"]
    problems: list[str] = []
    if kind == "supervised":
        extra = set(obj) - {"messages", "tools", "parallel_tool_calls", "metadata"}
        if extra:
            problems.append(f"unknown keys {sorted(extra)} (a supervised line has 'messages')")
        problems += check_messages(obj.get("messages"), "messages", final_role="assistant")
        roles = [m.get("role") for m in obj.get("messages") or [] if isinstance(m, dict)]
        if "assistant" not in roles:
            problems.append("messages needs at least one assistant message to learn from")
    else:
        extra = set(obj) - {"input", "preferred_output", "non_preferred_output", "metadata"}
        if extra:
            problems.append(f"unknown keys {sorted(extra)}")
        inp = obj.get("input")
        if not isinstance(inp, dict):
            problems.append("input must be an object with 'messages'")
        else:
            problems += check_messages(inp.get("messages"), "input.messages", final_role="user")
        outputs = {}
        for key in ("preferred_output", "non_preferred_output"):
            out = obj.get(key)
            found = check_messages(out, key, final_role="assistant")
            if not found and len(out) != 1:
                found.append(f"{key} must hold exactly one assistant message")
            problems += found
            outputs[key] = json.dumps(out, sort_keys=True)
        if not problems and outputs["preferred_output"] == outputs["non_preferred_output"]:
            problems.append("preferred_output and non_preferred_output are identical")
    tokens = _tokens(obj)
    if tokens > rules.max_example_tokens:
        problems.append(f"about {tokens} tokens, over the {rules.max_example_tokens}-token "
                        "limit for one example")
    return problems


def validate_lines(lines: Iterable[str], kind: Kind, *, source: str = "<training data>",
                   rules: FormatRules = FormatRules()) -> int:
    """Raise DataError listing every bad line (up to 20); return the number of examples."""
    errors: list[str] = []
    count = 0
    size = 0
    first_line: int | None = None
    for lineno, line in enumerate(lines, start=1):
        size += len(line.encode("utf-8")) + 1
        if not line.strip():
            continue
        count += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems = [f"not valid JSON ({exc.msg})"]
        else:
            problems = check_line(obj, kind, rules)
        for p in problems:
            first_line = first_line or lineno
            errors.append(f"line {lineno}: {p}")
    if size > rules.max_file_bytes:
        errors.append(f"file is {size} bytes, over the {rules.max_file_bytes}-byte limit")
    if count < rules.min_examples:
        errors.append(f"{count} examples; hosted fine-tuning needs at least {rules.min_examples}")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise DataError(f"{kind} training data rejected before upload:\n  " + "\n  ".join(shown),
                        path=source, line=first_line)
    return count


def write_training_file(path: Path, rows: Sequence[dict[str, Any]], kind: Kind,
                        rules: FormatRules = FormatRules()) -> int:
    """Validate rows, then write them as JSONL atomically; returns the example count."""
    from unified_prompt.artifacts import atomic_write_text

    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    n = validate_lines(lines, kind, source=str(path), rules=rules)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return n


def validate_file(path: Path, kind: Kind, rules: FormatRules = FormatRules()) -> int:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read training file ({exc})", path=str(path)) from None
    return validate_lines(text.splitlines(), kind, source=str(path), rules=rules)
