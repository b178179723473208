"""/v1/files: upload (multipart), list, retrieve, delete, content."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.files import PURPOSES, parse_multipart
from unified_prompt_openai.server.paging import list_body
from unified_prompt_openai.server.paging import page as take_page
from unified_prompt_openai.server.state import Server

router = APIRouter(prefix="/v1")


@router.post("/files")
async def upload(request: Request, server: Server) -> dict[str, Any]:
    form = parse_multipart(await request.body(), request.headers.get("content-type", ""))
    if "file" not in form or "purpose" not in form:
        raise APIError(400, "Missing 'file' or 'purpose' in the form.",
                       param="file" if "file" not in form else "purpose")
    purpose = form["purpose"][1].decode("utf-8").strip()
    if purpose not in PURPOSES:
        raise APIError(400, f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}",
                       param="purpose")
    filename, data = form["file"]
    return server.files.create(filename or "upload.jsonl", purpose, data).to_dict()


@router.get("/files")
async def list_files(server: Server, purpose: str | None = None, limit: int = 10000,
                     order: str = "desc", after: str | None = None) -> dict[str, Any]:
    page, more = take_page(server.files.list(purpose, order), after, limit, key=lambda f: f.id)
    return list_body([f.to_dict() for f in page], more, cursors=True, empty_cursor="")


@router.get("/files/{file_id}")
async def get_file(server: Server, file_id: str) -> dict[str, Any]:
    return server.files.get(file_id).to_dict()


@router.delete("/files/{file_id}")
async def delete_file(server: Server, file_id: str) -> dict[str, Any]:
    server.files.delete(file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/files/{file_id}/content")
async def file_content(server: Server, file_id: str) -> Response:
    stored = server.files.get(file_id)
    return Response(stored.path.read_bytes(), media_type="application/octet-stream")
