"""An adapter independent of any file format: method, settings and canonical state.

Both formats (this backend's paddle-native folders and the hf backend's PEFT folders) are
read into and written from this, so conversion is read-one-write-the-other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.errors import UserInputError
from unified_prompt.methods import SOFT_SLOT_METHODS

State = dict[str, np.ndarray]


@dataclass
class AdapterData:
    """method: a finetune.method key. config: the method's settings, framework-neutral:
    soft   {"soft": {"counts": {slot: n}, "encoder": None|"mlp"|"lstm"}, "encoder_hidden": w}
    prefix {"num_virtual_tokens": n, "projection": bool, "projection_hidden": w}
    lora   {"r": r, "alpha": a, "dropout": p, "target_modules": [Hugging Face module paths]}
    full   {}
    """

    method: str
    config: dict[str, Any]
    state: State


def infer_config(method: str, state: State, hints: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The method settings a canonical state implies (shapes and names), plus `hints`."""
    hints = hints or {}
    if method in SOFT_SLOT_METHODS:
        counts: dict[str, int] = {}
        encoder, width = None, 0
        for name, value in state.items():
            parts = name.split(".")
            if len(parts) == 2 or parts[2:] == ["embedding"]:
                counts[parts[1]] = int(value.shape[0])
            if "lstm_head.weight_hh_l0" in name:
                encoder, width = "lstm", int(value.shape[1])
            elif name.endswith("mlp_head.4.weight") and encoder is None:
                encoder = "mlp"
                width = int(state[name[: -len("4.weight")] + "0.weight"].shape[0])
        return {"soft": {"counts": counts, "encoder": encoder}, "encoder_hidden": width}
    if method == "prefix_tuning":
        projection = "prefix.transform.0.weight" in state
        return {"num_virtual_tokens": int(state["prefix.embedding"].shape[0]),
                "projection": projection,
                "projection_hidden": int(state["prefix.transform.0.weight"].shape[0])
                if projection else int(hints.get("projection_hidden", 0) or 0)}
    if method == "lora":
        modules = sorted({k[len("lora."):-len(".A")] for k in state if k.endswith(".A")})
        r = int(state[f"lora.{modules[0]}.A"].shape[0])
        alpha = hints.get("alpha", hints.get("lora_alpha"))
        if alpha is None:
            raise UserInputError("a LoRA adapter without its alpha cannot be converted exactly")
        return {"r": r, "alpha": float(alpha), "dropout": float(hints.get("dropout", 0.0)),
                "target_modules": modules}
    if method == "full":
        return {}
    raise UserInputError(f"unknown adapter method {method!r}")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Sorted keys, as paddlenlp and PEFT write their configs (inside a folder being built,
    so not atomic: unified_prompt.artifacts.atomic_write_json is for files on their own)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
