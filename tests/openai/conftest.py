"""Fixtures for the openai backend tests: one shared server (fake backend behind a real
uvicorn on 127.0.0.1), and a check after every test that each exchange any test server saw
validates against the official OpenAPI document."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import openai_testkit as kit


@pytest.fixture(scope="session")
def server():
    with kit.serve() as srv:
        yield srv


@pytest.fixture(autouse=True)
def spec_conformance():
    """Every request a test server accepted and every response it sent must validate."""
    yield
    problems = []
    for recorder in list(kit.RECORDERS):
        problems += kit.validate(recorder.take(), per_route=5)
        if recorder.stopped:
            kit.RECORDERS.remove(recorder)
    if problems:
        pytest.fail("exchanges that do not validate against openapi.trimmed.json:\n  "
                    + "\n  ".join(problems[:20]), pytrace=False)
