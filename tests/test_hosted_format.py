"""Converters to the hosted API's JSONL formats, and validation before any upload."""

import json

import pytest

from unified_prompt.data.hosted_format import (
    FormatRules,
    chat_example,
    dpo_example,
    validate_file,
    validate_lines,
    write_training_file,
)
from unified_prompt.errors import DataError


def lines(rows):
    return [json.dumps(r) for r in rows]


def test_valid_supervised_and_dpo_files_pass(tmp_path):
    sup = [chat_example(f"Review {i}", "positive", system="Classify.") for i in range(10)]
    assert write_training_file(tmp_path / "s.jsonl", sup, "supervised") == 10
    assert validate_file(tmp_path / "s.jsonl", "supervised") == 10
    dpo = [dpo_example(f"Review {i}", "positive", "negative") for i in range(12)]
    assert validate_lines(lines(dpo), "dpo") == 12


def test_too_few_examples_is_rejected():
    with pytest.raises(DataError, match="9 examples; hosted fine-tuning needs at least 10"):
        validate_lines(lines([chat_example("q", "a")] * 9), "supervised")


def test_wrong_roles_name_the_line(tmp_path):
    rows = [chat_example("q", "a") for _ in range(10)]
    rows[3]["messages"][0]["role"] = "bot"
    with pytest.raises(DataError) as err:
        write_training_file(tmp_path / "bad.jsonl", rows, "supervised")
    assert "line 4: messages[0].role 'bot' is not one of system, user, assistant" in str(err.value)
    assert err.value.line == 4
    assert not (tmp_path / "bad.jsonl").exists(), "nothing is written when validation fails"


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r["messages"].pop(), "the last message must have role 'assistant'"),
    (lambda r: r["messages"][1].update(content=""), "content must be a non-empty string"),
    (lambda r: r.update(prompt="x"), "unknown keys ['prompt']"),
    (lambda r: r["messages"].append({"role": "system", "content": "late"}),
     "a system message may only come first"),
])
def test_supervised_rules(mutate, message):
    rows = [chat_example("q", "a") for _ in range(10)]
    mutate(rows[0])
    with pytest.raises(DataError, match="line 1: "):
        validate_lines(lines(rows), "supervised")
    with pytest.raises(DataError) as err:
        validate_lines(lines(rows), "supervised")
    assert message in str(err.value)


def test_dpo_rules():
    rows = [dpo_example("q", "good", "bad") for _ in range(10)]
    rows[2]["non_preferred_output"] = rows[2]["preferred_output"]
    rows[5]["input"]["messages"].append({"role": "assistant", "content": "x"})
    with pytest.raises(DataError) as err:
        validate_lines(lines(rows), "dpo")
    assert "line 3: preferred_output and non_preferred_output are identical" in str(err.value)
    assert "line 6: input.messages: the last message must have role 'user'" in str(err.value)


def test_oversize_line_and_broken_json():
    rows = lines([chat_example("q", "a") for _ in range(10)])
    rows[7] = json.dumps(chat_example("x" * 3000, "a"))
    rows[8] = "{not json"
    with pytest.raises(DataError) as err:
        validate_lines(rows, "supervised", rules=FormatRules(max_example_tokens=500))
    text = str(err.value)
    assert "line 8: about 1" in text and "over the 500-token limit" in text
    assert "line 9: not valid JSON" in text
