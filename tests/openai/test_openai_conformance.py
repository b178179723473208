"""The standard backend suite for `openai` against `unified-prompt serve --backend fake`
(local training methods skip: this backend trains only through hosted jobs), and a tour of
every endpoint the server offers, each exchange validated against the official document."""

from __future__ import annotations

import json
import time

import openai_testkit as kit
import pytest

from unified_prompt.testing.conformance import BackendConformance


@pytest.fixture(scope="module", autouse=True)
def openai_env(server):
    """The standard suite creates backends from fixed options, so the host and key come
    from OPENAI_BASE_URL / OPENAI_API_KEY, as a user would set them (restored after)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.base_url)
        mp.setenv("OPENAI_API_KEY", kit.API_KEY)
        mp.delenv("OPENAI_ORG_ID", raising=False)
        yield


class TestOpenAIConformance(BackendConformance):
    backend_name = "openai"
    backend_options = {"cache": False, "retry": {"initial_backoff": 0.02}}

    @classmethod
    def model_ref(cls) -> str:
        return "fake-tiny"


def _rows(n: int) -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"Review: film {i} was fine\nSentiment:"},
                          {"role": "assistant", "content": "positive" if i % 2 else "negative"}]}
            for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_every_endpoint_validates_against_the_official_document():
    """Drive each operation with the real SDK, then validate every exchange (no sampling),
    and see each known gap actually exercised."""
    from openai import OpenAI

    with kit.serve(real_api_quirks=True, backend_options={"step_delay": 0.05}) as srv:
        c = OpenAI(base_url=srv.base_url, api_key=kit.API_KEY, max_retries=0)
        assert [m.id for m in c.models.list().data] == ["fake-tiny"]
        c.models.retrieve("fake-tiny")
        chat = c.chat.completions.create(model="fake-tiny", max_completion_tokens=4,
                                         messages=[{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": "Hello"}],
                                         logprobs=True, top_logprobs=5, temperature=0, seed=3)
        content = chat.choices[0].logprobs.content
        assert len(content) == 4 and len(content[0].top_logprobs) == 5
        assert chat.choices[0].message.content == "".join(t.token for t in content)
        chunks = list(c.chat.completions.create(
            model="fake-tiny", messages=[{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hello"}],
            max_completion_tokens=4, stream=True, logprobs=True, top_logprobs=2,
            stream_options={"include_usage": True}))
        streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert streamed == chat.choices[0].message.content
        assert chunks[-1].usage.completion_tokens == 4
        echo = c.completions.create(model="fake-tiny", prompt=["Review: fine\nSentiment: good"],
                                    max_tokens=0, echo=True, logprobs=0)
        lp = echo.choices[0].logprobs
        assert lp.token_logprobs[0] is None and all(v < 0 for v in lp.token_logprobs[1:])
        gen = c.completions.create(model="fake-tiny", prompt="Review: fine\nSentiment:",
                                   max_tokens=3, logprobs=2, echo=True)
        assert gen.choices[0].text.startswith("Review: fine\nSentiment:")
        pieces = list(c.completions.create(model="fake-tiny", prompt="Review: fine\nSentiment:",
                                           max_tokens=3, logprobs=2, echo=True, stream=True))
        assert "".join(p.choices[0].text for p in pieces) == gen.choices[0].text
        f = c.files.create(file=("train.jsonl", _rows(12), "application/jsonl"),
                           purpose="fine-tune")
        assert c.files.retrieve(f.id).bytes == len(_rows(12))
        assert f.id in [x.id for x in c.files.list(purpose="fine-tune").data]
        assert c.files.content(f.id).content == _rows(12)
        job = c.fine_tuning.jobs.create(
            model="fake-tiny", training_file=f.id, suffix="tour", seed=1,
            metadata={"unified_prompt_run": "tour"},
            method={"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 20}}})
        c.fine_tuning.jobs.pause(job.id)
        assert c.fine_tuning.jobs.retrieve(job.id).status == "paused"
        c.fine_tuning.jobs.resume(job.id)
        done = kit.finished_job(c, job.id, timeout=30)
        assert done.status == "succeeded", done.error
        assert done.fine_tuned_model.startswith("ft:fake-tiny:unified-prompt:tour:")
        listed = c.fine_tuning.jobs.list(metadata={"unified_prompt_run": "tour"}, limit=5)
        assert [j.id for j in listed.data] == [job.id]
        first = c.fine_tuning.jobs.list_events(job.id, limit=3)
        rest = c.fine_tuning.jobs.list_events(job.id, after=first.data[-1].id, limit=100)
        ids = [e.id for e in first.data + rest.data]
        assert len(ids) == len(set(ids)) and first.has_more
        ckpts = c.fine_tuning.jobs.checkpoints.list(job.id)
        assert [cp.step_number for cp in ckpts.data] == [6, 3]  # 12 rows, batch 4, 2 epochs
        ft_chat = c.chat.completions.create(model=done.fine_tuned_model, max_completion_tokens=2,
                                            messages=[{"role": "user", "content": "Review: x"}])
        assert ft_chat.model == done.fine_tuned_model
        second = c.fine_tuning.jobs.create(model="fake-tiny", training_file=f.id)
        c.fine_tuning.jobs.cancel(second.id)
        assert c.fine_tuning.jobs.retrieve(second.id).status == "cancelled"
        batch_in = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST",
                                       "url": "/v1/completions",
                                       "body": {"model": "fake-tiny", "prompt": f"hi {i}",
                                                "max_tokens": 2}}) + "\n" for i in range(3))
        bf = c.files.create(file=("b.jsonl", batch_in.encode(), "application/jsonl"),
                            purpose="batch")
        batch = c.batches.create(input_file_id=bf.id, endpoint="/v1/completions",
                                 completion_window="24h")
        while batch.status not in ("completed", "failed"):
            time.sleep(0.05)
            batch = c.batches.retrieve(batch.id)
        assert batch.request_counts.completed == 3
        out = c.files.content(batch.output_file_id).text.splitlines()
        assert sorted(json.loads(x)["custom_id"] for x in out) == ["r0", "r1", "r2"]
        c.batches.list()
        c.files.delete(bf.id)
        c.models.delete(done.fine_tuned_model)
        gaps: set[str] = set()
        problems = kit.validate(srv.recorder.take(), gaps)
    assert problems == []
    assert gaps == set(kit.KNOWN_GAPS), "each known gap is exercised (and nothing else)"


def test_errors_have_the_openai_shape(server):
    import openai

    c = openai.OpenAI(base_url=server.base_url, api_key=kit.API_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        c.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        c.chat.completions.create(model="fake-tiny", messages=[], max_completion_tokens=1)
    assert bad.value.param == "messages"
    with pytest.raises(openai.AuthenticationError) as auth:
        openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()
    assert auth.value.code == "invalid_api_key" and "wrong" not in str(auth.value)
