"""The models a server answers for: the base model and every fine-tuned (and checkpoint)
model registered by a finished job, loaded from its adapter on first use.

The backend is reached only through the core's registry (never by importing a backend
package), and every call into it holds one lock: local backends are not written for
concurrent use, and requests are short next to the simulated network latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from unified_prompt.backend import Backend
from unified_prompt_openai.server.errors import APIError
from unified_prompt_openai.server.persist import JsonStore

T = TypeVar("T")


@dataclass
class ServedModel:
    id: str
    owned_by: str
    created: int = field(default_factory=lambda: int(time.time()))
    adapter: Path | None = None
    handle: Any = None
    base: bool = False


class ModelRegistry:
    def __init__(self, backend: Backend, base_ref: str, served_name: str, owner: str, *,
                 store: JsonStore | None = None) -> None:
        self.backend = backend
        self.lock = threading.RLock()
        self.store = store
        with self.lock:
            handle = backend.load_model(base_ref)
        self.base_id = served_name
        self._models: dict[str, ServedModel] = {
            served_name: ServedModel(served_name, owner, handle=handle, base=True)}
        for row in (store.load("models") if store else None) or []:
            adapter = store.resolve(row["adapter"]) if store else None
            if adapter is not None and adapter.exists() and row["id"] != served_name:
                self._models[row["id"]] = ServedModel(row["id"], row["owned_by"], row["created"],
                                                      adapter=adapter)

    def _save(self) -> None:
        if self.store is None:
            return
        with self.lock:
            rows = [{"id": m.id, "owned_by": m.owned_by, "created": m.created,
                     "adapter": self.store.relative(m.adapter)}
                    for m in self._models.values() if not m.base and m.adapter is not None]
            self.store.save("models", rows)

    @property
    def base_handle(self) -> Any:
        return self._models[self.base_id].handle

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a backend primitive under the lock."""
        with self.lock:
            return fn(*args, **kwargs)

    def list(self) -> list[ServedModel]:
        return list(self._models.values())

    def info(self, model_id: str) -> ServedModel:
        served = self._models.get(model_id)
        if served is None:
            raise APIError(404, f"The model '{model_id}' does not exist or you do not have "
                           "access to it.", code="model_not_found", param="model")
        return served

    def handle(self, model_id: str) -> Any:
        served = self.info(model_id)
        if served.handle is None:
            assert served.adapter is not None
            with self.lock:
                if served.handle is None:
                    served.handle = self.backend.load_adapter(self.base_handle, served.adapter)
        return served.handle

    def register(self, model_id: str, adapter: Path, owner: str, *, load: bool = True) -> None:
        served = ServedModel(model_id, owner, adapter=adapter)
        self._models[model_id] = served
        self._save()
        if load:
            self.handle(model_id)

    def delete(self, model_id: str) -> None:
        served = self.info(model_id)
        if served.base:
            raise APIError(403, "The base model cannot be deleted.", code="model_not_deletable",
                           param="model")
        del self._models[model_id]
        self._save()
