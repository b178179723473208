"""The `openai` backend: prompting, scoring and hosted fine-tuning on any OpenAI-compatible
host (OpenAI itself, or `unified-prompt serve` in front of a local model).

This module must not import the SDK at import time: `unified-prompt backends` reads the
class attributes below. The work is done by client/ (one module per concern); this class
only chooses a mode per model and wires the pieces together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from unified_prompt.backend import (
    Backend,
    Capabilities,
    GenerationParams,
    HostedJobRequest,
    ModelInfo,
    ModelKind,
    Progress,
    WorkPlan,
)
from unified_prompt.errors import (
    CapabilityError,
    ModelNotFoundError,
)
from unified_prompt_openai.options import OpenAIOptions

if TYPE_CHECKING:
    from unified_prompt.config import BudgetSpec
    from unified_prompt.jobs import Job
    from unified_prompt.prompts.segments import Rendered
    from unified_prompt.prompts.verbalizer import WordScores
    from unified_prompt_openai.client.accounting import Accounting
    from unified_prompt_openai.client.finetune import HostedFineTuning
    from unified_prompt_openai.client.probe import ScoringProbe
    from unified_prompt_openai.client.transport import Transport

CHAT_CAPABILITIES = Capabilities(
    score=True, exact_multi_token=False, top_logprobs_limit=20, generate=True,
    methods=frozenset(), adapters=False, top_tokens=False,
    hosted_finetune=frozenset({"supervised", "dpo"}),
    model_kinds=frozenset({ModelKind.CHAT, ModelKind.CAUSAL}),
    notes=("chat models: label words scored by their first token, top-20 bounded",
           "hosts that accept echo + logprobs on /v1/completions (unified-prompt serve) "
           "score exactly, every token of every word",
           "local training methods: none; finetune.method: hosted (supervised, dpo)"))
ECHO_CAPABILITIES = dataclasses.replace(CHAT_CAPABILITIES, exact_multi_token=True,
                                        top_logprobs_limit=None)
GENERATE_CAPABILITIES = dataclasses.replace(CHAT_CAPABILITIES, score=False)
MODE_CAPABILITIES = {"echo": ECHO_CAPABILITIES, "chat_logprobs": CHAT_CAPABILITIES,
                     "generate": GENERATE_CAPABILITIES}


@dataclass(frozen=True)
class HostedModel:
    """A model on the host, and how this backend talks to it."""

    id: str
    scoring: str
    api: str
    owned_by: str | None = None


class OpenAIBackend(Backend):
    name: ClassVar[str] = "openai"
    capabilities: ClassVar[Capabilities] = CHAT_CAPABILITIES
    Options = OpenAIOptions

    def __init__(self, options: OpenAIOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options: OpenAIOptions
        if self.options.scoring != "auto":
            self.capabilities = MODE_CAPABILITIES[self.options.scoring]
        self._accounting: Accounting | None = None
        self._transport: Transport | None = None
        self._finetune: HostedFineTuning | None = None
        self._budget: BudgetSpec | None = None
        self._poll_seconds = self.options.poll_seconds
        self._first_token: dict[tuple[str, ...], Any] = {}
        self._probe: ScoringProbe | None = None

    # -- plumbing ----------------------------------------------------------------------
    @property
    def accounting(self) -> Accounting:
        if self._accounting is None:
            from unified_prompt_openai.client.accounting import Accounting, PriceTable

            self._accounting = Accounting(PriceTable(self.options.prices))
            if self._budget is not None:
                self._apply_budget(self._budget)
        return self._accounting

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            from unified_prompt_openai.client.transport import Transport

            self._transport = Transport(self.options, self.accounting)
        return self._transport

    @property
    def finetune(self) -> HostedFineTuning:
        if self._finetune is None:
            from unified_prompt_openai.client.finetune import HostedFineTuning

            self._finetune = HostedFineTuning(self.transport, self.accounting)
        return self._finetune

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self._finetune = None
            self._probe = None

    # -- models ------------------------------------------------------------------------
    def load_model(self, ref: str) -> HostedModel:
        transport = self.transport
        owned_by = None
        if transport.connection.lists_models:
            try:
                info = transport.run(transport.send(f"looking up model {ref!r}",
                                                    lambda c: c.models.retrieve(ref)))
            except ModelNotFoundError:
                raise ModelNotFoundError(
                    f"model {ref!r} is not served by {transport.host} (list them with GET "
                    "/models)") from None
            owned_by = getattr(info, "owned_by", None)
        scoring = self.options.scoring
        api = self.options.api
        if scoring == "auto":
            decided = self.probe.decide(ref)
            scoring = decided.scoring
            if api == "auto":
                api = decided.api
        if api == "auto":
            api = "completions" if scoring == "echo" else "chat"
        return HostedModel(ref, scoring, api, owned_by)

    def model_capabilities(self, model: HostedModel) -> Capabilities:
        """What the model's scoring mode allows (echo scores every token exactly; a
        completions-only model is evaluated by generating and parsing)."""
        return MODE_CAPABILITIES[model.scoring]

    @property
    def probe(self) -> ScoringProbe:
        """The `scoring: auto` decisions, one per model (client/probe.py)."""
        if self._probe is None:
            from unified_prompt_openai.client.hosts import default_top_logprobs
            from unified_prompt_openai.client.probe import ScoringProbe

            self._probe = ScoringProbe(self.transport, default_top_logprobs(self.options))
        return self._probe

    def model_info(self, model: HostedModel) -> ModelInfo:
        kind = ModelKind.CAUSAL if model.api == "completions" else ModelKind.CHAT
        return ModelInfo(name=model.id, kind=kind, extra={
            "host": self.transport.host, "scoring": model.scoring, "api": model.api,
            "owned_by": model.owned_by})

    def chat_prompt(self, model: HostedModel, messages: Sequence[dict[str, str]]) -> Rendered:
        """prompt.chat: the messages themselves go to the chat API (the text is what
        estimates and caches see)."""
        from unified_prompt.decoding import plain_chat
        from unified_prompt.prompts.segments import Mask, Rendered, Text

        if model.api != "chat":
            raise CapabilityError(f"prompt.chat: model {model.id!r} is used through legacy "
                                  "completions here; set backend.options.openai.api: chat to "
                                  "send chat messages")
        return Rendered((Text(plain_chat(messages)), Mask()),
                        meta={"messages": [dict(m) for m in messages]})

    # -- scoring -----------------------------------------------------------------------
    def score(self, model: HostedModel, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        import numpy as np

        from unified_prompt.prompts.verbalizer import WordScores
        from unified_prompt_openai.client import scoring as sc
        from unified_prompt_openai.client.hosts import default_top_logprobs
        from unified_prompt_openai.client.prompts import check_no_soft, estimate_tokens

        check_no_soft(prompts)
        if model.scoring == "echo":
            texts = [sc.echo_texts(p, words) for p in prompts]
            size = self.options.echo_batch
            chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
            bodies = [sc.echo_body(model.id, [t for _, ts in chunk for t in ts])
                      for chunk in chunks]
            cpt = self.options.chars_per_token
            est = [sum(estimate_tokens(x, cpt) for _, ts in chunk for x in ts)
                   for chunk in chunks]
            results = self._complete_all("completions", bodies, est, [0] * len(bodies),
                                         "scoring label words (echo)", progress,
                                         weights=[len(chunk) for chunk in chunks])
            parsed = []
            for data, chunk in zip(results, chunks, strict=True):
                parsed += sc.split_echo(data, [len(prefix) for prefix, _ in chunk], len(words))
            straddles = sum(p.straddles for p in parsed)
            if straddles:
                self.accounting.note(f"{straddles} echoed tokens straddled the prompt/word "
                                     "boundary (scores exclude them)")
            return WordScores(np.array([p.logprob for p in parsed], dtype=np.float64),
                              np.array([p.n_tokens for p in parsed], dtype=np.int64), exact=True)
        if model.scoring == "chat_logprobs":
            messages, est = self._chat_messages(prompts)
            top = default_top_logprobs(self.options)
            bodies = [sc.logprob_body(model.id, m, top, None) for m in messages]
            results = self._complete_all("chat", bodies, est, [1] * len(bodies),
                                         "scoring label words (chat logprobs)", progress)
            scorer = self._scorer(tuple(words))
            rows = [scorer.score(sc.first_token_alternatives(d)) for d in results]
            if scorer.outside:
                self.accounting.note("label words outside the top logprobs were scored at "
                                     "the lowest returned log-prob")
            return WordScores(np.array(rows, dtype=np.float64),
                              np.ones((len(prompts), len(words)), dtype=np.int64), exact=False)
        raise CapabilityError(f"model {model.id!r} is evaluated by generating and parsing "
                              "(scoring: generate); it cannot score label words")

    def _scorer(self, words: tuple[str, ...]) -> Any:
        """One first-token scorer per word list, so each warning is given once."""
        import warnings

        from unified_prompt_openai.client.scoring import FirstTokenScorer, LabelWordWarning

        if words not in self._first_token:
            # Labels are not known here: treat each word as its own label for "shared"
            # unless words repeat a first word (then warn up front).
            scorer = FirstTokenScorer(words, tuple(range(len(words))))
            for problem in scorer.static_warnings():
                warnings.warn(problem, LabelWordWarning, stacklevel=3)
            self._first_token[words] = scorer
        return self._first_token[words]

    # -- generation --------------------------------------------------------------------
    def generate(self, model: HostedModel, prompts: Sequence[Rendered], params: GenerationParams,
                 *, batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        from unified_prompt_openai.client import generation as gen
        from unified_prompt_openai.client.prompts import check_no_soft, estimate_tokens

        check_no_soft(prompts)
        if model.api == "chat":
            messages, est = self._chat_messages(prompts)
            bodies = [gen.chat_body(model.id, m, params) for m in messages]
            results = self._complete_all("chat", bodies, est,
                                         [params.max_new_tokens * params.n] * len(bodies),
                                         "generating", progress)
            texts = [t for d in results for t in gen.chat_texts(d, params.n)]
        else:
            prompts_text = [p.prefix_text() for p in prompts]
            bodies = [gen.completion_body(model.id, t, params) for t in prompts_text]
            est = [estimate_tokens(t, self.options.chars_per_token) for t in prompts_text]
            results = self._complete_all("completions", bodies, est,
                                         [params.max_new_tokens * params.n] * len(bodies),
                                         "generating", progress)
            texts = [t for d in results for t in gen.completion_texts(d, params.n)]
        return [gen.cut_at_stop(t, params.stop) for t in texts]

    def _chat_messages(self, prompts: Sequence[Rendered]) -> tuple[list[Any], list[int]]:
        """Each prompt as chat messages, with its estimated prompt tokens."""
        from unified_prompt_openai.client.prompts import chat_messages, estimate_chat_tokens

        messages = [chat_messages(p, self.options.system_prompt) for p in prompts]
        cpt = self.options.chars_per_token
        return messages, [estimate_chat_tokens(m, cpt) for m in messages]

    def _complete_all(self, api: str, bodies: list[dict[str, Any]], est_prompt: list[int],
                      est_completion: list[int], what: str, progress: Progress | None,
                      weights: list[int] | None = None) -> list[dict[str, Any]]:
        """Every request concurrently (or as one batch); the budget is checked against the
        uncached part before anything is sent."""
        from unified_prompt_openai.client.loop import gather_first_error

        transport = self.transport
        transport.fatal = None  # a quota error halts one evaluation, not the instance
        todo = [i for i, body in enumerate(bodies)
                if not transport.is_cached(transport.cache_key(api, body))]
        if todo:
            prices = self.accounting.prices
            model = str(bodies[0].get("model"))
            tokens = sum(est_prompt[i] + est_completion[i] for i in todo)
            cost = prices.cost(model, sum(est_prompt[i] for i in todo),
                               sum(est_completion[i] for i in todo),
                               batch=self.options.batch) or 0.0
            self.accounting.check_plan(len(todo), tokens, cost, what)

        def one(i: int) -> Any:
            return transport.complete(api, bodies[i], est_prompt=est_prompt[i],
                                      est_completion=est_completion[i], what=what)

        async def tracked(i: int) -> Any:
            result = await one(i)
            if progress is not None:
                progress(weights[i] if weights else 1)
            return result

        if self.options.batch:
            from unified_prompt_openai.client.batch import run_batch

            results = transport.run(run_batch(transport, api, bodies,
                                              self.options.batch_poll_seconds, one))
            if progress:
                progress(sum(weights) if weights else len(bodies))
            return results
        return transport.run(gather_first_error(
            [lambda i=i: tracked(i) for i in range(len(bodies))]))

    # -- hosted jobs -------------------------------------------------------------------
    def create_hosted_job(self, request: HostedJobRequest) -> str:
        self._poll_seconds = request.spec.poll_seconds
        if self._budget is not None and self._budget.max_cost_usd is not None:
            self._check_training_budget(request, self._budget.max_cost_usd)
        return self.finetune.create(request)

    def _check_training_budget(self, request: HostedJobRequest, budget: float) -> None:
        from unified_prompt.errors import BudgetExceededError
        from unified_prompt_openai.client.estimate import training_estimate

        plan = training_estimate(self.options, self.accounting.prices, request.model,
                                 request.training_file.stat().st_size, request.spec.n_epochs)
        if plan["training_cost_usd"] > budget:
            raise BudgetExceededError(
                f"budget.max_cost_usd={budget}: hosted training would cost about "
                f"${plan['training_cost_usd']:.4f}; stopped before uploading")

    def hosted_job(self, job_id: str) -> Job:
        return self.finetune.job(job_id, self._poll_seconds)

    def find_hosted_job(self, run_token: str) -> str | None:
        return self.finetune.find(run_token)

    # -- cost --------------------------------------------------------------------------
    def estimate(self, plan: WorkPlan) -> dict[str, Any]:
        """Requests, tokens and dollars from character counts; nothing is sent."""
        from unified_prompt_openai.client.estimate import estimate

        return estimate(self.options, self.accounting.prices, plan)

    def usage(self) -> dict[str, Any]:
        """Requests, tokens and cost; with `scoring: auto`, what the probe chose per model
        and why (`scoring`)."""
        if self._accounting is None:
            return {}
        out = self._accounting.usage()
        if self._probe is not None and self._probe.decided:
            out["scoring"] = {m: r.to_dict() for m, r in self._probe.decided.items()}
        return out

    def set_budget(self, budget: BudgetSpec) -> None:
        self._budget = budget
        if self._accounting is not None:
            self._apply_budget(budget)

    def _apply_budget(self, budget: BudgetSpec) -> None:
        self.accounting.set_limits(max_requests=budget.max_requests,
                                   max_tokens=budget.max_tokens, max_cost=budget.max_cost_usd)
