"""The hf backend's options (`backend.options.hf` in a spec), validated by the core.

Plain pydantic, no torch: the core validates a spec's options before any model loads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from unified_prompt.backend import BackendOptions


class HFOptions(BackendOptions):
    """Where and how the model runs."""

    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto: cuda if available, else mps, else cpu.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights' dtype. auto: bfloat16 on a GPU that has it, else float32.")
    max_length: int | None = Field(
        None, ge=8, description="Longest prompt in tokens (default: the model's limit, at most "
                                "2048); longer prompts lose text from the front.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's).")
    compile: bool = Field(False, description="torch.compile the base model for inference.")
    attn_implementation: Literal["auto", "sdpa", "eager"] = "auto"
    kind: Literal["auto", "causal", "masked", "seq2seq"] = Field(
        "auto", description="Force the model kind when the config is ambiguous.")
    score_chunk: int = Field(
        64, ge=1, description="Rows per continuation forward when scoring multi-token words "
                              "against a cached prompt (prompts x words).")
