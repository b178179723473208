"""`unified-prompt convert`: registered through the `unified_prompt.commands` entry point.

Only click is imported here; the converter (numpy, safetensors) loads when the command
runs, so `unified-prompt --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from unified_prompt.cli import handles_errors


@click.command("convert")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(file_okay=False, path_type=Path))
@click.option("--to", "to", required=True, type=click.Choice(["paddle", "hf"]),
              help="Target format: paddle (paddlenlp's files) or hf (PEFT's files).")
@click.option("--model", default=None, help="Base model alias or folder (default: the one "
              "manifest.json names).")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@handles_errors
def convert(src: Path, dst: Path, to: str, model: str | None, overwrite: bool) -> None:
    """Convert the adapter at SRC between the paddle and hf backends' formats into DST."""
    from unified_prompt_paddle.convert import convert_adapter, detect_format

    source = detect_format(src)
    out = convert_adapter(src, dst, to, model=model, overwrite=overwrite)  # type: ignore[arg-type]
    click.echo(f"converted {source} adapter {src} -> {to} adapter {out}")
