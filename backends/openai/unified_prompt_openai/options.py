"""The backend's options (`backend.options.openai` in a spec) and the environment they
fall back to, so any OpenAI-compatible host works without editing a spec."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unified_prompt.backend import BackendOptions

ScoringMode = Literal["auto", "echo", "chat_logprobs", "generate"]
ApiKind = Literal["auto", "chat", "completions"]

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_ORG = "OPENAI_ORG_ID"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class Price(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    training: float = Field(0.0, ge=0, description="Hosted fine-tuning, per trained token.")


class RetryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_retries: int = Field(6, ge=0, description="Retries after the first attempt.")
    initial_backoff: float = Field(0.5, ge=0, description="Seconds; doubles per retry.")
    max_backoff: float = Field(8.0, ge=0)
    max_retry_after: float = Field(120.0, ge=0, description="Longer server-asked waits fail "
                                   "instead of stalling the run.")


class OpenAIOptions(BackendOptions):
    base_url: str | None = Field(None, description=f"Default: ${ENV_BASE_URL}, else the "
                                 "OpenAI API.")
    api_key: SecretStr | None = Field(None, description=f"Default: ${ENV_API_KEY}. Prefer the "
                                      "environment: a key in a spec file is easy to leak.")
    organization: str | None = Field(None, description=f"Default: ${ENV_ORG}.")
    scoring: ScoringMode = Field(
        "auto", description="echo: exact label-word log-probs from legacy completions "
        "(echo + logprobs); chat_logprobs: first token, top-20 bounded; generate: generate and "
        "parse; auto: echo when the host accepts it, else chat_logprobs.")
    api: ApiKind = Field("auto", description="Endpoint for generation; auto follows scoring.")
    system_prompt: str | None = Field(None, description="A system message for chat requests.")
    top_logprobs: int = Field(20, ge=1, le=20)
    echo_batch: int = Field(1, ge=1, le=256, description="Examples per echo request (their "
                            "label words go in one prompt list): fewer requests, same tokens.")
    concurrency: int = Field(16, ge=1, le=1024, description="Requests in flight at once.")
    requests_per_minute: int | None = Field(None, ge=1, description="Client-side pacing on "
                                            "top of the host's x-ratelimit-* headers.")
    timeout: float = Field(60.0, gt=0, description="Seconds per request.")
    retry: RetryOptions = Field(default_factory=RetryOptions)
    cache: bool = Field(True, description="Reuse responses to identical deterministic requests.")
    cache_dir: Path | None = Field(None, description="Default: $XDG_CACHE_HOME/unified-prompt/openai.")
    prices: dict[str, Price] = Field(default_factory=dict, description="Model -> price, over "
                                     "the built-in table (longest prefix of the model id wins).")
    batch: bool = Field(False, description="Evaluate through the Batch API (half price, slow).")
    batch_poll_seconds: float = Field(10.0, gt=0)
    poll_seconds: float = Field(10.0, gt=0, description="Polling interval for hosted jobs when "
                                "the spec's finetune.poll_seconds is not at hand (a resume).")
    chars_per_token: float = Field(4.0, gt=0, description="For estimates before any request.")

    # -- resolved settings (environment fallbacks) ------------------------------------
    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(ENV_API_KEY)

    def resolved_organization(self) -> str | None:
        return self.organization or os.environ.get(ENV_ORG)

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(root) / "unified-prompt" / "openai"
