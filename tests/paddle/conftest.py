"""Shared fixtures for the paddle backend's tests (tiny models, the backend instance)."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("paddle") is None or importlib.util.find_spec("paddlenlp") is None:
    pytest.skip("paddlepaddle / paddlenlp are not installed", allow_module_level=True)


@pytest.fixture(scope="session")
def paddle_backend():
    from unified_prompt.registry import create_backend

    backend = create_backend("paddle")
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def tiny_llama(paddle_backend):
    from unified_prompt.testing.tiny import tiny_model

    return paddle_backend.load_model(str(tiny_model("llama")))


@pytest.fixture(scope="session")
def tiny_bert(paddle_backend):
    from unified_prompt.testing.tiny import tiny_model

    return paddle_backend.load_model(str(tiny_model("bert")))
