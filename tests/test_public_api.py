"""The public API is pinned, and importing the package loads nothing heavy."""

import subprocess
import sys

import unified_prompt


def test_exported_names_are_pinned():
    assert unified_prompt.__all__ == sorted([
        "Backend", "Capabilities", "Example", "Experiment", "ExperimentSpec", "Predictor", "RunResult",
        "Template", "UnifiedPromptError", "Verbalizer", "__version__", "available_backends",
        "create_backend", "load_dataset", "load_file", "load_result", "load_spec", "load_splits",
        "run_search"])
    for name in unified_prompt.__all__:
        assert getattr(unified_prompt, name) is not None


def test_import_loads_no_framework_and_no_heavy_library():
    code = ("import sys, unified_prompt; print(sorted(m for m in ('torch', 'paddle', 'paddlenlp',"
            " 'openai', 'transformers', 'numpy', 'pydantic', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
