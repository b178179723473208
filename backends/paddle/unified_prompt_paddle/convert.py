"""Adapter conversion between the paddle backend's format and the hf backend's (PEFT's).

    convert_adapter("runs/hf/adapter", "runs/hf/adapter-paddle", to="paddle")
    convert_adapter("runs/pd/adapter", "runs/pd/adapter-hf", to="hf")

Pure numpy (safetensors.numpy and pickle): neither torch nor paddle is imported. The base
model's config.json (found through manifest.json, or `model=`) supplies the shapes and
names; manifest.json is carried over with its `backend` switched and the source recorded.
Renaming, transposing and (for prefixes) permuting columns are exact, so the converted
adapter gives the same predictions as the original.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from unified_prompt.adapters import MANIFEST, AdapterConverter, read_manifest
from unified_prompt.artifacts import atomic_dir, atomic_write_json, read_json
from unified_prompt.errors import UserInputError
from unified_prompt_paddle import hf_format, paddle_format
from unified_prompt_paddle.adapter_data import AdapterData
from unified_prompt_paddle.architectures import architecture_for, read_config

Target = Literal["paddle", "hf"]


def detect_format(path: Path) -> Target:
    if paddle_format.is_paddle_folder(path):
        return "paddle"
    if hf_format.is_hf_folder(path):
        return "hf"
    raise UserInputError(f"{path}: neither a paddle nor an hf adapter folder")


def _manifest(path: Path) -> dict[str, Any] | None:
    """The source's manifest, checked as every adapter's is; PEFT folders may have none."""
    return read_manifest(path) if (path / MANIFEST).exists() else None


def base_folder(src: Path, model: str | Path | None, manifest: dict[str, Any] | None) -> Path:
    """The base model's folder: `model`, else the manifest's base model, else PEFT's."""
    from unified_prompt.assets import resolve_model

    ref = str(model) if model is not None else None
    if ref is None and manifest:
        ref = (manifest.get("base_model") or {}).get("name")
    if ref is None and (src / hf_format.PEFT_CONFIG).exists():
        ref = read_json(src / hf_format.PEFT_CONFIG).get("base_model_name_or_path")
    if ref is None:
        raise UserInputError(f"{src}: cannot tell the base model (no manifest.json); pass model=")
    return Path(resolve_model(ref, progress=False))


def read_adapter(src: Path, hf: dict[str, Any]) -> AdapterData:
    """Either format, as format-free AdapterData."""
    arch = architecture_for(hf, str(src))
    fmt = detect_format(src)
    return paddle_format.read(src, hf, arch) if fmt == "paddle" else hf_format.read(src, hf, arch)


def write_adapter(dst: Path, data: AdapterData, to: Target, base: Path,
                  hf: dict[str, Any]) -> None:
    arch = architecture_for(hf, str(base))
    if to == "paddle":
        paddle_format.write(dst, data, hf, arch, base_name=str(base))
    else:
        from unified_prompt_paddle.tokenizer import load_tokenizer

        add_bos = load_tokenizer(base, hf).special.add_bos
        hf_format.write(dst, data, hf, arch, base_path=base, add_bos=add_bos)


def convert_adapter(src: str | Path, dst: str | Path, to: Target, *,
                    model: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write the adapter at `src` in format `to` at `dst`; returns `dst`."""
    if to not in ("paddle", "hf"):
        raise UserInputError(f"convert: to must be 'paddle' or 'hf', not {to!r}")
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise UserInputError(f"{src}: no such adapter folder")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise UserInputError(f"{dst}: exists and is not empty (pass overwrite=True)")
    manifest = _manifest(src)
    base = base_folder(src, model, manifest)
    hf = read_config(base)
    data = read_adapter(src, hf)
    with atomic_dir(dst) as tmp:
        write_adapter(tmp, data, to, base, hf)
        if manifest is not None:
            out = dict(manifest)
            out["backend"] = to
            out["converted_from"] = {"backend": manifest.get("backend", detect_format(src)),
                                     "path": str(src), "at": time.time()}
            atomic_write_json(tmp / MANIFEST, out)
    return dst


#: Registered under the `unified_prompt.converters` entry points (matrix --convert finds it).
CONVERTER = AdapterConverter(pairs=frozenset({("hf", "paddle"), ("paddle", "hf")}),
                             convert=convert_adapter)
