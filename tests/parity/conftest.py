"""What every cross-framework parity test needs: both backends installed, and one hf and one
paddle backend instance for the session."""

from __future__ import annotations

import importlib.util

import pytest

for _dist in ("unified_prompt_hf", "unified_prompt_paddle", "paddle", "torch"):
    if importlib.util.find_spec(_dist) is None:
        pytest.skip(f"cross-framework parity needs {_dist} (install the hf and paddle backends)",
                    allow_module_level=True)


@pytest.fixture(scope="session")
def backends():
    """(hf on CPU, paddle): the same fp32 weights run on both."""
    from unified_prompt.registry import create_backend

    pair = create_backend("hf", {"device": "cpu"}), create_backend("paddle")
    yield pair
    for b in pair:
        b.close()
