"""/v1/batches: create, list, retrieve, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from unified_prompt_openai.server.paging import list_body
from unified_prompt_openai.server.paging import page as take_page
from unified_prompt_openai.server.schemas import BatchRequest
from unified_prompt_openai.server.state import Server, json_body

router = APIRouter(prefix="/v1/batches")


@router.post("")
async def create(server: Server,
                 req: Annotated[BatchRequest, Depends(json_body(BatchRequest))]) -> dict[str, Any]:
    return server.batches.create(req)


@router.get("")
async def list_batches(server: Server, after: str | None = None,
                       limit: int = 20) -> dict[str, Any]:
    page, more = take_page(server.batches.list(), after, limit, key=lambda b: b.id)
    return list_body([b.to_dict() for b in page], more, cursors=True)


@router.get("/{batch_id}")
async def retrieve(server: Server, batch_id: str) -> dict[str, Any]:
    return server.batches.get(batch_id).to_dict()


@router.post("/{batch_id}/cancel")
async def cancel(server: Server, batch_id: str) -> dict[str, Any]:
    return server.batches.cancel(batch_id)
