"""GET /v1/models, GET and DELETE /v1/models/{model}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from unified_prompt_openai.server.paging import list_body
from unified_prompt_openai.server.state import Server

router = APIRouter(prefix="/v1")


def _model(served: Any) -> dict[str, Any]:
    return {"id": served.id, "object": "model", "created": served.created,
            "owned_by": served.owned_by}


@router.get("/models")
async def list_models(server: Server) -> dict[str, Any]:
    return list_body([_model(m) for m in server.registry.list()])


@router.get("/models/{model:path}")
async def get_model(server: Server, model: str) -> dict[str, Any]:
    return _model(server.registry.info(model))


@router.delete("/models/{model:path}")
async def delete_model(server: Server, model: str) -> dict[str, Any]:
    server.registry.delete(model)
    return {"id": model, "object": "model", "deleted": True}
