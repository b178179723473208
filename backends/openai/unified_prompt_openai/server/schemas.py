"""Request bodies, read leniently: unknown fields are ignored (as the real API ignores
parameters it does not use), the ones that matter are typed and range-checked."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INT64 = 2**63  # the API's integer parameters (seed) are int64


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(Lenient):
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content
                           if p.get("type") in ("text", "input_text", None))
        return self.content or ""


class StreamOptions(Lenient):
    include_usage: bool = False


class ChatCompletionRequest(Lenient):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    stream: bool | None = None
    stream_options: StreamOptions | None = None


class CompletionRequest(Lenient):
    model: str
    prompt: str | list[str] | list[int] | list[list[int]] | None = None
    max_tokens: int | None = Field(None, ge=0)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None


Auto = Literal["auto"]


class Hyperparameters(Lenient):
    n_epochs: int | Auto | None = Field(None)
    batch_size: int | Auto | None = Field(None)
    learning_rate_multiplier: float | Auto | None = Field(None)
    beta: float | Auto | None = Field(None)


class MethodBody(Lenient):
    hyperparameters: Hyperparameters | None = None


class Method(Lenient):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: MethodBody | None = None
    dpo: MethodBody | None = None


class FineTuningJobRequest(Lenient):
    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = Field(None, min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, le=2147483647)
    metadata: dict[str, str] | None = None
    method: Method | None = None
    hyperparameters: Hyperparameters | None = None


class BatchRequest(Lenient):
    input_file_id: str
    endpoint: Literal["/v1/chat/completions", "/v1/completions"]
    completion_window: Literal["24h"]
    metadata: dict[str, str] | None = None
