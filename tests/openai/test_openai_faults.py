"""Scale and failure: injected faults, quota, rate limits, wrong keys, budgets, the cache,
and the Batch API, each against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openai_testkit as kit
import pytest
from unified_prompt_openai.client.scoring import LabelWordWarning

from unified_prompt.errors import (
    AuthenticationError,
    BudgetExceededError,
    QuotaExceededError,
    RateLimitError,
)
from unified_prompt.runner import Experiment

ROOT = Path(__file__).resolve().parents[2]


def _evaluate(srv, files, tmp_path, name, **options):
    data = kit.run_spec(files, options=kit.backend_options(srv, **options))
    return Experiment.from_dict(data).run(out=tmp_path / name, progress=False)


def test_200_examples_survive_20_percent_faults(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=200)
    clean = _evaluate(server, files, tmp_path, "clean")
    with kit.serve(fault_rate=0.2, faults=("429", "500", "drop"), fault_seed=7,
                   retry_after_ms=20) as faulty:
        noisy = _evaluate(faulty, files, tmp_path, "faulty", concurrency=16)
        injected = faulty.asgi.faults.injected
    assert len(noisy.predictions) == 200
    assert len({r["id"] for r in noisy.predictions}) == 200, "no duplicates"
    assert [r["prediction"] for r in noisy.predictions] == \
        [r["prediction"] for r in clean.predictions]
    assert noisy.scores == clean.scores
    assert min(injected.values()) > 0, injected
    usage = noisy.metrics["usage"]
    assert usage["retries"] == sum(injected.values())
    assert set(usage["errors"]) == {"429", "500", "connection"}
    assert usage["requests"] == clean.metrics["usage"]["requests"] == 201


def test_insufficient_quota_stops_at_once(tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=100)
    with kit.serve(quota_requests=6) as srv:
        started = time.monotonic()
        with pytest.raises(QuotaExceededError) as err:
            _evaluate(srv, files, tmp_path, "run", concurrency=4)
        elapsed = time.monotonic() - started
        quota_429 = [e for e in srv.log if e["fault"] == "quota"]
    message = str(err.value)
    assert "out of quota (insufficient_quota)" in message and "Retrying cannot help" in message
    assert len(quota_429) <= 4, "never retried: at most the requests already in flight"
    assert elapsed < 20  # no backoff waits (generous: the test machine is shared)


def test_wrong_key_is_a_clear_authentication_error_with_exit_2(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=4)
    wrong = "sk-wrong-key-abcdef123456"
    spec = kit.write_spec(tmp_path / "spec.yaml", kit.run_spec(files, options={"cache": False}))
    env = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0", "OPENAI_API_KEY": wrong,
           "OPENAI_BASE_URL": server.base_url}
    run = subprocess.run([sys.executable, "-m", "unified_prompt.cli", "run", str(spec)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert "rejected the API key" in run.stderr and "OPENAI_API_KEY" in run.stderr
    assert wrong not in run.stderr + run.stdout
    with pytest.raises(AuthenticationError):
        _evaluate(server, files, tmp_path, "inproc", api_key=wrong)


def test_rate_limit_headers_pause_the_client(tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=30)
    with kit.serve(requests_per_minute=10, rate_window_s=0.5) as srv:
        result = _evaluate(srv, files, tmp_path, "run", concurrency=8)
        limited = [e for e in srv.log if e["fault"] == "rate_limit"]
        ok = [e for e in srv.log if e["status"] == 200]
    assert len(result.predictions) == 30
    assert len(ok) == 32  # GET model, echo probe, 30 examples
    # Without reading x-ratelimit-remaining-requests, 8 workers against 10 per half second
    # get rejected again and again; counting the room the headers report (and at a sliding
    # window's reset sending one request, whose answer tells the rest) avoids rejections.
    assert len(limited) <= 2, len(limited)


def test_a_wait_longer_than_allowed_fails_instead_of_stalling(tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=4)
    with (kit.serve(fault_rate=1.0, faults=("429",), retry_after_ms=300_000) as srv,
          pytest.raises(RateLimitError, match="rate-limiting")):
        _evaluate(srv, files, tmp_path, "run")


def test_budget_stops_before_sending(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=40)
    before = kit.count(server, "POST", "/v1/completions")
    data = kit.run_spec(files, options=kit.backend_options(server),
                        budget={"max_requests": 10})
    with pytest.raises(BudgetExceededError, match="max_requests=10"):
        Experiment.from_dict(data).run(out=tmp_path / "a", progress=False)
    assert kit.count(server, "POST", "/v1/completions") - before <= 1  # the echo probe only
    priced = kit.run_spec(files, options=kit.backend_options(
        server, prices={"fake-tiny": {"input": 5000, "output": 5000}}),
        budget={"max_cost_usd": 0.5})
    with pytest.raises(BudgetExceededError, match=r"max_cost_usd=0\.5"):
        Experiment.from_dict(priced).run(out=tmp_path / "b", progress=False)


def test_dry_run_estimates_and_spends_nothing(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=24, dev=12, test=40)
    before = len(server.log)
    data = kit.run_spec(files, model="gpt-4o-mini", options=kit.backend_options(server),
                        budget={"max_cost_usd": 0.000001})
    plan = Experiment.from_dict(data).run(dry_run=True).plan
    assert plan["requests"] == 40 and plan["scoring"] == "echo"
    assert plan["prompt_tokens"] > 0 and plan["cost_usd"] > 0 and plan["over_budget"]
    hosted = kit.run_spec(files, model="gpt-4o-mini", options=kit.backend_options(server),
                          finetune={"method": "hosted"})
    plan = Experiment.from_dict(hosted).run(dry_run=True).plan
    assert plan["training_tokens"] > 0 and plan["training_cost_usd"] > 0
    assert plan["cost_usd"] == pytest.approx(plan["training_cost_usd"] + plan["eval_cost_usd"])
    five = kit.run_spec(files, model="gpt-4o-mini", options=kit.backend_options(server),
                        finetune={"method": "hosted", "n_epochs": 5})
    plan5 = Experiment.from_dict(five).run(dry_run=True).plan  # the spec's epochs reach it
    assert plan5["training_epochs_assumed"] == 5 and plan["training_epochs_assumed"] == 3
    assert plan5["training_tokens"] * 3 == plan["training_tokens"] * 5
    assert len(server.log) == before, "a dry run sends nothing"


def test_the_cache_makes_a_rerun_free_and_never_stores_the_key(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=30)
    cache = tmp_path / "cache"
    first = _evaluate(server, files, tmp_path, "one", cache_dir=str(cache))
    sent = kit.count(server, "POST", "/v1/completions")
    second = _evaluate(server, files, tmp_path, "two", cache_dir=str(cache))
    assert kit.count(server, "POST", "/v1/completions") == sent, "nothing sent again"
    assert second.metrics["usage"]["requests"] == 0
    assert second.metrics["usage"]["cached_requests"] == 30
    assert second.metrics["usage"]["scoring"]["fake-tiny"] == {
        **first.metrics["usage"]["scoring"]["fake-tiny"], "stored": True}, \
        "the probe's decision is stored with the cache, not asked again"
    assert second.predictions == first.predictions
    for path in [*cache.rglob("*"), *(tmp_path / "one").rglob("*")]:
        if path.is_file():
            assert kit.API_KEY.encode() not in path.read_bytes(), path
    config = (tmp_path / "one" / "config.yaml").read_text()
    assert "<redacted>" in config


def test_batch_api_gives_the_same_predictions_at_half_price(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=20)
    prices = {"fake-tiny": {"input": 1.0, "output": 1.0}}
    live = _evaluate(server, files, tmp_path, "live", prices=prices)
    batched = _evaluate(server, files, tmp_path, "batch", prices=prices, batch=True,
                        batch_poll_seconds=0.05)
    assert batched.predictions == live.predictions
    assert kit.count(server, "POST", "/v1/batches") == 1
    live_cost = live.metrics["usage"]["cost_usd"]
    probe = live_cost / 21  # every request here costs about the same
    assert batched.metrics["usage"]["cost_usd"] == pytest.approx((live_cost - probe) / 2 + probe,
                                                                 rel=0.15)


def test_chat_logprob_mode_scores_first_tokens_and_warns(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=6)
    data = kit.run_spec(files, options=kit.backend_options(server, scoring="chat_logprobs"))
    with pytest.warns(LabelWordWarning, match="outside the returned top-20"):
        result = Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
    assert len(result.predictions) == 6
    assert result.metrics["usage"]["notes"]


def test_auto_mode_on_a_chat_only_host_scores_first_tokens(tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=6)
    with kit.serve(chat_only=True) as srv:
        data = kit.run_spec(files, options=kit.backend_options(srv))
        with pytest.warns(LabelWordWarning):
            result = Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
        assert kit.count(srv, "POST", "/v1/chat/completions") == 7  # the chat probe + 6
    assert {r["prediction"] for r in result.predictions} <= {"positive", "negative"}
    assert result.metrics["usage"]["errors"] == {"404": 1}, "the echo probe, refused once"
    assert result.metrics["usage"]["scoring"]["fake-tiny"]["scoring"] == "chat_logprobs"


def test_generate_mode_parses_generations(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=6)
    data = kit.run_spec(files, options=kit.backend_options(server, scoring="generate"))
    result = Experiment.from_dict(data).run(out=tmp_path / "run", progress=False)
    assert {r["prediction"] for r in result.predictions} <= {"positive", "negative"}
    assert kit.count(server, "POST", "/v1/chat/completions") >= 6


def test_usage_is_recorded_in_metrics(server, tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=10)
    _evaluate(server, files, tmp_path, "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    usage = metrics["usage"]
    assert usage["requests"] == 11 and usage["prompt_tokens"] > 0
    assert usage["unpriced_models"] == ["fake-tiny"]


def test_a_batch_whose_input_cannot_be_read_fails_instead_of_hanging(server):
    from openai import OpenAI

    c = OpenAI(base_url=server.base_url, api_key=kit.API_KEY, max_retries=0)
    bad = c.files.create(file=("b.jsonl", b"{not json\n", "application/jsonl"), purpose="batch")
    batch = c.batches.create(input_file_id=bad.id, endpoint="/v1/completions",
                             completion_window="24h")
    deadline = time.monotonic() + 10
    while batch.status not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"batch stuck in {batch.status!r}"
        time.sleep(0.05)
        batch = c.batches.retrieve(batch.id)
    assert batch.status == "failed" and batch.failed_at


def test_capabilities_are_answered_per_model(server):
    """A model's scoring mode narrows what the backend can do with it; the backend's own
    capabilities (read before any model loads) stay as declared."""
    from unified_prompt_openai.backend import CHAT_CAPABILITIES, OpenAIBackend

    from unified_prompt.registry import create_backend

    backend = create_backend("openai", kit.backend_options(server))
    echo = backend.load_model("fake-tiny")
    assert echo.scoring == "echo" and backend.capabilities is CHAT_CAPABILITIES
    caps = backend.model_capabilities(echo)
    assert caps.score and caps.exact_multi_token and caps.top_logprobs_limit is None
    generating = OpenAIBackend(kit.backend_options(server, scoring="generate"))
    assert not generating.model_capabilities(generating.load_model("fake-tiny")).score
    backend.close()
    generating.close()
