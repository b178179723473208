"""A stand-in for the hf backend's search primitives, for the gradient-search bench only.

backends/hf does not implement vocabulary / tokenize / token_gradients yet (its
Capabilities say token_gradients=False). This subclass adds them with the backend's own
machinery (its codec, soft-slot embedding path and classification loss), so the AutoPrompt
bench can run now; it is the reference the hf backend can adopt. `install()` makes the name
"hf" resolve to it in this process only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from unified_prompt_hf.backend import HFBackend

from unified_prompt import registry
from unified_prompt.backend import TrainItem, TrainSetup


class HFWithSearchPrimitives(HFBackend):
    capabilities = dataclasses.replace(HFBackend.capabilities, token_gradients=True)

    def vocabulary(self, model: Any) -> list[str]:
        rows = model.module.get_input_embeddings().weight.shape[0]
        n = len(model.codec.tokenizer)
        return [model.codec.token_text(i) if i < n else "" for i in range(rows)]

    def tokenize(self, model: Any, text: str) -> list[int]:
        return list(model.codec.encode_text(text))

    def token_gradients(self, model: Any, items: Sequence[TrainItem], setup: TrainSetup,
                        triggers: dict[int, list[int]]) -> dict[int, Any]:
        import torch
        from unified_prompt_hf.losses import classification_loss
        from unified_prompt_hf.soft import SoftPrompts, SoftSlot

        E = model.module.get_input_embeddings().weight
        slots = {}
        for slot, ids in triggers.items():
            table = torch.nn.Embedding(len(ids), E.shape[1], device=E.device, dtype=E.dtype)
            with torch.no_grad():
                table.weight.copy_(E[torch.tensor(ids, device=E.device)])
            slots[slot] = SoftSlot(table, len(ids)).to(E.device)
        soft = SoftPrompts(slots)
        work = model.derive(soft=soft)
        with work.evaluating():
            loss = classification_loss(work, list(items), setup)
            loss.backward()
        out = {}
        with torch.no_grad():
            for slot in triggers:
                g = soft.slots[str(slot)].encoder.weight.grad.float()
                out[slot] = (g @ E.float().T).cpu().numpy()
        return out


def install() -> None:
    original = registry.backend_class
    registry.backend_class = lambda name: (HFWithSearchPrimitives if name == "hf"  # type: ignore
                                           else original(name))
