"""Greedy or sampled (n choices per request) generation through chat completions
(demonstrations as turns) or legacy completions (the raw prompt text, as a local backend
continues it)."""

from __future__ import annotations

from typing import Any

from unified_prompt.backend import GenerationParams


def _sampling(params: GenerationParams) -> dict[str, Any]:
    """What chat and legacy completion bodies share: temperature, top_p and n (sent only
    when not their defaults), stop (the API takes at most four) and seed."""
    body: dict[str, Any] = {"temperature": params.temperature}
    if params.top_p < 1.0:
        body["top_p"] = params.top_p
    if params.n > 1:
        body["n"] = params.n
    stops = [s for s in params.stop if s][:4]
    if stops:
        body["stop"] = stops
    if params.seed is not None:
        body["seed"] = params.seed
    return body


def chat_body(model: str, messages: list[dict[str, str]],
              params: GenerationParams) -> dict[str, Any]:
    return {"model": model, "messages": messages,
            "max_completion_tokens": params.max_new_tokens, **_sampling(params)}


def completion_body(model: str, text: str, params: GenerationParams) -> dict[str, Any]:
    return {"model": model, "prompt": text, "max_tokens": params.max_new_tokens,
            **_sampling(params)}


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """Hosts may ignore stop (or take only four); cut here too so every host agrees."""
    hits = [text.index(s) for s in stops if s and s in text]
    return text[: min(hits)] if hits else text


def _in_order(data: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The response's n choices by their index (a host may list them in any order); a
    missing one counts as empty."""
    by_index = {int(c.get("index", k)): c for k, c in enumerate(data.get("choices") or [])}
    return [by_index.get(k, {}) for k in range(n)]


def chat_texts(data: dict[str, Any], n: int = 1) -> list[str]:
    return [((c.get("message") or {}).get("content") or "") for c in _in_order(data, n)]


def completion_texts(data: dict[str, Any], n: int = 1) -> list[str]:
    return [(c.get("text") or "") for c in _in_order(data, n)]


def chat_text(data: dict[str, Any]) -> str:
    return chat_texts(data)[0]


def completion_text(data: dict[str, Any]) -> str:
    return completion_texts(data)[0]
