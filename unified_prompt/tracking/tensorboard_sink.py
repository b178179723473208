"""TensorBoard event files (tensorboardX) in RUN/tensorboard, and reading them back.

    tensorboard --logdir runs/            # every run's curves side by side

A resumed run reopens the writer with `purge_step` at the step it continues from, so
TensorBoard (and `read_scalars`) drop what the killed process logged past its checkpoint.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

from unified_prompt.tracking.scalars import ScalarStream


def _tensorboardx() -> Any:
    """tensorboardX, without letting it import torch: its writer imports torch whenever
    torch is installed (for tensor types we never pass), which would load torch into a
    paddle run (seconds, hundreds of MB)."""
    if "torch" in sys.modules or "tensorboardX" in sys.modules:
        import tensorboardX

        return tensorboardX
    sys.modules["torch"] = None  # type: ignore[assignment] - makes `import torch` fail
    try:
        import tensorboardX
    finally:
        del sys.modules["torch"]
    return tensorboardX


class TensorBoardSink:
    name = "tensorboard"
    FOLDER = "tensorboard"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.stream = ScalarStream()
        self._writer: Any = None
        self._purge: int | None = None

    def _writer_now(self) -> Any:
        if self._writer is None:
            tbx = _tensorboardx()
            # tensorboardX names files by the second: a writer reopened within one would
            # overwrite the last file without a suffix of its own
            self._writer = tbx.SummaryWriter(logdir=str(self.folder), purge_step=self._purge,
                                             flush_secs=10,
                                             filename_suffix=f".{os.getpid()}.{time.time_ns()}")
            self._purge = None
        return self._writer

    def write(self, event: dict[str, Any]) -> None:
        if event.get("type") == "resume" and event.get("step") is not None:
            self.close()
            self._purge = int(event["step"]) + 1
            return
        scalars = self.stream.scalars(event)
        if not scalars:
            if event.get("type") in ("eval", "checkpoint", "finish") and self._writer is not None:
                self._writer.flush()
            return
        writer = self._writer_now()
        for tag, value, step in scalars:
            writer.add_scalar(tag, value, step, walltime=event.get("time"))
        if event.get("type") == "eval":
            writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _records(path: Path) -> list[bytes]:
    """The records of a TFRecord file (length, crc, data, crc); a torn last record ends it."""
    data = path.read_bytes()
    out, at = [], 0
    while at + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        end = at + 12 + length + 4
        if end > len(data):
            break
        out.append(data[at + 12:at + 12 + length])
        at = end
    return out


def read_scalars(folder: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `folder`, tag -> [(step, value)] in logging
    order, with TensorBoard's purge rule: a session restarted at step s drops what earlier
    files logged at steps >= s."""
    event_pb2 = _tensorboardx().proto.event_pb2
    files = []
    for path in Path(folder).glob("events.out.tfevents.*"):
        events = []
        for raw in _records(path):
            ev = event_pb2.Event()
            ev.ParseFromString(raw)
            events.append(ev)
        if events:
            files.append((events[0].wall_time, path.name, events))
    out: dict[str, list[tuple[int, float]]] = {}
    for _, _, events in sorted(files, key=lambda f: (f[0], f[1])):
        for ev in events:
            if ev.HasField("session_log") and ev.session_log.status == ev.session_log.START:
                out = {t: [(s, v) for s, v in pts if s < ev.step] for t, pts in out.items()}
            if ev.HasField("summary"):
                for value in ev.summary.value:
                    number = value.simple_value if value.HasField("simple_value") else \
                        (value.tensor.float_val[0] if value.tensor.float_val else None)
                    if number is not None:
                        out.setdefault(value.tag, []).append((int(ev.step), float(number)))
    return out
