"""/v1/fine_tuning/jobs: create, list (metadata filter), retrieve, events, checkpoints,
cancel, pause, resume."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from unified_prompt_openai.server.app import parse_body, state
from unified_prompt_openai.server.schemas import FineTuningJobRequest

router = APIRouter(prefix="/v1/fine_tuning/jobs")
_META = re.compile(r"^metadata\[(.+)\]$")


@router.post("")
async def create(request: Request) -> dict[str, Any]:
    req = await parse_body(request, FineTuningJobRequest)
    return state(request).jobs.create(req)


@router.get("")
async def list_jobs(request: Request, after: str | None = None, limit: int = 20) -> dict[str, Any]:
    metadata = {m.group(1): v for k, v in request.query_params.multi_items()
                if (m := _META.match(k))}
    jobs = state(request).jobs
    page, more = jobs.list(after, limit, metadata)
    return {"object": "list", "data": [jobs.to_dict(r) for r in page], "has_more": more}


@router.get("/{job_id}")
async def retrieve(request: Request, job_id: str) -> dict[str, Any]:
    jobs = state(request).jobs
    return jobs.to_dict(jobs.get(job_id))


@router.get("/{job_id}/events")
async def events(request: Request, job_id: str, after: str | None = None,
                 limit: int = 20) -> dict[str, Any]:
    page, more = state(request).jobs.events(job_id, after, limit)
    return {"object": "list", "data": page, "has_more": more}


@router.get("/{job_id}/checkpoints")
async def checkpoints(request: Request, job_id: str, after: str | None = None,
                      limit: int = 10) -> dict[str, Any]:
    page, more = state(request).jobs.checkpoints(job_id, after, limit)
    return {"object": "list", "data": page, "has_more": more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None}


@router.post("/{job_id}/cancel")
async def cancel(request: Request, job_id: str) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(state(request).jobs.cancel, job_id)


@router.post("/{job_id}/pause")
async def pause(request: Request, job_id: str) -> dict[str, Any]:
    return state(request).jobs.pause(job_id)


@router.post("/{job_id}/resume")
async def resume(request: Request, job_id: str) -> dict[str, Any]:
    return state(request).jobs.resume(job_id)
