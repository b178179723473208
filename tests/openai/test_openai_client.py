"""Small pieces of the client and the command line, without a model behind them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
from unified_prompt_openai.client.accounting import Accounting, PriceTable
from unified_prompt_openai.client.cache import ResponseCache, cacheable, request_key
from unified_prompt_openai.client.ratelimit import RateLimiter, parse_reset
from unified_prompt_openai.client.redact import public_url, scrub
from unified_prompt_openai.client.retry import retry_after_seconds
from unified_prompt_openai.client.scoring import FirstTokenScorer, LabelWordWarning, parse_echo
from unified_prompt_openai.options import Price

from unified_prompt.errors import BudgetExceededError

ROOT = Path(__file__).resolve().parents[2]


def test_module_imports_stay_light():
    code = ("import sys, unified_prompt_openai.backend, unified_prompt_openai.cli;"
            "from unified_prompt.registry import backend_class; backend_class('openai');"
            "print(sorted(m for m in ('openai', 'fastapi', 'uvicorn', 'httpx2')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("value,seconds", [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02),
                                           ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("", None)])
def test_rate_limit_reset_durations(value, seconds):
    assert parse_reset(value) == seconds


def test_rate_limiter_waits_for_the_reset_when_the_newest_answer_says_no_room():
    import asyncio

    def window(remaining: int) -> dict[str, str]:
        return {"x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": "0.3s"}

    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(concurrency=4)
        first, second = await limiter.acquire(), await limiter.acquire()
        limiter.release()
        limiter.observe(window(0), second)  # the newest answer: the window is spent
        limiter.release()
        limiter.observe(window(5), first)  # older news, arriving late: ignored
        started = time.monotonic()
        third = await limiter.acquire()  # waits for the reset, then one request goes
        waited = time.monotonic() - started
        limiter.release()
        limiter.observe(window(3), third)  # its answer: room for three more
        started = time.monotonic()
        for _ in range(3):
            await limiter.acquire()
        return waited, time.monotonic() - started

    waited, then = asyncio.run(scenario())
    assert 0.25 <= waited < 1.0
    assert then < 0.1


def test_retry_after_prefers_milliseconds():
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after_seconds({"retry-after": date}) <= 31
    assert retry_after_seconds({}) is None


def test_prices_follow_dated_and_fine_tuned_model_ids():
    table = PriceTable({"local-model": Price(input=1.0, output=2.0)})
    assert table.lookup("gpt-4o-mini-2024-07-18").input == 0.15
    assert table.lookup("ft:gpt-4o-mini-2024-07-18:org:sfx:abc").input == 0.30
    assert table.lookup("gpt-4o-2024-08-06").input == 2.50  # not gpt-4o-mini
    assert table.cost("local-model", 1_000_000, 500_000) == pytest.approx(2.0)
    assert table.cost("gpt-4o-mini", 1_000_000, 0, batch=True) == pytest.approx(0.075)
    assert table.lookup("someone-elses-model") is None


def test_budget_reservations_stop_the_request_that_would_cross_it():
    acc = Accounting(PriceTable({"m": Price(input=1000.0, output=0.0)}))
    acc.set_limits(max_requests=None, max_tokens=None, max_cost=1.0)
    first = acc.reserve("m", 600, 0)  # $0.60 reserved
    with pytest.raises(BudgetExceededError, match=r"max_cost_usd=1\.0"):
        acc.reserve("m", 600, 0)
    acc.release(first)
    acc.record("m", 600, 0)
    assert acc.usage()["cost_usd"] == pytest.approx(0.6)


def test_first_token_scoring_warns_about_shared_and_missing_words():
    scorer = FirstTokenScorer(("very good", "very bad", "fine"), (0, 1, 2))
    assert scorer.static_warnings(), "same first word for two labels is flagged up front"
    alts = [(" very", -0.5), (" Very", -2.0), ("ok", -3.0)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = scorer.score(alts)
    import math

    assert scores[0] == scores[1] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-2.0)))
    assert scores[2] == -3.0, "outside the alternatives: the lowest returned log-prob"
    messages = [str(w.message) for w in caught if w.category is LabelWordWarning]
    assert any("share the first token" in m for m in messages)
    assert any("outside the returned top-3" in m for m in messages)


def test_echo_parsing_sums_the_word_tokens_only():
    prefix = "Review: fine\nSentiment:"
    choice = {"index": 0, "logprobs": {"tokens": ["Review", ":", " fine", "\n", "Sentiment",
                                                  ":", " absolutely", " wonderful"],
                                       "token_logprobs": [None, -1, -2, -1, -3, -0.5, -4, -0.25],
                                       "text_offset": [0, 6, 7, 12, 13, 22, 23, 34]}}
    result = parse_echo({"choices": [choice]}, len(prefix), 1)
    assert result.logprob == [-4.25] and result.n_tokens == [2]


def test_response_cache_keys_by_host_and_body_and_checks_presence_without_reading(tmp_path):
    body = {"model": "m", "prompt": "Hi", "temperature": 0}
    key = request_key("http://a", "/v1/completions", body)
    assert key != request_key("http://b", "/v1/completions", body)
    assert key != request_key("http://a", "/v1/completions", {**body, "prompt": "Ho"})
    assert cacheable(body) and not cacheable({**body, "temperature": 0.7})
    assert not cacheable({**body, "n": 2}) and not cacheable({**body, "stream": True})
    cache = ResponseCache(tmp_path)
    assert not cache.contains(key) and cache.get(key) is None
    cache.put(key, {"choices": [{"text": " ok"}]})
    assert cache.contains(key) and cache.get(key) == {"choices": [{"text": " ok"}]}
    cache.close()
    reopened = ResponseCache(tmp_path)  # on disk: a re-run finds it
    assert reopened.contains(key)
    reopened.close()


def test_keys_are_scrubbed_from_text_and_urls():
    key = "sk-proj-abcdefghijklmnop"
    text = f"Incorrect API key provided: {key}. Header: Bearer {key}"
    cleaned = scrub(text, key)
    assert key not in cleaned and "abcdefgh" not in cleaned
    assert public_url("https://user:pass@host.example:8443/v1?key=x") == \
        "https://host.example:8443/v1"


def test_backends_listing_shows_first_token_scoring():
    out = subprocess.run([sys.executable, "-m", "unified_prompt.cli", "backends"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    block = out.stdout.split("openai", 1)[1]
    assert "first token only, top-20 bounded" in block and "hosted: dpo, supervised" in block


def test_serve_command_runs_a_real_server_with_bearer_auth():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "UNIFIED_PROMPT_SERVE_KEY": "serve-key"}
    proc = subprocess.Popen([sys.executable, "-m", "unified_prompt.cli", "serve", "--backend",
                             "fake", "--model", "fake-cli", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1/models"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
            except urllib.error.HTTPError as err:
                assert err.code == 401
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        req = urllib.request.Request(url, headers={"Authorization": "Bearer serve-key"})
        body = urllib.request.urlopen(req, timeout=5).read().decode()
        assert '"id":"fake-cli"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_rejects_bad_arguments_with_exit_2():
    out = subprocess.run([sys.executable, "-m", "unified_prompt.cli", "serve", "--backend",
                          "fake", "--model", "fake", "--faults", "429,teapot"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown kinds ['teapot']" in out.stderr


def test_dry_run_training_estimate_follows_the_spec_epochs():
    from unified_prompt_openai.client.estimate import estimate
    from unified_prompt_openai.options import OpenAIOptions

    from unified_prompt.backend import WorkPlan

    options = OpenAIOptions(base_url="http://127.0.0.1:1/v1")
    table = PriceTable()

    def tokens(epochs):
        plan = WorkPlan(model="gpt-4o-mini", train_examples=10, train_chars=4000,
                        hosted_training=True, hosted_epochs=epochs)
        return estimate(options, table, plan)["training_tokens"]

    assert tokens(5) == 5 * tokens(1)
    assert tokens(None) == 3 * tokens(1), "n_epochs auto: the hosted API's usual 3"
