"""POST /v1/chat/completions (with logprobs, top_logprobs and streaming) and the legacy
POST /v1/completions (with logprobs and echo). The backend runs on the BackendWorker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.routes import json_response
from unified_prompt_openai.server.schemas import ChatCompletionRequest, CompletionRequest
from unified_prompt_openai.server.state import Server, json_body

router = APIRouter(prefix="/v1")
T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """`work`, cancelled as soon as the client disconnects: its remaining generation slices
    never reach the backend (a streamed answer stops the same way, through Starlette)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.Event()

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if not gone.is_set():
            raise  # the server is stopping: not ours to swallow
        # Nobody reads this answer; it marks the exchange in the traffic log.
        raise APIError(499, "The client closed the connection before the answer was ready.",
                       code="client_closed_request") from None
    finally:
        watcher.cancel()


@router.post("/chat/completions", response_model=None)
async def chat_completions(
        request: Request, server: Server,
        req: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
) -> Response:
    inference = server.inference
    if req.stream:
        return _sse(await unless_disconnected(request, inference.chat_stream(req)))
    body, _ = await unless_disconnected(request, inference.chat(req))
    return json_response(body)


@router.post("/completions", response_model=None)
async def completions(
        request: Request, server: Server,
        req: Annotated[CompletionRequest, Depends(json_body(CompletionRequest))],
) -> Response:
    if server.config.chat_only:
        raise APIError(404, f"{req.model} is a chat model and not supported in the "
                       "v1/completions endpoint. Did you mean to use v1/chat/completions?",
                       param="model", code="model_not_supported")
    inference = server.inference
    if req.stream:
        return _sse(await unless_disconnected(request, inference.completions_stream(req)))
    return json_response(await unless_disconnected(request, inference.completions(req)))


def _sse(events: list[str]) -> StreamingResponse:
    async def stream():  # an async generator of SSE lines
        for event in events:
            yield event

    return StreamingResponse(stream(), media_type="text/event-stream")
