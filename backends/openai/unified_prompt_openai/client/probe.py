"""`scoring: auto`: ask the host, with at most two tiny requests, how it can score label
words, and remember the answer per (host, model).

1. Legacy completions with echo + logprobs and max_tokens 0. Echo scoring is chosen only when
   the answer really echoes the prompt with its log-probs: the returned tokens spell the
   prompt from offset 0 and carry log-probs after the first. A host that refuses (400/404/
   405/422/501), ignores echo (log-probs of generated tokens only: Ollama) or drops the
   log-probs is not an echo host.
2. Otherwise one chat completion with logprobs + top_logprobs: log-probs back ->
   chat_logprobs (first token, bounded by the alternatives the host returns); an answer
   without them, or a refusal of the parameters -> generate (and parse) through chat; no
   chat endpoint for the model -> generate through legacy completions, if those answered.

The decision is stored with the response cache (keyed by host and model, like the cached
answers), so a later run on the same host does not ask again; `cache: false` asks once per
backend instance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from unified_prompt.errors import BackendError, UserInputError
from unified_prompt_openai.client.cache import request_key
from unified_prompt_openai.client.scoring import echo_body, logprob_body

if TYPE_CHECKING:
    from unified_prompt_openai.client.transport import Transport

PROBE_TEXT = "Hello world"
#: Statuses by which a host says "not this endpoint / not these parameters".
REFUSALS = frozenset({400, 404, 405, 415, 422, 501})
_VERSION = 2  # bump when the decision rules change: older stored decisions are ignored


@dataclass(frozen=True)
class ProbeResult:
    scoring: str  # echo | chat_logprobs | generate
    api: str  # completions | chat: where generation goes
    reason: str
    alternatives: int | None = None  # top alternatives the chat probe got back
    stored: bool = False  # read from the cache instead of asked

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def echoes_prompt(data: dict[str, Any], text: str) -> str | None:
    """None when the answer echoes `text` with prompt log-probs; else what is missing."""
    choices = data.get("choices") or []
    if not choices:
        return "the echo request came back without choices"
    lp = choices[0].get("logprobs") or {}
    tokens, values, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
    if not tokens or values is None or not offsets:
        return "completions answered without prompt log-probs (echo with logprobs unsupported)"
    if offsets[0] != 0 or not "".join(tokens).startswith(text) \
            or not str(choices[0].get("text", "")).startswith(text):
        return "completions ignored echo (log-probs of generated tokens only)"
    covered = [v for v, o in zip(values, offsets, strict=False) if o < len(text)]
    if len(covered) < 2 or any(v is None for v in covered[1:]):
        return "completions echoed the prompt without its log-probs"
    return None


def _detail(exc: BaseException) -> str:
    return str(getattr(exc, "detail", "") or exc)[:200]


def _refused(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if status in REFUSALS else None


class ScoringProbe:
    """Decides and remembers the scoring mode per model for one transport."""

    def __init__(self, transport: Transport, top_logprobs: int) -> None:
        self.transport = transport
        self.top = top_logprobs
        self.decided: dict[str, ProbeResult] = {}

    def _store_key(self, model: str) -> str:
        conn = self.transport.connection
        return request_key(conn.cache_scope, "probe:scoring",
                           {"model": conn.wire_model(model), "top_logprobs": self.top,
                            "version": _VERSION})

    def decide(self, model: str) -> ProbeResult:
        if model in self.decided:
            return self.decided[model]
        cache = self.transport.cache
        key = self._store_key(model)
        stored = cache.get(key) if cache is not None else None
        if stored is not None:
            result = ProbeResult(**{**stored, "stored": True})
        else:
            result = self._ask(model)
            if cache is not None:
                cache.put(key, {k: v for k, v in result.to_dict().items() if k != "stored"})
        self.decided[model] = result
        return result

    def _ask(self, model: str) -> ProbeResult:
        t = self.transport
        completions_answer = True
        try:
            data = t.run(t.complete("completions", echo_body(model, [PROBE_TEXT]), est_prompt=3,
                                    est_completion=0, what="checking whether the host scores "
                                    "prompts (echo + logprobs)"))
            why = echoes_prompt(data, PROBE_TEXT)
            if why is None:
                return ProbeResult("echo", "completions", "completions echo the prompt with "
                                   "its log-probs: exact scoring")
        except (UserInputError, BackendError) as exc:
            status = _refused(exc)
            if status is None:
                raise
            completions_answer = status in (400, 422)  # the endpoint exists, echo does not
            why = f"completions refused echo with logprobs (HTTP {status}: {_detail(exc)})"
        body = logprob_body(model, [{"role": "user", "content": PROBE_TEXT}], self.top, None)
        try:
            data = t.run(t.complete("chat", body, est_prompt=8, est_completion=1,
                                    what="checking whether the host returns chat log-probs"))
        except (UserInputError, BackendError) as exc:
            status = _refused(exc)
            if status is None:
                raise
            if status in (400, 422):
                return ProbeResult("generate", "chat", f"{why}; chat refused logprobs "
                                   f"(HTTP {status}: {_detail(exc)}): generate and parse")
            if completions_answer:
                return ProbeResult("generate", "completions", f"{why}; no chat endpoint for "
                                   f"this model (HTTP {status}): generate and parse")
            if status == 404:
                raise  # neither endpoint knows the model: say so as the host did
            raise BackendError(f"{t.host} serves neither legacy completions nor chat for "
                               f"model {model!r} ({why}; chat: HTTP {status})") from exc
        choices = data.get("choices") or []
        content = ((choices[0].get("logprobs") or {}).get("content") or []) if choices else []
        if not content:
            return ProbeResult("generate", "chat", f"{why}; chat answered without log-probs: "
                               "generate and parse")
        alternatives = len(content[0].get("top_logprobs") or [])
        bound = (f"; the host returned {alternatives} of the {self.top} alternatives asked"
                 if alternatives < self.top else "")
        return ProbeResult("chat_logprobs", "chat", f"{why}; chat returns log-probs: first-token "
                           f"scoring{bound}", alternatives)
