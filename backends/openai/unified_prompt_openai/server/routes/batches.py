"""/v1/batches: create, list, retrieve, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from unified_prompt_openai.server.app import parse_body, state
from unified_prompt_openai.server.paging import page as take_page
from unified_prompt_openai.server.schemas import BatchRequest

router = APIRouter(prefix="/v1/batches")


@router.post("")
async def create(request: Request) -> dict[str, Any]:
    return state(request).batches.create(await parse_body(request, BatchRequest))


@router.get("")
async def list_batches(request: Request, after: str | None = None,
                       limit: int = 20) -> dict[str, Any]:
    page, more = take_page(state(request).batches.list(), after, limit, key=lambda b: b.id)
    return {"object": "list", "data": [b.to_dict() for b in page],
            "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None,
            "has_more": more}


@router.get("/{batch_id}")
async def retrieve(request: Request, batch_id: str) -> dict[str, Any]:
    return state(request).batches.get(batch_id).to_dict()


@router.post("/{batch_id}/cancel")
async def cancel(request: Request, batch_id: str) -> dict[str, Any]:
    return state(request).batches.cancel(batch_id)
