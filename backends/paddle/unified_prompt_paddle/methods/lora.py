"""LoRA with paddlenlp.peft (LoRAConfig / LoRAModel) on a copy of the network.

Targets are named as in Hugging Face / PEFT ("q_proj", "query") and mapped to paddle
module paths through the architecture's rules, so one spec trains the same modules on
both frameworks. paddle's lora_A is (in, r) and lora_B (r, out); the canonical arrays are
PEFT's A (r, in) and B (out, r): a transpose each.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from unified_prompt.backend import TrainSetup
from unified_prompt.errors import ConfigError
from unified_prompt_paddle.architectures import module_map
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.layouts import lora_entries
from unified_prompt_paddle.loading import clone_net
from unified_prompt_paddle.methods import init
from unified_prompt_paddle.methods.bindings import Bindings, bind, load_state
from unified_prompt_paddle.runtime import paddlenlp


def target_modules(model: PaddleModel, targets: list[str] | None) -> dict[str, str]:
    """Hugging Face module path -> paddle path, for the modules PEFT would wrap.

    PEFT matches a plain name against the end of the module path ("q_proj" matches
    model.layers.0.self_attn.q_proj); a name with a dot matches a path suffix.
    """
    names = targets or list(model.arch.lora_defaults)
    modules = module_map(model.rules)
    chosen = {hf: pd for hf, pd in modules.items()
              if any(hf == t or hf.endswith("." + t) for t in names)}
    if not chosen:
        raise ConfigError(f"finetune.target_modules {names} match no Linear layer of "
                          f"{model.arch.model_type}",
                          problems=[("finetune.target_modules", "no match")])
    return chosen


def lora_config(model: PaddleModel, chosen: dict[str, str], r: int, alpha: float,
                dropout: float) -> Any:
    peft = paddlenlp().peft
    patterns = [re.escape(p) for p in chosen.values()]
    return peft.LoRAConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                           target_modules=patterns, merge_weights=False, dtype="float32")


def wrap(model: PaddleModel, chosen: dict[str, str], r: int, alpha: float, dropout: float
         ) -> tuple[PaddleModel, Bindings]:
    """A LoRA-wrapped copy of the network; bindings named lora.{hf module}.A/B."""
    from unified_prompt_paddle.layers import SoftOverlay

    peft = paddlenlp().peft
    net = clone_net(model)
    lora = peft.LoRAModel(net, lora_config(model, chosen, r, alpha, dropout))
    config = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": sorted(chosen)}
    bindings = bind(net, lora_entries(config, model.rules))
    for p in net.parameters():
        p.stop_gradient = True
    for b in bindings.values():
        b.param.stop_gradient = False
    handle = model.derive(net=net, lora=lora, overlay=SoftOverlay(net.get_input_embeddings()),
                          method="lora", method_config=config)
    return handle, bindings


def attach(model: PaddleModel, setup: TrainSetup, rng: np.random.Generator
           ) -> tuple[PaddleModel, Bindings]:
    spec = setup.method
    chosen = target_modules(model, spec.target_modules)
    handle, bindings = wrap(model, chosen, spec.r, spec.alpha, spec.dropout)
    for hf in sorted(chosen):
        a, b = bindings[f"lora.{hf}.A"], bindings[f"lora.{hf}.B"]
        n_out, r = b.canonical_shape
        _, n_in = a.canonical_shape
        init_a, init_b = init.lora_pair(rng, r, n_in, n_out)
        a.load(init_a)
        b.load(init_b)
    return handle, bindings


def from_state(model: PaddleModel, config: dict[str, Any], state: dict[str, np.ndarray]
               ) -> PaddleModel:
    modules = module_map(model.rules)
    chosen = {hf: modules[hf] for hf in config["target_modules"]}
    handle, bindings = wrap(model, chosen, int(config["r"]), float(config["alpha"]),
                            float(config.get("dropout", 0.0)))
    load_state(bindings, state)
    for p in handle.net.parameters():
        p.stop_gradient = True
    handle.net.eval()
    return handle
