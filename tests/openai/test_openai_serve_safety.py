"""`unified-prompt serve` against hostile and careless clients: malformed bodies, absurd
parameters and oversized requests are 4xx invalid_request_error (never a 500, never a
server path in the answer), over real HTTP to a real server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import httpx
import openai_testkit as kit
import pytest

from unified_prompt.testing.fake import FakeBackend

AUTH = {"Authorization": f"Bearer {kit.API_KEY}"}
CHAT = b'{"model":"fake-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2'
PATHS = re.compile(r"/(tmp|work|home|usr|opt|root|var)/")


def _post(srv, path: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(srv.base_url[:-3] + path, content=body, timeout=30,
                      headers={**AUTH, "content-type": "application/json", **headers})


def _assert_client_error(r: httpx.Response, status: int = 400, says: str = "") -> str:
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert not PATHS.search(r.text), r.text[:300]
    assert says in error["message"], error["message"]
    return error["message"]


MALFORMED = {
    "invalid UTF-8": (b'{"model":"fake-tiny\xff\xfe","messages":[]}', "not valid UTF-8"),
    "100,000-deep arrays": (b'{"model":"fake-tiny","messages":' + b"[" * 100_000
                            + b"]" * 100_000 + b"}", "deeper than"),
    "100,000-deep objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "deeper than"),
    "70-deep nesting": (CHAT + b',"metadata":' + b"[" * 70 + b"]" * 70 + b"}", "deeper than"),
    "5,000-digit max_tokens": (CHAT[:-1] + b"9" * 5000 + b"}", "5000 digits"),
    "5,000-digit unknown field": (CHAT + b',"x":-' + b"9" * 5000 + b"}", "5000 digits"),
    "NaN literal": (CHAT + b',"temperature":NaN}', "NaN is not valid JSON"),
    "Infinity literal": (CHAT + b',"temperature":-Infinity}', "-Infinity is not valid"),
    "1e999": (CHAT + b',"temperature":1e999}', "out of range"),
    "duplicate key": (CHAT + b',"model":"other"}', "appears twice"),
    "lone surrogate": (b'{"model":"fake-tiny","messages":[{"role":"user","content":"\\ud800"}]}',
                       "surrogate"),
    "truncated": (b'{"model":', "Expecting value"),
    "not an object": (b"[1, 2]", "must be a JSON object"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_json_bodies_are_400_invalid_request(server, case):
    body, says = MALFORMED[case]
    _assert_client_error(_post(server, "/v1/chat/completions", body), 400, says)


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "seed": 2**70},
     "seed"),
    ("/v1/completions", {"prompt": "hi", "seed": -(2**70)}, "seed"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                              "top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ("/v1/completions", {"prompt": "hi", "logprobs": 21}, "logprobs"),
    ("/v1/completions", {"prompt": "hi", "n": -1}, "n"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 10**6}, "n"),
])
def test_out_of_range_parameters_are_400_naming_them(server, path, body, param):
    r = _post(server, path, json.dumps({"model": "fake-tiny", "max_tokens": 2, **body}).encode())
    _assert_client_error(r)
    assert r.json()["error"]["param"] == param


def test_json_body_size_limit_is_enforced_while_reading():
    with kit.serve(max_body_bytes=4096) as srv:
        big = CHAT + b',"user":"' + b"a" * 10_000 + b'"}'
        _assert_client_error(_post(srv, "/v1/chat/completions", big), 413, "at most 4096")

        def chunks():  # no Content-Length: the limit must hold while the bytes arrive
            yield CHAT + b',"user":"'
            for _ in range(100):
                yield b"a" * 1000
            yield b'"}'

        r = httpx.post(srv.base_url + "/chat/completions", content=chunks(), timeout=30,
                       headers={**AUTH, "content-type": "application/json"})
        _assert_client_error(r, 413, "more than 4096")
        assert _post(srv, "/v1/chat/completions", CHAT + b"}").status_code == 200


def test_non_utf8_multipart_fields_are_400_and_filenames_are_never_paths(server):
    def form(purpose: bytes, filename: bytes) -> bytes:
        return (b"--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename
                + b"\"\r\n\r\n{}\r\n--XB\r\nContent-Disposition: form-data; name=\"purpose\""
                b"\r\n\r\n" + purpose + b"\r\n--XB--\r\n")

    ctype = "multipart/form-data; boundary=XB"
    for purpose, filename in ((b"fine-\xfftune", b"a.jsonl"), (b"fine-tune", b"\xff\xfe.jsonl")):
        r = _post(server, "/v1/files", form(purpose, filename), **{"content-type": ctype})
        _assert_client_error(r, 400, "not valid UTF-8")
    r = _post(server, "/v1/files", form(b"batch", b"../../etc/x.jsonl"), **{"content-type": ctype})
    assert r.status_code == 200 and r.json()["filename"] == "x.jsonl"


class _FailingBackend(FakeBackend):
    """Generation fails the way a broken install does: with a server path in the message."""

    def generate_text(self, model, texts, params, **kw):
        raise FileNotFoundError(2, "No such file or directory", "/opt/models/secret/w.bin")


def test_a_server_error_names_no_server_path():
    with kit.serve(instance=_FailingBackend()) as srv:
        r = _post(srv, "/v1/chat/completions", CHAT + b"}")
    assert r.status_code == 500
    error = r.json()["error"]
    # the core's boundary turns the framework's FileNotFoundError into a BackendError
    assert error["type"] == "server_error" and "BackendError" in error["message"]
    assert "/opt" not in r.text and "secret" not in r.text


def test_a_failed_job_error_names_no_server_path(tmp_path):
    from openai import OpenAI

    with kit.serve(data_dir=tmp_path) as srv:
        c = OpenAI(base_url=srv.base_url, api_key=kit.API_KEY, max_retries=0)
        rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                {"role": "assistant", "content": "a"}]}) + "\n"
                       for i in range(10))
        f = c.files.create(file=("t.jsonl", rows.encode()), purpose="fine-tune")
        (tmp_path / "jobs").write_text("not a folder")  # saving the adapter fails
        job = c.fine_tuning.jobs.create(model="fake-tiny", training_file=f.id,
                                        hyperparameters={"n_epochs": 1})
        job = kit.finished_job(c, job.id)
        events = c.fine_tuning.jobs.list_events(job.id).data
    assert job.status == "failed" and job.error.code == "server_error"
    shown = job.error.message + " ".join(e.message for e in events)
    assert str(tmp_path) not in shown and "<server path>" in shown


def test_redact_paths_keeps_api_paths():
    from unified_prompt_openai.server.errors import redact_paths

    text = redact_paths(f"url '/v1/chat/completions' vs '{Path('/tmp/x/y/adapter')}'")
    assert text == "url '/v1/chat/completions' vs '<server path>/adapter'"


@pytest.mark.parametrize("where,hp,param,says", [
    ("method", {"n_epochs": 0}, "method.supervised.hyperparameters.n_epochs", "at least 1"),
    ("method", {"n_epochs": -3}, "method.supervised.hyperparameters.n_epochs", "got -3"),
    ("method", {"n_epochs": 10**6}, "method.supervised.hyperparameters.n_epochs", "at most 50"),
    ("method", {"batch_size": 0}, "method.supervised.hyperparameters.batch_size", "at least 1"),
    ("method", {"batch_size": 257}, "method.supervised.hyperparameters.batch_size", "at most 256"),
    ("method", {"learning_rate_multiplier": -0.5},
     "method.supervised.hyperparameters.learning_rate_multiplier", "greater than 0"),
    ("method", {"learning_rate_multiplier": 0},
     "method.supervised.hyperparameters.learning_rate_multiplier", "greater than 0"),
    ("legacy", {"n_epochs": 0}, "hyperparameters.n_epochs", "at least 1"),
    ("dpo", {"beta": 5}, "method.dpo.hyperparameters.beta", "at most 2"),
])
def test_fine_tuning_hyperparameters_are_checked_at_job_creation(server, where, hp, param, says):
    from openai import BadRequestError, OpenAI

    c = OpenAI(base_url=server.base_url, api_key=kit.API_KEY, max_retries=0)
    rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                            {"role": "assistant", "content": "a"}]}) + "\n"
                   for i in range(10))
    f = c.files.create(file=("t.jsonl", rows.encode()), purpose="fine-tune")
    before = len(c.fine_tuning.jobs.list(limit=100).data)
    kind = "dpo" if where == "dpo" else "supervised"
    extra = ({"hyperparameters": hp} if where == "legacy" else
             {"method": {"type": kind, kind: {"hyperparameters": hp}}})
    with pytest.raises(BadRequestError) as err:
        c.fine_tuning.jobs.create(model="fake-tiny", training_file=f.id, **extra)
    assert err.value.param == param and says in err.value.message
    assert err.value.body["type"] == "invalid_request_error"
    assert len(c.fine_tuning.jobs.list(limit=100).data) == before, "no job was created"


def test_in_range_hyperparameters_still_create_a_job(server):
    from openai import OpenAI

    c = OpenAI(base_url=server.base_url, api_key=kit.API_KEY, max_retries=0)
    rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                            {"role": "assistant", "content": "a"}]}) + "\n"
                   for i in range(10))
    f = c.files.create(file=("t.jsonl", rows.encode()), purpose="fine-tune")
    job = c.fine_tuning.jobs.create(model="fake-tiny", training_file=f.id, method={
        "type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 1, "batch_size": 256, "learning_rate_multiplier": 0.01}}})
    assert kit.finished_job(c, job.id).status == "succeeded"


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": 65}, "max_tokens"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                              "max_completion_tokens": 10**9}, "max_completion_tokens"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 10**9}, "max_tokens"),
])
def test_max_tokens_over_the_cap_is_400(path, body, param):
    with kit.serve(max_tokens_limit=64) as srv:
        r = _post(srv, path, json.dumps({"model": "fake-tiny", **body}).encode())
        message = _assert_client_error(r, 400, "too large")
        assert r.json()["error"]["param"] == param and "at most 64" in message
        ok = {**body, param: 64}
        assert _post(srv, path, json.dumps({"model": "fake-tiny", **ok}).encode()).is_success


def test_a_request_asking_too_much_work_is_400_before_any_generation():
    with kit.serve(max_request_tokens=100) as srv:
        r = _post(srv, "/v1/completions", json.dumps(
            {"model": "fake-tiny", "prompt": ["hi"] * 10, "max_tokens": 11}).encode())
        _assert_client_error(r, 400, "up to 110 generated tokens")
        r = _post(srv, "/v1/chat/completions", json.dumps(
            {"model": "fake-tiny", "messages": [{"role": "user", "content": "hi"}], "n": 5,
             "max_tokens": 21}).encode())
        _assert_client_error(r, 400, "at most 100 per request")
        assert not [e for e in srv.log if e["status"] == 200]


class _SlowBackend(FakeBackend):
    """Each generate_text call takes 0.25 s, like a real model."""

    calls: list[int] = []

    def generate_text(self, model, texts, params, **kw):
        import time

        self.calls.append(len(texts))
        time.sleep(0.25)
        return super().generate_text(model, texts, params, **kw)


def test_a_large_request_does_not_hold_the_inference_thread():
    """8 prompts x 1024 tokens run as 4 slices of 2 prompts: a small request sent while the
    large one runs is answered between two slices, long before the large one ends."""
    import threading
    import time

    backend = _SlowBackend()
    with kit.serve(instance=backend, max_batch=1) as srv:
        done: dict[str, float] = {}

        def big():
            r = _post(srv, "/v1/completions", json.dumps(
                {"model": "fake-tiny", "prompt": [f"p{i}" for i in range(8)],
                 "max_tokens": 1024, "stop": ["\n"]}).encode())
            assert r.status_code == 200 and len(r.json()["choices"]) == 8
            done["big"] = time.monotonic()

        thread = threading.Thread(target=big)
        thread.start()
        time.sleep(0.1)
        r = _post(srv, "/v1/chat/completions", CHAT + b"}")
        done["small"] = time.monotonic()
        thread.join(30)
    assert r.status_code == 200
    assert backend.calls[:5].count(2) == 4 and 1 in backend.calls[1:4], backend.calls
    assert done["small"] < done["big"] - 0.2


def test_legacy_completions_stream_with_the_official_client(server):
    """completions.create(stream=True): text_completion chunks, one per token, the finish
    reason last, the usage chunk on request; the same text and tokens as without stream."""
    from openai import OpenAI

    c = OpenAI(base_url=server.base_url, api_key=kit.API_KEY, max_retries=0)
    args = {"model": "fake-tiny", "prompt": ["Review: a fine film\nSentiment:", "Hello"],
            "max_tokens": 5, "logprobs": 2, "seed": 1}
    whole = c.completions.create(**args)
    chunks = list(c.completions.create(**args, stream=True,
                                       stream_options={"include_usage": True}))
    assert all(ch.object == "text_completion" for ch in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    for choice in whole.choices:
        mine = [ch.choices[0] for ch in chunks if ch.choices and ch.choices[0].index ==
                choice.index]
        assert "".join(x.text for x in mine) == choice.text
        assert [x.finish_reason for x in mine] == [None] * (len(mine) - 1) + \
            [choice.finish_reason]
        tokens = [t for x in mine if x.logprobs for t in x.logprobs.tokens]
        assert tokens == choice.logprobs.tokens and len(tokens) == 5
        lps = [v for x in mine if x.logprobs for v in x.logprobs.token_logprobs]
        assert lps == pytest.approx(choice.logprobs.token_logprobs)
    assert len({ch.id for ch in chunks}) == 1


def test_chat_only_servers_still_refuse_legacy_streams():
    with kit.serve(chat_only=True) as srv:
        r = _post(srv, "/v1/completions", json.dumps(
            {"model": "fake-tiny", "prompt": "hi", "stream": True}).encode())
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_supported"


def _form(data: bytes, purpose: bytes = b"fine-tune", boundary: bytes = b"XB") -> bytes:
    return (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
            + purpose + b"\r\n--" + boundary + b"\r\nContent-Disposition: form-data; "
            b"name=\"file\"; filename=\"t.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n"
            + data + b"\r\n--" + boundary + b"--\r\n")


def test_upload_limit_is_enforced_while_reading(tmp_path):
    """The reader stops at the limit: it has pulled about `limit` bytes of a 50 MB stream
    when it refuses, and leaves no partial file behind."""
    import asyncio

    from unified_prompt_openai.server.uploads import read_upload

    pulled = 0

    async def stream():
        nonlocal pulled
        head, tail = _form(b"@").split(b"@")
        yield head
        for _ in range(800):
            pulled += 65536
            yield b"x" * 65536
        yield tail

    headers = {"content-type": "multipart/form-data; boundary=XB"}
    with pytest.raises(Exception) as err:
        asyncio.run(read_upload(stream(), headers, 100_000, tmp_path))
    assert err.value.status == 413 and "at most 100000" in err.value.message
    assert pulled <= 100_000 + 2 * 65536
    assert list(tmp_path.iterdir()) == []


def test_oversized_uploads_are_413_over_http_and_small_ones_are_stored(tmp_path):
    import socket

    with kit.serve(max_upload_bytes=100_000, data_dir=tmp_path) as srv:
        # a declared 600 MB body is refused from its headers, before one byte is sent
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + kit.API_KEY.encode() + b"\r\nContent-Type: multipart/form-data; "
                         b"boundary=XB\r\nContent-Length: 629145600\r\n\r\n")
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

        def chunks():  # no Content-Length: refused once 100 kB of the file has arrived
            head, tail = _form(b"@").split(b"@")
            yield head
            for _ in range(40):
                yield b"y" * 65536
            yield tail

        r = httpx.post(srv.base_url + "/files", content=chunks(), timeout=30,
                       headers={**AUTH, "content-type": "multipart/form-data; boundary=XB"})
        _assert_client_error(r, 413, "accepts at most 100000 bytes")
        data = b'{"messages": []}\n' * 1000
        r = _post(srv, "/v1/files", _form(data), **{"content-type":
                                                    "multipart/form-data; boundary=XB"})
        assert r.status_code == 200 and r.json()["bytes"] == len(data)
        stored = srv.state.files.get(r.json()["id"])
        assert stored.path.read_bytes() == data
        assert [p.name for p in (tmp_path / "files").iterdir()] == [stored.id]


@pytest.mark.parametrize("body,ctype,says", [
    (b"abc", "multipart/form-data", "with a boundary"),
    (_form(b"x"), "multipart/form-data; boundary=OTHER", "ended before its closing"),
    (_form(b"x")[:-8], "multipart/form-data; boundary=XB", "ended before its closing"),
    (b"--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--XB--",
     "multipart/form-data; boundary=XB", "Missing 'file' or 'purpose'"),
    (_form(b"x", purpose=b"nope"), "multipart/form-data; boundary=XB", "is not one of"),
    (_form(b"x", purpose=b"p" * 70_000), "multipart/form-data; boundary=XB", "longer than"),
    (b"{}", "application/json", "multipart/form-data"),
])
def test_malformed_uploads_are_400(server, body, ctype, says):
    _assert_client_error(_post(server, "/v1/files", body, **{"content-type": ctype}), 400, says)


def test_a_restarted_server_keeps_its_files_jobs_and_fine_tuned_models(tmp_path):
    """--data-dir: after a stop, the next server lists the same files (content intact), the
    finished job as it ended, the job that was running as failed (server_restarted), and
    serves the ft: model and its checkpoints, so a hosted run can re-attach."""
    from openai import OpenAI

    rows = "".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                            {"role": "assistant", "content": "a"}]}) + "\n"
                   for i in range(12)).encode()
    with kit.serve(data_dir=tmp_path, backend_options={"step_delay": 0.02}) as srv:
        c = OpenAI(base_url=srv.base_url, api_key=kit.API_KEY, max_retries=0)
        f = c.files.create(file=("train.jsonl", rows), purpose="fine-tune")
        gone = c.files.create(file=("gone.jsonl", rows), purpose="fine-tune")
        c.files.delete(gone.id)
        done = kit.finished_job(c, c.fine_tuning.jobs.create(
            model="fake-tiny", training_file=f.id, suffix="keep",
            hyperparameters={"n_epochs": 1, "batch_size": 4}).id)
        assert done.status == "succeeded"
        answer = c.chat.completions.create(model=done.fine_tuned_model, max_tokens=3, seed=1,
                                           messages=[{"role": "user", "content": "q1"}])
        running = c.fine_tuning.jobs.create(model="fake-tiny", training_file=f.id,
                                            hyperparameters={"n_epochs": 50})
        before = {
            "files": [x.model_dump() for x in c.files.list().data],
            "done": c.fine_tuning.jobs.retrieve(done.id).model_dump(),
            "events": [e.id for e in c.fine_tuning.jobs.list_events(done.id, limit=100).data],
            "checkpoints": [x.model_dump() for x in
                            c.fine_tuning.jobs.checkpoints.list(done.id).data],
            "models": sorted(m.id for m in c.models.list().data)}
        assert c.fine_tuning.jobs.retrieve(running.id).status in ("validating_files", "queued",
                                                                 "running")
    with kit.serve(data_dir=tmp_path) as srv:
        c = OpenAI(base_url=srv.base_url, api_key=kit.API_KEY, max_retries=0)
        assert [x.model_dump() for x in c.files.list().data] == before["files"]
        assert c.files.content(f.id).content == rows
        assert c.fine_tuning.jobs.retrieve(done.id).model_dump() == before["done"]
        assert [e.id for e in c.fine_tuning.jobs.list_events(done.id, limit=100).data] == \
            before["events"]
        assert [x.model_dump() for x in c.fine_tuning.jobs.checkpoints.list(done.id).data] == \
            before["checkpoints"]
        # (the job that was running may have added checkpoint models since)
        assert set(before["models"]) <= {m.id for m in c.models.list().data}
        again = c.chat.completions.create(model=done.fine_tuned_model, max_tokens=3, seed=1,
                                          messages=[{"role": "user", "content": "q1"}])
        assert again.choices[0].message.content == answer.choices[0].message.content
        lost = c.fine_tuning.jobs.retrieve(running.id)
        assert lost.status == "failed" and lost.error.code == "server_restarted"
        assert "Create a new job" in lost.error.message
        assert {j.id for j in c.fine_tuning.jobs.list().data} == {done.id, running.id}
        with pytest.raises(Exception) as err:
            c.fine_tuning.jobs.cancel(running.id)
        assert err.value.status_code == 400


def test_generation_stops_when_the_client_disconnects():
    """A client that gives up after 0.4 s: of the large request's four 0.25 s slices, those
    not started by then never run, and the server answers the next client at once."""
    import time

    backend = _SlowBackend()
    backend.calls = []
    with kit.serve(instance=backend, max_batch=1) as srv:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.base_url + "/completions", headers=AUTH, timeout=0.4, json={
                "model": "fake-tiny", "prompt": [f"p{i}" for i in range(8)],
                "max_tokens": 1024, "stop": ["\n"]})
        time.sleep(1.2)
        assert backend.calls in ([2], [2, 2]), backend.calls  # at least two never ran
        assert [e["status"] for e in srv.log if e["path"] == "/v1/completions"] == [499]
        started = time.monotonic()
        assert _post(srv, "/v1/chat/completions", CHAT + b"}").status_code == 200
        assert time.monotonic() - started < 1.0


def test_sigterm_stops_the_server_promptly_with_a_request_in_flight(tmp_path):
    """`unified-prompt serve` with a minutes-long request running exits within seconds of
    SIGTERM (in-flight requests get a short grace period, then are cancelled)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "unified_prompt.cli", "serve", "--backend", "fake", "--model",
         "fake-tiny", "--port", str(port), "--data-dir", str(tmp_path), "--log-level",
         "warning", "--max-request-tokens", "100000000"],
        env={**os.environ, "UNIFIED_PROMPT_SERVE_KEY": ""}, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/models", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.1)

        def long_request():  # 64 prompts x 4096 tokens: far longer than the test
            with contextlib.suppress(httpx.TransportError):
                httpx.post(base + "/completions", timeout=120, json={
                    "model": "fake-tiny", "prompt": [f"p{i}" for i in range(64)],
                    "max_tokens": 4096, "stop": ["\n"]})

        threading.Thread(target=long_request, daemon=True).start()
        time.sleep(1.0)
        assert proc.poll() is None
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert time.monotonic() - started < 10
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
