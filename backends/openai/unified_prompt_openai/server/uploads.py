"""Reading a multipart/form-data upload as it arrives: the file part goes straight to a
temporary file next to the file store (never whole in memory) and the size limit is
enforced while reading, so an oversized upload is refused after at most `limit` bytes
and a large one costs no more memory than a small one. Written here rather than taken
from a library: the form has two fields and the stream needs only a boundary scan.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from unified_prompt_openai.server.bodies import declared_length, too_large
from unified_prompt_openai.server.errors import APIError

MAX_FIELD_BYTES = 64 * 1024  # a text field (purpose); the file is the only large part
MAX_HEADER_BYTES = 16 * 1024
_PARAM = re.compile(r';\s*([\w*-]+)="?([^";]*)"?')


def safe_filename(name: str) -> str:
    """The last component of a client's file name: a name is a label, never a path."""
    return re.split(r"[\\/]", name)[-1].strip() or "upload"


@dataclass
class Upload:
    """The form once read: text fields, and the file part on disk (if one came)."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    path: Path | None = None
    size: int = 0

    def discard(self) -> None:
        """Remove the temporary file unless the store has taken it."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _Parser:
    def __init__(self, boundary: bytes, limit: int, folder: Path) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.limit = limit
        self.folder = folder
        self.upload = Upload()
        self.state = "preamble"
        self.buf = b"\r\n"  # so the first boundary reads like every later one
        self.part_name: str | None = None
        self.part_file: BinaryIO | None = None
        self.part_text = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.limit + MAX_FIELD_BYTES + MAX_HEADER_BYTES:
            raise too_large(f"more than {self.total}", self.limit, "upload")
        self.buf += chunk
        while self._step():
            pass

    def _step(self) -> bool:
        """One state transition on the buffer; False when it needs more bytes."""
        keep = len(self.delimiter) - 1
        if self.state == "preamble":
            at = self.buf.find(self.delimiter)
            if at < 0:
                self.buf = self.buf[-keep:]
                return False
            self.buf = self.buf[at + len(self.delimiter):]
            self.state = "after_boundary"
            return True
        if self.state == "after_boundary":
            if len(self.buf) < 2:
                return False
            if self.buf.startswith(b"--"):
                self.state, self.buf = "end", b""
                return False
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                if len(self.buf) > 256:
                    raise APIError(400, "The multipart body has a malformed boundary line.")
                return False
            if self.buf[:line_end].strip(b" \t"):
                raise APIError(400, "The multipart body has a malformed boundary line.")
            self.buf = self.buf[line_end + 2:]
            self.state = "headers"
            return True
        if self.state == "headers":
            at = self.buf.find(b"\r\n\r\n")
            if at < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    raise APIError(400, "A form part's headers are too long.")
                return False
            self._start_part(self.buf[:at])
            self.buf = self.buf[at + 4:]
            self.state = "body"
            return True
        if self.state == "body":
            at = self.buf.find(self.delimiter)
            if at < 0:
                if len(self.buf) > keep:
                    self._write(self.buf[:-keep])
                    self.buf = self.buf[-keep:]
                return False
            self._write(self.buf[:at])
            self._end_part()
            self.buf = self.buf[at + len(self.delimiter):]
            self.state = "after_boundary"
            return True
        self.buf = b""  # the epilogue after the closing boundary is ignored
        return False

    def _start_part(self, head: bytes) -> None:
        try:
            headers = head.decode("utf-8")
        except UnicodeDecodeError:
            raise APIError(400, "A form part's headers (its field name or filename) are not "
                           "valid UTF-8.") from None
        disposition = next((line for line in headers.split("\r\n")
                            if line.lower().startswith("content-disposition")), "")
        params = {k.lower(): v for k, v in _PARAM.findall(disposition)}
        self.part_name = params.get("name")
        self.part_text.clear()
        if self.part_name == "file" and self.upload.path is None:
            self.upload.filename = safe_filename(params.get("filename") or "upload.jsonl")
            self.upload.path = self.folder / f".upload-{secrets.token_hex(8)}.part"
            self.part_file = self.upload.path.open("wb")

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self.part_file is not None:
            self.upload.size += len(data)
            if self.upload.size > self.limit:
                raise too_large(f"more than {self.limit}", self.limit, "uploaded file")
            self.part_file.write(data)
        elif self.part_name is not None and self.part_name != "file":
            self.part_text += data
            if len(self.part_text) > MAX_FIELD_BYTES:
                raise APIError(400, f"The form field {self.part_name!r} is longer than "
                               f"{MAX_FIELD_BYTES} bytes.", param=self.part_name)

    def _end_part(self) -> None:
        if self.part_file is not None:
            self.part_file.close()
            self.part_file = None
        elif self.part_name is not None and self.part_name != "file":
            try:
                self.upload.fields[self.part_name] = self.part_text.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise APIError(400, f"{self.part_name}: the form field is not valid UTF-8",
                               param=self.part_name) from None
        self.part_name = None

    def close(self) -> None:
        if self.part_file is not None:
            self.part_file.close()
            self.part_file = None


def boundary_of(content_type: str) -> bytes:
    params = {k.lower(): v for k, v in _PARAM.findall(content_type)}
    boundary = params.get("boundary", "")
    if not content_type.lower().startswith("multipart/form-data") or not boundary \
            or len(boundary) > 200:
        raise APIError(400, "Expected a multipart/form-data body (with a boundary) holding "
                       "'file' and 'purpose'.")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise APIError(400, "The multipart boundary is not ASCII.") from None


async def read_upload(chunks: AsyncIterator[bytes], headers: Any, limit: int,
                      folder: Path) -> Upload:
    """The form, its file part streamed to a temporary file in `folder`; 413 as soon as
    the file (or the declared body length) passes `limit`. The caller adopts or discards
    `upload.path`."""
    boundary = boundary_of(headers.get("content-type", ""))
    declared = declared_length(headers)
    if declared is not None and declared > limit + MAX_FIELD_BYTES + MAX_HEADER_BYTES:
        raise too_large(declared, limit, "upload")
    parser = _Parser(boundary, limit, folder)
    try:
        async for chunk in chunks:
            parser.feed(chunk)
        if parser.state != "end":
            raise APIError(400, "The multipart body ended before its closing boundary.")
    except BaseException:
        parser.close()
        parser.upload.discard()
        raise
    parser.close()
    return parser.upload
