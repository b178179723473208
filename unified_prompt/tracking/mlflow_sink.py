"""An MLflow run mirroring a run directory (optional: pip install 'unified-prompt[mlflow]').

    tracking: {mlflow: {uri: sqlite:///runs/mlflow.db, experiment: sentiment}}
    tracking: {mlflow: true}       # a sqlite store beside the run folder: <parent>/mlflow.db

Params: the resolved spec flattened to dotted keys (secrets redacted, as in config.yaml).
Metrics: the same tags as TensorBoard, by step. At the finish: the run directory (but its
training checkpoints) as artifacts, and the MLflow run ends FINISHED; a run that stops
early ends FAILED and, resumed, continues the same MLflow run (its id is in RUN/mlflow.json).
Credentials for a tracking server come from MLflow's environment variables
(MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN), never from the spec.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from unified_prompt.artifacts import RunDir, atomic_write_json, flat_keys, read_json, spec_data
from unified_prompt.errors import ConfigError
from unified_prompt.tracking.scalars import ScalarStream

if TYPE_CHECKING:
    from unified_prompt.config import ExperimentSpec

POINTER = "mlflow.json"
#: Left out of the artifacts: resumable training state, not results.
NOT_ARTIFACTS = {RunDir.CHECKPOINTS, RunDir.STATE, POINTER}
TAG_RUN_DIR = "unified_prompt.run_dir"
FLUSH_AT = ("eval", "checkpoint", "keep_best", "finish")


def default_uri(run: RunDir) -> str:
    return f"sqlite:///{(run.path.resolve().parent / 'mlflow.db').as_posix()}"


def check_uri(uri: str) -> None:
    if urlsplit(uri).password:
        raise ConfigError("tracking.mlflow.uri holds a password; set MLFLOW_TRACKING_USERNAME "
                          "and MLFLOW_TRACKING_PASSWORD in the environment instead",
                          problems=[("tracking.mlflow.uri", "credentials in the URI")])


def flat_params(data: Any) -> dict[str, str]:
    """Dotted keys and string values within MLflow's length limits."""
    return {k[:250]: str(v)[:6000] for k, v in flat_keys(data).items()}


def _quiet() -> None:
    """MLflow and alembic announce every schema migration of a new sqlite store at INFO."""
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


class MlflowSink:
    name = "mlflow"

    def __init__(self, spec: ExperimentSpec, run: RunDir) -> None:
        cfg = spec.tracking.mlflow
        assert cfg is not None
        self.run = run
        self.uri = cfg.uri or default_uri(run)
        check_uri(self.uri)
        _quiet()
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self._metric, self._param = Metric, Param
        self.client = MlflowClient(tracking_uri=self.uri)
        self.stream = ScalarStream()
        self.pending: list[Any] = []
        self.finished = False
        experiment = cfg.experiment or spec.name or "unified-prompt"
        self.run_id, resumed = self._find_or_create(experiment)
        if not resumed:
            params = [Param(k, v) for k, v in flat_params(spec_data(spec)).items()]
            for i in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[i:i + 100])

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if self.uri.startswith("sqlite:"):
            # beside the store, not MLflow's default ./mlruns under whatever the cwd is
            location = (Path(self.uri[len("sqlite:///"):]).parent / "mlartifacts").as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def _find_or_create(self, experiment: str) -> tuple[str, bool]:
        pointer = self.run.file(POINTER)
        if pointer.exists():
            saved = read_json(pointer)
            if saved.get("uri") == self.uri and self._reopen(str(saved["run_id"])):
                return str(saved["run_id"]), True
        created = self.client.create_run(
            self._experiment_id(experiment), run_name=self.run.path.name,
            tags={TAG_RUN_DIR: str(self.run.path.resolve())})
        run_id = str(created.info.run_id)
        atomic_write_json(pointer, {"run_id": run_id, "uri": self.uri,
                                    "experiment": experiment})
        return run_id, False

    def _reopen(self, run_id: str) -> bool:
        """Mark a stopped MLflow run running again; False when the store no longer has it."""
        try:
            self.client.update_run(run_id, status="RUNNING")
        except Exception:  # any store error: start a new run instead
            return False
        return True

    def write(self, event: dict[str, Any]) -> None:
        stamp = int(1000 * float(event.get("time") or time.time()))
        for tag, value, step in self.stream.scalars(event):
            self.pending.append(self._metric(tag, value, stamp, step))
        if event.get("type") in FLUSH_AT or len(self.pending) >= 500:
            self.flush()
        if event.get("type") == "finish":
            self._upload()
            self.client.set_terminated(self.run_id, "FINISHED")
            self.finished = True

    def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:1000], self.pending[1000:]
            self.client.log_batch(self.run_id, metrics=batch)

    def _upload(self) -> None:
        for entry in sorted(self.run.path.iterdir()):
            if entry.name in NOT_ARTIFACTS or entry.name.startswith("."):
                continue
            if entry.is_dir():
                self.client.log_artifacts(self.run_id, str(entry), artifact_path=entry.name)
            else:
                self.client.log_artifact(self.run_id, str(entry))

    def close(self) -> None:
        self.flush()
        if not self.finished:
            self.client.set_terminated(self.run_id, "FAILED")
            self.finished = True
