"""task: ner on paddle: the same LoRA run on the tiny Llama as the hf test."""

from tests.ner_run import check_run, run_ner


def test_ner_run_with_lora_on_the_tiny_llama(tmp_path):
    check_run(*run_ner(tmp_path, "paddle", {}))
