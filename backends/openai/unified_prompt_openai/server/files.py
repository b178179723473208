"""Uploaded files (training data, batch input and output), kept on disk under the server's
data folder (uploads arrive through uploads.read_upload, already on disk)."""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_prompt_openai.server.errors import APIError, not_found
from unified_prompt_openai.server.persist import JsonStore

MAX_BYTES = 512 * 1024 * 1024
PURPOSES = ("fine-tune", "batch", "assistants", "vision", "user_data", "evals")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": self.bytes,
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed"}


class FileStore:
    def __init__(self, folder: Path, store: JsonStore | None = None) -> None:
        self.folder = folder
        self.store = store
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".upload-*.part"):  # uploads cut off by a stop
            stale.unlink(missing_ok=True)
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.RLock()
        for row in (store.load("files") if store else None) or []:
            path = folder / row["id"]
            if path.is_file():
                self._files[row["id"]] = StoredFile(row["id"], row["filename"], row["purpose"],
                                                    row["bytes"], row["created_at"], path)

    def _save(self) -> None:
        if self.store is not None:
            with self._lock:
                rows = [{k: v for k, v in f.to_dict().items() if k not in ("object", "status")}
                        for f in self._files.values()]
                self.store.save("files", rows)

    def create(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        if len(data) > MAX_BYTES:
            raise APIError(400, f"file is {len(data)} bytes; the limit is {MAX_BYTES}",
                           param="file")
        file_id = f"file-{secrets.token_hex(12)}"
        path = self.folder / file_id
        path.write_bytes(data)
        stored = StoredFile(file_id, filename, purpose, len(data), int(time.time()), path)
        with self._lock:
            self._files[file_id] = stored
            self._save()
        return stored

    def adopt(self, part: Path, filename: str, purpose: str) -> StoredFile:
        """Take an upload already streamed to `part` (in this folder) into the store."""
        file_id = f"file-{secrets.token_hex(12)}"
        path = self.folder / file_id
        os.replace(part, path)
        stored = StoredFile(file_id, filename, purpose, path.stat().st_size,
                            int(time.time()), path)
        with self._lock:
            self._files[file_id] = stored
            self._save()
        return stored

    def find(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def get(self, file_id: str) -> StoredFile:
        stored = self.find(file_id)
        if stored is None:
            raise not_found("file", file_id, param="file_id")
        return stored

    def list(self, purpose: str | None = None, order: str = "desc") -> list[StoredFile]:
        files = [f for f in self._files.values() if purpose in (None, f.purpose)]
        return sorted(files, key=lambda f: (f.created_at, f.id), reverse=order == "desc")

    def delete(self, file_id: str) -> None:
        stored = self.get(file_id)
        with self._lock:
            del self._files[file_id]
            self._save()
        stored.path.unlink(missing_ok=True)
