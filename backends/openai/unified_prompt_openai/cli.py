"""`unified-prompt serve`: registered through the `unified_prompt.commands` entry point.

Only click is imported here; the server (FastAPI, uvicorn, the backend) loads when the
command runs, so `unified-prompt --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from unified_prompt.cli import handles_errors
from unified_prompt_openai.api_defaults import SERVE_TRAIN_METHODS

KEY_ENV = "UNIFIED_PROMPT_SERVE_KEY"


def _options(items: tuple[str, ...]) -> dict[str, object]:
    from unified_prompt.config import parse_override

    out: dict[str, object] = {}
    for item in items:
        path, value = parse_override(item)
        out[".".join(path)] = value
    return out


@click.command("serve")
@click.option("--backend", "backend", required=True, metavar="NAME",
              help="Local backend to serve: hf, paddle, fake, ...")
@click.option("--model", required=True, help="Model reference for that backend.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--api-key", default=None, help=f"Bearer token clients must send "
              f"(default: ${KEY_ENV}; none: open).")
@click.option("--served-name", default=None, help="Model id clients use (default: --model).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A backend option, e.g. --option device=cpu.")
@click.option("--latency-ms", default=0.0, show_default=True, type=float,
              help="Simulated network latency added to every request.")
@click.option("--fault-rate", default=0.0, show_default=True, type=float,
              help="Fraction of requests answered with an injected fault.")
@click.option("--faults", default="429,500,drop", show_default=True,
              help="Fault kinds to inject: 429 (with retry-after), 500, drop.")
@click.option("--fault-seed", default=None, type=int, help="Seed for repeatable faults.")
@click.option("--rpm", default=None, type=int, help="Enforce a requests-per-minute limit "
              "(x-ratelimit-* headers, 429 over it).")
@click.option("--quota-requests", default=None, type=int,
              help="Answer insufficient_quota after this many completions.")
@click.option("--train-method", default="lora", show_default=True,
              type=click.Choice(SERVE_TRAIN_METHODS),
              help="What a fine-tuning job trains locally.")
@click.option("--max-batch", default=32, show_default=True, type=int,
              help="Concurrent requests merged into one backend call (1: never merge).")
@click.option("--org", "organization", default="unified-prompt", show_default=True)
@click.option("--data-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where uploaded files and adapters go (default: a temporary folder).")
@click.option("--log-level", default="info", show_default=True)
@handles_errors
def serve(backend: str, model: str, port: int, host: str, api_key: str | None,
          served_name: str | None, options: tuple[str, ...], latency_ms: float,
          fault_rate: float, faults: str, fault_seed: int | None, rpm: int | None,
          quota_requests: int | None, train_method: str, max_batch: int, organization: str,
          data_dir: Path | None, log_level: str) -> None:
    """Serve a local model over an OpenAI-compatible HTTP API (chat, completions with
    logprobs and echo, files, fine-tuning jobs that train for real, batches)."""
    from unified_prompt_openai.server.config import ServeConfig
    from unified_prompt_openai.server.run import serve_forever

    key = api_key or os.environ.get(KEY_ENV) or None
    if key is None and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host} without an API key (set {KEY_ENV})", err=True)
    config = ServeConfig(
        backend=backend, model=model, served_name=served_name, backend_options=_options(options),
        api_key=key, host=host, port=port, latency_ms=latency_ms, fault_rate=fault_rate,
        faults=tuple(f.strip() for f in faults.split(",") if f.strip()), fault_seed=fault_seed,
        requests_per_minute=rpm, quota_requests=quota_requests, train_method=train_method,
        organization=organization, data_dir=data_dir, max_batch=max(1, max_batch))
    config.check()
    click.echo(f"serving {backend}:{model} as {config.model_id!r} on http://{host}:{port}/v1"
               f"{' (key required)' if key else ''}", err=True)
    serve_forever(config, log_level=log_level)
