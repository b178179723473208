"""The file names of an adapter folder, and the two files every method writes beside its own.

  hf_adapter.json                what the backend needs to load the folder back (format,
                                 version, method, the method's own fields)
  trainable_state.safetensors    the trainable weights under the canonical names (what
                                 another backend loads); every method but full
  adapter_config.json +          PEFT's pair, where PEFT has a format for the method
  adapter_model.safetensors
  soft_prompt.safetensors        soft prompts of any layout (prompt tuning, P-tuning)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

META_FILE = "hf_adapter.json"
SOFT_FILE = "soft_prompt.safetensors"
STATE_FILE = "trainable_state.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"


def write_meta(path: Path, method: str, **fields: Any) -> None:
    data = {"format": "unified-prompt-hf-adapter", "version": 1, "method": method, **fields}
    (path / META_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_state(path: Path, params: dict[str, torch.nn.Parameter]) -> None:
    from safetensors.torch import save_file

    save_file({k: p.detach().float().cpu().contiguous() for k, p in params.items()},
              str(path / STATE_FILE))
