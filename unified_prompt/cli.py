"""`unified-prompt`: a thin layer over the Python API.

Commands import what they need when they run, so `--help` stays fast. Backends may add
commands (`serve`, `convert`) through the `unified_prompt.commands` entry-point group;
they are loaded only when named. A UnifiedPromptError prints one clear line and exits
with its code (2 for bad input); a traceback means a bug.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Any

import click

COMMAND_GROUP = "unified_prompt.commands"


def _fail(exc: BaseException) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(getattr(exc, "exit_code", 1))


def handles_errors(fn: Any) -> Any:
    """Turn library errors into a message and an exit code instead of a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from unified_prompt.errors import UnifiedPromptError

        try:
            return fn(*args, **kwargs)
        except UnifiedPromptError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            click.echo("interrupted; an unfinished run continues with --resume", err=True)
            sys.exit(130)

    return wrapper


class LazyGroup(click.Group):
    """Built-in commands plus those backends register, imported only when used."""

    def _plugins(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = self._plugins().get(name)
        if ep is None:
            return None
        try:
            return ep.load()
        except ImportError as exc:
            return _unavailable(name, exc)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Plugin commands show their own short help: their modules import only click (the
        framework loads inside the command), so loading them here stays cheap."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            rows.append((name, cmd.get_short_help_str(60) if cmd is not None else ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, exc: Exception) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def broken(args: tuple[str, ...]) -> None:
        click.echo(f"error: command {name!r} failed to load ({exc})", err=True)
        sys.exit(1)

    return broken


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unified-prompt")
def main() -> None:
    """Prompt-based and parameter-efficient fine-tuning: one spec, any backend."""


# -- run ----------------------------------------------------------------------------
def spec_options(fn: Any) -> Any:
    fn = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override a spec key, e.g. --set finetune.method=lora.")(fn)
    fn = click.option("--backend", "backend", default=None, metavar="NAME",
                      help="Run on this backend instead of the spec's.")(fn)
    return fn


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@spec_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (config, metrics, predictions, events, adapter, report).")
@click.option("--resume", is_flag=True, help="Continue the unfinished run in --out.")
@click.option("--seeds", default=None, metavar="N,N,...",
              help="Run once per seed into OUT/seed-<n>/ and write the mean, std and "
                   "per-seed values of every metric to OUT/metrics.json (as `seed: [..]`).")
@click.option("--dry-run", is_flag=True, help="Print requests, tokens and cost; spend nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a TTY).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of a summary.")
@click.option("--nproc", type=click.IntRange(min=1), default=None, metavar="N",
              help="Train and evaluate in N processes on this machine, started with the "
                   "backend's launcher (torchrun on hf, paddle.distributed.launch on paddle).")
@handles_errors
def run(config: Path, overrides: tuple[str, ...], backend: str | None, out: Path | None,
        resume: bool, seeds: str | None, dry_run: bool, progress: bool | None, as_json: bool,
        nproc: int | None) -> None:
    """Run the experiment in CONFIG and print its metrics.

    Started by torchrun / accelerate launch / paddle.distributed.launch, every process
    runs this command; rank 0 writes the run directory and prints."""
    from unified_prompt.distributed import is_main_process
    from unified_prompt.errors import UserInputError
    from unified_prompt.runner import Experiment

    if resume and out is None:
        raise UserInputError("--resume needs --out (the run directory to continue)")
    exp = Experiment.from_yaml(config, overrides=list(overrides), backend=backend)
    if seeds is not None or exp.spec.seeds is not None:
        _run_seeds(exp, seeds, out, resume, dry_run, progress, as_json, nproc)
        return
    if nproc is not None and nproc > 1:
        args = [str(config), *(a for o in overrides for a in ("--set", o))]
        args += [*(["--backend", backend] if backend else []), *(["--out", str(out)] if out else []),
                 *(["--resume"] if resume else []), *(["--dry-run"] if dry_run else []),
                 *(["--json"] if as_json else [])]
        if progress is not None:
            args.append("--progress" if progress else "--no-progress")
        sys.exit(_launch(exp.spec.backend.name, nproc, ["run", *args]))
    result = exp.run(out=out, resume=resume, progress=progress, dry_run=dry_run)
    if not is_main_process():
        return
    if as_json:
        click.echo(json.dumps(result.plan if dry_run else result.metrics, indent=2, default=str))
    else:
        click.echo(result.summary())


def _run_seeds(exp: Any, seeds: str | None, out: Path | None, resume: bool, dry_run: bool,
               progress: bool | None, as_json: bool, nproc: int | None) -> None:
    from unified_prompt.errors import UserInputError
    from unified_prompt.seeds import parse_seeds, seed_specs

    chosen = parse_seeds(seeds) if seeds is not None else None
    if nproc is not None and nproc > 1:
        raise UserInputError("--nproc runs one seed: drop --seeds / `seed: [..]`, or run "
                             "each seed with --set seed=N")
    if dry_run:
        specs = seed_specs(exp.spec, chosen)
        plan = type(exp)(specs[0]).run(dry_run=True).plan or {}
        plan = {**plan, "seeds": [s.seed for s in specs],
                "note": f"the plan of one seed; the run repeats it {len(specs)} times"}
        click.echo(json.dumps(plan, indent=2, default=str) if as_json else
                   "dry run (per seed):\n" + "\n".join(f"  {k}: {v}" for k, v in plan.items()))
        return
    result = exp.run_seeds(chosen, out=out, resume=resume, progress=progress)
    click.echo(json.dumps(result.metrics, indent=2, default=str) if as_json else result.summary())


def _launch(backend: str, nproc: int, args: list[str]) -> int:
    """Run `unified-prompt ARGS` in nproc processes with the backend's launcher; its exit
    code."""
    import subprocess

    from unified_prompt.distributed import launch_from_env
    from unified_prompt.errors import UserInputError
    from unified_prompt.registry import backend_class

    if launch_from_env() is not None:
        raise UserInputError("--nproc: this process was already started by a launcher; "
                             "drop --nproc (the launcher chose the number of processes)")
    command = backend_class(backend).launch_command(nproc, args)
    click.echo(f"launching {nproc} processes: {' '.join(command)}", err=True)
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 130


# -- search -------------------------------------------------------------------------
@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strategy", required=True, metavar="NAME",
              help="propose | gradient | rl | verbalizer | demos.")
@click.option("--budget", required=True, type=int, metavar="N",
              help="Model calls the search may spend (one prompt scored or generated = one "
                   "call); the final test evaluation is planned and reported apart.")
@click.option("--max-tokens", type=int, default=None, help="Also stop at this many tokens.")
@click.option("--max-cost", type=float, default=None, help="Also stop at this estimated cost (USD).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Search directory: search.jsonl, best.yaml, report.md, result.json.")
@spec_options
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A strategy option, e.g. -o dev_limit=100 -o proposer.model=gpt-4o-mini.")
@click.option("--seed", type=int, default=None, help="Search seed (default: the spec's seed).")
@click.option("--dry-run", is_flag=True, help="Print the plan and its cost; spend nothing.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a TTY).")
@click.option("--json", "as_json", is_flag=True, help="Print result.json instead of a summary.")
@handles_errors
def search(config: Path, strategy: str, budget: int, max_tokens: int | None,
           max_cost: float | None, out: Path | None, overrides: tuple[str, ...],
           backend: str | None, options: tuple[str, ...], seed: int | None, dry_run: bool,
           progress: bool | None, as_json: bool) -> None:
    """Search for a better prompt for CONFIG (template, label words or demonstrations)."""
    from unified_prompt.config import apply_overrides
    from unified_prompt.search import SearchBudget, run_search

    opts = apply_overrides({}, list(options))
    result = run_search(config, strategy=strategy,
                        budget=SearchBudget(budget, max_tokens, max_cost), out=out,
                        backend=backend, seed=seed, options=opts, overrides=list(overrides),
                        dry_run=dry_run, progress=progress)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(result.summary())
    if dry_run and result.plan and not result.plan["fits"]:
        sys.exit(2)


# -- validate -----------------------------------------------------------------------
@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@spec_options
@handles_errors
def validate(files: tuple[Path, ...], overrides: tuple[str, ...], backend: str | None) -> None:
    """Check specs (keys, types, template, backend options, data files) without loading
    any framework."""
    from unified_prompt.validation import validate_spec_file

    for path in files:
        summary = validate_spec_file(path, overrides=list(overrides), backend=backend)
        click.echo(f"ok: {path} ({summary})")


# -- backends -----------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True)
@handles_errors
def backends(as_json: bool) -> None:
    """Installed backends and what each can do."""
    from unified_prompt.errors import UnifiedPromptError
    from unified_prompt.registry import available, backend_class

    rows = {}
    for name in available():
        try:
            rows[name] = backend_class(name).capabilities.to_dict()
        except UnifiedPromptError as exc:
            rows[name] = {"error": str(exc)}
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no backends installed: pip install 'unified-prompt[hf]' (or paddle, openai)")
    for name, caps in rows.items():
        if "error" in caps:
            click.echo(f"{name}: unavailable ({caps['error']})")
            continue
        click.echo(f"{name}")
        click.echo(f"  models:   {', '.join(caps['model_kinds'])}")
        click.echo(f"  methods:  {', '.join(caps['methods']) or '-'}"
                   + (f"; hosted: {', '.join(caps['hosted_finetune'])}"
                      if caps["hosted_finetune"] else ""))
        prims = [k for k in ("score", "generate", "adapters", "top_tokens", "token_gradients",
                             "raw_text") if caps[k]]
        click.echo(f"  can:      {', '.join(prims)}")
        if caps["parallel"]:
            launch = f" (launch: {'; '.join(caps['launchers'])})" if caps["launchers"] else ""
            click.echo(f"  parallel: {', '.join(caps['parallel'])}{launch}")
        else:
            click.echo("  parallel: one process only")
        if caps["score"] and not caps["exact_multi_token"]:
            click.echo(f"  scoring:  first token only, top-{caps['top_logprobs_limit']} bounded")
        for note in caps["notes"]:
            click.echo(f"  note:     {note}")


# -- datasets -----------------------------------------------------------------------
@main.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """Bundled datasets (read from installed packages)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_datasets)


@datasets.command("list")
@handles_errors
def list_datasets() -> None:
    """Each dataset with its task, labels and split sizes."""
    from unified_prompt.config import DataSpec
    from unified_prompt.data.bundled import dataset_info, dataset_names
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.errors import UnifiedPromptError

    for name in dataset_names():
        info = dataset_info(name)
        try:
            sizes = load_splits(DataSpec(dataset=name), info.task, 0).sizes()
            size = ", ".join(f"{k} {v:,}" for k, v in sizes.items())
        except UnifiedPromptError as exc:
            size = f"unavailable: {exc}"
        labels = f"; labels: {', '.join(info.labels)}" if info.labels else ""
        click.echo(f"{name} ({info.task}{labels})\n  {info.description}\n  splits: {size}"
                   f"\n  from the {info.package} package; licence: {info.licence}")


@datasets.command("preview")
@click.argument("name")
@click.option("-n", "count", default=5, show_default=True)
@click.option("--split", default="train", type=click.Choice(["train", "dev", "test"]))
@handles_errors
def preview(name: str, count: int, split: str) -> None:
    """Print the first examples of a split as JSON lines."""
    from unified_prompt.config import DataSpec
    from unified_prompt.data.bundled import dataset_info
    from unified_prompt.data.resolve import load_splits

    info = dataset_info(name)
    for ex in load_splits(DataSpec(dataset=name), info.task, 0).get(split)[:count]:
        click.echo(json.dumps(ex.to_dict(), ensure_ascii=False))


if __name__ == "__main__":
    main()
