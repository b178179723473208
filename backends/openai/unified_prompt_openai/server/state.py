"""What every route needs, as FastAPI dependencies: the server's state and a JSON body
parsed the way the hosted API reports a bad one.

Routes import this module, never app.py (which imports the routes): the arrows point one
way, app -> routes -> state.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from unified_prompt.backend import Backend
from unified_prompt_openai.server.batches import Batches
from unified_prompt_openai.server.config import ServeConfig
from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.files import FileStore
from unified_prompt_openai.server.inference import Inference
from unified_prompt_openai.server.jobs import FineTuneJobs
from unified_prompt_openai.server.models import ModelRegistry

M = TypeVar("M", bound=BaseModel)


@dataclass
class ServerState:
    config: ServeConfig
    backend: Backend
    registry: ModelRegistry
    inference: Inference
    files: FileStore
    jobs: FineTuneJobs
    batches: Batches
    data_dir: Path


def server_state(request: Request) -> ServerState:
    return request.app.state.server


#: A route parameter that receives the ServerState.
Server = Annotated[ServerState, Depends(server_state)]


async def parse_body(request: Request, model: type[M]) -> M:
    """A JSON body as `model`; a bad one is a 400 naming the parameter, as the API does."""
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise APIError(400, f"We could not parse the JSON body of your request ({exc.msg}).") \
            from None
    if not isinstance(data, dict):
        raise APIError(400, "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or None
        raise APIError(400, f"Invalid value for '{param}': {err['msg']}", param=param,
                       code="invalid_value") from None


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request's body parsed as `model` (see parse_body):
    `req: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))]`."""

    async def parsed(request: Request) -> M:
        return await parse_body(request, model)

    return parsed
