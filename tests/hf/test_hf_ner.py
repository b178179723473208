"""task: ner on hf: LoRA trains the entity format on the tiny Llama, and the run's scores are
exactly what the generations it recorded score."""

import pytest

from tests.ner_run import check_run, run_ner


def test_ner_run_with_lora_on_the_tiny_llama(tmp_path):
    pytest.importorskip("unified_prompt_hf")
    check_run(*run_ner(tmp_path, "hf", {"device": "cpu"}))
