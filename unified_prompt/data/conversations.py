"""Multi-turn chat data: JSONL rows holding `messages` ([{role, content}, ...], OpenAI's
chat fine-tuning format), for task: generation with prompt.chat.

One row is one example: evaluation generates its final assistant turn from the turns
before it; local training learns every assistant turn (weight 1, the default) from the
turns before it, so the loss falls on assistant tokens only; hosted fine-tuning uploads
the conversation as it is. Every user turn is written through prompt.template ({text} is
the turn's content), as a single-turn prompt would be.
"""

from __future__ import annotations

from typing import Any

from unified_prompt.data.example import Example
from unified_prompt.data.hosted_format import check_messages
from unified_prompt.errors import DataError

#: The column holding a conversation.
MESSAGES = "messages"

Message = dict[str, Any]


def conversation_example(row: dict[str, Any], column: str, path: str, lineno: int,
                         example_id: str) -> Example:
    """An Example from one conversation row; a DataError naming the file and line when the
    conversation breaks the format's rules (roles, empty content, a last turn that is not
    the assistant's, no user turn before it)."""
    messages = row[column]
    problems = check_messages(messages, column, final_role="assistant")
    if not problems and not any(m["role"] == "user" for m in messages[:-1]):
        problems.append(f"{column}: no user message before the final assistant turn")
    if problems:
        raise DataError("; ".join(problems), path=path, line=lineno)
    turns = [{k: v for k, v in m.items() if k in ("role", "content", "weight")}
             for m in messages]
    last_user = next(m["content"] for m in reversed(turns) if m["role"] == "user")
    return Example(id=example_id, fields={"text": last_user}, target=turns[-1]["content"],
                   meta={"source": path, "line": lineno, "not_text": {}, "messages": turns})


def is_conversation(example: Example) -> bool:
    return MESSAGES in example.meta


def training_turns(example: Example) -> list[tuple[list[Message], str]]:
    """(the turns before it, its content) for each assistant turn that is trained (weight
    1, the default; weight 0 turns are context only)."""
    turns = example.meta[MESSAGES]
    return [(turns[:k], m["content"]) for k, m in enumerate(turns)
            if m["role"] == "assistant" and m.get("weight", 1) == 1]


def history(example: Example) -> list[Message]:
    """The turns before the final assistant turn (what evaluation continues)."""
    return list(example.meta[MESSAGES][:-1])
