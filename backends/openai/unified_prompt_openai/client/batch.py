"""Bulk evaluation through the Batch API: half the price, results within the completion
window instead of at once.

Requests already in the cache are not sent; the rest go in one JSONL file (at most 50,000
lines; larger evaluations are split). Lines the host failed are answered by ordinary
requests afterwards, so a batch never loses an example.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from unified_prompt.errors import BackendError
from unified_prompt_openai.client.transport import ENDPOINTS, Transport

MAX_LINES = 50_000
TERMINAL = ("completed", "failed", "expired", "cancelled")


async def run_batch(transport: Transport, api: str, bodies: list[dict[str, Any]],
                    poll_seconds: float,
                    direct: Callable[[int], Any]) -> list[dict[str, Any]]:
    """Responses for `bodies` in order; `direct(i)` is awaited for lines the batch failed."""
    results: list[dict[str, Any] | None] = [None] * len(bodies)
    keys: list[str | None] = [None] * len(bodies)
    todo: list[int] = []
    for i, body in enumerate(bodies):
        keys[i] = transport.cache_key(api, body)
        hit = transport.cached(keys[i])
        if hit is not None:
            transport.accounting.record_cached()
            results[i] = hit
        else:
            todo.append(i)
    for start in range(0, len(todo), MAX_LINES):
        chunk = todo[start:start + MAX_LINES]
        answered = await _one_batch(transport, api, {i: bodies[i] for i in chunk}, poll_seconds)
        for i, data in answered.items():
            results[i] = data
            if keys[i] is not None:
                transport.cache.put(keys[i], data)
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        transport.accounting.note(f"{len(missing)} batch lines failed; sent directly")
        fallback = await asyncio.gather(*(direct(i) for i in missing))
        for i, data in zip(missing, fallback, strict=True):
            results[i] = data
    return results  # type: ignore[return-value]


async def _one_batch(transport: Transport, api: str, bodies: dict[int, dict[str, Any]],
                     poll_seconds: float) -> dict[int, dict[str, Any]]:
    url = "/v1" + ENDPOINTS[api]
    lines = [json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": url, "body": body})
             for i, body in bodies.items()]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    upload = await transport.send("uploading a batch file", lambda c: c.files.create(
        file=("batch.jsonl", payload, "application/jsonl"), purpose="batch"))
    batch = await transport.send("creating a batch", lambda c: c.batches.create(
        input_file_id=upload.id, endpoint=url, completion_window="24h",
        metadata={"created_by": "unified-prompt"}))
    while str(batch.status) not in TERMINAL:
        await asyncio.sleep(poll_seconds)
        batch = await transport.send(f"polling batch {batch.id}",
                                     lambda c, b=batch.id: c.batches.retrieve(b))
    if str(batch.status) != "completed" or not batch.output_file_id:
        if str(batch.status) == "completed":
            return {}
        raise BackendError(f"batch {batch.id} ended {batch.status}")
    content = await transport.send("downloading batch results",
                                   lambda c: c.files.content(batch.output_file_id))
    out: dict[int, dict[str, Any]] = {}
    for line in content.text.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        response = row.get("response") or {}
        if response.get("status_code") != 200 or not isinstance(response.get("body"), dict):
            continue
        index = int(str(row.get("custom_id", "")).removeprefix("req-"))
        body = response["body"]
        usage = body.get("usage") or {}
        transport.accounting.record(str(bodies[index].get("model")),
                                    int(usage.get("prompt_tokens") or 0),
                                    int(usage.get("completion_tokens") or 0), batch=True)
        out[index] = body
    return out
