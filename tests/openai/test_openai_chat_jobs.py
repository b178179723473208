"""A fine-tuning job through `unified-prompt serve` trains the same per-turn items as
`unified-prompt run` on the same conversations: every assistant turn with weight 1 (the
default), after the turns before it; weight 0 turns are context only."""

from __future__ import annotations

import json

import openai_testkit as kit

from unified_prompt.data.conversations import conversation_example, training_turns
from unified_prompt.runner import Experiment

CHATS = [{"messages": [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": f"first question {i}"},
    {"role": "assistant", "content": "context only", "weight": 0},
    {"role": "user", "content": f"second question {i}"},
    {"role": "assistant", "content": f"answer two {i}"},
    {"role": "user", "content": f"third question {i}"},
    {"role": "assistant", "content": f"answer three {i}"}]} for i in range(5)] + [
    {"messages": [{"role": "user", "content": f"one shot {i}"},
                  {"role": "assistant", "content": "fine"}]} for i in range(5)]



def test_a_served_job_trains_every_assistant_turn_as_run_does(server, tmp_path):
    from openai import OpenAI

    lines = "".join(json.dumps(c) + "\n" for c in CHATS)
    expected = sum(len(training_turns(conversation_example(c, "messages", "t", i, str(i))))
                   for i, c in enumerate(CHATS))
    assert expected == 15  # two trained turns in each long conversation, one in each short
    c = OpenAI(base_url=server.base_url, api_key=kit.API_KEY, max_retries=0)
    f = c.files.create(file=("chats.jsonl", lines.encode()), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(model="fake-tiny", training_file=f.id, method={
        "type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2,
                                                                 "batch_size": 1}}})
    job = kit.finished_job(c, job.id)
    assert job.status == "succeeded", job.error
    steps = sorted(k.step_number for k in c.fine_tuning.jobs.checkpoints.list(job.id).data)
    assert steps == [expected, 2 * expected]  # one optimizer step per item, per epoch

    data = tmp_path / "chats.jsonl"
    data.write_text(lines, encoding="utf-8")
    local = Experiment.from_dict({
        "task": "generation", "backend": {"name": "fake", "model": "fake-tiny"},
        "data": {"files": {"train": str(data), "dev": str(data), "test": str(data)}},
        "prompt": {"template": "{text}", "chat": True},
        "finetune": {"method": "lora", "epochs": 2, "batch_size": 1},
        "eval": {"max_new_tokens": 2, "limit": 1}}).run(out=tmp_path / "run", progress=False)
    assert local.metrics["training"]["train_examples"] == expected  # the same items
    assert local.metrics["training"]["steps"] == 2 * expected
