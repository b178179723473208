"""Hosts that speak the OpenAI API, and how they differ: what each documents about echo
scoring, chat log-probs and fine-tuning jobs (the table in this package's README is made
from `KNOWN_HOSTS`), and how to reach one (`Connection`: the plain client, or the SDK's
Azure client for Azure's classic deployments API).

The table states what each host's public documentation says; nothing here could be checked
against the hosts themselves. What decides the scoring mode at run time is the `auto` probe
(client/probe.py), which asks the host; the table only sets the default bound on chat
`top_logprobs` and the mode `--dry-run` assumes before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from unified_prompt_openai.client.redact import public_url

if TYPE_CHECKING:
    from unified_prompt_openai.options import OpenAIOptions


@dataclass(frozen=True)
class HostRow:
    """One row of the host table."""

    name: str
    base_url: str
    auth: str
    echo: bool
    chat_logprobs: bool
    top_logprobs: int | None  # the most alternatives a chat answer carries; None: not stated
    fine_tuning: bool
    rests_on: str
    hostnames: tuple[str, ...] = ()  # hostname suffixes that identify the host
    ports: tuple[int, ...] = ()  # default ports that identify a local server

    def matches(self, hostname: str, port: int | None) -> bool:
        return (any(hostname == h or hostname.endswith("." + h) for h in self.hostnames)
                or (port is not None and port in self.ports))


KNOWN_HOSTS: tuple[HostRow, ...] = (
    HostRow("OpenAI", "https://api.openai.com/v1", "Authorization: Bearer", False, True, 20, True,
            "per its docs: echo with logprobs only on a few legacy completion models; "
            "self-serve fine-tuning winding down from 2027-01", ("api.openai.com",)),
    HostRow("Azure OpenAI (v1 API)", "https://{resource}.openai.azure.com/openai/v1",
            "Authorization: Bearer (key or Entra token)", False, True, 20, True,
            "per its docs; `model` names the deployment", ("openai.azure.com",)),
    HostRow("Azure OpenAI (classic)", "https://{resource}.openai.azure.com/openai/deployments/"
            "{deployment}/...?api-version=...", "api-key", False, True, 20, True,
            "per its docs; the SDK's AzureOpenAI client builds the paths"),
    HostRow("vLLM", "http://{host}:8000/v1", "Authorization: Bearer (if --api-key)", True, True,
            20, False, "per its docs: echo returns prompt log-probs; --max-logprobs bounds "
            "top_logprobs (default 20)"),
    HostRow("unified-prompt serve", "http://{host}:8000/v1", "Authorization: Bearer", True, True,
            20, True, "this repository's tests (tests/openai)"),
    HostRow("Ollama", "http://localhost:11434/v1", "none (any key; Bearer on ollama.com)", False,
            True, None, False, "per its docs: /v1/completions takes no echo; chat logprobs",
            ("ollama.com",), (11434,)),
    HostRow("DeepSeek", "https://api.deepseek.com/v1", "Authorization: Bearer", False, True, 20,
            False, "per its docs: logprobs on deepseek-chat, top_logprobs <= 20; its "
            "completions are fill-in-the-middle (beta)", ("api.deepseek.com",)),
    HostRow("DashScope (Qwen)", "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "Authorization: Bearer", False, True, 5, False,
            "per its docs: logprobs on some Qwen models, top_logprobs 0..5; fine-tuning "
            "through its own API", ("aliyuncs.com",)),
    HostRow("Qianfan (ERNIE)", "https://qianfan.baidubce.com/v2",
            "Authorization: Bearer (+ optional appid header)", False, True, None, False,
            "per its docs (the v2 chat API); no bound on top_logprobs stated: the probe "
            "reports what comes back", ("qianfan.baidubce.com",)),
)


def markdown_table() -> str:
    """The host table as the README shows it (a test keeps the two equal)."""

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    rows = ["| host | base URL | key sent as | echo scoring (exact) | chat logprobs (top-k) | "
            "fine-tuning jobs | rests on |", "|---|---|---|---|---|---|---|"]
    for h in KNOWN_HOSTS:
        top = f"yes ({h.top_logprobs})" if h.chat_logprobs and h.top_logprobs else \
            yes(h.chat_logprobs) + (" (bound not stated)" if h.chat_logprobs else "")
        rows.append(f"| {h.name} | `{h.base_url}` | {h.auth} | {yes(h.echo)} | {top} | "
                    f"{yes(h.fine_tuning)} | {h.rests_on} |")
    return "\n".join(rows)


def recognise(base_url: str) -> HostRow | None:
    """The table's row for a base URL, by its host name (None: unknown, e.g. a local server)."""
    parts = urlsplit(base_url)
    hostname = (parts.hostname or "").lower()
    return next((row for row in KNOWN_HOSTS if row.matches(hostname, parts.port)), None)


def assumed_echo(options: OpenAIOptions) -> bool:
    """Whether echo scoring is expected before anything is sent: a known host says; an
    unknown one (vLLM, this project's server, another local server) is assumed to echo."""
    if options.azure is not None:
        return False
    row = recognise(options.resolved_base_url())
    return row.echo if row is not None else True


def default_top_logprobs(options: OpenAIOptions) -> int:
    """`top_logprobs` as set, else the host's documented bound (20 where none is known)."""
    if "top_logprobs" in options.model_fields_set:
        return options.top_logprobs
    row = recognise(options.resolved_base_url())
    bound = row.top_logprobs if row is not None and row.top_logprobs else options.top_logprobs
    return min(options.top_logprobs, bound)


@dataclass
class Connection:
    """How to reach the host: base URL, key, headers and query, and for Azure the
    deployment each model is served as."""

    base_url: str
    api_key: str | None
    organization: str | None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    azure: bool = False
    api_version: str | None = None  # Azure's classic deployments API
    deployments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: OpenAIOptions) -> Connection:
        azure = options.azure
        return cls(options.resolved_base_url(), options.resolved_api_key(),
                   options.resolved_organization(), options.resolved_headers(),
                   dict(options.extra_query), azure is not None,
                   azure.api_version if azure else None,
                   dict(azure.deployments) if azure else {})

    @property
    def host(self) -> str:
        """The base URL as logs and metrics show it (no credentials, no query)."""
        return public_url(self.base_url)

    @property
    def cache_scope(self) -> str:
        """What, besides the endpoint and the body, decides an answer: the host and, on
        Azure's classic API, its api-version."""
        return self.host + (f"?api-version={self.api_version}" if self.api_version else "")

    @property
    def key_variable(self) -> str:
        """The environment variable a user sets for this host's key."""
        return "AZURE_OPENAI_API_KEY" if self.azure else "OPENAI_API_KEY"

    @property
    def lists_models(self) -> bool:
        """Whether GET /models/{id} finds what requests name (Azure lists base models,
        not deployments)."""
        return not self.azure

    def wire_model(self, model: str) -> str:
        """The name a request carries for `model`: its Azure deployment, else itself."""
        return self.deployments.get(model, model)

    def wire_body(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model")
        if not self.deployments or not isinstance(model, str) or model not in self.deployments:
            return body
        return {**body, "model": self.deployments[model]}

    def make_client(self, *, timeout: float) -> Any:
        """The SDK's async client, its own retries off (the transport retries)."""
        common: dict[str, Any] = {"max_retries": 0, "timeout": timeout,
                                  "default_headers": self.headers or None,
                                  "default_query": self.query or None}
        if self.api_version is not None:
            import os

            from openai import AsyncAzureOpenAI

            if not self.api_key and not os.environ.get("AZURE_OPENAI_AD_TOKEN"):
                from unified_prompt.errors import AuthenticationError

                raise AuthenticationError(
                    f"no key for {self.host}: set AZURE_OPENAI_API_KEY (or "
                    "backend.options.openai.api_key, or AZURE_OPENAI_AD_TOKEN for Entra ID)")

            root = self.base_url[: -len("/openai")]
            return AsyncAzureOpenAI(azure_endpoint=root, api_version=self.api_version,
                                    api_key=self.api_key, **common)
        from openai import AsyncOpenAI

        return AsyncOpenAI(api_key=self.api_key or "no-key", organization=self.organization,
                           base_url=self.base_url, **common)
