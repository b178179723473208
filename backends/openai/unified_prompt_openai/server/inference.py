"""Chat and legacy completions computed from a backend's raw-text primitives
(render_chat, generate_text, text_logprobs), shaped exactly like the OpenAI responses.

Legacy completions with echo + max_tokens=0 return every prompt token's log-prob and
character offset: what the openai backend's exact scoring mode needs. The first echoed
token has no log-prob and is sent as null, as the real API does (a known spec gap).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from unified_prompt.backend import Generated, GenerationParams, TokenLogprob
from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.models import ModelRegistry
from unified_prompt_openai.server.schemas import ChatCompletionRequest, CompletionRequest
from unified_prompt_openai.server.worker import BackendWorker

FINGERPRINT = "fp_unified_prompt"
CHUNK_TOKENS = 2048  # generated tokens per backend call: the longest one request holds it


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(stops) > 4:
        raise APIError(400, "stop: at most 4 sequences", param="stop")
    return tuple(s for s in stops if s)


def _params(max_tokens: int, req: ChatCompletionRequest | CompletionRequest) -> GenerationParams:
    """Decoding as the request asks: greedy unless temperature > 0, then top_p nucleus
    sampling seeded by `seed` (the n choices of one request are n rows of one batch, so
    they differ and a fixed seed repeats them)."""
    return GenerationParams(max_new_tokens=max_tokens, temperature=req.temperature or 0.0,
                            stop=_stops(req.stop), seed=req.seed,
                            top_p=req.top_p if req.top_p is not None else 1.0)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _token_entry(tok: TokenLogprob, top_k: int) -> dict[str, Any]:
    def item(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {**item(tok.token, float(tok.logprob or 0.0)),
            "top_logprobs": [item(t, float(lp)) for t, lp in tok.top[:top_k]]}


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(frozen=True)
class _Choice:
    """One legacy completion choice before shaping: echoed prompt and generation."""

    echo_text: str
    echo_tokens: tuple[TokenLogprob, ...]
    gen: Generated | None

    @property
    def tokens(self) -> list[TokenLogprob]:
        return [*self.echo_tokens, *(self.gen.tokens if self.gen else ())]

    @property
    def finish(self) -> str:
        return self.gen.finish_reason if self.gen else "length"


class Inference:
    """Async: every backend call goes through the BackendWorker (one thread, batching)."""

    def __init__(self, registry: ModelRegistry, worker: BackendWorker,
                 default_max_tokens: int = 128, *, limit: int = 4096,
                 request_tokens: int = 65536) -> None:
        self.registry = registry
        self.worker = worker
        self.backend = registry.backend
        self.default_max_tokens = min(default_max_tokens, limit)
        self.limit = limit
        self.request_tokens = request_tokens

    def _max_tokens(self, value: int | None, param: str) -> int:
        if value is None:
            return self.default_max_tokens
        if value > self.limit:
            raise APIError(400, f"{param} is too large: {value}. This model supports at most "
                           f"{self.limit} completion tokens, whereas you provided {value}.",
                           param=param, code="invalid_value")
        return value

    def _check_work(self, n_texts: int, max_tokens: int, param: str) -> None:
        work = n_texts * max_tokens
        if work > self.request_tokens:
            raise APIError(400, f"This request asks for up to {work} generated tokens ({n_texts} "
                           f"completions x {param} {max_tokens}); this server answers at most "
                           f"{self.request_tokens} per request. Split it into smaller requests.",
                           param=param, code="invalid_value")

    async def _generate(self, handle: Any, texts: list[str], params: GenerationParams,
                        top_k: int) -> list[Generated]:
        """generate_text in slices of about CHUNK_TOKENS tokens, each its own turn on the
        worker: a large request never holds the backend thread for long, requests queued
        behind it are answered between its slices, and a cancelled request stops there."""
        per_call = max(1, CHUNK_TOKENS // max(1, params.max_new_tokens))
        out: list[Generated] = []
        for start in range(0, len(texts), per_call):
            # each slice of a sampled request draws from its own seed (seed + offset), so
            # the n copies of one prompt in two slices do not repeat each other's choices
            part = params if not start or params.temperature <= 0 else dataclasses.replace(
                params, seed=(params.seed or 0) + start)
            out += await self.worker.run(self.backend.generate_text, handle,
                                         texts[start:start + per_call], part, top_k=top_k)
        return out

    async def _handle(self, model_id: str) -> Any:
        served = self.registry.info(model_id)  # 404 at once for an unknown model
        if served.handle is not None:
            return served.handle
        return await self.worker.run(self.registry.handle, model_id)

    # -- chat ------------------------------------------------------------------------
    async def chat(self, req: ChatCompletionRequest) -> tuple[dict[str, Any], list[Generated]]:
        handle = await self._handle(req.model)
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        for m in messages:
            if m["role"] not in ("system", "developer", "user", "assistant"):
                raise APIError(400, f"messages: role {m['role']!r} is not supported here",
                               param="messages")
        prompt = await self.worker.run(self.backend.render_chat, handle, messages)
        param = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
        max_tokens = self._max_tokens(req.max_completion_tokens or req.max_tokens, param)
        n = req.n or 1
        self._check_work(n, max_tokens, param)
        params = _params(max_tokens, req)
        top_k = (req.top_logprobs or 0) if req.logprobs else 0
        gens = await self._generate(handle, [prompt] * n, params, top_k)
        choices = []
        for i, gen in enumerate(gens):
            logprobs = ({"content": [_token_entry(t, top_k) for t in gen.tokens],
                         "refusal": None} if req.logprobs else None)
            choices.append({"index": i, "message": {"role": "assistant", "content": gen.text,
                                                    "refusal": None, "annotations": []},
                            "logprobs": logprobs, "finish_reason": gen.finish_reason})
        completion = sum(len(g.tokens) for g in gens)
        body = {"id": f"chatcmpl-{secrets.token_hex(12)}", "object": "chat.completion",
                "created": int(time.time()), "model": req.model, "choices": choices,
                "system_fingerprint": FINGERPRINT,
                "usage": _usage(gens[0].prompt_tokens if gens else 0, completion)}
        return body, gens

    async def chat_stream(self, req: ChatCompletionRequest) -> list[str]:
        """Server-sent events: the role, one chunk per token, the finish reason, [DONE]."""
        body, gens = await self.chat(req)
        return list(self._stream_events(req, body, gens))

    def _stream_events(self, req: ChatCompletionRequest, body: dict[str, Any],
                       gens: list[Generated]) -> Iterator[str]:
        base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
                "model": body["model"], "system_fingerprint": FINGERPRINT}
        top_k = (req.top_logprobs or 0) if req.logprobs else 0

        def event(data: dict[str, Any]) -> str:
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        for i, gen in enumerate(gens):
            yield event({**base, "choices": [{"index": i, "delta": {"role": "assistant",
                                                                    "content": ""},
                                              "logprobs": None, "finish_reason": None}]})
            for tok in gen.tokens:
                logprobs = ({"content": [_token_entry(tok, top_k)], "refusal": None}
                            if req.logprobs else None)
                yield event({**base, "choices": [{"index": i, "delta": {"content": tok.token},
                                                  "logprobs": logprobs, "finish_reason": None}]})
            yield event({**base, "choices": [{"index": i, "delta": {}, "logprobs": None,
                                              "finish_reason": gen.finish_reason}]})
        if req.stream_options is not None and req.stream_options.include_usage:
            yield event({**base, "choices": [], "usage": body["usage"]})
        yield "data: [DONE]\n\n"

    # -- legacy completions ----------------------------------------------------------
    async def completions(self, req: CompletionRequest) -> dict[str, Any]:
        body, _ = await self._complete(req)
        return body

    async def completions_stream(self, req: CompletionRequest) -> list[str]:
        """Server-sent events as the API streams legacy completions: text_completion
        chunks (the echoed prompt, then one per token, then the finish reason), an
        optional usage chunk, [DONE]."""
        body, parts = await self._complete(req)
        return list(self._completion_events(req, body, parts))

    async def _complete(self, req: CompletionRequest) -> tuple[dict[str, Any], list[_Choice]]:
        handle = await self._handle(req.model)
        prompts = self._prompts(req.prompt)
        max_tokens = self._max_tokens(req.max_tokens, "max_tokens")
        self._check_work(len(prompts) * (req.n or 1), max_tokens, "max_tokens")
        k = req.logprobs
        echoed: list[tuple[TokenLogprob, ...]] = []
        if req.echo or max_tokens == 0:
            echoed = await self.worker.run(self.backend.text_logprobs, handle, prompts,
                                           top_k=k or 0)
        n = req.n or 1
        gens: list[Generated] = []
        if max_tokens > 0:  # n choices per prompt, prompt-major, as the API orders them
            params = _params(max_tokens, req)
            gens = await self._generate(handle, [p for p in prompts for _ in range(n)],
                                        params, k or 0)
        parts = []
        prompt_tokens = completion_tokens = 0
        for i, text in enumerate(prompts):
            if echoed:
                prompt_tokens += len(echoed[i])
            elif gens:
                prompt_tokens += gens[i * n].prompt_tokens
            for j in range(n):
                gen = gens[i * n + j] if gens else None
                completion_tokens += len(gen.tokens) if gen else 0
                parts.append(_Choice(text if req.echo else "",
                                     tuple(echoed[i]) if req.echo else (), gen))
        choices = [{"index": i, "text": p.echo_text + (p.gen.text if p.gen else ""),
                    "finish_reason": p.finish,
                    "logprobs": (self._legacy_logprobs(p.tokens, k) if k is not None
                                 else None)} for i, p in enumerate(parts)]
        body = {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion",
                "created": int(time.time()), "model": req.model, "choices": choices,
                "system_fingerprint": FINGERPRINT,
                "usage": _usage(prompt_tokens, completion_tokens)}
        return body, parts

    def _completion_events(self, req: CompletionRequest, body: dict[str, Any],
                           parts: list[_Choice]) -> Iterator[str]:
        base = {"id": body["id"], "object": "text_completion", "created": body["created"],
                "model": body["model"], "system_fingerprint": FINGERPRINT}
        k = req.logprobs

        def event(index: int, text: str, tokens: Sequence[TokenLogprob],
                  finish: str | None) -> str:
            logprobs = self._legacy_logprobs(tokens, k) if k is not None else None
            return _sse({**base, "choices": [{"index": index, "text": text,
                                              "logprobs": logprobs, "finish_reason": finish}]})

        for i, part in enumerate(parts):
            if part.echo_text:
                yield event(i, part.echo_text, part.echo_tokens, None)
            for tok in part.gen.tokens if part.gen else ():
                yield event(i, tok.token, [tok], None)
            yield event(i, "", [], part.finish)
        if req.stream_options is not None and req.stream_options.include_usage:
            yield _sse({**base, "choices": [], "usage": body["usage"]})
        yield "data: [DONE]\n\n"

    @staticmethod
    def _prompts(prompt: Any) -> list[str]:
        if prompt is None:
            return [""]
        if isinstance(prompt, str):
            return [prompt]
        if prompt and all(isinstance(p, str) for p in prompt):
            return list(prompt)
        raise APIError(400, "prompt: token arrays are not supported by this server; send text",
                       param="prompt")

    @staticmethod
    def _legacy_logprobs(tokens: Sequence[TokenLogprob], k: int | None) -> dict[str, Any]:
        """tokens, token_logprobs, top_logprobs (k alternatives plus the chosen token) and
        text_offset; null for a first echoed token, which nothing conditions."""
        top: list[dict[str, float] | None] = []
        for t in tokens:
            if t.logprob is None:
                top.append(None)
                continue
            entry = {tok: float(lp) for tok, lp in t.top[: k or 0]}
            entry.setdefault(t.token, float(t.logprob))
            top.append(entry)
        return {"tokens": [t.token for t in tokens],
                "token_logprobs": [None if t.logprob is None else float(t.logprob)
                                   for t in tokens],
                "top_logprobs": top, "text_offset": [t.offset for t in tokens]}
