"""A disk cache of responses to deterministic requests, so re-running an evaluation costs
nothing.

The key is a hash of the host, the endpoint and the request body: never the API key or
organization (two keys for one host share answers, and the key is not written anywhere).
SQLite gives atomic writes and safe concurrent readers without extra dependencies.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)"


def request_key(host: str, endpoint: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"host": host, "endpoint": endpoint, "body": body},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cacheable(body: dict[str, Any]) -> bool:
    """Only greedy requests repeat exactly; streaming and n>1 are never cached."""
    return (body.get("temperature", 1.0) == 0 and not body.get("stream")
            and body.get("n", 1) in (1, None))


class ResponseCache:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "responses.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
            self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def contains(self, key: str) -> bool:
        """Whether `key` is cached, without reading or parsing the body (budget checks)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone()
        return row is not None

    def put(self, key: str, body: dict[str, Any]) -> None:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, body) VALUES (?, ?)",
                             (key, text))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
