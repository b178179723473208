"""Host emulation for the openai backend's tests: an ASGI layer in front of the recorded
`unified-prompt serve` app that speaks one host's dialect of the OpenAI API.

Each `HostEmulator` checks the request shape the host requires (paths, api-version, the
header that carries the key, headers the host wants), rewrites the request to what the
project's server speaks (`/v1/...`, its bearer key, the served model) and applies the
host's documented differences:

  dialect      "openai" (paths under /v1), "azure" (the classic deployments API:
               /openai/deployments/{deployment}/...?api-version=, key in `api-key`) or
               "azure_v1" (/openai/v1/..., `model` names a deployment)
  completions  "honour"; "refuse" echo with logprobs (400, as models without prompt
               log-probs do); "ignore" echo (Ollama: it generates, with log-probs of the
               generated tokens only); "drop_logprobs" (echo without log-probs);
               "absent" (404: a chat-only host)
  chat         "honour"; "refuse" logprobs (400); "ignore" them (no logprobs returned);
               `top_logprobs_max` refuses more alternatives than that (400)

Every exchange as the client sent it (the path mapped to its /v1 form, the body as sent)
is recorded and, through `openai_testkit.RECORDERS`, validated against the official OpenAPI
document after each test, like the server's own exchanges; the emulator's own error answers
are validated as ErrorResponse. Azure's error bodies carry only `code` and `message`
(GAP_AZURE_ERROR): the validation fills in `type` and `param`, and records the gap.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import openai_testkit as kit

Dialect = Literal["openai", "azure", "azure_v1"]
Completions = Literal["honour", "refuse", "ignore", "drop_logprobs", "absent"]
Chat = Literal["honour", "refuse", "ignore"]

HOST_KEY = "host-key-9876543210"  # what the emulated host expects; the server has its own
GAP_AZURE_ERROR = "Azure error body with only code and message"
_DEPLOYMENT = re.compile(r"^/openai/deployments/([^/]+)(/chat/completions|/completions)$")


@dataclass
class Seen:
    """One request as it arrived, before any rewriting."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    status: int | None = None


class _HostError(Exception):
    """An answer the emulated host gives instead of forwarding the request."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


def _openai_error(status: int, message: str, param: str | None = None,
                  code: str | None = None) -> _HostError:
    return _HostError(status, {"error": {"message": message, "type": "invalid_request_error",
                                       "param": param, "code": code}})


def _azure_error(status: int, code: str, message: str) -> _HostError:
    return _HostError(status, {"error": {"code": code, "message": message}})


@dataclass
class HostEmulator:
    dialect: Dialect = "openai"
    completions: Completions = "honour"
    chat: Chat = "honour"
    top_logprobs_max: int | None = None
    api_version: str = "2024-10-21"
    deployments: dict[str, str] = field(default_factory=dict)  # deployment -> served model
    require_headers: dict[str, str] = field(default_factory=dict)
    require_query: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stopped: bool = False

    def __post_init__(self) -> None:
        self.app: Any = None
        self._exchanges: list[kit.Exchange] = []
        self._lock = threading.Lock()
        self.gaps: set[str] = set()

    @property
    def key(self) -> str:
        return HOST_KEY

    def around(self, app: Any) -> HostEmulator:
        self.app = app
        return self

    # -- the recorder interface (conftest validates what `take` returns) ------------------
    def take(self) -> list[kit.Exchange]:
        with self._lock:
            out, self._exchanges = self._exchanges, []
        return out

    # -- ASGI ----------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        body = json.loads(raw) if raw and headers.get("content-type", "").startswith(
            "application/json") else None
        seen = Seen(scope["method"], scope["path"], dict(query), headers, body)
        self.seen.append(seen)
        try:
            path, query = self._route(scope["path"], query, headers)
            for name, value in self.require_headers.items():
                if headers.get(name.lower()) != value:
                    raise _openai_error(400, f"header {name!r} is missing or wrong")
            for name, value in self.require_query.items():
                if query.pop(name, None) != value:
                    raise _openai_error(400, f"query parameter {name!r} is missing or wrong")
            if body is not None:
                body = self._differences(path, body)
        except _HostError as refusal:
            seen.status = refusal.status
            await self._refuse(send, seen, raw, refusal)
            return
        forwarded = json.dumps(body).encode("utf-8") if body is not None else raw
        inner_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
                         if k not in ("authorization", "api-key", "content-length")]
        inner_headers += [(b"authorization", f"Bearer {kit.API_KEY}".encode()),
                          (b"content-length", str(len(forwarded)).encode())]
        inner = {**scope, "path": path, "raw_path": path.encode("latin-1"),
                 "query_string": urlencode(query).encode("latin-1"), "headers": inner_headers}
        exchange = self._exchange(scope["method"], path, query, headers, raw)

        sent = False

        async def inner_receive() -> dict:
            nonlocal sent
            if sent:  # after the body: wait on the real connection, as a server does (the
                return await receive()  # app watches for the client going away)
            sent = True
            return {"type": "http.request", "body": forwarded, "more_body": False}

        async def recording_send(message: dict) -> None:
            exchange.take_response(message)
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            await send(message)

        await self.app(inner, inner_receive, recording_send)

    # -- the dialects ----------------------------------------------------------------------
    def _route(self, path: str, query: dict[str, str], headers: dict[str, str]
               ) -> tuple[str, dict[str, str]]:
        """The /v1 path the server answers, and the query left for it; checks the key."""
        if self.dialect == "openai":
            self._bearer(headers)
            if not path.startswith("/v1/"):
                raise _openai_error(404, f"Invalid URL ({path})")
            return path, query
        if self.dialect == "azure_v1":
            self._bearer(headers)
            if not path.startswith("/openai/v1/"):
                raise _azure_error(404, "404", "Resource not found")
            return path[len("/openai"):], query
        # azure, the classic deployments API
        if "authorization" in headers:
            raise _azure_error(401, "401", "send the key in the api-key header")
        if not hmac.compare_digest(headers.get("api-key", ""), self.key):
            raise _azure_error(401, "401", "Access denied due to invalid subscription key or "
                               "wrong API endpoint.")
        if query.pop("api-version", None) != self.api_version:
            raise _azure_error(404, "404", "Resource not found")
        match = _DEPLOYMENT.match(path)
        if match:
            deployment, rest = match.groups()
            if deployment not in self.deployments:
                raise _azure_error(404, "DeploymentNotFound", "The API deployment for this "
                                   "resource does not exist.")
            return "/v1" + rest, query
        if path.startswith("/openai/") and "/deployments/" not in path:
            return "/v1" + path[len("/openai"):], query
        raise _azure_error(404, "404", "Resource not found")

    def _bearer(self, headers: dict[str, str]) -> None:
        given = headers.get("authorization", "")
        if not hmac.compare_digest(given, f"Bearer {self.key}"):
            raise _openai_error(401, "Incorrect API key provided.", code="invalid_api_key")

    def _differences(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body)
        if self.dialect in ("azure", "azure_v1") and path in ("/v1/chat/completions",
                                                           "/v1/completions"):
            model = body.get("model")
            if self.dialect == "azure_v1" and model not in self.deployments:
                raise _azure_error(404, "DeploymentNotFound", "The API deployment for this "
                                   "resource does not exist.")
            if model in self.deployments:
                body["model"] = self.deployments[model]
        if path == "/v1/completions":
            if self.completions == "absent":
                raise _openai_error(404, "This is a chat model and not supported in the "
                                    "v1/completions endpoint.")
            echo_with_logprobs = body.get("echo") and body.get("logprobs") is not None
            if self.completions == "refuse" and echo_with_logprobs:
                raise _openai_error(400, "echo with logprobs is not supported for this model",
                                    param="echo")
            if self.completions == "ignore":
                body.pop("echo", None)
                if not body.get("max_tokens"):
                    body["max_tokens"] = 4
            if self.completions == "drop_logprobs":
                body.pop("logprobs", None)
        if path == "/v1/chat/completions" and body.get("logprobs"):
            if self.chat == "refuse":
                raise _openai_error(400, "logprobs is not supported for this model",
                                    param="logprobs")
            top = body.get("top_logprobs") or 0
            if self.top_logprobs_max is not None and top > self.top_logprobs_max:
                raise _openai_error(400, f"top_logprobs must be between 0 and "
                                    f"{self.top_logprobs_max}", param="top_logprobs")
            if self.chat == "ignore":
                body.pop("logprobs", None)
                body.pop("top_logprobs", None)
        return body

    # -- recording -------------------------------------------------------------------------
    def _exchange(self, method: str, path: str, query: dict[str, str],
                  headers: dict[str, str], raw: bytes) -> kit.Exchange:
        """The request as the client sent it, on its /v1 path, with the server's bearer
        key in place of the host's credentials (what the document's security scheme reads)."""
        plain = {k: v for k, v in headers.items() if k not in ("authorization", "api-key")}
        plain["authorization"] = f"Bearer {kit.API_KEY}"
        ex = kit.Exchange({"method": method, "path": path,
                           "query_string": urlencode(query).encode("latin-1"),
                           "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                       for k, v in plain.items()]})
        ex.request_body = raw
        with self._lock:
            self._exchanges.append(ex)
        return ex

    async def _refuse(self, send: Any, seen: Seen, raw: bytes, refusal: _HostError) -> None:
        """Answer with the host's error, and record it for validation (Azure's shape with
        the fields the document requires filled in, the gap noted)."""
        data = json.dumps(refusal.body).encode("utf-8")
        await send({"type": "http.response.start", "status": refusal.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
        error = refusal.body["error"]
        if "type" not in error:
            self.gaps.add(GAP_AZURE_ERROR)
            error = {"type": "azure_error", "param": None, **error}
        ex = self._exchange(seen.method, seen.path, {}, seen.headers, raw)
        ex.status, ex.complete = refusal.status, True
        ex.response_headers = {"content-type": "application/json"}
        ex.response_body = json.dumps({"error": error}).encode("utf-8")


@contextmanager
def serve_as(emulator: HostEmulator, **settings: Any):
    """`openai_testkit.serve` with `emulator` in front; yields (server, emulator, base URL
    as the client should be given it)."""
    with kit.serve(outer=emulator.around, **settings) as srv:
        kit.RECORDERS.append(emulator)
        try:
            root = srv.base_url[: -len("/v1")]
            url = {"openai": srv.base_url, "azure": root, "azure_v1": root}[emulator.dialect]
            yield srv, emulator, url
        finally:
            emulator.stopped = True
