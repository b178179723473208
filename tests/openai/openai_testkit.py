"""Test support for the openai backend and `unified-prompt serve`: servers on free ports,
an ASGI recorder, and validation of every exchange against the official OpenAPI document.

Known gaps between the real API and the document (the server reproduces them on purpose,
the client reads them leniently); validation rewrites exactly these before checking:
  GAP_PAUSED       a fine-tuning job's status "paused" (pause/resume exist; the enum omits it)
  GAP_ERROR_EMPTY  "error": {} on a healthy job (the real API; the schema wants null or
                   {code, message, param})
  GAP_ECHO_NULL    with echo, the first prompt token's log-prob (and its top_logprobs) is
                   null (nothing conditions it); the schema wants numbers / objects
  GAP_FILE_CONTENT GET /files/{id}/content returns the file's bytes (JSONL), not the JSON
                   string the document declares; its body is not checked
  GAP_STREAM_FINISH_NULL streamed /v1/completions chunks share CreateCompletionResponse,
                   whose finish_reason is required, but every chunk before the last sends
                   null (as the real API does)
And one gap in the document itself: its discriminators (e.g. a chat message's `role`) have
no `mapping`, which openapi-core reads as schema names ('user'); the loader adds the mapping
from each variant's enum. And one limit of openapi-core: its parameter-style deserializer
reads a parameter schema's `type` as one string, so the loader narrows a parameter's
`type: [object, null]` (the jobs list's deepObject `metadata`) to `object`.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

DATA = Path(__file__).parent / "data"
SPEC_HOST = "https://api.openai.com"
GAP_PAUSED = "job status 'paused'"
GAP_ERROR_EMPTY = "job 'error': {}"
GAP_ECHO_NULL = "null first echo log-prob"
GAP_FILE_CONTENT = "file content as raw bytes"
GAP_STREAM_FINISH_NULL = "null finish_reason in streamed legacy completions"
KNOWN_GAPS = (GAP_PAUSED, GAP_ERROR_EMPTY, GAP_ECHO_NULL, GAP_FILE_CONTENT,
              GAP_STREAM_FINISH_NULL)
API_KEY = "test-key-0123456789"


@functools.lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    data = json.loads((DATA / "openapi.trimmed.json").read_text(encoding="utf-8"))
    _add_discriminator_mappings(data, data["components"]["schemas"])
    for item in data["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                schema = param.get("schema", {})
                if isinstance(schema.get("type"), list):
                    schema["type"] = next(t for t in schema["type"] if t != "null")
    return data


def _add_discriminator_mappings(node: Any, schemas: dict[str, Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _add_discriminator_mappings(item, schemas)
        return
    if not isinstance(node, dict):
        return
    disc = node.get("discriminator")
    if isinstance(disc, dict) and "mapping" not in disc:
        mapping = {}
        for ref in (x.get("$ref") for x in node.get("oneOf", node.get("anyOf", []))):
            if not ref:
                continue
            prop = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}).get(
                disc["propertyName"], {})
            for value in prop.get("enum", []) + ([prop["const"]] if "const" in prop else []):
                mapping[str(value)] = ref
        if mapping:
            disc["mapping"] = mapping
    for value in node.values():
        _add_discriminator_mappings(value, schemas)


@functools.lru_cache(maxsize=1)
def openapi() -> Any:
    from openapi_core import OpenAPI
    from openapi_core.configurations import Config

    return OpenAPI.from_dict(spec(), config=Config(spec_validator_cls=None))


@functools.lru_cache(maxsize=32)
def schema_validator(name: str) -> Any:
    from openapi_schema_validator import OAS31Validator

    return OAS31Validator({"$ref": f"#/components/schemas/{name}",
                           "components": spec()["components"]})


# -- recording -----------------------------------------------------------------------
class Exchange:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.method = scope["method"]
        self.path = scope["path"]
        self.query = scope.get("query_string", b"").decode("latin-1")
        self.request_headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                for k, v in scope.get("headers", [])}
        self.request_body = b""
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.response_body = b""
        self.complete = False

    def take_response(self, message: dict[str, Any]) -> None:
        """Keep what an ASGI `send` message carries of the response."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                                     for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.response_body += message.get("body", b"")
            if not message.get("more_body"):
                self.complete = True


class Recorder:
    """ASGI wrapper that keeps every /v1 exchange (request and response, bodies included)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []
        self.stopped = False
        self._lock = threading.Lock()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        ex = Exchange(scope)
        with self._lock:
            self.exchanges.append(ex)

        async def rec_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                ex.request_body += message.get("body", b"")
            return message

        async def rec_send(message: dict) -> None:
            ex.take_response(message)
            await send(message)

        await self.app(scope, receive=rec_receive, send=rec_send)

    def take(self) -> list[Exchange]:
        with self._lock:
            out, self.exchanges = self.exchanges, []
        return out


# -- validation ----------------------------------------------------------------------
def _normalise(path: str, data: Any, gaps: set[str]) -> Any:
    """Rewrite the known gaps (recording which were seen) so the rest validates strictly."""
    data = copy.deepcopy(data)

    def job(obj: dict[str, Any]) -> None:
        if obj.get("status") == "paused":
            obj["status"] = "running"
            gaps.add(GAP_PAUSED)
        if obj.get("error") == {}:
            obj["error"] = None
            gaps.add(GAP_ERROR_EMPTY)

    if path.startswith("/v1/fine_tuning/jobs") and isinstance(data, dict):
        if data.get("object") == "fine_tuning.job":
            job(data)
        for item in data.get("data", []) if data.get("object") == "list" else []:
            if isinstance(item, dict) and item.get("object") == "fine_tuning.job":
                job(item)
    if path == "/v1/completions" and isinstance(data, dict):
        for choice in data.get("choices", []):
            lp = choice.get("logprobs") or {}
            for i, value in enumerate(lp.get("token_logprobs") or []):
                if value is None:
                    lp["token_logprobs"][i] = 0.0
                    gaps.add(GAP_ECHO_NULL)
            for i, value in enumerate(lp.get("top_logprobs") or []):
                if value is None:
                    lp["top_logprobs"][i] = {}
                    gaps.add(GAP_ECHO_NULL)
    return data


def _request(ex: Exchange) -> Any:
    from openapi_core.testing import MockRequest

    return MockRequest(SPEC_HOST, ex.method, ex.path, args=parse_qsl(ex.query),
                       headers=ex.request_headers, data=ex.request_body,
                       content_type=ex.request_headers.get("content-type", "application/json"))


_IDS = re.compile(r"/(file-|ftjob-|batch_|ftckpt_)[A-Za-z0-9]+")


def route(ex: Exchange) -> tuple[str, str, int | None]:
    path = _IDS.sub(r"/{\1}", ex.path)
    if path.startswith("/v1/models/"):
        path = "/v1/models/{model}"
    return ex.method, path, ex.status


def validate(exchanges: list[Exchange], gaps: set[str] | None = None,
             per_route: int | None = None) -> list[str]:
    """Problems with the exchanges: accepted requests and 2xx responses against their
    operation, error responses against ErrorResponse, SSE chunks against the stream schema.

    `per_route` checks at most that many exchanges of each (method, route, status): a
    200-example evaluation repeats one shape 200 times, and openapi-core takes ~15 ms per
    exchange. None checks every one.
    """
    from openapi_core.testing import MockResponse

    gaps = gaps if gaps is not None else set()
    problems: list[str] = []
    api = openapi()
    seen: dict[tuple[str, str, int | None], int] = {}
    for ex in exchanges:
        key = route(ex)
        seen[key] = seen.get(key, 0) + 1
        if per_route is not None and seen[key] > per_route:
            continue
        where = f"{ex.method} {ex.path}"
        if ex.status is None or ex.status == 0 or not ex.complete:
            continue  # an injected dropped connection: nothing was answered
        ctype = ex.response_headers.get("content-type", "")
        if ex.status >= 400:
            try:
                schema_validator("ErrorResponse").validate(json.loads(ex.response_body))
            except Exception as exc:
                problems.append(f"{where} -> {ex.status}: error body: {exc}")
            continue
        try:
            api.validate_request(_request(ex))
        except Exception as exc:
            problems.append(f"{where}: request: {_explain(exc)}")
        if ctype.startswith("text/event-stream"):
            legacy = ex.path == "/v1/completions"
            for line in ex.response_body.decode("utf-8").splitlines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    if legacy:
                        chunk = _normalise(ex.path, chunk, gaps)
                        for choice in chunk.get("choices", []):
                            if choice.get("finish_reason") is None:
                                choice["finish_reason"] = "length"
                                gaps.add(GAP_STREAM_FINISH_NULL)
                    try:
                        schema_validator("CreateCompletionResponse" if legacy else
                                         "CreateChatCompletionStreamResponse").validate(chunk)
                    except Exception as exc:
                        problems.append(f"{where}: stream chunk: {exc}")
            continue
        if ex.path.endswith("/content") and ex.path.startswith("/v1/files/"):
            gaps.add(GAP_FILE_CONTENT)
            continue
        body = ex.response_body
        if ctype.startswith("application/json"):
            data = _normalise(ex.path, json.loads(body), gaps)
            body = json.dumps(data).encode("utf-8")
        try:
            api.validate_response(_request(ex), MockResponse(
                body, status_code=ex.status, headers=ex.response_headers,
                content_type=ctype.split(";")[0] or "application/json"))
        except Exception as exc:
            problems.append(f"{where} -> {ex.status}: response: {_explain(exc)}")
    return problems


def _explain(exc: BaseException) -> str:
    details = [str(e) for e in getattr(exc, "schema_errors", None) or []]
    cause = exc.__cause__
    if cause is not None:
        details += [str(e)[:400] for e in getattr(cause, "schema_errors", None) or []]
        if not details:
            details.append(f"{type(cause).__name__}: {str(cause)[:400]}")
    return f"{type(exc).__name__}: {exc}" + (f" [{'; '.join(details)}]" if details else "")


# -- servers -------------------------------------------------------------------------
@contextmanager
def serve(outer: Any = None, *, instance: Any = None, **settings: Any) -> Iterator[Any]:
    """A real uvicorn server on a free 127.0.0.1 port around create_app(ServeConfig(...)),
    with a Recorder outside it (and `outer(recorder)` outside that: a host emulation, see
    hostkit.py); yields the ServerThread (`.recorder` attached). `instance`: a backend
    object to serve (e.g. a FakeBackend subclass that fails on purpose)."""
    from unified_prompt_openai.server.config import ServeConfig
    from unified_prompt_openai.server.run import ServerThread

    settings.setdefault("backend", "fake" if instance is None else instance.name)
    settings.setdefault("model", "fake-tiny")
    settings.setdefault("api_key", API_KEY)
    recorders: list[Recorder] = []

    def wrap(app: Any) -> Any:
        recorders.append(Recorder(app))
        return outer(recorders[0]) if outer is not None else recorders[0]

    with ServerThread(ServeConfig(**settings), wrap=wrap, backend=instance) as srv:
        srv.recorder = recorders[0]
        RECORDERS.append(srv.recorder)
        try:
            yield srv
        finally:
            srv.recorder.stopped = True


#: Recorders of every server started by `serve`; conftest validates what they saw after
#: each test.
RECORDERS: list[Recorder] = []


def backend_options(srv: Any, tmp: Path | None = None, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {"base_url": srv.base_url, "api_key": API_KEY,
                            "retry": {"initial_backoff": 0.02, "max_backoff": 0.2},
                            "poll_seconds": 0.05}
    if tmp is None and "cache_dir" not in extra:
        opts["cache"] = False
    else:
        opts["cache_dir"] = str(tmp)
    opts.update(extra)
    return opts


def count(srv: Any, method: str, path: str) -> int:
    return sum(1 for e in list(srv.log) if e["method"] == method and e["path"] == path)


# -- data and specs ------------------------------------------------------------------
_POS = ["a charming", "a moving", "a clever", "a beautiful", "a funny", "a heartfelt",
        "a gripping", "a delightful"]
_NEG = ["a dull", "a clumsy", "a tedious", "a lifeless", "a boring", "a forgettable",
        "a messy", "a pointless"]
_THINGS = ["film", "story", "drama", "comedy", "script", "debut", "sequel", "thriller",
           "romance", "western", "musical", "satire", "biopic"]


def examples(n: int, prefix: str = "x") -> list[dict[str, str]]:
    """n labelled reviews, balanced, varied enough that predictions differ per example."""
    out = []
    for i in range(n):
        pos = i % 2 == 0
        adj = (_POS if pos else _NEG)[(i // 2) % 8]
        thing = _THINGS[(i * 7) % len(_THINGS)]
        out.append({"id": f"{prefix}{i}", "text": f"{adj} {thing}, number {i}",
                    "label": "positive" if pos else "negative"})
    return out


def write_data(folder: Path, *, train: int = 24, dev: int = 12, test: int = 40) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, n in (("train", train), ("dev", dev), ("test", test)):
        if not n:
            continue
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in examples(n, split[:2])),
                        encoding="utf-8")
        paths[split] = str(path)
    return paths


def run_spec(files: dict[str, str], backend: str = "openai", model: str = "fake-tiny",
         options: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "openai-test", "task": "classification", "seed": 3,
        "backend": {"name": backend, "model": model,
                    "options": {backend: dict(options or {})}},
        "data": {"files": files},
        "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                   "verbalizer": {"positive": ["good", "absolutely wonderful"],
                                  "negative": ["bad"]}},
        "eval": {"split": "test"}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def write_spec(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def finished_job(client: Any, job_id: str, timeout: float = 60.0) -> Any:
    """The fine-tuning job once it has succeeded, failed or been cancelled (polled through
    the official client)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")
