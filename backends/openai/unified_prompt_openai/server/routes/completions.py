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
        events = await inference.chat_stream(req)

        async def stream():  # an async generator of SSE lines
            for event in events:
                yield event

        return StreamingResponse(stream(), media_type="text/event-stream")
    body, _ = await inference.chat(req)
    return json_response(body)


@router.post("/completions", response_model=None)
async def completions(request: Request) -> Response:
    req = await parse_body(request, CompletionRequest)
    if state(request).config.chat_only:
        raise APIError(404, f"{req.model} is a chat model and not supported in the "
                       "v1/completions endpoint. Did you mean to use v1/chat/completions?",
                       param="model", code="model_not_supported")
    if req.stream:
        raise APIError(400, "stream is not supported on /v1/completions by this server",
                       param="stream")
    return json_response(await state(request).inference.completions(req))
