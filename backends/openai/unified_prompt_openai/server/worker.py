"""One thread that owns the backend for request handling.

Requests hand their work to it through a queue instead of a general thread pool: one
cheap hop per request, no pool of threads fighting for the GIL, and concurrent requests
for the same primitive (text_logprobs or generate_text with the same settings) are merged
into one backend call, as an inference server batches (off with max_batch=1); sampled
generation is never merged, so a request's seed alone decides its choices.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unified_prompt_openai.server.models import ModelRegistry


@dataclass
class _Item:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    key: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class BackendWorker:
    BATCHED = ("text_logprobs", "generate_text")

    def __init__(self, registry: ModelRegistry, max_batch: int = 32) -> None:
        self.registry = registry
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="backend-worker", daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` on the worker thread, under the registry's lock."""
        loop = asyncio.get_running_loop()
        key = None
        name = getattr(fn, "__name__", "")
        sampled = name == "generate_text" and getattr(args[2], "temperature", 0) > 0
        if name in self.BATCHED and self.max_batch > 1 and not sampled:
            # sampled calls run alone: one seeded generator per request repeats its choices
            key = (name, id(args[0]), args[2:], tuple(sorted(kwargs.items())))
        item = _Item(fn, args, kwargs, key, loop.create_future(), loop)
        self._queue.put(item)
        return await item.future

    def close(self) -> None:
        self._queue.put(None)

    # -- the thread ------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            pending = [item]
            while len(pending) < 4 * self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                pending.append(nxt)
            groups: dict[Any, list[_Item]] = {}
            for it in pending:
                groups.setdefault(it.key if it.key is not None else id(it), []).append(it)
            for group in groups.values():
                for start in range(0, len(group), max(1, self.max_batch)):
                    self._run(group[start:start + max(1, self.max_batch)])

    def _run(self, group: list[_Item]) -> None:
        group = [it for it in group if not it.future.done()]  # dropped: client went away
        if not group:
            return
        first = group[0]
        try:
            if len(group) == 1:
                results = [self.registry.call(first.fn, *first.args, **first.kwargs)]
            else:
                texts = [t for it in group for t in it.args[1]]
                merged = self.registry.call(first.fn, first.args[0], texts, *first.args[2:],
                                            **first.kwargs)
                results, at = [], 0
                for it in group:
                    results.append(merged[at:at + len(it.args[1])])
                    at += len(it.args[1])
        except BaseException as exc:  # handed to every waiting request
            for it in group:
                it.loop.call_soon_threadsafe(_set_exception, it.future, exc)
            return
        for it, result in zip(group, results, strict=True):
            it.loop.call_soon_threadsafe(_set_result, it.future, result)


def _set_result(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
