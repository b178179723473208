"""Loading an adapter folder: find its method from the files it holds, and let that
method's module load it (each method module owns its folder's format; see methods/).

Folders are PEFT's own format where PEFT has one, so `peft.PeftModel.from_pretrained`
loads them; a plain PEFT folder (no hf_adapter.json) and a whole Hugging Face model
folder (full fine-tuning) load too.
"""

from __future__ import annotations

import json
from pathlib import Path

from unified_prompt.errors import UserInputError
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.methods import MODULES, method_module
from unified_prompt_hf.methods.files import META_FILE, PEFT_CONFIG, SOFT_FILE

#: PEFT's peft_type -> finetune.method
PEFT_TYPES = {"LORA": "lora", "PROMPT_TUNING": "prompt_tuning", "P_TUNING": "p_tuning",
              "PREFIX_TUNING": "prefix_tuning"}


def adapter_method(path: Path) -> str:
    """The method of an adapter folder: ours (hf_adapter.json), plain PEFT, or a model."""
    if (path / META_FILE).exists():
        return str(json.loads((path / META_FILE).read_text(encoding="utf-8"))["method"])
    if (path / PEFT_CONFIG).exists():
        peft_type = json.loads((path / PEFT_CONFIG).read_text(encoding="utf-8")).get("peft_type")
        if peft_type in PEFT_TYPES:
            return PEFT_TYPES[peft_type]
        raise UserInputError(f"{path}: PEFT adapter type {peft_type!r} is not supported")
    if (path / SOFT_FILE).exists():
        return "prompt_tuning"
    if (path / "config.json").exists():
        return "full"
    raise UserInputError(f"{path}: not an adapter folder (no {META_FILE}, {PEFT_CONFIG}, "
                         f"{SOFT_FILE} or config.json)")


def load_adapter(base: HFModel, path: Path) -> HFModel:
    """A new handle: `base` with the adapter at `path` applied (base itself unchanged)."""
    if not path.is_dir():
        raise UserInputError(f"{path}: no such adapter folder")
    method = adapter_method(path)
    if method not in MODULES:
        raise UserInputError(f"{path}: {META_FILE} names method {method!r}, which this backend "
                             "does not load")
    return method_module(method).load(base, path)
