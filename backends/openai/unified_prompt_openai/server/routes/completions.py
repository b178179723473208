"""POST /v1/chat/completions (with logprobs, top_logprobs and streaming) and the legacy
POST /v1/completions (with logprobs and echo). The backend runs on the BackendWorker."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response, StreamingResponse

from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.routes import json_response
from unified_prompt_openai.server.schemas import ChatCompletionRequest, CompletionRequest
from unified_prompt_openai.server.state import Server, json_body

router = APIRouter(prefix="/v1")


@router.post("/chat/completions", response_model=None)
async def chat_completions(
        server: Server,
        req: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
) -> Response:
    inference = server.inference
    if req.stream:
        events = await inference.chat_stream(req)

        async def stream():  # an async generator of SSE lines
            for event in events:
                yield event

        return StreamingResponse(stream(), media_type="text/event-stream")
    body, _ = await inference.chat(req)
    return json_response(body)


@router.post("/completions", response_model=None)
async def completions(
        server: Server,
        req: Annotated[CompletionRequest, Depends(json_body(CompletionRequest))],
) -> Response:
    if server.config.chat_only:
        raise APIError(404, f"{req.model} is a chat model and not supported in the "
                       "v1/completions endpoint. Did you mean to use v1/chat/completions?",
                       param="model", code="model_not_supported")
    if req.stream:
        raise APIError(400, "stream is not supported on /v1/completions by this server",
                       param="stream")
    return json_response(await server.inference.completions(req))
