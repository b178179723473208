"""What AutoPrompt-style gradient search needs: the vocabulary, tokenization, and the
gradient of the training loss with respect to trigger-token embeddings.

`token_gradients` fills each soft slot with the input embeddings of its trigger ids (held
by a throw-away SoftPrompts on a derived handle), computes the same mean loss a training
session computes (`losses.batch_loss`) and takes `torch.autograd.grad` with respect to
those embeddings only: the base handle is not changed and no `.grad` is left anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from unified_prompt.backend import TrainItem, TrainSetup
from unified_prompt.encoding import check_triggers
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.losses import batch_loss
from unified_prompt_hf.soft import SoftPrompts, SoftSlot

#: Examples per forward/backward; their gradients are summed, weighted to the mean loss.
CHUNK = 16


def vocabulary(handle: HFModel) -> list[str]:
    """Each input-embedding row's token decoded alone ("" for rows past the tokenizer)."""
    cached = handle.shared.get("vocabulary")
    if cached is None:
        rows = int(handle.module.get_input_embeddings().weight.shape[0])
        n = min(rows, len(handle.codec.tokenizer))
        texts = handle.codec.tokenizer.batch_decode([[i] for i in range(n)],
                                                    clean_up_tokenization_spaces=False)
        cached = handle.shared["vocabulary"] = [str(t) for t in texts] + [""] * (rows - n)
    return list(cached)


def tokenize(handle: HFModel, text: str) -> list[int]:
    """Ids of `text` without special tokens, as the core's encoding lays them out."""
    return list(handle.codec.encode_text(text))


def token_gradients(handle: HFModel, items: Sequence[TrainItem], setup: TrainSetup,
                    triggers: dict[int, list[int]]) -> dict[int, np.ndarray]:
    """g @ E.T per slot: (len(triggers[s]), vocabulary rows), float32; g is the gradient of
    the mean training loss with respect to the slot's trigger embeddings."""
    weight = handle.module.get_input_embeddings().weight
    check_triggers(items, triggers, int(weight.shape[0]), handle.codec.encode_text)
    tables = {slot: torch.nn.Embedding.from_pretrained(
        weight[torch.tensor([int(i) for i in ids], device=weight.device)].detach().float(),
        freeze=False) for slot, ids in sorted(triggers.items())}
    soft = SoftPrompts({slot: SoftSlot(t, t.num_embeddings).to(weight.device)
                        for slot, t in tables.items()})
    work = handle.derive(soft=soft)
    leaves = [t.weight for t in tables.values()]
    total = [torch.zeros_like(leaf) for leaf in leaves]
    with torch.enable_grad(), work.evaluating():
        for start in range(0, len(items), CHUNK):
            part = list(items[start:start + CHUNK])
            loss = batch_loss(work, part, setup) * (len(part) / len(items))
            for acc, grad in zip(total, torch.autograd.grad(loss, leaves), strict=True):
                acc += grad
    embed = weight.detach().float()
    with torch.no_grad():
        return {slot: (g @ embed.T).cpu().numpy() for slot, g in zip(tables, total, strict=True)}
