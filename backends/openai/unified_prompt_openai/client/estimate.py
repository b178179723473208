"""What a run will cost, from character counts alone (`unified-prompt run --dry-run`):
nothing is sent, so in auto mode the host's echo support is assumed from the host table
(client/hosts.py: a known host as documented; an unknown one, a local server, echoes)."""

from __future__ import annotations

import math
from typing import Any

from unified_prompt.backend import WorkPlan
from unified_prompt_openai.api_defaults import AUTO_EPOCHS
from unified_prompt_openai.client.accounting import PriceTable
from unified_prompt_openai.client.hosts import assumed_echo
from unified_prompt_openai.client.redact import public_url
from unified_prompt_openai.options import OpenAIOptions


def assumed_mode(options: OpenAIOptions) -> str:
    if options.scoring != "auto":
        return options.scoring
    return "echo" if assumed_echo(options) else "chat_logprobs"


def training_estimate(options: OpenAIOptions, prices: PriceTable, model: str, chars: int,
                      n_epochs: Any = "auto") -> dict[str, Any]:
    """Tokens and dollars of a hosted training job; `n_epochs` other than an int ("auto",
    None) counts AUTO_EPOCHS."""
    epochs = n_epochs if isinstance(n_epochs, int) else AUTO_EPOCHS
    tokens = int(chars / options.chars_per_token) * epochs
    price = prices.lookup(model)
    return {"training_tokens": tokens, "training_epochs_assumed": epochs,
            "training_cost_usd": round(tokens * (price.training if price else 0) / 1e6, 6)}


def estimate(options: OpenAIOptions, prices: PriceTable, plan: WorkPlan) -> dict[str, Any]:
    mode = assumed_mode(options)
    cpt = options.chars_per_token
    n = plan.score_prompts
    avg = plan.prompt_chars / max(1, n or plan.generate_prompts)
    if mode == "echo":  # the prefix is sent once per label word
        prompt_tokens, completion_tokens = int(n * plan.words * (avg / cpt + 2)), 0
        requests = math.ceil(n / options.echo_batch)
    elif mode == "chat_logprobs":
        prompt_tokens, completion_tokens, requests = int(n * (avg / cpt + 10)), n, n
    else:  # generate and parse
        prompt_tokens, completion_tokens, requests = int(n * (avg / cpt + 10)), n * 16, n
    requests += plan.generate_prompts
    prompt_tokens += int(plan.generate_prompts * (avg / cpt + 10))
    completion_tokens += plan.generate_prompts * plan.max_new_tokens
    model = plan.model
    out: dict[str, Any] = {"scoring": mode, "host": public_url(options.resolved_base_url()),
                           "requests": requests, "prompt_tokens": prompt_tokens,
                           "completion_tokens": completion_tokens}
    if plan.hosted_training:
        out.update(training_estimate(options, prices, model,
                                     plan.train_chars + 60 * plan.train_examples,
                                     plan.hosted_epochs))
        model = f"ft:{model}"
    cost = prices.cost(model, prompt_tokens, completion_tokens, batch=options.batch)
    out["eval_cost_usd"] = round(cost, 6) if cost is not None else None
    out["cost_usd"] = round((cost or 0.0) + out.get("training_cost_usd", 0.0), 6)
    if cost is None:
        out["note"] = f"no price for {model!r} (set backend.options.openai.prices)"
    if options.batch:
        out["batch_api"] = True
    return out
