"""What a server must remember across a restart (its files, jobs and fine-tuned models),
kept as small JSON documents under `<data-dir>/state/`, each replaced atomically: a stop
at any moment leaves the previous or the new version, never half of one. With it a client
that persisted a job id re-attaches after the server restarts instead of paying for a
second job.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("unified_prompt_openai.server")


class JsonStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.root = folder.parent  # paths inside the data folder are stored relative to it
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def load(self, name: str) -> Any:
        """The saved document, or None (never saved, or unreadable: logged, not fatal)."""
        path = self.folder / f"{name}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable server state %s (%s)", path.name, exc)
            return None

    def save(self, name: str, data: Any) -> None:
        path = self.folder / f"{name}.json"
        text = json.dumps(data, ensure_ascii=False, indent=1)
        with self._lock:
            tmp = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def resolve(self, stored: str) -> Path:
        return self.root / stored  # an absolute stored path stays absolute
