"""Fixtures for the hf backend tests: one backend and the tiny models, loaded once."""

from __future__ import annotations

import pytest

from unified_prompt.registry import create_backend
from unified_prompt.testing.tiny import tiny_model


@pytest.fixture(scope="session")
def backend():
    b = create_backend("hf", {"device": "cpu"})
    yield b
    b.close()


@pytest.fixture(scope="session")
def llama(backend):
    return backend.load_model(str(tiny_model("llama")))


@pytest.fixture(scope="session")
def bert(backend):
    return backend.load_model(str(tiny_model("bert")))


@pytest.fixture(scope="session")
def peaky_llama(backend):
    """A tiny Llama with larger random weights: peaked next-token distributions, so a few
    steps of any method visibly change what it generates."""
    from unified_prompt.assets import cache_root
    from unified_prompt.testing.tiny import build_tiny_model

    path = build_tiny_model("llama", cache_root() / "tiny" / "llama-peaky-hf-tests-v1", seed=0,
                            initializer_range=0.2, hidden_size=64, head_dim=16)
    return backend.load_model(str(path))
