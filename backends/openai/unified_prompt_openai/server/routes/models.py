"""GET /v1/models, GET and DELETE /v1/models/{model}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from unified_prompt_openai.server.app import state

router = APIRouter(prefix="/v1")


def _model(served: Any) -> dict[str, Any]:
    return {"id": served.id, "object": "model", "created": served.created,
            "owned_by": served.owned_by}


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [_model(m) for m in state(request).registry.list()]}


@router.get("/models/{model:path}")
async def get_model(request: Request, model: str) -> dict[str, Any]:
    return _model(state(request).registry.info(model))


@router.delete("/models/{model:path}")
async def delete_model(request: Request, model: str) -> dict[str, Any]:
    state(request).registry.delete(model)
    return {"id": model, "object": "model", "deleted": True}
