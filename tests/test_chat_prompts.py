"""prompt.chat and multi-turn chat data on the fake backend (whose chat template is plain
"role: content" lines): what is rendered, trained and uploaded, and the data errors that
name file:line with exit 2 in `validate` and `run`."""

import json

import pytest
import yaml

from tests.conftest import run_cli
from unified_prompt.config import build_spec
from unified_prompt.data.resolve import load_splits
from unified_prompt.errors import ConfigError, UserInputError
from unified_prompt.hosted import _rows
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.prompts.segments import Mask, Text
from unified_prompt.registry import create_backend
from unified_prompt.runner import Experiment

CONVERSATIONS = [
    {"id": "c1", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "the film was a delight"},
        {"role": "assistant", "content": "great fun", "weight": 0},
        {"role": "user", "content": "and the acting"},
        {"role": "assistant", "content": "great acting"}]},
    {"id": "c2", "messages": [
        {"role": "user", "content": "a dull and empty story"},
        {"role": "assistant", "content": "boring film"}]},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def chat_spec(tmp_path, rows=CONVERSATIONS, **prompt):
    data = write_jsonl(tmp_path / "chats.jsonl", rows)
    return {"task": "generation", "seed": 3, "backend": {"name": "fake", "model": "fake-gen"},
            "data": {"files": {"train": str(data), "test": str(data)}},
            "prompt": {"template": "Q: {text}", "chat": True, **prompt},
            "eval": {"metrics": ["rouge_l", "exact_match"], "max_new_tokens": 3}}


def builder_for(spec_data, with_model=True):
    spec = build_spec(spec_data)
    splits = load_splits(spec.data, spec.task, spec.seed)
    builder = PromptBuilder(spec, splits.train)
    if with_model:
        backend = create_backend("fake")
        builder.use_model(backend, backend.load_model("fake-gen"))
    return builder, splits


def test_chat_wraps_the_prompt_as_a_user_message(tmp_path):
    data = chat_spec(tmp_path, system="Be brief.")
    data["data"]["files"] = {"test": str(write_jsonl(tmp_path / "g.jsonl", [
        {"id": "g", "text": "a fine film", "target": "good"}]))}
    data["prompt"]["template"] = "Review: {text}\nSummary: {mask}"
    builder, splits = builder_for(data)
    (prompt,) = builder.render(splits.test)
    assert prompt.segments == (Text("system: Be brief.\nuser: Review: a fine film\nSummary:\n"
                                    "assistant:"), Mask())
    assert prompt.meta["messages"][-1] == {"role": "user",
                                           "content": "Review: a fine film\nSummary:"}


def test_conversation_prompts_and_training_turns(tmp_path):
    builder, splits = builder_for(chat_spec(tmp_path, system="Default system."))
    first, second = builder.render(splits.test)
    # evaluation continues the turns before the final assistant turn; user turns go
    # through the template; the conversation's own system message wins
    assert first.segments[0] == Text(
        "system: You are terse.\nuser: Q: the film was a delight\nassistant: great fun\n"
        "user: Q: and the acting\nassistant:")
    assert second.segments[0] == Text("system: Default system.\nuser: Q: a dull and empty "
                                      "story\nassistant:")
    assert [ex.target for ex in splits.test] == ["great acting", "boring film"]
    items = builder.train_items(splits.train)
    # weight 0 turns are context, not targets: c1 trains its last turn only
    assert [(it.prompt.segments[0].text.count("assistant:"), it.target) for it in items] == \
        [(2, "great acting"), (1, "boring film")]


def test_hosted_rows_upload_the_conversations(tmp_path):
    builder, splits = builder_for(chat_spec(tmp_path, system="Default system."),
                                  with_model=False)
    rows = _rows(builder.spec, builder, splits.train)
    assert rows[0]["messages"][2] == {"role": "assistant", "content": "great fun", "weight": 0}
    assert rows[0]["messages"][1]["content"] == "Q: the film was a delight"
    assert rows[1]["messages"][0] == {"role": "system", "content": "Default system."}
    assert rows[1]["messages"][-1] == {"role": "assistant", "content": "boring film"}
    single = chat_spec(tmp_path, system="Be brief.")
    single["data"]["files"] = {"train": str(write_jsonl(tmp_path / "g.jsonl", [
        {"id": "g", "text": "a fine film", "target": "good"}]))}
    builder, splits = builder_for(single, with_model=False)
    assert _rows(builder.spec, builder, splits.train) == [{"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q: a fine film"},
        {"role": "assistant", "content": "good"}]}]


def test_conversation_run_scores_the_final_turn(tmp_path):
    result = Experiment.from_dict(chat_spec(tmp_path)).run(out=tmp_path / "run",
                                                           progress=False)
    assert result.metrics["n_examples"] == 2
    assert [r["target"] for r in result.predictions] == ["great acting", "boring film"]
    assert set(result.metrics["metrics"]) == {"rouge_l", "exact_match"}


def test_lora_trains_on_every_weighted_assistant_turn(tmp_path):
    rows = [*CONVERSATIONS, {"id": "c3", "messages": [
        {"role": "user", "content": "it drags on"}, {"role": "assistant", "content": "too long"},
        {"role": "user", "content": "and the end?"}, {"role": "assistant", "content": "weak"}]}]
    data = chat_spec(tmp_path, rows) | {"finetune": {"method": "lora", "r": 2, "max_steps": 2,
                                                     "batch_size": 2}}
    result = Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
    # c1: one turn (the other has weight 0), c2: one, c3: two
    assert result.metrics["training"]["train_examples"] == 4
    assert result.metrics["trainable_params"] > 0


BAD = {
    "bad role": ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}],
                 "messages[0].role 'robot' is not one of system, user, assistant"),
    "no final assistant": ([{"role": "user", "content": "hi"}],
                           "the last message must have role 'assistant'"),
    "empty content": ([{"role": "user", "content": " "}, {"role": "assistant", "content": "x"}],
                      "messages[0].content must be a non-empty string"),
    "no user turn": ([{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}],
                     "no user message before the final assistant turn"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_conversations_name_file_and_line(tmp_path, case):
    messages, words = BAD[case]
    rows = [CONVERSATIONS[1], {"id": "bad", "messages": messages}]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(chat_spec(tmp_path, rows)))
    for command in (["validate", str(spec)], ["run", str(spec), "--out", str(tmp_path / "r")]):
        res = run_cli(*command)
        assert res.returncode == 2, res.stderr
        assert "chats.jsonl:2" in res.stderr and words in res.stderr
    assert not (tmp_path / "r").exists()


def test_chat_switch_is_checked(tmp_path):
    data = chat_spec(tmp_path)
    data["prompt"]["chat"] = False
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    res = run_cli("validate", str(spec))
    assert res.returncode == 2 and "chats.jsonl:1: the data holds conversations" in res.stderr
    with pytest.raises(ConfigError, match=r"prompt\.system is read only with prompt\.chat"):
        build_spec({**data, "prompt": {"template": "{text}", "system": "s"}})
    with pytest.raises(ConfigError, match="cannot go inside a chat template"):
        build_spec({**chat_spec(tmp_path), "finetune": {"method": "prompt_tuning"}})


def test_classification_refuses_decoding_and_search_refuses_chat(tmp_path):
    from unified_prompt.search.run import _check_spec
    from unified_prompt.search.strategies import strategy_class

    data = chat_spec(tmp_path)
    data |= {"task": "classification", "prompt": {"template": "{text} {mask}", "verbalizer": {
        "pos": "good", "neg": "bad"}}, "eval": {"decoding": {"temperature": 0.7}}}
    with pytest.raises(ConfigError, match="decoding options apply to generation and qa"):
        build_spec(data)
    spec = build_spec(chat_spec(tmp_path))
    with pytest.raises(UserInputError, match="search does not write its candidates"):
        _check_spec(spec, strategy_class("propose")())
