"""Everything `unified-prompt serve` can be told, as one value passed to create_app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAULT_KINDS = ("429", "500", "drop")


@dataclass(frozen=True)
class ServeConfig:
    backend: str
    model: str
    served_name: str | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)  # never in a printed config
    host: str = "127.0.0.1"
    port: int = 8000
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    fault_seed: int | None = None
    retry_after_ms: int = 50
    quota_requests: int | None = None
    requests_per_minute: int | None = None
    rate_window_s: float = 60.0
    organization: str = "unified-prompt"
    train_method: str = "lora"
    data_dir: Path | None = None
    real_api_quirks: bool = False
    default_max_tokens: int = 128
    max_batch: int = 32
    chat_only: bool = False  # answer /v1/completions 404, as hosts of chat models do

    @property
    def model_id(self) -> str:
        return self.served_name or self.model

    def check(self) -> None:
        from unified_prompt.errors import UserInputError

        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise UserInputError(f"--faults: unknown kinds {sorted(unknown)} "
                                 f"(known: {', '.join(FAULT_KINDS)})")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise UserInputError("--fault-rate must be between 0 and 1")
        from unified_prompt_openai.api_defaults import SERVE_TRAIN_METHODS

        if self.train_method not in SERVE_TRAIN_METHODS:
            raise UserInputError(f"--train-method must be {' or '.join(SERVE_TRAIN_METHODS)}")
