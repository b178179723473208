"""Rendered prompts as what an API takes: chat messages (demonstrations as user/assistant
turns) or one raw string for legacy completions (demonstrations folded into the text, the
same text every local backend scores)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from unified_prompt.errors import CapabilityError
from unified_prompt.prompts.chat import query_messages
from unified_prompt.prompts.segments import Rendered


def check_no_soft(prompts: Sequence[Rendered]) -> None:
    if any(p.soft_slots for p in prompts):
        raise CapabilityError("backend 'openai' cannot send soft prompts ({soft} slots) to a "
                              "hosted API; train them on a local backend")


def chat_messages(prompt: Rendered, system: str | None = None) -> list[dict[str, str]]:
    """System message, each demonstration as a user turn and the assistant's answer, then
    the query: the same shape as the hosted training rows the core writes. A prompt the
    core already wrote as chat (prompt.chat) carries its own messages."""
    if prompt.meta.get("messages"):
        return [dict(m) for m in prompt.meta["messages"]]
    return query_messages(prompt, system)


def estimate_tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token) + 1


def estimate_chat_tokens(messages: Sequence[dict[str, str]], chars_per_token: float) -> int:
    """Content tokens plus the few tokens each message's framing costs."""
    return sum(estimate_tokens(m["content"], chars_per_token) + 4 for m in messages) + 3
