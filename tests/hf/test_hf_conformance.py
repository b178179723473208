"""The core's conformance suite on the hf backend, with a tiny causal and a tiny masked LM."""

from __future__ import annotations

from unified_prompt.testing.conformance import BackendConformance
from unified_prompt.testing.tiny import tiny_model


class TestHFLlama(BackendConformance):
    backend_name = "hf"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("llama"))


class TestHFBert(BackendConformance):
    backend_name = "hf"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("bert"))
