"""eval.decoding and prompt.chat through the openai backend against the real local server:
temperature, top_p, n and seed go in the request (bodies valid against the official
document, checked by conftest), the n choices come back as n outputs per example, a seed
repeats them; prompt.chat sends the system message and the query as chat messages."""

from __future__ import annotations

import json

import openai_testkit as kit

from unified_prompt.runner import Experiment


def _gen_spec(tmp_path, srv, decoding=None):
    rows = [{"id": f"g{i}", "text": t, "target": y} for i, (t, y) in enumerate(
        [("a fine film", "good"), ("a dull story", "bad"), ("warm acting", "good")])]
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = kit.run_spec({"train": str(path), "test": str(path)},
                        options=kit.backend_options(srv, api="chat"), task="generation",
                        prompt={"template": "Review: {text}\nSummary: {mask}"},
                        eval={"metrics": ["rouge_l"], "max_new_tokens": 3,
                              **({"decoding": decoding} if decoding else {})})
    data["prompt"].pop("verbalizer", None)
    return data


def _chat_bodies(srv):
    return [json.loads(ex.request_body) for ex in list(srv.recorder.exchanges)
            if ex.path.endswith("/chat/completions")]


def test_decoding_options_reach_the_api_and_n_choices_come_back(tmp_path):
    with kit.serve() as srv:
        data = _gen_spec(tmp_path, srv, {"temperature": 1.2, "top_p": 0.9, "n": 3, "seed": 5})
        result = Experiment.from_dict(data).run(progress=False)
        bodies = _chat_bodies(srv)
        assert len(bodies) == 3  # one request per example, n choices in it
        assert {(b["temperature"], b["top_p"], b["n"], b["seed"]) for b in bodies} == \
            {(1.2, 0.9, 3, 5)}
        outputs = [r["predictions"] for r in result.predictions]
        assert all(len(o) == 3 for o in outputs) and any(len(set(o)) > 1 for o in outputs)
        assert "rouge_l_best_of_3" in result.metrics["metrics"]
        again = Experiment.from_dict(data).run(progress=False)
        assert [r["predictions"] for r in again.predictions] == outputs


def test_prompt_chat_sends_the_system_and_query_messages(tmp_path):
    with kit.serve() as srv:
        data = _gen_spec(tmp_path, srv)
        data["prompt"] |= {"chat": True, "system": "Answer in one word."}
        Experiment.from_dict(data).run(progress=False)
        bodies = _chat_bodies(srv)
        assert bodies[0]["messages"] == [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Review: a fine film\nSummary:"}]
        assert "top_p" not in bodies[0] and "n" not in bodies[0]  # defaults are not sent


def test_serve_samples_n_seeded_choices_with_top_p():
    from openai import OpenAI

    with kit.serve() as srv:
        c = OpenAI(base_url=srv.base_url, api_key=kit.API_KEY, max_retries=0)

        def completions(**kw):
            out = c.completions.create(model="fake-tiny", prompt=["Hello", "Bye"], max_tokens=5,
                                       n=3, **kw)
            return [ch.text for ch in sorted(out.choices, key=lambda ch: ch.index)]

        sampled = completions(temperature=1.5, top_p=0.95, seed=2)
        assert len(sampled) == 6 and len(set(sampled[:3])) > 1
        assert sampled == completions(temperature=1.5, top_p=0.95, seed=2)
        assert sampled != completions(temperature=1.5, top_p=0.95, seed=3)
        greedy = completions(temperature=0)
        assert greedy[:3] == [greedy[0]] * 3
        assert completions(temperature=1.5, top_p=1e-9, seed=2) == greedy

        def chat(**kw):
            out = c.chat.completions.create(model="fake-tiny", max_completion_tokens=5, n=3,
                                            messages=[{"role": "user", "content": "Hi"}], **kw)
            return [ch.message.content for ch in out.choices]

        assert chat(temperature=1.5, seed=4) == chat(temperature=1.5, seed=4)
        assert len(set(chat(temperature=1.5, seed=4))) > 1
