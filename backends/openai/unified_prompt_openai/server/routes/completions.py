"""POST /v1/chat/completions (with logprobs, top_logprobs and streaming) and the legacy
POST /v1/completions (with logprobs and echo). The backend runs on the BackendWorker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from unified_prompt_openai.server.app import parse_body, state
from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.routes import json_response
from unified_prompt_openai.server.schemas import ChatCompletionRequest, CompletionRequest

router = APIRouter(prefix="/v1")


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    req = await parse_body(request, ChatCompletionRequest)
    inference = state(request).inference
    if req.stream:
        return _sse(await inference.chat_stream(req))
    body, _ = await inference.chat(req)
    return json_response(body)


@router.post("/completions", response_model=None)
async def completions(request: Request) -> Response:
    req = await parse_body(request, CompletionRequest)
    if state(request).config.chat_only:
        raise APIError(404, f"{req.model} is a chat model and not supported in the "
                       "v1/completions endpoint. Did you mean to use v1/chat/completions?",
                       param="model", code="model_not_supported")
    inference = state(request).inference
    if req.stream:
        return _sse(await inference.completions_stream(req))
    return json_response(await inference.completions(req))


def _sse(events: list[str]) -> StreamingResponse:
    async def stream():  # an async generator of SSE lines
        for event in events:
            yield event

    return StreamingResponse(stream(), media_type="text/event-stream")
