"""`unified-prompt compare`, `matrix` and `report`: thin layers over unified_prompt.portability
and unified_prompt.runs_report, registered as `unified_prompt.commands` entry points like a
backend's commands (only click is imported until one runs).

compare and matrix exit 1 when a pair disagrees beyond the tolerance, so CI can gate on
them; bad input exits 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from unified_prompt.cli import handles_errors, spec_options

TOLERANCE_HELP = ("A limit, e.g. --tolerance prob=1e-3 --tolerance same=0.98. Keys: prob (max "
                  "|label-probability diff|, default 1e-3), same (least share of identical "
                  "predictions, 0.99), metric (max |metric diff|, 0.005), loss (max relative "
                  "per-step loss diff, 1e-3) over loss_steps (the first 20 steps); 'none' "
                  "switches one off.")


def tolerance_option(fn):  # type: ignore[no-untyped-def]
    return click.option("--tolerance", "tolerance", multiple=True, metavar="KEY=VALUE",
                        help=TOLERANCE_HELP)(fn)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@tolerance_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a report page (report.md, figures/) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@handles_errors
def compare(runs: tuple[Path, ...], tolerance: tuple[str, ...], out: Path | None,
            as_json: bool) -> None:
    """Compare finished runs of one spec pair by pair (predictions by id, label
    probabilities, metrics, per-step training losses); exit 1 on disagreement."""
    from unified_prompt.portability.compare import Tolerance, compare_runs
    from unified_prompt.run_record import RunRecord

    records = [RunRecord.load(r) for r in runs]
    comparison = compare_runs(records, Tolerance.parse(tolerance))
    if out is not None:
        from unified_prompt.runs_report import write_runs_report

        write_runs_report(records, out, comparison=comparison, title="Run comparison")
    if as_json:
        click.echo(json.dumps(comparison.to_dict(), indent=2))
    else:
        click.echo(comparison.summary())
        if out is not None:
            click.echo(f"report: {out / 'report.md'}")
    sys.exit(0 if comparison.ok else 1)


@click.command("matrix")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backends", required=True, metavar="A,B[,C]",
              help="Backends to run the spec on, e.g. hf,paddle or hf,paddle,openai.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the runs (OUT/<backend>), compare.json and report.md.")
@click.option("--convert", is_flag=True,
              help="Also evaluate each trained adapter converted to the other backends.")
@spec_options
@tolerance_option
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a TTY).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handles_errors
def matrix(config: Path, backends: str, out: Path, convert: bool, overrides: tuple[str, ...],
           backend: str | None, tolerance: tuple[str, ...], progress: bool | None,
           as_json: bool) -> None:
    """Run CONFIG on each backend (and its converted adapters) and compare every pair;
    exit 1 on disagreement."""
    from unified_prompt.errors import UserInputError
    from unified_prompt.portability.matrix import run_matrix

    if backend:
        raise UserInputError("matrix: name the backends with --backends, not --backend")
    result = run_matrix(config, backends=backends.split(","), out=out, convert=convert,
                        tolerance=list(tolerance), overrides=list(overrides), progress=progress,
                        verbose=not as_json)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())
    sys.exit(0 if result.ok else 1)


@click.command("report")
@click.argument("runs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.md and its figures here (default: print the markdown).")
@click.option("--title", default="Runs", show_default=True)
@handles_errors
def report(runs: tuple[Path, ...], out: Path | None, title: str) -> None:
    """One page comparing finished runs: metrics, params and walls, the settings that
    differ, loss and dev curves overlaid."""
    from unified_prompt.run_record import RunRecord
    from unified_prompt.runs_report import render_runs_report, write_runs_report

    records = [RunRecord.load(r) for r in runs]
    if out is None:
        click.echo(render_runs_report(records, title=title), nl=False)
        return
    path = write_runs_report(records, out, title=title)
    click.echo(f"report: {path}")
