"""Hosts that speak the OpenAI API with differences, each emulated in front of a real
server (hostkit.py): Azure's classic deployments API and its v1 base URL, extra headers and
query parameters, and hosts that refuse or ignore echo or chat log-probs, which the `auto`
probe must tell apart. Every exchange is validated against the official document."""

from __future__ import annotations

import re
from contextlib import nullcontext

import openai_testkit as kit
import pytest
from hostkit import GAP_AZURE_ERROR, HOST_KEY, HostEmulator, serve_as
from unified_prompt_openai.client.hosts import (
    KNOWN_HOSTS,
    assumed_echo,
    default_top_logprobs,
    markdown_table,
    recognise,
)
from unified_prompt_openai.client.probe import echoes_prompt
from unified_prompt_openai.client.scoring import LabelWordWarning
from unified_prompt_openai.options import OpenAIOptions

from unified_prompt.errors import (
    AuthenticationError,
    ConfigError,
    ModelNotFoundError,
    UserInputError,
)
from unified_prompt.registry import create_backend
from unified_prompt.runner import Experiment

SECRET = "gw-secret-0123456789"


def _options(url: str, tmp=None, **extra):
    """Backend options for an emulated host: its own key, not the server's."""
    opts = kit.backend_options(type("Srv", (), {"base_url": url})(), tmp, **extra)
    opts["api_key"] = HOST_KEY
    return opts


def _run(files, options, tmp_path, name, model="fake-tiny", **sections):
    data = kit.run_spec(files, model=model, options=options, **sections)
    return Experiment.from_dict(data).run(out=tmp_path / name, progress=False)


def _direct(server, files, tmp_path, name, **options):
    """The same spec against the project's server itself, for comparison."""
    return _run(files, kit.backend_options(server, **options), tmp_path, name)


def _predictions(result):
    return [(r["id"], r["prediction"]) for r in result.predictions]


def test_azure_classic_deployments_api(server, tmp_path):
    """The SDK's AzureOpenAI client: /openai/deployments/{deployment}/...?api-version=,
    the key in `api-key`; a chat deployment (echo refused) is scored by first tokens,
    exactly as the same host without Azure's dress, and priced as the spec's model."""
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=12)
    host = HostEmulator(dialect="azure", completions="refuse",
                        deployments={"sentiment-prod": "fake-tiny"})
    with serve_as(host) as (_, emu, url):
        options = {"azure": {"endpoint": url, "api_version": "2024-10-21",
                             "deployments": {"gpt-4o-mini": "sentiment-prod"}},
                   "api_key": HOST_KEY, "cache": False, "retry": {"initial_backoff": 0.02}}
        with pytest.warns(LabelWordWarning):
            azure = _run(files, options, tmp_path, "azure", model="gpt-4o-mini")
    with pytest.warns(LabelWordWarning):
        plain = _direct(server, files, tmp_path, "plain", scoring="chat_logprobs")
    assert _predictions(azure) == _predictions(plain)
    assert [r["scores"] for r in azure.predictions] == [r["scores"] for r in plain.predictions]
    for seen in emu.seen:
        assert re.fullmatch(r"/openai/deployments/sentiment-prod/(chat/)?completions", seen.path)
        assert seen.query == {"api-version": "2024-10-21"}
        assert seen.headers["api-key"] == HOST_KEY and "authorization" not in seen.headers
        assert seen.body["model"] == "sentiment-prod"
    assert [s.status for s in emu.seen[:2]] == [400, 200], "echo refused, chat log-probs"
    usage = azure.metrics["usage"]
    assert usage["scoring"]["gpt-4o-mini"]["scoring"] == "chat_logprobs"
    assert "HTTP 400" in usage["scoring"]["gpt-4o-mini"]["reason"]
    assert usage["cost_usd"] > 0 and "unpriced_models" not in usage  # gpt-4o-mini's prices
    config = (tmp_path / "azure" / "config.yaml").read_text()
    assert "sentiment-prod" in config and HOST_KEY not in config


def test_azure_v1_base_url_with_the_plain_client(server, tmp_path):
    """Azure's v1 API: {endpoint}/openai/v1, the plain client's bearer key, `model` naming
    the deployment; no model lookup (Azure lists base models, not deployments)."""
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=8)
    host = HostEmulator(dialect="azure_v1", deployments={"nano-eval": "fake-tiny"})
    with serve_as(host) as (_, emu, url):
        options = {"azure": {"endpoint": url, "deployments": {"gpt-4.1-nano": "nano-eval"}},
                   "api_key": HOST_KEY, "cache": False}
        result = _run(files, options, tmp_path, "v1", model="gpt-4.1-nano")
    direct = _direct(server, files, tmp_path, "direct")
    assert _predictions(result) == _predictions(direct)
    assert {s.path for s in emu.seen} == {"/openai/v1/completions"}
    assert all(s.headers["authorization"] == f"Bearer {HOST_KEY}" for s in emu.seen)
    assert all(s.body["model"] == "nano-eval" for s in emu.seen)
    assert result.metrics["usage"]["scoring"]["gpt-4.1-nano"]["scoring"] == "echo"


def test_azure_errors_name_the_option_or_variable_to_set(tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=4)
    host = HostEmulator(dialect="azure", deployments={"sentiment-prod": "fake-tiny"})
    wrong = "azure-wrong-key-0123456789"
    with serve_as(host) as (_, emu, url):
        options = {"azure": {"endpoint": url, "api_version": "2024-10-21"},
                   "api_key": HOST_KEY, "cache": False}
        with pytest.raises(ModelNotFoundError) as err:
            _run(files, options, tmp_path, "run", model="gpt-4o-mini")
        with pytest.raises(AuthenticationError) as auth:
            _run(files, {**options, "api_key": wrong}, tmp_path, "wrong", model="fake-tiny")
    assert "azure.deployments" in str(err.value) and HOST_KEY not in str(err.value)
    assert "AZURE_OPENAI_API_KEY" in str(auth.value) and wrong not in str(auth.value)
    assert emu.gaps == {GAP_AZURE_ERROR}


def test_extra_headers_query_and_credential_headers_from_the_environment(tmp_path,
                                                                         monkeypatch):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=6)
    monkeypatch.setenv("UP_TEST_GATEWAY_KEY", SECRET)
    host = HostEmulator(require_headers={"appid": "app-42", "X-Gateway-Key": SECRET},
                        require_query={"tenant": "t1"})
    with serve_as(host) as (_, emu, url):
        options = _options(url, extra_headers={"appid": "app-42"}, extra_query={"tenant": "t1"},
                           headers_from_env={"X-Gateway-Key": "UP_TEST_GATEWAY_KEY"})
        result = _run(files, options, tmp_path, "run")
        assert len(result.predictions) == 6
    assert len(emu.seen) == 8  # model lookup, echo probe, 6 examples
    assert all(s.headers["appid"] == "app-42" and s.query["tenant"] == "t1" for s in emu.seen)
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "app-42" in config and "UP_TEST_GATEWAY_KEY" in config
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    with pytest.raises(ConfigError, match=r"extra_headers.*headers_from_env"):
        create_backend("openai", {"extra_headers": {"X-Api-Key": SECRET}})
    monkeypatch.delenv("UP_TEST_GATEWAY_KEY")
    with pytest.raises(UserInputError, match=r"headers_from_env\.X-Gateway-Key.*"
                                             r"UP_TEST_GATEWAY_KEY is not set"):
        _run(files, options, tmp_path, "no-env")


#: host behaviour -> (scoring, api) the probe must choose; every chosen mode then evaluates.
PROBES = {
    "vllm-like: echo honoured": ({}, "echo", "completions"),
    "echo refused (400)": ({"completions": "refuse"}, "chat_logprobs", "chat"),
    "ollama-like: echo ignored, generated log-probs only": ({"completions": "ignore"},
                                                            "chat_logprobs", "chat"),
    "echo without log-probs": ({"completions": "drop_logprobs"}, "chat_logprobs", "chat"),
    "chat-only (404)": ({"completions": "absent"}, "chat_logprobs", "chat"),
    "no log-probs anywhere (400s)": ({"completions": "refuse", "chat": "refuse"}, "generate",
                                     "chat"),
    "log-probs silently dropped": ({"completions": "ignore", "chat": "ignore"}, "generate",
                                   "chat"),
    "top_logprobs bounded at 5": ({"completions": "refuse", "top_logprobs_max": 5},
                                  "generate", "chat"),
}


@pytest.mark.parametrize("name", list(PROBES))
def test_auto_probe_picks_what_the_host_really_does(name, tmp_path):
    behaviour, scoring, api = PROBES[name]
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=4)
    with serve_as(HostEmulator(**behaviour)) as (_, emu, url):
        options = _options(url, tmp_path / "cache")
        with pytest.warns(LabelWordWarning) if scoring == "chat_logprobs" else nullcontext():
            result = _run(files, options, tmp_path, "run")
        probes = len(emu.seen) - 1 - 4  # less the model lookup and the 4 examples
        decided = result.metrics["usage"]["scoring"]["fake-tiny"]
        assert (decided["scoring"], decided["api"]) == (scoring, api), decided["reason"]
        assert probes == (1 if scoring == "echo" else 2)
        assert len(result.predictions) == 4
        assert {r["prediction"] for r in result.predictions} <= {"positive", "negative"}
        before = len(emu.seen)
        again = create_backend("openai", options)  # the decision is stored with the cache
        assert again.load_model("fake-tiny").scoring == scoring
        assert len(emu.seen) == before + 1, "only the model lookup"
        assert again.usage()["scoring"]["fake-tiny"]["stored"] is True
        again.close()
    if "bounded" in name:
        assert "top_logprobs must be between 0 and 5" in decided["reason"]


def test_a_bounded_host_scores_by_chat_logprobs_with_top_logprobs_set(tmp_path):
    files = kit.write_data(tmp_path / "data", train=0, dev=0, test=4)
    host = HostEmulator(completions="refuse", top_logprobs_max=5)
    with serve_as(host) as (_, emu, url), pytest.warns(LabelWordWarning):
        result = _run(files, _options(url, top_logprobs=5), tmp_path, "run")
    decided = result.metrics["usage"]["scoring"]["fake-tiny"]
    assert decided["scoring"] == "chat_logprobs" and decided["alternatives"] == 5
    assert all(s.body["top_logprobs"] == 5 for s in emu.seen if s.path.endswith("chat/completions"))


def test_echo_check_needs_the_prompt_spelled_back_with_log_probs():
    echoed = {"choices": [{"text": "Hello world", "logprobs": {
        "tokens": ["Hello", " world"], "token_logprobs": [None, -2.0], "text_offset": [0, 5]}}]}
    assert echoes_prompt(echoed, "Hello world") is None
    generated = {"choices": [{"text": "! How are", "logprobs": {
        "tokens": ["!", " How", " are"], "token_logprobs": [-1.0, -2.0, -1.5],
        "text_offset": [11, 12, 16]}}]}
    assert "ignored echo" in echoes_prompt(generated, "Hello world")
    bare = {"choices": [{"text": "Hello world", "logprobs": None}]}
    assert "without prompt log-probs" in echoes_prompt(bare, "Hello world")


def test_the_host_table_drives_defaults_and_matches_the_readme():
    assert recognise("https://dashscope.aliyuncs.com/compatible-mode/v1").top_logprobs == 5
    assert recognise("https://dashscope-intl.aliyuncs.com/compatible-mode/v1").name.startswith(
        "DashScope")
    assert recognise("http://127.0.0.1:8000/v1") is None
    dash = OpenAIOptions(base_url="https://dashscope.aliyuncs.com/compatible-mode/v1")
    assert default_top_logprobs(dash) == 5
    explicit = OpenAIOptions(base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
                             top_logprobs=3)
    assert default_top_logprobs(explicit) == 3
    assert default_top_logprobs(OpenAIOptions(base_url="http://127.0.0.1:1/v1")) == 20
    for url, echo in [("https://api.openai.com/v1", False), ("https://api.deepseek.com/v1", False),
                      ("https://qianfan.baidubce.com/v2", False), ("http://127.0.0.1:8000/v1", True)]:
        assert assumed_echo(OpenAIOptions(base_url=url)) is echo, url
    azure = OpenAIOptions(azure={"endpoint": "https://r.openai.azure.com", "api_version": "x"})
    assert not assumed_echo(azure)
    assert azure.resolved_base_url() == "https://r.openai.azure.com/openai"
    assert OpenAIOptions(azure={"endpoint": "https://r.openai.azure.com/"}).resolved_base_url() \
        == "https://r.openai.azure.com/openai/v1"
    with pytest.raises(ValueError, match="base_url or azure"):
        OpenAIOptions(base_url="http://x/v1", azure={"endpoint": "https://r.openai.azure.com"})
    with pytest.raises(ValueError, match="batch: true is not supported with azure"):
        OpenAIOptions(azure={"endpoint": "https://r.openai.azure.com"}, batch=True)
    readme = (kit.DATA.parents[2] / "backends" / "openai" / "README.md").read_text()
    assert markdown_table() in readme, "README's host table is generated from KNOWN_HOSTS"
    assert len(KNOWN_HOSTS) == markdown_table().count("\n") - 1
