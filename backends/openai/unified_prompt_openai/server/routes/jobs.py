"""/v1/fine_tuning/jobs: create, list (metadata filter), retrieve, events, checkpoints,
cancel, pause, resume."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from unified_prompt_openai.server.paging import list_body
from unified_prompt_openai.server.schemas import FineTuningJobRequest
from unified_prompt_openai.server.state import Server, json_body

router = APIRouter(prefix="/v1/fine_tuning/jobs")
_META = re.compile(r"^metadata\[(.+)\]$")


@router.post("")
async def create(
        server: Server,
        req: Annotated[FineTuningJobRequest, Depends(json_body(FineTuningJobRequest))],
) -> dict[str, Any]:
    return server.jobs.create(req)


@router.get("")
async def list_jobs(request: Request, server: Server, after: str | None = None,
                    limit: int = 20) -> dict[str, Any]:
    metadata = {m.group(1): v for k, v in request.query_params.multi_items()
                if (m := _META.match(k))}
    page, more = server.jobs.list(after, limit, metadata)
    return list_body([server.jobs.to_dict(r) for r in page], more)


@router.get("/{job_id}")
async def retrieve(server: Server, job_id: str) -> dict[str, Any]:
    return server.jobs.to_dict(server.jobs.get(job_id))


@router.get("/{job_id}/events")
async def events(server: Server, job_id: str, after: str | None = None,
                 limit: int = 20) -> dict[str, Any]:
    page, more = server.jobs.events(job_id, after, limit)
    return list_body(page, more)


@router.get("/{job_id}/checkpoints")
async def checkpoints(server: Server, job_id: str, after: str | None = None,
                      limit: int = 10) -> dict[str, Any]:
    page, more = server.jobs.checkpoints(job_id, after, limit)
    return list_body(page, more, cursors=True)


@router.post("/{job_id}/cancel")
async def cancel(server: Server, job_id: str) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(server.jobs.cancel, job_id)


@router.post("/{job_id}/pause")
async def pause(server: Server, job_id: str) -> dict[str, Any]:
    return server.jobs.pause(job_id)


@router.post("/{job_id}/resume")
async def resume(server: Server, job_id: str) -> dict[str, Any]:
    return server.jobs.resume(job_id)
