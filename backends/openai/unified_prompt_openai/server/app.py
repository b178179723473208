"""Builds the ASGI application: the FastAPI routes, the OpenAI error shape for every
failure, and the traffic middleware outside them all."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from unified_prompt.backend import Backend
from unified_prompt_openai.server.batches import Batches
from unified_prompt_openai.server.config import ServeConfig
from unified_prompt_openai.server.errors import APIError, error_body
from unified_prompt_openai.server.faults import FaultInjector
from unified_prompt_openai.server.files import FileStore
from unified_prompt_openai.server.inference import Inference
from unified_prompt_openai.server.jobs import FineTuneJobs
from unified_prompt_openai.server.limits import Quota, RequestWindow
from unified_prompt_openai.server.middleware import TrafficMiddleware
from unified_prompt_openai.server.models import ModelRegistry
from unified_prompt_openai.server.state import ServerState
from unified_prompt_openai.server.worker import BackendWorker

log = logging.getLogger("unified_prompt_openai.server")


def build_state(config: ServeConfig, backend: Backend | None = None) -> ServerState:
    from unified_prompt.registry import create_backend

    config.check()
    if backend is None:
        backend = create_backend(config.backend, dict(config.backend_options))
    data_dir = config.data_dir or Path(tempfile.mkdtemp(prefix="unified-prompt-serve-"))
    registry = ModelRegistry(backend, config.model, config.model_id, config.organization)
    files = FileStore(data_dir / "files")
    inference = Inference(registry, BackendWorker(registry, config.max_batch),
                          config.default_max_tokens)
    jobs = FineTuneJobs(registry, files, data_dir / "jobs", organization=config.organization,
                        train_method=config.train_method, quirks=config.real_api_quirks)
    return ServerState(config, backend, registry, inference, files, jobs,
                       Batches(inference, files), data_dir)


def create_app(config: ServeConfig, backend: Backend | None = None) -> TrafficMiddleware:
    """The whole server; `.app.state.server` is its ServerState, `.log` its traffic."""
    from unified_prompt_openai.server.routes import batches, completions, files, jobs, models

    server = build_state(config, backend)
    app = FastAPI(title="unified-prompt OpenAI-compatible server", docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.server = server
    for module in (models, completions, files, jobs, batches):
        app.include_router(module.router)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (f"Invalid URL ({request.method} {request.url.path})" if exc.status_code == 404
                   else str(exc.detail))
        return JSONResponse(error_body(message), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in err["loc"][1:]) or None
        return JSONResponse(error_body(f"Invalid value for '{param}': {err['msg']}",
                                       param=param), status_code=400)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("error answering %s %s", request.method, request.url.path)
        return JSONResponse(error_body(f"The server had an error processing your request "
                                       f"({type(exc).__name__}: {exc}).", type="server_error"),
                            status_code=500)

    return TrafficMiddleware(
        app, api_key=config.api_key, latency_ms=config.latency_ms,
        faults=FaultInjector(config.fault_rate, config.faults, config.fault_seed),
        window=RequestWindow(config.requests_per_minute, config.rate_window_s),
        quota=Quota(config.quota_requests),
        retry_after_ms=config.retry_after_ms)
