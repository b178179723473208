"""The Batch API: a JSONL of requests answered in the background by the same inference
code as the live endpoints, results written to an output file (errors to an error file)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from unified_prompt_openai.server.errors import APIError, not_found, redact_paths
from unified_prompt_openai.server.files import FileStore
from unified_prompt_openai.server.inference import Inference
from unified_prompt_openai.server.schemas import (
    BatchRequest,
    ChatCompletionRequest,
    CompletionRequest,
)

log = logging.getLogger("unified_prompt_openai.server")


@dataclass
class BatchRecord:
    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "validating"
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    stamps: dict[str, int] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "input_file_id": self.input_file_id, "completion_window": "24h",
            "status": self.status, "created_at": self.created_at,
            "expires_at": self.created_at + 86400, "metadata": self.metadata,
            "request_counts": {"total": self.total, "completed": self.completed,
                               "failed": self.failed}, **self.stamps}
        if self.output_file_id:
            out["output_file_id"] = self.output_file_id
        if self.error_file_id:
            out["error_file_id"] = self.error_file_id
        return out


class Batches:
    def __init__(self, inference: Inference, files: FileStore) -> None:
        self.inference = inference
        self.files = files
        self._batches: dict[str, BatchRecord] = {}

    def create(self, req: BatchRequest) -> dict[str, Any]:
        stored = self.files.get(req.input_file_id)
        if stored.purpose != "batch":
            raise APIError(400, f"input_file_id: file '{stored.id}' has purpose "
                           f"'{stored.purpose}', not 'batch'", param="input_file_id")
        record = BatchRecord(f"batch_{secrets.token_hex(12)}", req.endpoint, stored.id,
                             req.metadata)
        self._batches[record.id] = record
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, args=(record, loop), daemon=True,
                         name=record.id).start()
        return record.to_dict()

    def get(self, batch_id: str) -> BatchRecord:
        record = self._batches.get(batch_id)
        if record is None:
            raise not_found("batch", batch_id, param="batch_id")
        return record

    def list(self) -> list[BatchRecord]:
        return sorted(self._batches.values(), key=lambda b: (b.created_at, b.id), reverse=True)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        record = self.get(batch_id)
        if record.status in ("completed", "failed", "expired", "cancelled"):
            raise APIError(400, f"Batch {batch_id} is already {record.status}.")
        record.cancel.set()
        record.status = "cancelling"
        record.stamps["cancelling_at"] = int(time.time())
        return record.to_dict()

    def _answer(self, endpoint: str, body: dict[str, Any],
                loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        """One line, answered by the live endpoints' code on the server's loop."""
        if endpoint == "/v1/chat/completions":
            coro: Any = self.inference.chat(ChatCompletionRequest.model_validate(body))
            return asyncio.run_coroutine_threadsafe(coro, loop).result()[0]
        coro = self.inference.completions(CompletionRequest.model_validate(body))
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def _run(self, record: BatchRecord, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._answer_all(record, loop)
        except Exception:  # an unreadable input file, a backend failure: never stuck
            log.exception("batch %s failed", record.id)
            record.status = "failed"
            record.stamps["failed_at"] = int(time.time())

    def _answer_all(self, record: BatchRecord, loop: asyncio.AbstractEventLoop) -> None:
        lines = self.files.get(record.input_file_id).path.read_text(encoding="utf-8").splitlines()
        requests = [json.loads(x) for x in lines if x.strip()]
        record.total = len(requests)
        record.status = "in_progress"
        record.stamps["in_progress_at"] = int(time.time())
        out, errors = [], []
        for row in requests:
            if record.cancel.is_set():
                record.status = "cancelled"
                record.stamps["cancelled_at"] = int(time.time())
                return
            custom_id = row.get("custom_id")
            try:
                if row.get("url") != record.endpoint:
                    raise APIError(400, f"url {row.get('url')!r} differs from the batch "
                                   f"endpoint {record.endpoint!r}")
                body = self._answer(record.endpoint, row.get("body") or {}, loop)
                out.append({"id": f"batch_req_{secrets.token_hex(8)}", "custom_id": custom_id,
                            "response": {"status_code": 200, "request_id": secrets.token_hex(8),
                                         "body": body}, "error": None})
                record.completed += 1
            except (APIError, ValidationError) as exc:
                message = redact_paths(exc.message if isinstance(exc, APIError) else str(exc))
                errors.append({"id": f"batch_req_{secrets.token_hex(8)}", "custom_id": custom_id,
                               "response": None,
                               "error": {"code": "invalid_request", "message": message}})
                record.failed += 1
        record.status = "finalizing"
        record.stamps["finalizing_at"] = int(time.time())
        record.output_file_id = self.files.create(
            f"{record.id}_output.jsonl", "batch_output",
            "".join(json.dumps(x) + "\n" for x in out).encode("utf-8")).id
        if errors:
            record.error_file_id = self.files.create(
                f"{record.id}_error.jsonl", "batch_output",
                "".join(json.dumps(x) + "\n" for x in errors).encode("utf-8")).id
        record.status = "completed"
        record.stamps["completed_at"] = int(time.time())
