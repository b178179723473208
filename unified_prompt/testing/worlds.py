"""N ranks as threads of one process: the core's distributed logic, tested without a launcher.

`run_ranks(n, fn)` calls `fn(world)` on n threads, each with its own ThreadWorld rank;
collectives meet at a barrier and sum in rank order, so every rank gets the same numbers.
A real backend's world does the same with torch.distributed or paddle.distributed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from unified_prompt.distributed import World

T = TypeVar("T")


class _Group:
    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.barrier = threading.Barrier(size, timeout=timeout)
        self.slots: list[Any] = [None] * size

    def exchange(self, rank: int, value: Any) -> list[Any]:
        self.slots[rank] = value
        self.barrier.wait()
        seen = list(self.slots)
        self.barrier.wait()  # nobody overwrites a slot before everyone has read them
        return seen


class ThreadWorld(World):
    def __init__(self, group: _Group, rank: int) -> None:
        self._group = group
        self.rank = rank
        self.size = group.size

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        parts = self._group.exchange(self.rank, np.array(array, copy=True))
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return total

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        return [p.copy() for p in self._group.exchange(self.rank, np.array(array, copy=True))]

    def broadcast(self, array: np.ndarray, src: int = 0) -> np.ndarray:
        return self._group.exchange(self.rank, np.array(array, copy=True))[src].copy()


def run_ranks(n: int, fn: Callable[[World], T], timeout: float = 120.0) -> list[T]:
    """fn(world) on n thread-ranks; their results in rank order (the first error raised)."""
    group = _Group(n, timeout)
    results: list[Any] = [None] * n
    errors: list[BaseException | None] = [None] * n

    def work(rank: int) -> None:
        try:
            results[rank] = fn(ThreadWorld(group, rank))
        except BaseException as exc:  # reported below, with the other ranks released
            errors[rank] = exc
            group.barrier.abort()

    threads = [threading.Thread(target=work, args=(r,), name=f"rank-{r}") for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None and
                  not isinstance(e, threading.BrokenBarrierError)), None)
    if first is None:
        first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
