"""One spec run on several backends (and its trained adapter converted to the others),
then every pair compared: the portability check as a command and a library call.

    result = check("examples/sentiment.yaml", backends=["hf", "paddle"], out="runs/matrix")
    result.assert_agrees()

Runs go through the Experiment API into OUT/<backend>/ (OUT/<source>-to-<target>/ for a
converted adapter), each a normal run directory; a run already finished there is reused
and an unfinished one resumed, so a matrix stopped part-way continues where it was.
OUT/compare.json holds the comparison, OUT/report.md the page with the runs, their loss
curves and the agreement table.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unified_prompt.artifacts import atomic_write_json
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt.portability.compare import Comparison, Tolerance, compare_runs
from unified_prompt.run_record import RunRecord

COMPARE_FILE = "compare.json"
REPORT_FILE = "report.md"


class PortabilityError(AssertionError):
    """The runs of one spec disagree beyond the tolerance (raised by assert_agrees, so a
    test fails with the comparison as its message)."""


@dataclass
class MatrixRun:
    label: str
    path: Path
    backend: str
    converted_from: str | None = None


@dataclass
class PortabilityResult:
    """Runs of one spec on several backends and their pairwise comparison."""

    runs: list[MatrixRun]
    comparison: Comparison
    out: Path | None
    skipped: list[str] = field(default_factory=list)
    records: dict[str, RunRecord] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    @property
    def pairs(self) -> list[Any]:
        return self.comparison.pairs

    def pair(self, a: str, b: str) -> Any:
        for p in self.comparison.pairs:
            if (p.a, p.b) in ((a, b), (b, a)):
                return p
        raise KeyError(f"no comparison of {a} and {b}")

    def assert_agrees(self) -> None:
        if not self.ok:
            raise PortabilityError("the spec's runs disagree across backends\n" + self.summary())

    def summary(self) -> str:
        lines = [self.comparison.summary()]
        lines += [f"skipped: {s}" for s in self.skipped]
        if self.out is not None:
            lines.append(f"report: {self.out / REPORT_FILE}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "out": str(self.out) if self.out else None,
                "runs": [{"label": r.label, "path": str(r.path), "backend": r.backend,
                          "converted_from": r.converted_from} for r in self.runs],
                "skipped": self.skipped, **self.comparison.to_dict()}


def _experiment(spec: Any, overrides: Sequence[str] | None) -> Any:
    from unified_prompt.config import ExperimentSpec, build_spec, spec_from_data
    from unified_prompt.runner import Experiment

    if isinstance(spec, Experiment):
        spec = spec.spec
    if isinstance(spec, ExperimentSpec):
        if overrides:
            data = spec.model_dump(mode="json", exclude_none=True)
            return Experiment(spec_from_data(data, overrides=list(overrides)))
        return Experiment(build_spec(spec.model_dump(mode="json", exclude_none=True)))
    return Experiment.from_yaml(spec, overrides=list(overrides or []))


def _check_backends(spec: Any, backends: Sequence[str]) -> None:
    """Every backend installed and able to run the spec, before anything runs."""
    from unified_prompt.registry import backend_class

    if len(backends) < 2:
        raise UserInputError("a portability matrix needs at least two backends "
                             f"(got {', '.join(backends) or 'none'})")
    if len(set(backends)) != len(backends):
        raise UserInputError(f"--backends names a backend twice: {', '.join(backends)}")
    method = spec.finetune.method
    for name in backends:
        caps = backend_class(name).capabilities
        if not caps.supports_method(method):
            raise CapabilityError(f"backend {name!r} cannot train finetune.method {method!r}; "
                                  "leave it out of --backends or change the method")


def _run_once(exp: Any, backend: str, out: Path, progress: bool | None, say: Any) -> Path:
    """A finished run with this spec is reused, an unfinished one resumed; a run of another
    spec in `out` is refused (by the runner, naming the file)."""
    say(f"{backend}: {out}")
    exp.run(backend=backend, out=out, resume=True, progress=progress)
    return out


def run_matrix(spec: Any, *, backends: Sequence[str], out: str | Path,
               convert: bool = False, tolerance: Tolerance | Any = None,
               overrides: Sequence[str] | None = None, progress: bool | None = None,
               verbose: bool = False) -> PortabilityResult:
    """Run `spec` on each backend into OUT/<backend>; with `convert`, evaluate each trained
    adapter converted to every other backend (OUT/<source>-to-<target>); compare the runs
    of each backend pair and each converted adapter with its source; write OUT/compare.json
    and OUT/report.md."""
    from unified_prompt.config import LOCAL_METHODS
    from unified_prompt.registry import adapter_converter

    tol = Tolerance.parse(tolerance)
    out = Path(out)
    exp = _experiment(spec, overrides)
    backends = [b.strip() for b in backends if b.strip()]
    _check_backends(exp.spec, backends)
    method = exp.spec.finetune.method
    if convert and method not in LOCAL_METHODS:
        raise UserInputError(f"--convert needs a locally trained method (finetune.method is "
                             f"{method!r}): it converts the trained adapter")

    def say(msg: str) -> None:
        if verbose:
            print(msg, file=sys.stderr)

    runs = [MatrixRun(b, _run_once(exp, b, out / b, progress, say), b) for b in backends]
    pairs = [(i, j) for i in range(len(runs)) for j in range(i + 1, len(runs))]
    skipped: list[str] = []
    if convert:
        for i, source in enumerate(list(runs)):
            for target in backends:
                if target == source.backend:
                    continue
                converter = adapter_converter(source.backend, target)
                if converter is None:
                    skipped.append(f"{source.backend} -> {target}: no adapter converter installed")
                    continue
                label = f"{source.backend}-to-{target}"
                adapter = out / "converted" / label
                run_dir = out / label
                if not (run_dir / "metrics.json").exists():
                    say(f"converting {source.path / 'adapter'} -> {adapter}")
                    converter.convert(source.path / "adapter", adapter, target, overwrite=True)
                evaluated = _evaluate_adapter(exp, adapter)
                runs.append(MatrixRun(label, _run_once(evaluated, target, run_dir, progress, say),
                                      target, converted_from=source.label))
                pairs.append((i, len(runs) - 1))
    records = {r.label: RunRecord.load(r.path, label=r.label) for r in runs}
    comparison = compare_runs([records[r.label] for r in runs], tol, pairs=pairs)
    result = PortabilityResult(runs, comparison, out, skipped, records)
    write_matrix_files(result)
    return result


def _evaluate_adapter(exp: Any, adapter: Path) -> Any:
    """The spec without training, evaluating `adapter` (its manifest supplies the method)."""
    from unified_prompt.config import build_spec
    from unified_prompt.runner import Experiment

    data = exp.spec.model_dump(mode="json", exclude_none=True)
    data["finetune"] = {"method": "none"}
    data["eval"]["adapter"] = str(adapter)
    return Experiment(build_spec(data))


def write_matrix_files(result: PortabilityResult) -> None:
    from unified_prompt.runs_report import write_runs_report

    assert result.out is not None
    atomic_write_json(result.out / COMPARE_FILE, result.to_dict())
    write_runs_report([result.records[r.label] for r in result.runs], result.out,
                      comparison=result.comparison, title="Portability matrix",
                      notes=[f"skipped: {s}" for s in result.skipped])


def check(spec: Any, *, backends: Sequence[str] = ("hf", "paddle"), tolerance: Any = None,
          convert: bool = False, out: str | Path | None = None,
          overrides: Sequence[str] | None = None, progress: bool | None = False
          ) -> PortabilityResult:
    """Run `spec` (a YAML path, an ExperimentSpec or an Experiment) on `backends` and
    compare; `result.assert_agrees()` fails a test when the runs disagree beyond
    `tolerance` (a Tolerance, a mapping or KEY=VALUE strings). Without `out` the runs go
    to a temporary folder that is removed afterwards (the result keeps the numbers)."""
    if out is not None:
        return run_matrix(spec, backends=backends, out=out, convert=convert,
                          tolerance=tolerance, overrides=overrides, progress=progress)
    with tempfile.TemporaryDirectory(prefix="unified-prompt-matrix-") as tmp:
        result = run_matrix(spec, backends=backends, out=tmp, convert=convert,
                            tolerance=tolerance, overrides=overrides, progress=progress)
        result.out = None
        return result
