"""Greedy generation through chat completions (demonstrations as turns) or legacy
completions (the raw prompt text, as a local backend continues it)."""

from __future__ import annotations

from typing import Any

from unified_prompt.backend import GenerationParams


def _sampling(params: GenerationParams) -> dict[str, Any]:
    """What chat and legacy completion bodies share: temperature, stop (the API takes at
    most four) and seed."""
    body: dict[str, Any] = {"temperature": params.temperature}
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


def chat_text(data: dict[str, Any]) -> str:
    choices = data.get("choices") or []
    message = choices[0].get("message") if choices else None
    return (message or {}).get("content") or ""


def completion_text(data: dict[str, Any]) -> str:
    choices = data.get("choices") or []
    return (choices[0].get("text") if choices else "") or ""
