"""The backend's options (`backend.options.openai` in a spec) and the environment they
fall back to, so any OpenAI-compatible host works without editing a spec."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from unified_prompt.backend import BackendOptions

ScoringMode = Literal["auto", "echo", "chat_logprobs", "generate"]
ApiKind = Literal["auto", "chat", "completions"]

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_ORG = "OPENAI_ORG_ID"
ENV_AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
ENV_AZURE_KEY = "AZURE_OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: Header names that carry credentials: never literal in a spec (config.yaml is written to
#: every run directory), only through headers_from_env.
CREDENTIAL_HEADER = re.compile(r"(authorization|api[-_]?key|token|secret|passw|cookie|"
                               r"(^|[-_])key$|subscription)", re.IGNORECASE)


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


class AzureOptions(BaseModel):
    """Azure OpenAI: the v1 API (`{endpoint}/openai/v1`, the plain client) by default, or
    the classic deployments API when `api_version` is given (the SDK's AzureOpenAI client:
    `/openai/deployments/{deployment}/...?api-version=`, key in an `api-key` header)."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(None, description=f"https://{{resource}}.openai.azure.com; "
                                 f"default ${ENV_AZURE_ENDPOINT}.")
    api_version: str | None = Field(None, description="Set: the classic deployments API with "
                                    "this api-version (e.g. 2024-10-21). Left out: the v1 API.")
    deployments: dict[str, str] = Field(default_factory=dict, description="Spec model -> "
                                        "deployment name (default: the model id is the "
                                        "deployment's name).")

    def resolved_endpoint(self) -> str:
        from unified_prompt.errors import UserInputError

        endpoint = self.endpoint or os.environ.get(ENV_AZURE_ENDPOINT)
        if not endpoint:
            raise UserInputError(f"backend.options.openai.azure.endpoint is not set (nor "
                                 f"${ENV_AZURE_ENDPOINT}); give https://<resource>.openai.azure.com")
        return endpoint.rstrip("/")


class OpenAIOptions(BackendOptions):
    base_url: str | None = Field(None, description=f"Default: ${ENV_BASE_URL}, else the "
                                 "OpenAI API.")
    azure: AzureOptions | None = Field(None, description="Azure OpenAI instead of base_url.")
    extra_headers: dict[str, str] = Field(default_factory=dict, description="Headers sent "
                                          "with every request (e.g. an app id); credentials "
                                          "go in headers_from_env.")
    headers_from_env: dict[str, str] = Field(default_factory=dict, description="Header -> "
                                             "environment variable holding its value "
                                             "(credentials a gateway wants).")
    extra_query: dict[str, str] = Field(default_factory=dict, description="Query parameters "
                                        "sent with every request.")
    api_key: SecretStr | None = Field(None, description=f"Default: ${ENV_API_KEY}. Prefer the "
                                      "environment: a key in a spec file is easy to leak.")
    organization: str | None = Field(None, description=f"Default: ${ENV_ORG}.")
    scoring: ScoringMode = Field(
        "auto", description="echo: exact label-word log-probs from legacy completions "
        "(echo + logprobs); chat_logprobs: first token, top-20 bounded; generate: generate and "
        "parse; auto: ask the host (echo where it really echoes prompt log-probs, else chat "
        "log-probs, else generate), remembered per host and model.")
    api: ApiKind = Field("auto", description="Endpoint for generation; auto follows scoring.")
    system_prompt: str | None = Field(None, description="A system message for chat requests.")
    top_logprobs: int = Field(20, ge=1, le=20, description="Chat alternatives asked for; "
                              "left out: 20, or the host's documented bound (client/hosts.py).")
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

    @field_validator("extra_headers")
    @classmethod
    def _no_credentials_in_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        secret = sorted(h for h in headers if CREDENTIAL_HEADER.search(h))
        if secret:
            raise ValueError(f"{', '.join(secret)} look like credentials; a spec is copied into "
                             "every run directory, so give them as headers_from_env: "
                             "{header: ENV_VARIABLE}")
        return headers

    @model_validator(mode="after")
    def _one_host(self) -> OpenAIOptions:
        if self.azure is not None and self.base_url is not None:
            raise ValueError("give base_url or azure, not both (azure builds its own URLs)")
        if self.azure is not None and self.batch:
            raise ValueError("batch: true is not supported with azure (its batch lines name "
                             "deployments); leave batch off")
        return self

    # -- resolved settings (environment fallbacks) ------------------------------------
    def resolved_base_url(self) -> str:
        """Where requests go: for Azure, the v1 base URL or the resource's /openai root
        (the classic client adds /deployments/{deployment} and the api-version)."""
        if self.azure is not None:
            root = self.azure.resolved_endpoint() + "/openai"
            return root if self.azure.api_version else root + "/v1"
        return (self.base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")

    def resolved_api_key(self) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.azure is not None and os.environ.get(ENV_AZURE_KEY):
            return os.environ[ENV_AZURE_KEY]
        return os.environ.get(ENV_API_KEY)

    def resolved_headers(self) -> dict[str, str]:
        """extra_headers, plus each headers_from_env header read from its variable."""
        from unified_prompt.errors import UserInputError

        out = dict(self.extra_headers)
        for header, variable in self.headers_from_env.items():
            value = os.environ.get(variable)
            if not value:
                raise UserInputError(f"backend.options.openai.headers_from_env.{header}: the "
                                     f"environment variable {variable} is not set")
            out[header] = value
        return out

    def secrets(self) -> list[str]:
        """Values never to print: the key and every header read from the environment."""
        values = [self.resolved_api_key()]
        values += [os.environ.get(v) for v in self.headers_from_env.values()]
        return [v for v in values if v]

    def resolved_organization(self) -> str | None:
        return self.organization or os.environ.get(ENV_ORG)

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(root) / "unified-prompt" / "openai"
