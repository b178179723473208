"""The core's error boundary: every backend's primitives leave with core errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from unified_prompt.backend import Backend, Capabilities, ModelInfo, ModelKind, TrainSession
from unified_prompt.errors import (
    BackendError,
    CapabilityError,
    ModelNotFoundError,
    UserInputError,
)


class OutOfMemoryError(RuntimeError):
    """Named as torch names its CUDA out-of-memory error."""


class _Raising(Backend):
    """A backend whose primitives fail the ways frameworks fail."""

    name = "raising"
    capabilities = Capabilities(methods=frozenset({"full"}))

    def load_model(self, ref: str) -> str:
        if ref == "broken":
            raise OSError("config.json: unexpected end of data")
        if ref == "crash":
            raise RuntimeError("segfault in the loader")
        return ref

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(name=model, kind=ModelKind.CAUSAL)

    def score(self, model, prompts, words, *, batch_size=16, progress=None):
        if model == "oom":
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB\nstack...")
        if model == "user":
            raise UserInputError("label word '' has no tokens")
        raise KeyError("input_ids")

    def text_logprobs(self, model, texts, *, top_k=0, batch_size=16):
        return [()] * len(texts)


class _Session(TrainSession):
    model = None
    trainable_params = total_params = 1

    def forward_backward(self, batch, weight=1.0):
        raise ValueError("Expected input batch_size (2) to match target batch_size (3).")

    def optimizer_step(self, lr, max_grad_norm):
        return 0.0

    def loss(self, batch):
        return 0.0

    def trainable_state(self):
        return {"w": np.zeros(1, np.float32)}

    def load_trainable_state(self, state):
        pass

    def save_checkpoint(self, path: Path) -> None:
        pass

    def load_checkpoint(self, path: Path) -> None:
        pass

    def save_adapter(self, path: Path) -> None:
        pass


class _Training(_Raising):
    name = "training"

    def start_training(self, model, setup):
        return _Session()


def test_framework_errors_become_backend_errors_naming_the_backend():
    backend = _Raising()
    with pytest.raises(BackendError, match=r"^raising backend: scoring failed "
                                           r"\(KeyError: 'input_ids'\)$") as err:
        backend.score("m", [], ["a"])
    assert isinstance(err.value.__cause__, KeyError)


def test_core_errors_pass_through_unchanged():
    with pytest.raises(UserInputError, match=r"^label word '' has no tokens$") as err:
        _Raising().score("user", [], ["a"])
    assert err.value.__cause__ is None


def test_a_model_that_fails_to_load_is_model_not_found():
    backend = _Raising()
    with pytest.raises(ModelNotFoundError, match=r"raising backend: cannot load model "
                                                 r"'broken' \(OSError: config.json"):
        backend.load_model("broken")
    with pytest.raises(BackendError, match="loading a model failed"):
        backend.load_model("crash")
    assert backend.load_model("fine") == "fine"


def test_out_of_memory_gets_a_hint():
    with pytest.raises(BackendError, match="out of memory during scoring; use a smaller "
                                           "batch_size") as err:
        _Raising().score("oom", [], ["a"])
    assert isinstance(err.value.__cause__, OutOfMemoryError)


def test_wrapped_methods_keep_their_names_and_are_wrapped_once():
    """The server's worker merges calls by the primitive's __name__."""
    backend = _Raising()
    assert backend.text_logprobs.__name__ == "text_logprobs"
    assert backend.text_logprobs("m", ["a", "b"]) == [(), ()]

    class Sub(_Raising):
        pass

    assert Sub.score is _Raising.score


def test_sessions_are_inside_the_boundary_and_name_their_backend():
    from unified_prompt.backend import TrainSetup
    from unified_prompt.methods import FullSpec

    session = _Training().start_training(
        "m", TrainSetup(method=FullSpec(method="full"), task="classification", seed=0))
    assert session.backend_name == "training"
    with pytest.raises(BackendError, match=r"^training backend: a training step failed "
                                           r"\(ValueError: Expected input"):
        session.forward_backward([])
    with pytest.raises(CapabilityError):
        _Raising().start_training("m", TrainSetup(method=FullSpec(method="full"),
                                                  task="classification", seed=0))
