"""Hostile-client probe of `unified-prompt serve` (fake backend): prints case, status, type, leak."""

import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "openai"))
from unified_prompt_openai.server.config import ServeConfig
from unified_prompt_openai.server.run import ServerThread

KEY = "k"
H = {"Authorization": f"Bearer {KEY}"}
ROWS = "".join(
    json.dumps(
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
    )
    + "\n"
    for i in range(12)
)


def chat(**kw):
    return {"model": "fake-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **kw}


def cmpl(**kw):
    return {"model": "fake-tiny", "prompt": "hi", "max_tokens": 2, **kw}


def cases(fid):
    def post(p, body, ct="application/json"):
        return ("POST", p, body if isinstance(body, bytes) else json.dumps(body).encode(), ct)

    deep = b'{"model":"fake-tiny","messages":' + b"[" * 100000 + b"]" * 100000 + b"}"
    yield (
        "invalid utf-8 body",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny\xff\xfe","messages":[{"role":"user","content":"hi"}]}',
        ),
    )
    yield "100000-deep nesting", post("/v1/chat/completions", deep)
    yield "100000-deep object", post("/v1/chat/completions", b'{"a":' * 100000 + b"1" + b"}" * 100000)
    yield (
        "5000-digit int (max_tokens)",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":'
            + b"9" * 5000
            + b"}",
        ),
    )
    yield (
        "5000-digit int (unknown field)",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"x":'
            + b"9" * 5000
            + b"}",
        ),
    )
    yield "seed 2^70 chat", post("/v1/chat/completions", chat(seed=2**70))
    yield "seed 2^70 completions", post("/v1/completions", cmpl(seed=2**70))
    yield "seed -1 chat", post("/v1/chat/completions", chat(seed=-1))
    yield (
        "NaN temperature",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":NaN}',
        ),
    )
    yield (
        "Infinity literal",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":Infinity}',
        ),
    )
    yield (
        "1e999 float",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":1e999}',
        ),
    )
    yield (
        "duplicate keys",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","model":"other","messages":[{"role":"user","content":"hi"}],"max_tokens":2}',
        ),
    )
    yield (
        "lone surrogate escape",
        post(
            "/v1/chat/completions",
            b'{"model":"fake-tiny","messages":[{"role":"user","content":"\\ud800"}],"max_tokens":2}',
        ),
    )
    yield (
        "lone surrogate in model",
        post(
            "/v1/chat/completions",
            b'{"model":"\\ud800","messages":[{"role":"user","content":"x"}],"max_tokens":2}',
        ),
    )
    yield "wrong content-type text/plain", post("/v1/chat/completions", chat(), "text/plain")
    yield "empty body", post("/v1/chat/completions", b"")
    yield "body is a list", post("/v1/chat/completions", b"[1,2]")
    yield "truncated json", post("/v1/chat/completions", b'{"model":')
    yield (
        "huge string 40MB",
        post("/v1/chat/completions", chat(messages=[{"role": "user", "content": "a" * 40_000_000}])),
    )
    yield "n=-1", post("/v1/chat/completions", chat(n=-1))
    yield "n=10**6", post("/v1/chat/completions", chat(n=10**6))
    yield (
        "n=128 max_tokens=4096 x prompts",
        post("/v1/completions", cmpl(n=128, max_tokens=4096, prompt=["hi"] * 64)),
    )
    yield "max_tokens 10**9 chat", post("/v1/chat/completions", chat(max_tokens=10**9))
    yield "max_tokens 10**9 completions", post("/v1/completions", cmpl(max_tokens=10**9))
    yield "max_tokens -1 completions", post("/v1/completions", cmpl(max_tokens=-1))
    yield "top_logprobs 21", post("/v1/chat/completions", chat(logprobs=True, top_logprobs=21))
    yield "logprobs 99 completions", post("/v1/completions", cmpl(logprobs=99))
    yield "logprobs -1 completions", post("/v1/completions", cmpl(logprobs=-1))
    yield (
        "messages content wrong type",
        post("/v1/chat/completions", chat(messages=[{"role": "user", "content": 5}])),
    )
    yield (
        "messages content list of non-dicts",
        post("/v1/chat/completions", chat(messages=[{"role": "user", "content": [1, 2]}])),
    )
    yield "model 100k chars", post("/v1/chat/completions", chat(model="m" * 100_000))
    yield "stop list of 5", post("/v1/chat/completions", chat(stop=["a"] * 5))
    yield "stop list of ints", post("/v1/chat/completions", chat(stop=[1]))
    yield "completions stream", post("/v1/completions", cmpl(stream=True))
    yield "prompt token array", post("/v1/completions", cmpl(prompt=[1, 2, 3]))
    yield "prompt empty list", post("/v1/completions", cmpl(prompt=[]))

    # fine-tuning
    def ft(**hp):
        return post(
            "/v1/fine_tuning/jobs",
            {
                "model": "fake-tiny",
                "training_file": fid,
                "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            },
        )

    yield "n_epochs 0", ft(n_epochs=0)
    yield "n_epochs -3", ft(n_epochs=-3)
    yield "n_epochs 10**9", ft(n_epochs=10**9)
    yield "batch_size 0", ft(batch_size=0)
    yield "batch_size 10**6", ft(batch_size=10**6)
    yield "lr multiplier -1", ft(learning_rate_multiplier=-1)
    yield "lr multiplier 0", ft(learning_rate_multiplier=0)
    yield (
        "lr multiplier 1e308*10",
        post(
            "/v1/fine_tuning/jobs",
            b'{"model":"fake-tiny","training_file":"%s","hyperparameters":{"learning_rate_multiplier":1e999}}'
            % fid.encode(),
        ),
    )
    yield (
        "legacy hp n_epochs 0",
        post(
            "/v1/fine_tuning/jobs",
            {"model": "fake-tiny", "training_file": fid, "hyperparameters": {"n_epochs": 0}},
        ),
    )
    yield (
        "dpo beta 5",
        post(
            "/v1/fine_tuning/jobs",
            {
                "model": "fake-tiny",
                "training_file": fid,
                "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 5}}},
            },
        ),
    )
    yield (
        "job unknown file id",
        post("/v1/fine_tuning/jobs", {"model": "fake-tiny", "training_file": "file-nope"}),
    )
    yield (
        "job file id traversal",
        post("/v1/fine_tuning/jobs", {"model": "fake-tiny", "training_file": "../../etc/passwd"}),
    )
    yield (
        "job seed 2^70",
        post("/v1/fine_tuning/jobs", {"model": "fake-tiny", "training_file": fid, "seed": 2**70}),
    )
    yield (
        "job suffix 100 chars",
        post("/v1/fine_tuning/jobs", {"model": "fake-tiny", "training_file": fid, "suffix": "s" * 100}),
    )
    yield (
        "job model 100k chars",
        post("/v1/fine_tuning/jobs", {"model": "m" * 100000, "training_file": fid}),
    )
    yield (
        "batch unknown file",
        post(
            "/v1/batches",
            {"input_file_id": "file-nope", "endpoint": "/v1/completions", "completion_window": "24h"},
        ),
    )
    # files
    b = "XyZb"

    def mp(parts, boundary=b, ct=None):
        body = b""
        for head, data in parts:
            body += b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n"
        body += b"--" + boundary.encode() + b"--\r\n"
        return ("POST", "/v1/files", body, ct or f"multipart/form-data; boundary={boundary}")

    f = (b'Content-Disposition: form-data; name="file"; filename="t.jsonl"', ROWS.encode())
    yield (
        "multipart non-utf8 purpose",
        mp([f, (b'Content-Disposition: form-data; name="purpose"', b"fine-\xff")]),
    )
    yield (
        "multipart non-utf8 filename",
        mp(
            [
                (b'Content-Disposition: form-data; name="file"; filename="\xff\xfe.jsonl"', b"x"),
                (b'Content-Disposition: form-data; name="purpose"', b"fine-tune"),
            ]
        ),
    )
    yield (
        "multipart traversal filename",
        mp(
            [
                (
                    b'Content-Disposition: form-data; name="file"; filename="../../../tmp/evil.jsonl"',
                    ROWS.encode(),
                ),
                (b'Content-Disposition: form-data; name="purpose"', b"fine-tune"),
            ]
        ),
    )
    yield "multipart no boundary", ("POST", "/v1/files", b"abc", "multipart/form-data")
    yield (
        "multipart wrong boundary",
        ("POST", "/v1/files", mp([f])[2], "multipart/form-data; boundary=other"),
    )
    yield (
        "multipart empty boundary",
        ("POST", "/v1/files", b"--\r\n", 'multipart/form-data; boundary=""'),
    )
    yield "multipart json body", ("POST", "/v1/files", b"{}", "application/json")
    yield "multipart missing purpose", mp([f])
    yield "multipart bad purpose", mp([f, (b'Content-Disposition: form-data; name="purpose"', b"nope")])
    yield "GET file traversal id", ("GET", "/v1/files/..%2F..%2Fetc%2Fpasswd", b"", None)
    yield "GET file content traversal", ("GET", "/v1/files/..%2Fjobs/content", b"", None)
    yield "GET files limit=abc", ("GET", "/v1/files?limit=abc", b"", None)
    yield "GET files limit=-1", ("GET", "/v1/files?limit=-1", b"", None)
    yield "GET jobs limit=10**30", ("GET", "/v1/fine_tuning/jobs?limit=" + "9" * 30, b"", None)
    yield "GET models very long name", ("GET", "/v1/models/" + "m" * 20000, b"", None)
    yield "DELETE model traversal", ("DELETE", "/v1/models/../../x", b"", None)


def main():
    import tempfile

    cfg = ServeConfig(
        backend="fake",
        model="fake-tiny",
        api_key=KEY,
        data_dir=__import__("pathlib").Path(tempfile.mkdtemp()),
    )
    with ServerThread(cfg) as srv:
        base = srv.base_url[:-3]
        c = httpx.Client(base_url=base, headers=H, timeout=60)
        r = c.post(
            "/v1/files", files={"file": ("t.jsonl", ROWS.encode())}, data={"purpose": "fine-tune"}
        )
        fid = r.json()["id"]
        tally = {"ok": 0, "bad": 0}
        for name, (method, path, body, ct) in cases(fid):
            hdr = dict(H)
            if ct:
                hdr["content-type"] = ct
            try:
                r = c.request(method, path, content=body or None, headers=hdr)
                status, text = r.status_code, r.text
            except Exception as exc:
                status, text = "EXC", repr(exc)
            leak = any(s in text for s in ("/tmp/", "/work/", "/home/", "site-packages", "Traceback"))
            if name == "multipart traversal filename" and '"evil.jsonl"' in text:
                leak = False
            try:
                etype = r.json().get("error", {}).get("type")
            except Exception:
                etype = None
            good = (
                isinstance(status, int)
                and ((400 <= status < 500 and etype == "invalid_request_error") or status == 404)
                and not leak
            )
            if (
                name
                in (
                    "wrong content-type text/plain",
                    "seed -1 chat",
                    "GET files limit=-1",
                    "GET jobs limit=10**30",
                    "multipart traversal filename",
                    "completions stream",  # supported: 200 with an SSE stream is right
                )
                and status == 200
            ):
                good = not leak or ("evil" in text and "../" not in text)
            tally["ok" if good else "bad"] += 1
            print(
                f"{'OK ' if good else 'BAD'} {status} {etype} {'LEAK ' if leak else ''}{name}: {text[:150]!r}"
            )
        print(tally)


main()
