"""The core's conformance suite on the paddle backend: tiny Llama, BERT, GPT-2 and ERNIE."""

from __future__ import annotations

from unified_prompt_paddle.tiny import tiny_model

from unified_prompt.testing.conformance import BackendConformance


class TestPaddleLlama(BackendConformance):
    backend_name = "paddle"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("llama"))


class TestPaddleBert(BackendConformance):
    backend_name = "paddle"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("bert"))


class TestPaddleGPT2(BackendConformance):
    backend_name = "paddle"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("gpt2"))


class TestPaddleErnie(BackendConformance):
    backend_name = "paddle"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("ernie"))
