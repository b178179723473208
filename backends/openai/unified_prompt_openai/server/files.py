"""Uploaded files (training data, batch input and output), kept on disk under the server's
data folder, and a small multipart/form-data reader (the standard library's, not an extra
dependency)."""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unified_prompt_openai.server.errors import APIError, not_found

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
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

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
        stored.path.unlink(missing_ok=True)


def safe_filename(name: str | None) -> str | None:
    """The last component of a client's file name: a name is a label, never a path."""
    if name is None:
        return None
    return re.split(r"[\\/]", name)[-1].strip() or "upload"


_PARAM = re.compile(r';\s*([\w*-]+)="?([^";]*)"?')


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """Form field name -> (filename, bytes)."""
    params = dict((k.lower(), v) for k, v in _PARAM.findall(content_type))
    boundary = params.get("boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise APIError(400, "expected a multipart/form-data body with 'file' and 'purpose'")
    out: dict[str, tuple[str | None, bytes]] = {}
    delimiter = b"--" + boundary.encode("latin-1")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data.removesuffix(b"\r\n")
        try:
            headers = head.decode("utf-8")
        except UnicodeDecodeError:
            raise APIError(400, "A form part's headers (its field name or filename) are not "
                           "valid UTF-8.") from None
        disposition = next((line for line in headers.split("\r\n")
                            if line.lower().startswith("content-disposition")), "")
        fields = dict((k.lower(), v) for k, v in _PARAM.findall(disposition))
        if "name" in fields:
            out[fields["name"]] = (safe_filename(fields.get("filename")), data)
    return out
