"""Experiment tracking as sinks of a run's event stream.

The runner writes every event (start, step, eval, checkpoint, keep_best, finish) through
one function into events.jsonl; `Tracking.publish` hands the same event to each sink the
spec's `tracking` section asks for (TensorBoard files in RUN/tensorboard by default, an
MLflow run optionally). Tags come from one mapping (`scalars`), so every backend gets the
same tag set by construction. A sink that fails is dropped with a warning in events.jsonl
and on stderr: tracking never breaks a run. tensorboardX and mlflow load only when a sink
opens.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from unified_prompt.artifacts import RunDir
    from unified_prompt.config import ExperimentSpec


class Sink(Protocol):
    name: str

    def write(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class Tracking:
    """The sinks of one run; opened on the first event, each failing alone."""

    def __init__(self, spec: ExperimentSpec | None, run: RunDir | None) -> None:
        self.spec = spec
        self.run = run
        self._sinks: list[Sink] | None = None

    def _open(self) -> list[Sink]:
        if self._sinks is not None:
            return self._sinks
        self._sinks = []
        if self.spec is None or self.run is None:
            return self._sinks
        cfg = self.spec.tracking
        if cfg.tensorboard:
            self._try("tensorboard", self._tensorboard)
        if cfg.mlflow is not None:
            self._try("mlflow", self._mlflow)
        return self._sinks

    def _tensorboard(self) -> Sink:
        from unified_prompt.tracking.tensorboard_sink import TensorBoardSink

        assert self.run is not None
        return TensorBoardSink(self.run.file(TensorBoardSink.FOLDER))

    def _mlflow(self) -> Sink:
        from unified_prompt.tracking.mlflow_sink import MlflowSink

        assert self.spec is not None and self.run is not None
        return MlflowSink(self.spec, self.run)

    def _try(self, name: str, make: Any) -> None:
        try:
            assert self._sinks is not None
            self._sinks.append(make())
        except Exception as exc:  # tracking never breaks a run
            self._warn(name, exc)

    def _warn(self, name: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        print(f"warning: tracking to {name} stopped ({message})", file=sys.stderr)
        if self.run is not None:
            self.run.log_event("warning", source="tracking", sink=name, message=message)

    def publish(self, event: dict[str, Any]) -> None:
        for sink in list(self._open()):
            try:
                sink.write(event)
            except Exception as exc:  # tracking never breaks a run
                self._drop(sink, exc)

    def _drop(self, sink: Sink, exc: BaseException) -> None:
        assert self._sinks is not None
        self._sinks.remove(sink)
        self._warn(sink.name, exc)
        with contextlib.suppress(Exception):  # already reported
            sink.close()

    def close(self) -> None:
        for sink in list(self._sinks or []):
            try:
                sink.close()
            except Exception as exc:  # tracking never breaks a run
                self._sinks.remove(sink)  # type: ignore[union-attr]
                self._warn(sink.name, exc)
        self._sinks = None
