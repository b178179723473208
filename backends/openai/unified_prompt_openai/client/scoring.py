"""Label-word scores from an OpenAI-compatible host, three ways.

echo           exact: legacy completions with echo + logprobs return the log-prob of every
               prompt token; scoring prefix + lead + word and summing the tokens at or after
               len(prefix) gives the same number a local backend computes (all of a
               multi-token word, no top-k bound). One request per example (all its words
               as a prompt list).
chat_logprobs  chat models: the top-20 alternatives of the first answer token. A word is
               scored by the alternatives whose text it starts with (case and whitespace
               folded, the longest such prefix); a word outside them gets the lowest returned
               log-prob (an upper bound) and a warning, as does a first token two labels share.
generate       (not here) the runner generates and parses when capabilities.score is False.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from unified_prompt.errors import BackendError, UserInputError
from unified_prompt.prompts.segments import Rendered


class LabelWordWarning(UserWarning):
    """A label word cannot be scored exactly on this host (first-token scoring)."""


# -- echo --------------------------------------------------------------------------------
def echo_texts(prompt: Rendered, words: Sequence[str]) -> tuple[str, list[str]]:
    prefix = prompt.prefix_text()
    if not prefix:
        raise UserInputError("echo scoring needs text before {mask}: the first token of an "
                             "echoed prompt has no log-prob")
    lead = prompt.mask_lead()
    return prefix, [prefix + lead + w for w in words]


def echo_body(model: str, texts: list[str]) -> dict[str, Any]:
    return {"model": model, "prompt": texts, "max_tokens": 0, "echo": True, "logprobs": 0,
            "temperature": 0}


@dataclass
class EchoResult:
    logprob: list[float]
    n_tokens: list[int]
    straddles: int = 0


def split_echo(data: dict[str, Any], prefix_lens: Sequence[int],
               n_words: int) -> list[EchoResult]:
    """One EchoResult per example of a request that carried several examples' words."""
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != n_words * len(prefix_lens):
        raise BackendError(f"echo scoring: asked for {n_words * len(prefix_lens)} prompts, "
                           f"the host returned {len(choices)} choices")
    return [parse_echo({"choices": choices[i * n_words:(i + 1) * n_words]}, plen, n_words)
            for i, plen in enumerate(prefix_lens)]


def parse_echo(data: dict[str, Any], prefix_len: int, n_words: int) -> EchoResult:
    """Sum the log-probs of the tokens at or after the prefix, for each echoed choice."""
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != n_words:
        raise BackendError(f"echo scoring: asked for {n_words} prompts, the host returned "
                           f"{len(choices)} choices")
    out = EchoResult([], [])
    for choice in choices:
        lp = choice.get("logprobs") or {}
        offsets, values, tokens = (lp.get("text_offset"), lp.get("token_logprobs"),
                                   lp.get("tokens"))
        if not offsets or values is None or len(offsets) != len(values):
            raise BackendError("echo scoring: the host returned no prompt log-probs (it does "
                               "not support echo with logprobs); use scoring: chat_logprobs")
        total, count = 0.0, 0
        for i, (offset, value) in enumerate(zip(offsets, values, strict=True)):
            if offset >= prefix_len:
                if value is None:
                    raise BackendError("echo scoring: a label-word token has no log-prob")
                total += float(value)
                count += 1
            elif tokens and offset + len(tokens[i]) > prefix_len:
                out.straddles += 1
        if count == 0:
            raise BackendError("echo scoring: no tokens after the prompt prefix")
        out.logprob.append(total)
        out.n_tokens.append(count)
    return out


# -- chat logprobs -----------------------------------------------------------------------
def logprob_body(model: str, messages: list[dict[str, str]], top: int,
                 seed: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages, "max_completion_tokens": 1,
                            "logprobs": True, "top_logprobs": top, "temperature": 0}
    if seed is not None:
        body["seed"] = seed
    return body


def first_token_alternatives(data: dict[str, Any]) -> list[tuple[str, float]]:
    choices = data.get("choices") or []
    content = ((choices[0].get("logprobs") or {}).get("content") or []) if choices else []
    if not content:
        raise BackendError("chat logprob scoring: the host returned no logprobs (it may not "
                           "support them); use scoring: generate")
    first = content[0]
    alts = [(a.get("token", ""), float(a["logprob"])) for a in first.get("top_logprobs") or []
            if a.get("logprob") is not None]
    if first.get("logprob") is not None:
        alts.append((first.get("token", ""), float(first["logprob"])))
    seen: dict[str, float] = {}
    for token, value in alts:
        seen.setdefault(token, value)
    return list(seen.items())


def _norm(text: str) -> str:
    return text.strip().lower()


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


@dataclass
class FirstTokenScorer:
    """Maps top alternatives onto label words; remembers what it had to approximate."""

    words: tuple[str, ...]
    word_label: tuple[int, ...]
    warned: set[str] = field(default_factory=set)
    outside: int = 0

    def static_warnings(self) -> list[str]:
        """Words of different labels whose first word is the same can never be told apart
        by the first token."""
        problems = []
        for i, a in enumerate(self.words):
            for j in range(i + 1, len(self.words)):
                b = self.words[j]
                if self.word_label[i] == self.word_label[j]:
                    continue
                fa, fb = _norm(a).split()[:1], _norm(b).split()[:1]
                if fa and fa == fb:
                    problems.append(f"label words {a!r} and {b!r} start with the same word; "
                                    "first-token scoring cannot separate them")
        return problems

    def score(self, alts: list[tuple[str, float]]) -> list[float]:
        normed = [(_norm(t), v) for t, v in alts]
        floor = min(v for _, v in alts)
        matched: list[str | None] = []
        out = []
        for word in self.words:
            target = _norm(word)
            candidates = [t for t, _ in normed if t and target.startswith(t)]
            if not candidates:
                matched.append(None)
                out.append(floor)
                self.outside += 1
                self._warn(f"label word {word!r} is outside the returned top-{len(alts)} "
                           "alternatives; scored at the lowest returned log-prob (an upper bound)")
                continue
            best = max(candidates, key=len)
            matched.append(best)
            out.append(_logsumexp([v for t, v in normed if t == best]))
        for i, a in enumerate(matched):
            for j in range(i + 1, len(matched)):
                if a is not None and a == matched[j] and self.word_label[i] != self.word_label[j]:
                    self._warn(f"label words {self.words[i]!r} and {self.words[j]!r} share the "
                               f"first token {a!r}; first-token scoring cannot separate them")
        return out

    def _warn(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            warnings.warn(message, LabelWordWarning, stacklevel=3)
